"""A coder's review of one encounter: the working code set and every action on it.

The working set starts from the suggestion result's encounter code set, in claim order, each
line ``pending``. The coder accepts, rejects (with a reason), modifies (another code instead),
adds codes (checked against the knowledge base: billable, 7th character), reorders lines, edits
modifiers, units and diagnosis pointers, and submits. Each action is one :class:`ReviewEvent`
(who, when, what); the decisions on codes are also written to the ``feedback`` table, the same
one ``POST /v1/feedback`` fills, so that acceptance figures and ``export-feedback`` see them.

An auditor's blind second review (:mod:`service.coding_audit`) uses the same operations on its own
working set (``audit_pk``); its decisions are events only, never training feedback.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pipeline.errors import CodesuggestError, InputError, MalformedCodeError, UnknownCodeError
from service.errors import PermissionDeniedError
from service.feedback import canonical_code
from service.models import AuditReview, Encounter, FeedbackEntry, PhysicianQuery, ReviewCode, ReviewEvent, utcnow

logger = logging.getLogger(__name__)

FINAL = frozenset({"accepted", "added", "modified"})
DIAGNOSIS_SYSTEMS = frozenset({"ICD10CM"})
SERVICE_SYSTEMS = frozenset({"CPT", "HCPCS"})
MAX_MODIFIERS = 4
MAX_POINTERS = 4
MAX_UNITS = 999
REJECT_REASONS = (
    "not documented",
    "negated or ruled out",
    "history only, not current",
    "not clinically significant for this encounter",
    "integral to another code",
    "less specific than another code",
    "wrong code",
)
_MODIFIER_RE = re.compile(r"^[A-Z0-9]{2}$")


class ReviewClosedError(CodesuggestError):
    """The review was submitted; its code set can no longer change."""

    http_status = 409


class ReviewNotReadyError(InputError):
    """Submitting a review that still has undecided lines, open queries or no code."""


class NotBillableError(InputError):
    """A code that cannot be reported as is (a category or a code missing its 7th character)."""


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: the signed-in user's name, API key id and role."""

    user: str
    key_id: str | None
    role: str


@dataclass(frozen=True, slots=True)
class Scope:
    """Which working set an action changes: the coder's (``audit`` None) or an auditor's."""

    encounter: Encounter
    audit: AuditReview | None = None

    @property
    def audit_pk(self) -> int | None:
        """The audit review's id, or None for the coder's review."""
        return self.audit.id if self.audit is not None else None

    @property
    def closed(self) -> bool:
        """True once the working set was submitted."""
        if self.audit is not None:
            return self.audit.status == "submitted"
        return self.encounter.status == "submitted"


@dataclass(frozen=True, slots=True)
class CheckedCode:
    """A code checked against the knowledge base."""

    system: str
    code: str
    description: str


# -- codes ----------------------------------------------------------------------------------------
def check_code(kb: Any, text: str, system: str | None = None, seventh: str | None = None) -> CheckedCode:
    """Read a code as a coder typed it and check that it can be reported as is.

    Args:
        kb: the knowledge base.
        text: the code as typed (``s93401``, ``L1906``, ``99213``).
        system: the system, when the coder chose one.
        seventh: a 7th character to add (``A``) to a code that requires one.

    Returns:
        The canonical, billable code with its title.

    Raises:
        MalformedCodeError: the text cannot be a code.
        UnknownCodeError: an ICD-10-CM or HCPCS code the knowledge base does not hold.
        InvalidSeventhCharacterError: the 7th character does not apply.
        NotBillableError: a category or a code without its 7th character; the message lists the
            choices.
    """
    text = text.strip()
    if not text:
        raise MalformedCodeError("type a code")
    if seventh and seventh.strip():
        text = kb.complete(text, seventh)
        system = "ICD10CM"
    found_system, canonical = canonical_code(kb, text, system)
    record = kb.get(canonical, found_system) if hasattr(kb, "get") else _lookup_or_none(kb, canonical, found_system)
    if record is None:  # a well-formed CPT code outside the starter lexicon
        return CheckedCode(found_system, canonical, "CPT code outside the knowledge base's lexicon")
    if not record.billable:
        raise NotBillableError(_not_billable_message(kb, record))
    return CheckedCode(str(record.system), str(record.code), str(record.title))


