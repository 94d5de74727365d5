"""Encounters sent for a coder's review: sealed storage, coding once, retention, the worklist.

``POST /v1/encounters`` (and its batch form, and ``codesuggest encounters import``) store a note
for the workbench. The note text is sealed at rest with AES-256-GCM (:mod:`service.sealing`)
under a key derived (HKDF) from the deployment's *encounter key* and the encounter id: the
database holds only ciphertext and a short fingerprint of the key, so a copy of the database
alone does not reveal any note. The suggestion result, which quotes the note in its evidence, is
sealed the same way once the encounter is first opened. Both are deleted when the encounter's
retention ends (``purge_at``); the codes, decisions and events stay.

The worklist orders encounters the way coding departments work: inpatient discharges before
outpatient visits, then the oldest date of service first, then the highest expected value.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.orm import Session

from pipeline.errors import CodesuggestError, InputError
from service.config import DEFAULT_ENCOUNTER_KEY_FILE, Settings
from service.db import Database
from service.encounter_schemas import EncounterIn
from service.errors import NotFoundError, ServiceConfigError
from service.feedback import ExportReport
from service.models import Encounter, PhysicianQuery, ReviewCode, utcnow
from service.review import final_codes, start_code_set
from service.sealing import SealError, derive_key, seal, unseal
from service.security import Principal
from service.suggesting import NoteInput, Options, SuggesterLike, suggest_one

if TYPE_CHECKING:
    from corpora.format import CorpusNote

logger = logging.getLogger(__name__)

STATUSES = ("new", "in_review", "on_hold", "submitted")
# What the worklist's status filter offers: work still to do is the default view.
STATUS_VIEWS: dict[str, tuple[str, ...]] = {
    "waiting": ("new", "in_review"),
    "on_hold": ("on_hold",),
    "submitted": ("submitted",),
    "all": STATUSES,
}
PAGE_SIZE = 50
PURGE_EVERY_SECONDS = 60.0


class EncounterConflictError(CodesuggestError):
    """An encounter id that is already stored (or repeated within one batch)."""

    http_status = 409


class TextPurgedError(CodesuggestError):
    """The encounter's note text was deleted when its retention ended."""

    http_status = 410


def review_url(encounter_id: str) -> str:
    """The workbench's review screen of an encounter (a stable URL other systems link to)."""
    return f"/ui/encounters/{encounter_id}"


# -- the encounter key --------------------------------------------------------------------------
class EncounterVault:
    """Seals and opens the texts of encounters with keys derived from one secret.

    Args:
        master: the deployment's encounter key (32 bytes).
    """

    def __init__(self, master: bytes) -> None:
        if len(master) != 32:
            raise ServiceConfigError("the encounter key must be 32 bytes (64 hex digits)")
        self._master = master
        self.fingerprint = hashlib.sha256(b"codesuggest/encounter-key/" + master).hexdigest()[:16]

    def _key(self, encounter_id: str, purpose: str) -> bytes:
        return derive_key(f"encounter.{purpose}", self._master + b"\x00" + encounter_id.encode("utf-8"))

    def seal_text(self, encounter_id: str, purpose: str, text: str) -> bytes:
        """Seal a text that belongs to one encounter.

        Args:
            encounter_id: the encounter it belongs to (part of the key).
            purpose: what it is (``note``, ``suggestions``, ``query``...; part of the key).
            text: the plaintext.

        Returns:
            The sealed bytes.
        """
        return seal(self._key(encounter_id, purpose), text.encode("utf-8"))

    def open_text(self, encounter_id: str, purpose: str, blob: bytes, fingerprint: str) -> str:
        """Open a text sealed by :meth:`seal_text`.

        Args:
            encounter_id: the encounter it belongs to.
            purpose: what it is.
            blob: the sealed bytes.
            fingerprint: the fingerprint of the key it was sealed with (kept with the row).

        Returns:
            The plaintext.

        Raises:
            SealError: another key sealed it, or the blob was altered.
        """
        if fingerprint != self.fingerprint:
            raise SealError(
                f"encounter {encounter_id} was sealed with another encounter key (fingerprint {fingerprint}, "
                f"this service has {self.fingerprint}): set CODESUGGEST_ENCOUNTER_KEY to the key it was stored with"
            )
        return unseal(self._key(encounter_id, purpose), blob).decode("utf-8")


