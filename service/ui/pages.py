"""The workbench's pages: worklist, review screen and its actions, code look-up, physician
queries, audit mode and productivity.

Routes stay thin: they read the form, call :mod:`service.review`, :mod:`service.queries`,
:mod:`service.coding_audit` or :mod:`service.productivity`, and answer with a page, or a redirect
after a change (so that reloading never repeats an action). A refused action re-renders the
review screen with the reason (422, 403 or 409). Every change needs the session's CSRF token.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Path, Query, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.errors import CodesuggestError
from service.audit import RequestInfo
from service.coding_audit import agreement, audit_for, create_sample, samples
from service.db import Database
from service.deps import get_db, get_info, get_suggester
from service.encounter_schemas import ENCOUNTER_ID_PATTERN
from service.encounters import (
    STATUS_VIEWS,
    EncounterVault,
    WorklistFilter,
    app_vault,
    cached_result,
    ensure_coded,
    get_encounter,
    note_text,
    open_query_counts,
    purge_now_and_then,
    review_url,
    worklist,
)
from service.errors import NotFoundError, PermissionDeniedError
from service.models import AuditReview, Encounter
from service.productivity import productivity
from service.queries import Draft, close_query, create_query, draft_from_suggestion, list_queries, load_templates
from service.review import (
    REJECT_REASONS,
    Scope,
    add_code,
    claim,
    code_help,
    decide,
    edit_line,
    events,
    lines,
    move,
    start_code_set,
    submit,
)
from service.suggesting import SuggesterLike
from service.ui.auth import Admin, FormUser, UIUser, User, ui_users
from service.ui.charts import bars_per_day, hbars
from service.ui.highlight import evidence_by_code, spans_tree
from service.ui.render import UIRoute, redirect, render

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/ui", route_class=UIRoute, include_in_schema=False)

Db = Annotated[Database, Depends(get_db)]
Suggester = Annotated[SuggesterLike, Depends(get_suggester)]
Info = Annotated[RequestInfo, Depends(get_info)]
EncounterIdPath = Annotated[str, Path(min_length=1, max_length=128, pattern=ENCOUNTER_ID_PATTERN)]
Kind = Literal["encounters", "audits"]
_CODE_LIKE = re.compile(r"^\s*[A-Za-z]?\d[\dA-Za-z.]{1,7}\s*$|^\s*[A-Za-z]\d{2}[\dA-Za-z.]*\s*$")


def _vault(request: Request) -> EncounterVault:
    return app_vault(request.app.state)


@router.get("/")
def home(user: User) -> Response:
    """The worklist is the workbench's home."""
    return redirect("/ui/worklist")


# -- worklist -----------------------------------------------------------------------------------
def _date_param(value: str | None, name: str) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise CodesuggestError(f"{name}: write the date as YYYY-MM-DD") from exc