def _lookup_or_none(kb: Any, code: str, system: str) -> Any:
    try:
        return kb.lookup(code, system)
    except (UnknownCodeError, MalformedCodeError):
        return None


def takes_seventh(kb: Any, record: Any) -> bool:
    """True when a code is complete but for its 7th character (the helper offers the choice)."""
    seventh = getattr(record, "seventh", None)
    if record.billable or not seventh or not hasattr(kb, "complete"):
        return False
    try:
        kb.complete(record.code, next(iter(seventh)))
    except CodesuggestError:
        return False
    return True


def _not_billable_message(kb: Any, record: Any) -> str:
    if takes_seventh(kb, record):
        allowed = ", ".join(f"{k} ({v})" for k, v in record.seventh.items())
        return f"{record.code} needs a 7th character: {allowed}"
    choices: list[str] = []
    if hasattr(kb, "billable_descendants"):
        choices = [r.code for r in kb.billable_descendants(record.code)[:8]]
    shown = f"; choose a more specific code, e.g. {', '.join(choices)}" if choices else ""
    return f"{record.code} is not billable (a category, not a reportable code){shown}"


def code_help(kb: Any, text: str) -> dict[str, Any]:
    """What the add-code helper shows for a typed code: its title, billable or not, the 7th
    characters it needs, or more specific codes.

    Args:
        kb: the knowledge base.
        text: the code as typed.

    Returns:
        ``{"code", "system", "title", "billable", "seventh": {char: meaning} | None, "children":
        [(code, title, billable)], "error": message | None}``.
    """
    out: dict[str, Any] = {"code": text, "system": None, "title": None, "billable": False}
    out.update({"seventh": None, "children": [], "error": None})
    try:
        record = kb.lookup(text)
    except (MalformedCodeError, UnknownCodeError) as exc:
        out["error"] = str(exc)
        return out
    out.update(code=record.code, system=record.system, title=record.title, billable=record.billable)
    if takes_seventh(kb, record):
        out["seventh"] = dict(record.seventh)
        return out
    children = kb.children(record.code) if hasattr(kb, "children") and record.system == "ICD10CM" else []
    out["children"] = [(c.code, c.title, c.billable) for c in children[:25]]
    return out


# -- the working set ------------------------------------------------------------------------------
def start_code_set(session: Session, encounter: Encounter, result: dict[str, Any], audit_pk: int | None) -> None:
    """Create the working set from a suggestion result's encounter code set (all lines pending).

    Does nothing when the working set already has lines.

    Args:
        session: an open session.
        encounter: the encounter.
        result: the suggestion result body.
        audit_pk: the audit review, or None for the coder's review.
    """
    exists = session.scalar(
        select(func.count()).select_from(ReviewCode).where(ReviewCode.encounter_pk == encounter.id, _audit_is(audit_pk))
    )
    if exists:
        return
    scores = {(s["system"], s["code"]): s for s in result.get("suggestions", [])}
    now = utcnow()
    for position, line in enumerate(result.get("code_set", []), start=1):
        suggestion = scores.get((line["system"], line["code"]), {})
        session.add(
            ReviewCode(
                encounter_pk=encounter.id,
                audit_pk=audit_pk,
                position=position,
                system=line["system"],
                code=line["code"],
                description=line.get("description", ""),
                origin="code_set",
                status="pending",
                role=line.get("role"),
                score=suggestion.get("score"),
                modifiers=",".join(line.get("modifiers", [])),
                units=1,
                pointers=",".join(line.get("pointers", [])),
                updated_at=now,
            )
        )


def _audit_is(audit_pk: int | None) -> Any:
    return ReviewCode.audit_pk.is_(None) if audit_pk is None else ReviewCode.audit_pk == audit_pk


def lines(session: Session, scope: Scope) -> list[ReviewCode]:
    """The working set of a scope in claim order (rejected lines included)."""
    return list(
        session.scalars(
            select(ReviewCode)
            .where(ReviewCode.encounter_pk == scope.encounter.id, _audit_is(scope.audit_pk))
            .order_by(ReviewCode.position, ReviewCode.id)
        )
    )


def final_code(line: ReviewCode) -> tuple[str, str] | None:
    """``(system, code)`` a line contributes to the final set, or None (pending or rejected)."""
    if line.status == "modified" and line.replaced_by and line.replaced_by_system:
        return line.replaced_by_system, line.replaced_by
    if line.status in ("accepted", "added"):
        return line.system, line.code
    return None