def _parse_key(text: str, where: str) -> bytes:
    value = text.strip()
    try:
        key = bytes.fromhex(value)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise ServiceConfigError(f"{where} must hold 64 hex digits (a 256-bit key)")
    return key


def load_vault(settings: Settings) -> EncounterVault:
    """Read the encounter key named by the settings; create the key file on first use.

    The key comes from ``CODESUGGEST_ENCOUNTER_KEY`` when set, else from
    ``CODESUGGEST_ENCOUNTER_KEY_FILE``. A missing file is created with a fresh random key, readable
    by its owner only; several worker processes starting at once end up with the same key (the
    file appears atomically, the first one wins).

    Args:
        settings: deployment settings.

    Returns:
        The vault.

    Raises:
        ServiceConfigError: the key is malformed or the key file cannot be read or created.
    """
    if settings.encounter_key is not None and settings.encounter_key.get_secret_value().strip():
        return EncounterVault(_parse_key(settings.encounter_key.get_secret_value(), "CODESUGGEST_ENCOUNTER_KEY"))
    path = Path(settings.encounter_key_file or DEFAULT_ENCOUNTER_KEY_FILE).expanduser()
    where = f"the encounter key file {path}"
    try:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w", encoding="ascii") as handle:
                handle.write(secrets.token_hex(32) + "\n")
            try:
                os.link(temporary, path)
                logger.warning("created a new encounter key in %s; keep it out of the database's backups", path)
            except FileExistsError:
                pass  # another worker created it first; use theirs
            finally:
                temporary.unlink()
        return EncounterVault(_parse_key(path.read_text("ascii"), where))
    except (OSError, UnicodeDecodeError) as exc:
        raise ServiceConfigError(f"cannot read or create {where}: {exc}") from exc


_vault_lock = threading.Lock()


def app_vault(state: Any) -> EncounterVault:
    """The app's vault, loaded on first use and kept on ``app.state.vault``.

    Args:
        state: ``app.state`` (with ``settings``).

    Returns:
        The vault.
    """
    vault = getattr(state, "vault", None)
    if vault is None:
        with _vault_lock:
            vault = getattr(state, "vault", None)
            if vault is None:
                vault = load_vault(state.settings)
                state.vault = vault
    return vault


# -- storing ------------------------------------------------------------------------------------
def store_encounters(
    db: Database,
    vault: EncounterVault,
    items: Sequence[EncounterIn],
    principal: Principal | None,
    default_retention_days: int,
    *,
    now: dt.datetime | None = None,
) -> list[Encounter]:
    """Store encounters for review, all or none.

    Args:
        db: the service database.
        vault: seals the note texts.
        items: the encounters.
        principal: who sent them (None from the command line).
        default_retention_days: retention of those that set none.
        now: the time of receipt (tests).

    Returns:
        The stored rows, in order.

    Raises:
        EncounterConflictError: an id is repeated in ``items`` or already stored; every such id is
            named and nothing is stored.
    """
    now = now or utcnow()
    ids = [item.encounter_id for item in items]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise EncounterConflictError(f"encounter ids repeated in the request: {', '.join(repeated[:20])}")
    rows: list[Encounter] = []
    with db.session() as session:
        existing: set[str] = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            existing.update(session.scalars(select(Encounter.encounter_id).where(Encounter.encounter_id.in_(chunk))))
        if existing:
            shown = ", ".join(sorted(existing)[:20]) + (", ..." if len(existing) > 20 else "")
            raise EncounterConflictError(f"{len(existing)} encounter id(s) already stored: {shown}")
        for item in items:
            retention = item.retention_days or default_retention_days
            row = Encounter(
                encounter_id=item.encounter_id,
                setting=item.setting,
                encounter_date=item.encounter_date or now.date(),
                patient_age=item.patient.age if item.patient else None,
                patient_sex=item.patient.sex if item.patient else None,
                expected_value=item.expected_value,
                status="new",
                text_sealed=vault.seal_text(item.encounter_id, "note", item.text),
                text_length=len(item.text),
                key_fingerprint=vault.fingerprint,
                received_at=now,
                source_key_id=principal.key_id if principal else None,
                retention_days=retention,
                purge_at=now + dt.timedelta(days=retention),
            )
            session.add(row)
            rows.append(row)
    logger.info("stored %d encounters for review (%d characters)", len(rows), sum(r.text_length for r in rows))
    return rows