@router.get("/worklist")
def worklist_page(
    request: Request,
    user: User,
    db: Db,
    setting: Annotated[str, Query(max_length=20)] = "",
    status: Annotated[str, Query(max_length=20)] = "waiting",
    coder: Annotated[str, Query(max_length=200)] = "",
    date_from: Annotated[str, Query(alias="from", max_length=10)] = "",
    date_to: Annotated[str, Query(alias="to", max_length=10)] = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    """Encounters waiting for coding, in priority order, with filters and counts."""
    purge_now_and_then(db)
    chosen_coder = user.name if coder == "me" else coder or None
    f = WorklistFilter(
        setting=setting or None,
        status=status,
        coder=chosen_coder,
        date_from=_date_param(date_from, "from"),
        date_to=_date_param(date_to, "to"),
        page=page,
    )
    with db.session() as session:
        listing = worklist(session, f)
        queries = open_query_counts(session, [r.id for r in listing.rows])
    params = {"setting": setting, "status": status, "coder": coder, "from": date_from, "to": date_to}
    return render(
        request,
        "worklist.html",
        {
            "listing": listing,
            "queries": queries,
            "params": params,
            "views": list(STATUS_VIEWS),
            "offset": (listing.page - 1) * 50,
        },
    )


# -- the review screen --------------------------------------------------------------------------
def _scope(session: Session, kind: str, ident: str, user: UIUser) -> Scope:
    if kind == "encounters":
        return Scope(get_encounter(session, ident, for_update=True))
    if not ident.isdigit():
        raise NotFoundError(f"no audit review {ident!r}")
    try:
        audit, encounter = audit_for(session, int(ident))
    except CodesuggestError as exc:
        raise NotFoundError(str(exc)) from exc
    if audit.auditor != user.name and not user.is_admin:
        raise PermissionDeniedError(f"this audit review belongs to {audit.auditor}")
    return Scope(encounter, audit)


def _base_url(kind: str, ident: str) -> str:
    return review_url(ident) if kind == "encounters" else f"/ui/audits/{ident}"


def _prepare(request: Request, db: Database, suggester: SuggesterLike, kind: str, ident: str, user: UIUser) -> None:
    """Code the encounter if it never was, start the working set, assign it on first open."""
    vault = _vault(request)
    with db.session() as session:
        scope = _scope(session, kind, ident, user)
        encounter_id = scope.encounter.encounter_id
        needs_coding = scope.encounter.suggestions_sealed is None and scope.encounter.text_sealed is not None
    if needs_coding:
        ensure_coded(db, vault, suggester, encounter_id, request.state.request_id)
    with db.session() as session:
        scope = _scope(session, kind, ident, user)
        if scope.audit is not None:
            result = cached_result(vault, scope.encounter)
            if result is not None:
                start_code_set(session, scope.encounter, result, scope.audit.id)
            if scope.audit.started_at is None and scope.audit.auditor == user.name:
                scope.audit.started_at = dt.datetime.now(dt.UTC)
        elif user.role in ("coder", "admin"):
            claim(session, scope, user.actor)


def _review_page(
    request: Request,
    db: Database,
    kind: str,
    ident: str,
    user: UIUser,
    *,
    error: str | None = None,
    status_code: int = 200,
    notice: str | None = None,
) -> Response:
    vault = _vault(request)
    with db.session() as session:
        scope = _scope(session, kind, ident, user)
        encounter = scope.encounter
        rows = lines(session, scope)
        history = events(session, scope)
        queries = list_queries(session, vault, scope) if scope.audit is None else []
        result = cached_result(vault, encounter) or {"suggestions": [], "excluded": [], "code_set": []}
        text = note_text(vault, encounter) if encounter.text_sealed is not None else None
    suggestions = {(s["system"], s["code"]): s for s in result.get("suggestions", [])}
    in_set = {(r.system, r.code) for r in rows} | {(r.replaced_by_system, r.replaced_by) for r in rows if r.replaced_by}
    consider = [
        s for s in result.get("suggestions", []) if s["status"] == "consider" and (s["system"], s["code"]) not in in_set
    ]
    query_flags = [s for s in result.get("suggestions", []) if s["status"] == "query"]
    shown_codes = [r.code for r in rows] + [s["code"] for s in consider] + [s["code"] for s in query_flags]
    evidence = evidence_by_code(result, list(dict.fromkeys(shown_codes)))
    note = spans_tree(text, evidence, result.get("excluded", [])) if text is not None else []
    sequence: dict[int, int] = {}
    for row in rows:  # claim position of every line still in the set (pending ones included)
        if row.status != "rejected":
            sequence[row.id] = len(sequence) + 1
    rules = []
    for row in rows:
        for rule in suggestions.get((row.system, row.code), {}).get("rules", []):
            rules.append((row.code, rule))
    facts = {
        k: v
        for k, v in (result.get("encounter") or {}).items()
        if isinstance(v, str | int | float) and not isinstance(v, bool)
    }
    context = {
        "kind": kind,
        "ident": ident,
        "base": _base_url(kind, ident),
        "encounter": encounter,
        "audit": scope.audit,
        "closed": scope.closed,
        "rows": rows,
        "sequence": sequence,
        "suggestions": suggestions,
        "consider": consider,
        "query_flags": query_flags,
        "excluded": result.get("excluded", []),
        "note": note,
        "text_purged": text is None,
        "rules": rules,
        "facts": facts,
        "history": history if scope.audit is None or user.is_admin else [e for e in history if e.audit_pk],
        "queries": queries,
        "reasons": REJECT_REASONS,
        "templates": load_templates().templates,
        "error": error,
        "notice": notice,
        "model_version": encounter.model_version,
        "detail": _detail,
    }
    return render(request, "review.html", context, status_code)


def _detail(raw: str | None) -> str:
    if not raw:
        return ""
    data = json.loads(raw)
    parts = []
    for key in ("reason", "replaced_by", "origin", "to", "codes", "from"):
        if key in data and data[key] not in (None, "", []):
            value = data[key]
            if isinstance(value, list):
                value = ", ".join(str(v) for v in value)
            elif isinstance(value, dict):
                value = ", ".join(f"{k} {v}" for k, v in value.items() if v not in (None, ""))
            parts.append(f"{key.replace('_', ' ')}: {value}")
    return "; ".join(parts)


@router.get("/encounters/{encounter_id}")
def review_page(
    request: Request, encounter_id: EncounterIdPath, user: User, db: Db, suggester: Suggester, info: Info
) -> Response:
    """The review screen of an encounter (a stable URL: other systems link here)."""
    info.note_id = encounter_id
    _prepare(request, db, suggester, "encounters", encounter_id, user)
    return _review_page(request, db, "encounters", encounter_id, user)


@router.get("/audits/{audit_id}")
def audit_review_page(
    request: Request,
    audit_id: Annotated[int, Path(ge=1)],
    user: User,
    db: Db,
    suggester: Suggester,
) -> Response:
    """The blind second review of an encounter: the same screen, without the first coder's work."""
    _prepare(request, db, suggester, "audits", str(audit_id), user)
    return _review_page(request, db, "audits", str(audit_id), user)


def _act(
    request: Request, db: Database, kind: str, ident: str, user: UIUser, action: Any, anchor: str = ""
) -> Response:
    """Run one change in a transaction; a refused change shows the review screen with why."""
    try:
        with db.session() as session:
            scope = _scope(session, kind, ident, user)
            action(session, scope)
    except NotFoundError:
        raise
    except CodesuggestError as exc:
        status = int(getattr(exc, "http_status", 422))
        status = 422 if status in (400, 404) else status
        return _review_page(request, db, kind, ident, user, error=str(exc), status_code=status)
    return redirect(_base_url(kind, ident) + anchor, request)


Ident = Annotated[str, Path(min_length=1, max_length=128, pattern=ENCOUNTER_ID_PATTERN)]


@router.post("/{kind}/{ident}/lines/{line_id}/decision")
def line_decision(
    request: Request,
    kind: Kind,
    ident: Ident,
    line_id: int,
    user: FormUser,
    db: Db,
    suggester: Suggester,
    info: Info,
    decision: Annotated[str, Form(max_length=10)],
    reason: Annotated[str, Form(max_length=1000)] = "",
    other_reason: Annotated[str, Form(max_length=1000)] = "",
    replacement: Annotated[str, Form(max_length=16)] = "",
    seventh: Annotated[str, Form(max_length=1)] = "",
) -> Response:
    """Accept, reject (with a reason), modify (with the code used instead) or reset a line."""
    why = other_reason.strip() or reason

    def action(session: Session, scope: Scope) -> None:
        decide(
            session,
            suggester.kb,
            scope,
            user.actor,
            info.request_id,
            line_id,
            decision,
            reason=why,
            replacement=replacement,
            seventh=seventh or None,
        )

    return _act(request, db, kind, ident, user, action, f"#line-{line_id}")


@router.post("/{kind}/{ident}/lines/{line_id}/move")
def line_move(
    request: Request,
    kind: Kind,
    ident: Ident,
    line_id: int,
    user: FormUser,
    db: Db,
    direction: Annotated[str, Form(max_length=4)],
) -> Response:
    """Move a line up or down the claim order."""
    return _act(request, db, kind, ident, user, lambda s, scope: move(s, scope, user.actor, line_id, direction))


@router.post("/{kind}/{ident}/lines/{line_id}/edit")
def line_edit(
    request: Request,
    kind: Kind,
    ident: Ident,
    line_id: int,
    user: FormUser,
    db: Db,
    suggester: Suggester,
    modifiers: Annotated[str, Form(max_length=40)] = "",
    units: Annotated[int, Form(ge=1, le=999)] = 1,
    pointers: Annotated[str, Form(max_length=80)] = "",
) -> Response:
    """Set a service line's modifiers, units and diagnosis pointers."""

    def action(session: Session, scope: Scope) -> None:
        edit_line(
            session, suggester.kb, scope, user.actor, line_id, modifiers=modifiers, units=units, pointers=pointers
        )

    return _act(request, db, kind, ident, user, action, f"#line-{line_id}")


@router.post("/{kind}/{ident}/codes")
def line_add(
    request: Request,
    kind: Kind,
    ident: Ident,
    user: FormUser,
    db: Db,
    suggester: Suggester,
    info: Info,
    code: Annotated[str, Form(max_length=16)] = "",
    seventh: Annotated[str, Form(max_length=1)] = "",
    reason: Annotated[str, Form(max_length=1000)] = "",
    origin: Annotated[str, Form(max_length=12)] = "added",
) -> Response:
    """Add a code (typed, or taken from the consider list)."""

    def action(session: Session, scope: Scope) -> None:
        add_code(
            session,
            suggester.kb,
            scope,
            user.actor,
            info.request_id,
            code,
            seventh=seventh or None,
            reason=reason,
            origin=origin,
        )

    return _act(request, db, kind, ident, user, action, "#codeset")


@router.post("/{kind}/{ident}/submit")
def review_submit(request: Request, kind: Kind, ident: Ident, user: FormUser, db: Db) -> Response:
    """Submit the code set; the coder goes back to the worklist, an auditor to their audits."""
    try:
        with db.session() as session:
            scope = _scope(session, kind, ident, user)
            submit(session, scope, user.actor)
    except NotFoundError:
        raise
    except CodesuggestError as exc:
        status = int(getattr(exc, "http_status", 422))
        return _review_page(
            request, db, kind, ident, user, error=str(exc), status_code=422 if status == 400 else status
        )
    return redirect("/ui/worklist?submitted=" + ident if kind == "encounters" else "/ui/audits", request)


@router.post("/encounters/{encounter_id}/take")
def take_over(request: Request, encounter_id: EncounterIdPath, user: FormUser, db: Db) -> Response:
    """Assign the encounter to oneself (it was another coder's)."""
    return _act(
        request, db, "encounters", encounter_id, user, lambda s, scope: claim(s, scope, user.actor, take_over=True)
    )


# -- code look-up (the add-code helper) ---------------------------------------------------------
@router.get("/codes/lookup")
def code_lookup(
    request: Request,
    user: User,
    suggester: Suggester,
    code: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    """A typed code's title, billable check and 7th characters, or search hits for words."""
    text = code.strip()
    context: dict[str, Any] = {"help": None, "hits": [], "text": text}
    if len(text) >= 2:
        if _CODE_LIKE.match(text):
            context["help"] = code_help(suggester.kb, text)
        else:
            context["hits"] = suggester.kb.search(text, limit=12)
    return render(request, "code_help.html", context)


# -- physician queries --------------------------------------------------------------------------
@router.get("/encounters/{encounter_id}/queries/new")
def query_form(
    request: Request,
    encounter_id: EncounterIdPath,
    user: User,
    db: Db,
    suggester: Suggester,
    code: Annotated[str, Query(max_length=16)] = "",
    template: Annotated[str, Query(max_length=40)] = "",
) -> Response:
    """Draft a query: filled in from a ``query`` suggestion, or blank."""
    vault = _vault(request)
    with db.session() as session:
        encounter = get_encounter(session, encounter_id)
        result = cached_result(vault, encounter) or {"suggestions": []}
        text = note_text(vault, encounter)
    draft = Draft(template or "open", "", "", ())
    if code:
        found = [s for s in result["suggestions"] if s["code"] == code]
        if found:
            draft = draft_from_suggestion(suggester.kb, found[0], text)
    if template:
        draft = Draft(template, draft.condition, draft.indicators, draft.options, draft.system, draft.code)
    return render(
        request,
        "query_form.html",
        {"encounter": encounter, "draft": draft, "templates": load_templates().templates, "error": None},
    )


@router.post("/encounters/{encounter_id}/queries")
def query_create(
    request: Request,
    encounter_id: EncounterIdPath,
    user: FormUser,
    db: Db,
    template: Annotated[str, Form(max_length=40)],
    condition: Annotated[str, Form(max_length=2000)] = "",
    indicators: Annotated[str, Form(max_length=4000)] = "",
    options: Annotated[str, Form(max_length=4000)] = "",
    addressed_to: Annotated[str, Form(max_length=200)] = "",
    code: Annotated[str, Form(max_length=16)] = "",
    system: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """Send the query; the encounter goes on hold until it is answered."""
    vault = _vault(request)
    draft = Draft(
        template,
        condition,
        indicators,
        tuple(line.strip() for line in options.splitlines() if line.strip()),
        system or None,
        code or None,
    )
    try:
        with db.session() as session:
            scope = _scope(session, "encounters", encounter_id, user)
            create_query(session, vault, scope, user.actor, draft, addressed_to)
    except NotFoundError:
        raise
    except CodesuggestError as exc:
        with db.session() as session:
            encounter = get_encounter(session, encounter_id)
        return render(
            request,
            "query_form.html",
            {"encounter": encounter, "draft": draft, "templates": load_templates().templates, "error": str(exc)},
            422,
        )
    return redirect(review_url(encounter_id) + "#queries", request)


@router.post("/encounters/{encounter_id}/queries/{query_id}")
def query_close(
    request: Request,
    encounter_id: EncounterIdPath,
    query_id: int,
    user: FormUser,
    db: Db,
    answer: Annotated[str, Form(max_length=2000)] = "",
    withdraw: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    """Record the provider's answer, or withdraw the query."""
    vault = _vault(request)

    def action(session: Session, scope: Scope) -> None:
        close_query(session, vault, scope, user.actor, query_id, answer=answer, withdraw=bool(withdraw))

    return _act(request, db, "encounters", encounter_id, user, action, "#queries")


# -- audit mode ---------------------------------------------------------------------------------
@router.get("/audits")
def audits_page(request: Request, user: User, db: Db, sample: Annotated[str, Query(max_length=64)] = "") -> Response:
    """The auditor's blind reviews; for admins also the samples, the agreement and disagreements."""
    with db.session() as session:
        mine = list(
            session.execute(
                select(AuditReview, Encounter)
                .join(Encounter, Encounter.id == AuditReview.encounter_pk)
                .where(AuditReview.auditor == user.name)
                .order_by(AuditReview.status, AuditReview.id)
            ).all()
        )
        report = agreement(session, sample or None) if user.is_admin else None
        all_samples = samples(session) if user.is_admin else []
    return render(
        request,
        "audits.html",
        {
            "mine": mine,
            "report": report,
            "samples": all_samples,
            "sample": sample,
            "auditors": ui_users(db) if user.is_admin else [],
            "error": None,
            "notice": request.query_params.get("created"),
        },
    )


@router.post("/audits/samples")
def audit_sample(
    request: Request,
    user: FormUser,
    admin: Admin,
    db: Db,
    auditor: Annotated[str, Form(max_length=200)],
    size: Annotated[int, Form(ge=1, le=500)] = 10,
    date_from: Annotated[str, Form(max_length=10)] = "",
    date_to: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """Draw a random sample of submitted encounters for a blind second review."""
    try:
        with db.session() as session:
            sample, n = create_sample(
                session,
                user.actor,
                auditor,
                size,
                date_from=_date_param(date_from, "from"),
                date_to=_date_param(date_to, "to"),
            )
    except CodesuggestError as exc:
        with db.session() as session:
            report, all_samples = agreement(session), samples(session)
        return render(
            request,
            "audits.html",
            {
                "mine": [],
                "report": report,
                "samples": all_samples,
                "sample": "",
                "auditors": ui_users(db),
                "error": str(exc),
                "notice": None,
            },
            422,
        )
    logger.info("audit sample %s: %d encounters", sample, n)
    return redirect(f"/ui/audits?created={sample}", request)


# -- productivity -------------------------------------------------------------------------------
@router.get("/productivity")
def productivity_page(request: Request, user: User, db: Db, days: Annotated[int, Query(ge=1, le=366)] = 14) -> Response:
    """Charts coded per day per coder, time per chart, acceptance of suggestions (a coder sees their own)."""
    with db.session() as session:
        figures = productivity(session, days, None if user.is_admin else user.name)
    plots = [
        (row, bars_per_day(figures.days, row.per_day, f"charts coded per day by {row.coder}")) for row in figures.coders
    ]
    minutes = hbars([(r.coder, r.median_minutes) for r in figures.coders], "median minutes per chart", " min")
    acceptance = hbars(
        [(r.coder, None if r.acceptance is None else 100 * r.acceptance) for r in figures.coders],
        "suggestions accepted as they were",
        "%",
        scale=100.0,
    )
    return render(
        request,
        "productivity.html",
        {"figures": figures, "plots": plots, "minutes": minutes, "acceptance": acceptance, "days": days},
    )