def final_codes(rows: Sequence[ReviewCode]) -> list[tuple[str, str]]:
    """The final ``(system, code)`` pairs of a working set, in claim order, without repeats."""
    out: list[tuple[str, str]] = []
    for row in rows:
        code = final_code(row)
        if code is not None and code not in out:
            out.append(code)
    return out


def _line(session: Session, scope: Scope, line_id: int) -> ReviewCode:
    row = session.get(ReviewCode, line_id)
    if row is None or row.encounter_pk != scope.encounter.id or row.audit_pk != scope.audit_pk:
        raise InputError(f"line {line_id} is not part of this review")
    return row


def check_may_change(scope: Scope, actor: Actor) -> None:
    """Refuse a change to a submitted review, or to a review another coder holds.

    Args:
        scope: the working set.
        actor: who acts.

    Raises:
        ReviewClosedError: the review was submitted.
        PermissionDeniedError: another coder holds it (admins may act on any).
    """
    if scope.closed:
        raise ReviewClosedError("this review was submitted; its codes can no longer change")
    if scope.audit is not None:
        if scope.audit.auditor != actor.user and actor.role != "admin":
            raise PermissionDeniedError(f"this audit review belongs to {scope.audit.auditor}")
        return
    holder = scope.encounter.assigned_to
    if holder is not None and holder != actor.user and actor.role != "admin":
        raise PermissionDeniedError(f"{scope.encounter.encounter_id} is assigned to {holder}; take it over first")