def get_encounter(session: Session, encounter_id: str, *, for_update: bool = False) -> Encounter:
    """Read one encounter by the caller's id.

    Args:
        session: an open session.
        encounter_id: the caller's id.
        for_update: lock the row until the session ends (PostgreSQL; SQLite locks on write).

    Returns:
        The row.

    Raises:
        NotFoundError: no such encounter.
    """
    query = select(Encounter).where(Encounter.encounter_id == encounter_id)
    if for_update:
        query = query.with_for_update()
    row = session.scalars(query).first()
    if row is None:
        raise NotFoundError(f"no encounter {encounter_id!r}")
    return row


def note_text(vault: EncounterVault, encounter: Encounter) -> str:
    """Open an encounter's note text.

    Args:
        vault: the vault.
        encounter: the row.

    Returns:
        The text.

    Raises:
        TextPurgedError: the retention ended and the text was deleted.
    """
    if encounter.text_sealed is None:
        when = encounter.text_purged_at.date().isoformat() if encounter.text_purged_at else "earlier"
        raise TextPurgedError(f"the note text of {encounter.encounter_id} was deleted on {when} (retention ended)")
    return vault.open_text(encounter.encounter_id, "note", encounter.text_sealed, encounter.key_fingerprint)


def cached_result(vault: EncounterVault, encounter: Encounter) -> dict[str, Any] | None:
    """The encounter's sealed suggestion result, opened, or None before it was coded or after purge."""
    if encounter.suggestions_sealed is None:
        return None
    opened = vault.open_text(
        encounter.encounter_id, "suggestions", encounter.suggestions_sealed, encounter.key_fingerprint
    )
    result: dict[str, Any] = json.loads(opened)
    return result


def ensure_coded(
    db: Database, vault: EncounterVault, suggester: SuggesterLike, encounter_id: str, request_id: str
) -> dict[str, Any]:
    """Code an encounter once (the one suggest path) and start its working code set from the result.

    The result is sealed and cached, so that every later view shows the same suggestions, even
    after the model is replaced.

    Args:
        db: the service database.
        vault: the vault.
        suggester: the loaded suggester.
        encounter_id: the encounter.
        request_id: the request's id (kept in the result).

    Returns:
        The suggestion result (:class:`~service.schemas.SuggestionResponse` body).

    Raises:
        NotFoundError: no such encounter.
        TextPurgedError: its text was purged before it was ever coded.
    """
    with db.session() as session:
        encounter = get_encounter(session, encounter_id)
        cached = cached_result(vault, encounter)
        if cached is not None:
            return cached
        text = note_text(vault, encounter)
        note = NoteInput(
            text,
            encounter.encounter_id,
            encounter.setting,
            encounter.encounter_date,
            encounter.patient_age,
            encounter.patient_sex,
        )
    started = time.perf_counter()
    result = suggest_one(suggester, note, Options(None, None, None), request_id).model_dump(mode="json")
    elapsed = (time.perf_counter() - started) * 1000

    with db.session() as session:
        encounter = get_encounter(session, encounter_id, for_update=True)
        cached = cached_result(vault, encounter)
        if cached is not None:  # another request coded it meanwhile
            return cached
        encounter.suggestions_sealed = vault.seal_text(encounter.encounter_id, "suggestions", json.dumps(result))
        encounter.model_version = str(result.get("model_version") or suggester.model_version)
        encounter.coded_at = utcnow()
        start_code_set(session, encounter, result, audit_pk=None)
    logger.info("request %s: coded an encounter for review in %.1f ms", request_id, elapsed)
    return result