def record_event(
    session: Session,
    scope: Scope,
    actor: Actor,
    action: str,
    *,
    system: str | None = None,
    code: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Store one action (never note text: only codes, reasons and choices)."""
    session.add(
        ReviewEvent(
            encounter_pk=scope.encounter.id,
            audit_pk=scope.audit_pk,
            at=utcnow(),
            user=actor.user,
            key_id=actor.key_id,
            action=action,
            system=system,
            code=code,
            detail=json.dumps(detail, sort_keys=True) if detail else None,
        )
    )


def _feedback(
    session: Session,
    scope: Scope,
    actor: Actor,
    request_id: str,
    row: ReviewCode,
    decision: str,
    reason: str | None = None,
) -> None:
    if scope.audit is not None:
        return  # an auditor's decisions measure agreement; they are not training feedback
    session.add(
        FeedbackEntry(
            created_at=utcnow(),
            request_id=request_id,
            suggestion_request_id=None,
            key_id=actor.key_id,
            note_id=scope.encounter.encounter_id,
            user=actor.user,
            system=row.system,
            code=row.code,
            decision=decision,
            replaced_by_system=row.replaced_by_system if decision == "modified" else None,
            replaced_by=row.replaced_by if decision == "modified" else None,
            reason=reason,
            setting=scope.encounter.setting,
            model_version=scope.encounter.model_version,
        )
    )


def _touch(row: ReviewCode, actor: Actor) -> None:
    row.updated_at = utcnow()
    row.updated_by = actor.user


def claim(session: Session, scope: Scope, actor: Actor, *, take_over: bool = False) -> bool:
    """Start the coder's review: assign the encounter to the actor when nobody holds it.

    Args:
        session: an open session.
        scope: the coder's working set (audits are assigned when sampled).
        actor: who opens it.
        take_over: assign it to the actor even when another coder holds it.

    Returns:
        True when the assignment changed.
    """
    encounter = scope.encounter
    if scope.audit is not None or encounter.status == "submitted":
        return False
    if encounter.assigned_to == actor.user or (encounter.assigned_to is not None and not take_over):
        return False
    previous = encounter.assigned_to
    encounter.assigned_to = actor.user
    encounter.assigned_key_id = actor.key_id
    if encounter.status == "new":
        encounter.status = "in_review"
    if encounter.review_started_at is None or previous is not None:
        encounter.review_started_at = utcnow()
    record_event(session, scope, actor, "took_over" if previous else "started", detail={"from": previous})
    return True


def decide(
    session: Session,
    kb: Any,
    scope: Scope,
    actor: Actor,
    request_id: str,
    line_id: int,
    decision: str,
    *,
    reason: str | None = None,
    replacement: str | None = None,
    seventh: str | None = None,
) -> ReviewCode:
    """Accept, reject, modify or reset (back to pending) one line.

    Args:
        session: an open session.
        kb: the knowledge base (checks a replacement code).
        scope: the working set.
        actor: who decides.
        request_id: the request's id (kept with the feedback).
        line_id: the line.
        decision: ``accepted``, ``rejected``, ``modified`` or ``pending``.
        reason: why (required to reject).
        replacement: for ``modified``: the code used instead.
        seventh: a 7th character to add to the replacement.

    Returns:
        The changed line.

    Raises:
        InputError: unknown decision, a rejection without reason, a modification without a code.
        NotBillableError, MalformedCodeError, UnknownCodeError: the replacement cannot be used.
    """
    check_may_change(scope, actor)
    row = _line(session, scope, line_id)
    before = final_code(row)
    reason = (reason or "").strip()[:1000] or None
    if decision == "accepted":
        if row.origin == "added":
            raise InputError("an added code is already in the set; reject it to take it out")
        row.status, row.reason = "accepted", None
        row.replaced_by = row.replaced_by_system = row.replaced_description = None
    elif decision == "rejected":
        if reason is None:
            raise InputError("say why the code is rejected (choose or type a reason)")
        row.status, row.reason = "rejected", reason
        row.replaced_by = row.replaced_by_system = row.replaced_description = None
    elif decision == "modified":
        if not replacement or not replacement.strip():
            raise InputError("type the code to use instead")
        checked = check_code(kb, replacement, None, seventh)
        if (checked.system, checked.code) == (row.system, row.code):
            raise InputError(f"{checked.code} is the code already on this line; accept it instead")
        row.status, row.reason = "modified", reason
        row.replaced_by, row.replaced_by_system, row.replaced_description = (
            checked.code,
            checked.system,
            checked.description,
        )
    elif decision == "pending":
        if row.origin == "added":
            raise InputError("an added code has no suggestion to go back to; reject it to take it out")
        row.status, row.reason = "pending", None
        row.replaced_by = row.replaced_by_system = row.replaced_description = None
    else:
        raise InputError(f"unknown decision {decision!r}")
    _touch(row, actor)
    detail: dict[str, Any] = {"line": row.id}
    if row.system in DIAGNOSIS_SYSTEMS:
        repointed = _follow_pointers(session, scope, row, actor, before)
        if repointed:
            detail["pointers"] = repointed
    if reason:
        detail["reason"] = reason
    if row.replaced_by:
        detail["replaced_by"] = row.replaced_by
    action = {"accepted": "accepted", "rejected": "rejected", "modified": "modified", "pending": "reset"}[decision]
    record_event(session, scope, actor, action, system=row.system, code=row.code, detail=detail)
    if decision != "pending":
        _feedback(session, scope, actor, request_id, row, decision, reason)
    return row


def _follow_pointers(
    session: Session, scope: Scope, row: ReviewCode, actor: Actor, before: tuple[str, str] | None
) -> list[str]:
    """Keep service lines pointing at what a diagnosis line now reports.

    A diagnosis modified to another code moves its pointers to that code; a rejected one is
    dropped from the pointers (a claim line points only to reported diagnoses).

    Args:
        session: an open session.
        scope: the working set.
        row: the diagnosis line just decided.
        actor: who decided.
        before: what the line reported before the decision.

    Returns:
        The codes of the service lines whose pointers changed.
    """
    now = final_code(row)
    old = {row.code} | ({before[1]} if before else set())
    changed = []
    for other in lines(session, scope):
        points = _split(other.pointers)
        if other.id == row.id or not points:
            continue
        updated: list[str] = []
        for pointer in points:
            if pointer in old and pointer != (now[1] if now else None):
                if now is not None and now[1] not in updated:
                    updated.append(now[1])
            elif pointer not in updated:
                updated.append(pointer)
        if updated != points:
            other.pointers = ",".join(updated)
            _touch(other, actor)
            changed.append(other.code)
    return changed


def add_code(
    session: Session,
    kb: Any,
    scope: Scope,
    actor: Actor,
    request_id: str,
    code: str,
    *,
    system: str | None = None,
    seventh: str | None = None,
    reason: str | None = None,
    origin: str = "added",
) -> ReviewCode:
    """Add a code the suggestions missed (or one from the ``consider`` list) to the end of the set.

    Args:
        session: an open session.
        kb: the knowledge base.
        scope: the working set.
        actor: who adds it.
        request_id: the request's id.
        code: the code as typed.
        system: its system, when chosen.
        seventh: a 7th character to add.
        reason: why (optional).
        origin: ``added`` (typed) or ``consider`` (taken from the consider list).

    Returns:
        The new line.

    Raises:
        InputError: the code is already in the set.
        NotBillableError, MalformedCodeError, UnknownCodeError, InvalidSeventhCharacterError:
            the code cannot be reported as is.
    """
    check_may_change(scope, actor)
    checked = check_code(kb, code, system, seventh)
    rows = lines(session, scope)
    for row in rows:
        if (row.system, row.code) == (checked.system, checked.code) or final_code(row) == (
            checked.system,
            checked.code,
        ):
            raise InputError(f"{checked.code} is already in the code set (line {row.position})")
    row = ReviewCode(
        encounter_pk=scope.encounter.id,
        audit_pk=scope.audit_pk,
        position=max((r.position for r in rows), default=0) + 1,
        system=checked.system,
        code=checked.code,
        description=checked.description,
        origin="consider" if origin == "consider" else "added",
        status="added",
        role=None,
        score=None,
        reason=(reason or "").strip()[:1000] or None,
        modifiers="",
        units=1,
        pointers="",
        updated_at=utcnow(),
        updated_by=actor.user,
    )
    session.add(row)
    session.flush()
    detail: dict[str, Any] = {"line": row.id, "origin": row.origin}
    if row.reason:
        detail["reason"] = row.reason
    record_event(session, scope, actor, "added", system=row.system, code=row.code, detail=detail)
    _feedback(session, scope, actor, request_id, row, "added", row.reason)
    return row


def move(session: Session, scope: Scope, actor: Actor, line_id: int, direction: str) -> ReviewCode:
    """Move a line one place up or down the claim order.

    Args:
        session: an open session.
        scope: the working set.
        actor: who moves it.
        line_id: the line.
        direction: ``up`` or ``down``.

    Returns:
        The moved line.

    Raises:
        InputError: unknown direction, or the line is already first or last.
    """
    check_may_change(scope, actor)
    if direction not in ("up", "down"):
        raise InputError("move a line 'up' or 'down'")
    rows = lines(session, scope)
    index = next((i for i, r in enumerate(rows) if r.id == line_id), None)
    if index is None:
        raise InputError(f"line {line_id} is not part of this review")
    other = index - 1 if direction == "up" else index + 1
    if not 0 <= other < len(rows):
        raise InputError(f"the line is already {'first' if direction == 'up' else 'last'}")
    rows[index], rows[other] = rows[other], rows[index]
    for position, row in enumerate(rows, start=1):
        row.position = position
    moved = rows[other]
    _touch(moved, actor)
    record_event(
        session,
        scope,
        actor,
        "reordered",
        system=moved.system,
        code=moved.code,
        detail={"line": moved.id, "to": moved.position, "order": [r.code for r in rows]},
    )
    return moved


def _split(text: str | None) -> list[str]:
    return [p.strip().upper() for p in re.split(r"[,\s]+", text or "") if p.strip()]


def edit_line(
    session: Session,
    kb: Any,
    scope: Scope,
    actor: Actor,
    line_id: int,
    *,
    modifiers: str | None,
    units: int | None,
    pointers: str | None,
) -> ReviewCode:
    """Set a service line's modifiers, units and diagnosis pointers.

    Args:
        session: an open session.
        kb: the knowledge base (its modifier table checks the modifiers).
        scope: the working set.
        actor: who edits.
        line_id: the line (a CPT or HCPCS code).
        modifiers: two-character modifiers, comma or space separated (at most 4).
        units: units of service (1 to 999).
        pointers: ICD-10-CM codes of this code set the service treats (at most 4).

    Returns:
        The line.

    Raises:
        InputError: a diagnosis line, an unknown modifier, units out of range, a pointer to a code
            that is not a final diagnosis of this set.
    """
    check_may_change(scope, actor)
    row = _line(session, scope, line_id)
    system = row.replaced_by_system if row.status == "modified" and row.replaced_by_system else row.system
    if system not in SERVICE_SYSTEMS:
        raise InputError("modifiers, units and pointers belong to procedure and supply lines (CPT, HCPCS)")
    mods = _split(modifiers)
    known = getattr(kb, "modifiers", None)
    for mod in mods:
        if not _MODIFIER_RE.match(mod):
            raise InputError(f"{mod!r} is not a modifier (two letters or digits, e.g. RT, 25)")
        if known is not None and mod not in known:
            raise InputError(f"{mod} is not a modifier of the knowledge base")
    if len(mods) > MAX_MODIFIERS or len(set(mods)) != len(mods):
        raise InputError(f"at most {MAX_MODIFIERS} different modifiers on a line")
    count = 1 if units is None else units
    if not 1 <= count <= MAX_UNITS:
        raise InputError(f"units must be 1 to {MAX_UNITS}")
    diagnoses = {code for sys, code in final_codes(lines(session, scope)) if sys in DIAGNOSIS_SYSTEMS}
    points = []
    for pointer in _split(pointers):
        record = kb.get(pointer, "ICD10CM") if hasattr(kb, "get") else None
        canonical = str(record.code) if record is not None else pointer
        if canonical not in diagnoses:
            raise InputError(f"pointer {pointer} is not an accepted diagnosis of this code set")
        if canonical not in points:
            points.append(canonical)
    if len(points) > MAX_POINTERS:
        raise InputError(f"a claim line points to at most {MAX_POINTERS} diagnoses")
    before = {"modifiers": row.modifiers, "units": row.units, "pointers": row.pointers}
    row.modifiers, row.units, row.pointers = ",".join(mods), count, ",".join(points)
    _touch(row, actor)
    after = {"modifiers": row.modifiers, "units": row.units, "pointers": row.pointers}
    record_event(
        session, scope, actor, "edited", system=row.system, code=row.code, detail={"from": before, "to": after}
    )
    return row


def open_queries(session: Session, encounter: Encounter) -> int:
    """Open physician queries of an encounter."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(PhysicianQuery)
            .where(PhysicianQuery.encounter_pk == encounter.id, PhysicianQuery.status == "open")
        )
        or 0
    )


def submit(session: Session, scope: Scope, actor: Actor) -> list[tuple[str, str]]:
    """Submit a working set: every line decided, no open query, at least one code.

    Args:
        session: an open session.
        scope: the working set.
        actor: who submits.

    Returns:
        The final codes in claim order.

    Raises:
        ReviewNotReadyError: undecided lines, open queries, no code, or a pointer to a code no
            longer in the set; the message names them.
    """
    check_may_change(scope, actor)
    rows = lines(session, scope)
    if scope.audit is None and open_queries(session, scope.encounter):
        raise ReviewNotReadyError("a physician query is still open: record its answer (or withdraw it) first")
    pending = [r.code for r in rows if r.status == "pending"]
    if pending:
        raise ReviewNotReadyError(f"decide every suggested code first: {', '.join(pending)} still pending")
    codes = final_codes(rows)
    if not codes:
        raise ReviewNotReadyError("the code set is empty: accept or add at least one code")
    diagnoses = {code for system, code in codes if system in DIAGNOSIS_SYSTEMS}
    for row in rows:
        final = final_code(row)
        if final is None:
            continue
        stale = [p for p in _split(row.pointers) if p not in diagnoses]
        if stale:
            raise ReviewNotReadyError(f"{row.code} points to {', '.join(stale)}, which is no longer in the code set")
        if final[0] in SERVICE_SYSTEMS and not row.pointers:
            raise ReviewNotReadyError(
                f"{final[1]} points to no diagnosis: give it at least one (a claim line needs a diagnosis pointer)"
            )
    now = utcnow()
    if scope.audit is not None:
        scope.audit.status, scope.audit.submitted_at = "submitted", now
    else:
        scope.encounter.status = "submitted"
        scope.encounter.submitted_at, scope.encounter.submitted_by = now, actor.user
    record_event(session, scope, actor, "submitted", detail={"codes": [c for _, c in codes]})
    logger.info("%s review of an encounter submitted with %d codes", "audit" if scope.audit else "coder", len(codes))
    return codes


def events(session: Session, scope: Scope) -> list[ReviewEvent]:
    """The actions on a working set, oldest first."""
    query = select(ReviewEvent).where(ReviewEvent.encounter_pk == scope.encounter.id)
    query = query.where(
        ReviewEvent.audit_pk.is_(None) if scope.audit is None else ReviewEvent.audit_pk == scope.audit.id
    )
    return list(session.scalars(query.order_by(ReviewEvent.at, ReviewEvent.id)))