# -- retention ------------------------------------------------------------------------------------
def purge_expired(db: Database, now: dt.datetime | None = None) -> int:
    """Delete the note texts, cached suggestions and query wording whose retention ended.

    Args:
        db: the service database.
        now: the current time (tests).

    Returns:
        Encounters purged.
    """
    now = now or utcnow()
    with db.session() as session:
        due = list(
            session.scalars(select(Encounter.id).where(Encounter.purge_at <= now, Encounter.text_purged_at.is_(None)))
        )
        if not due:
            return 0
        for start in range(0, len(due), 500):
            chunk = due[start : start + 500]
            session.execute(
                update(Encounter)
                .where(Encounter.id.in_(chunk))
                .values(text_sealed=None, suggestions_sealed=None, text_purged_at=now)
            )
            session.execute(
                update(PhysicianQuery)
                .where(PhysicianQuery.encounter_pk.in_(chunk))
                .values(question_sealed=None, answer_sealed=None)
            )
    logger.info("purged the note texts of %d encounters (retention ended)", len(due))
    return len(due)


_last_purge: dict[str, float] = {}
_purge_lock = threading.Lock()


def purge_now_and_then(db: Database) -> None:
    """Run :func:`purge_expired` at most once a minute per database (called on worklist views and
    stores, so that retention holds without a separate scheduler)."""
    with _purge_lock:
        last = _last_purge.get(db.url, 0.0)
        if time.monotonic() - last < PURGE_EVERY_SECONDS:
            return
        _last_purge[db.url] = time.monotonic()
    purge_expired(db)


# -- the worklist -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class WorklistFilter:
    """What the worklist shows.

    Attributes:
        setting: ``inpatient``, ``outpatient`` or None for both.
        status: a key of :data:`STATUS_VIEWS`.
        coder: None for anyone, ``"-"`` for unassigned, else a coder's name.
        date_from: earliest date of service.
        date_to: latest date of service.
        page: 1-based page.
    """

    setting: str | None = None
    status: str = "waiting"
    coder: str | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    page: int = 1

    def __post_init__(self) -> None:
        if self.status not in STATUS_VIEWS:
            raise InputError(f"unknown status view {self.status!r}; choose one of {', '.join(STATUS_VIEWS)}")
        if self.setting not in (None, "inpatient", "outpatient"):
            raise InputError(f"unknown setting {self.setting!r}")
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise InputError("the 'from' date is after the 'to' date")
        if self.page < 1:
            raise InputError("page must be 1 or more")


@dataclass(slots=True)
class Worklist:
    """One page of the worklist with its counts."""

    rows: list[Encounter]
    total: int
    by_status: dict[str, int]
    by_setting: dict[str, int]
    coders: list[str]
    page: int
    pages: int


def _conditions(f: WorklistFilter, *, status: bool = True, setting: bool = True) -> list[Any]:
    out: list[Any] = []
    if status:
        out.append(Encounter.status.in_(STATUS_VIEWS[f.status]))
    if setting and f.setting:
        out.append(Encounter.setting == f.setting)
    if f.coder == "-":
        out.append(Encounter.assigned_to.is_(None))
    elif f.coder:
        out.append(Encounter.assigned_to == f.coder)
    if f.date_from:
        out.append(Encounter.encounter_date >= f.date_from)
    if f.date_to:
        out.append(Encounter.encounter_date <= f.date_to)
    return out


PRIORITY_ORDER = (
    case((Encounter.setting == "inpatient", 0), else_=1),
    Encounter.encounter_date.asc(),
    case((Encounter.expected_value.is_(None), 1), else_=0),
    Encounter.expected_value.desc(),
    Encounter.received_at.asc(),
    Encounter.id.asc(),
)


def worklist(session: Session, f: WorklistFilter) -> Worklist:
    """The encounters matching a filter, in priority order, with counts.

    Args:
        session: an open session.
        f: the filter.

    Returns:
        One page of rows; counts per status view (other filters applied) and per setting (all
        filters but the setting applied); the coders seen.
    """
    where = and_(*_conditions(f))
    total = session.scalar(select(func.count()).select_from(Encounter).where(where)) or 0
    pages = max(1, -(-total // PAGE_SIZE))
    rows = list(
        session.scalars(
            select(Encounter).where(where).order_by(*PRIORITY_ORDER).offset((f.page - 1) * PAGE_SIZE).limit(PAGE_SIZE)
        )
    )
    per_status = dict(
        session.execute(
            select(Encounter.status, func.count()).where(and_(*_conditions(f, status=False))).group_by(Encounter.status)
        ).all()
    )
    by_status = {view: sum(per_status.get(s, 0) for s in states) for view, states in STATUS_VIEWS.items()}
    per_setting = dict(
        session.execute(
            select(Encounter.setting, func.count())
            .where(and_(*_conditions(f, setting=False)))
            .group_by(Encounter.setting)
        ).all()
    )
    by_setting = {s: int(per_setting.get(s, 0)) for s in ("inpatient", "outpatient")}
    assigned = select(Encounter.assigned_to).where(Encounter.assigned_to.is_not(None)).distinct()
    coders = sorted(c for c in session.scalars(assigned) if c is not None)
    return Worklist(rows, int(total), by_status, by_setting, coders, f.page, pages)


def open_query_counts(session: Session, encounter_pks: Sequence[int]) -> dict[int, int]:
    """Open physician queries per encounter."""
    if not encounter_pks:
        return {}
    return dict(
        session.execute(
            select(PhysicianQuery.encounter_pk, func.count())
            .where(PhysicianQuery.encounter_pk.in_(list(encounter_pks)), PhysicianQuery.status == "open")
            .group_by(PhysicianQuery.encounter_pk)
        ).all()
    )


def submitted_code_set(session: Session, encounter: Encounter) -> list[ReviewCode]:
    """The coder's final code lines of an encounter (accepted, added, modified), in claim order."""
    rows = session.scalars(
        select(ReviewCode)
        .where(
            ReviewCode.encounter_pk == encounter.id,
            ReviewCode.audit_pk.is_(None),
            or_(ReviewCode.status.in_(("accepted", "added", "modified"))),
        )
        .order_by(ReviewCode.position, ReviewCode.id)
    )
    return list(rows)


def reviewed_notes(db: Database, vault: EncounterVault, report: ExportReport) -> list[CorpusNote]:
    """Submitted encounters as training notes: their final code sets (accepted and added codes, and
    the codes used instead of modified ones, in claim order) are the gold codes.

    Args:
        db: the service database.
        vault: opens the note texts.
        report: the export's report; encounters whose text was purged, or left with no code, are
            counted in it.

    Returns:
        The notes, in the order the encounters arrived.
    """
    from corpora.format import CorpusCode, CorpusNote

    notes = []
    with db.session() as session:
        encounters = list(
            session.scalars(select(Encounter).where(Encounter.status == "submitted").order_by(Encounter.id))
        )
        for encounter in encounters:
            if encounter.text_sealed is None:
                report.skipped_no_text += 1
                report.skipped_ids["no_text"].append(encounter.encounter_id)
                continue
            rows = list(
                session.scalars(
                    select(ReviewCode)
                    .where(ReviewCode.encounter_pk == encounter.id, ReviewCode.audit_pk.is_(None))
                    .order_by(ReviewCode.position, ReviewCode.id)
                )
            )
            codes = final_codes(rows)
            if not codes:
                report.skipped_no_codes += 1
                report.skipped_ids["no_codes"].append(encounter.encounter_id)
                continue
            decided = [r for r in rows if r.status != "pending"]
            users = {r.updated_by for r in decided if r.updated_by} | {encounter.submitted_by or ""}
            notes.append(
                CorpusNote(
                    id=encounter.encounter_id,
                    text=note_text(vault, encounter),
                    codes=[CorpusCode(system=s, code=c) for s, c in codes],
                    setting=encounter.setting,
                    meta={
                        "source": "codesuggest-workbench",
                        "users": sorted(users - {""}),
                        "decisions": len(decided),
                        "model_versions": [encounter.model_version] if encounter.model_version else [],
                        "last_feedback_at": encounter.submitted_at.isoformat() if encounter.submitted_at else None,
                    },
                )
            )
    return notes
