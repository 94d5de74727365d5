"""Coders' feedback: storing decisions, and exporting them as a training corpus.

A decision is ``accepted``, ``rejected``, ``added`` or ``modified`` (with the code used instead).
Only ids, codes, the user and an optional reason are stored; the note text is stored only when
the deployment sets ``CODESUGGEST_FEEDBACK_STORE_TEXT`` (it is PHI).

:func:`export_feedback` (``codesuggest corpus export-feedback``) turns the latest decision per
code of each note into the corpus format of :mod:`corpora.format`: accepted and added codes and
the replacements of modified ones are the note's codes; rejected codes and the replaced ones are
not. A note is exported only when its text was stored; the report says how many were skipped and
why.

Encounters reviewed in the workbench (:mod:`service.review`) are exported from their submitted
code sets (accepted and added codes, and the codes used instead of modified ones, in claim
order) with their note text opened with the encounter key; their decisions in the feedback table
are not replayed a second time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from fastapi.exceptions import RequestValidationError
from sqlalchemy import select

from corpora.format import CorpusCode, CorpusNote, write_corpus
from pipeline.errors import MalformedCodeError, UnknownCodeError
from pipeline.kb.model import System, normalize_code
from service.db import Database
from service.models import FeedbackEntry, FeedbackNote, utcnow
from service.schemas import FeedbackRequest
from service.security import Principal

if TYPE_CHECKING:
    from corpora.format import CorpusNote

logger = logging.getLogger(__name__)

# Code sets the knowledge base holds completely; CPT may be only a starter lexicon without a
# licensed file, so an unknown but well-formed CPT code is accepted.
COMPLETE_SYSTEMS = frozenset({"ICD10CM", "HCPCS"})
POSITIVE = frozenset({"accepted", "added"})


def canonical_code(kb: Any, code: str, system: str | None) -> tuple[str, str]:
    """Return ``(system, code)`` in canonical form, checked against the knowledge base.

    Args:
        kb: the knowledge base (``lookup(code, system)`` raising Malformed/UnknownCodeError).
        code: the code as sent.
        system: the system the caller gave, or None to read it from the code's form.

    Returns:
        The system and canonical code.

    Raises:
        MalformedCodeError: the text cannot be a code (of the given system).
        UnknownCodeError: a well-formed ICD-10-CM or HCPCS code the knowledge base lacks.
    """
    read_system = cast(System | None, system)
    try:
        record = kb.lookup(code, read_system)
    except UnknownCodeError:
        parsed_system, canonical = normalize_code(code, read_system)
        if parsed_system in COMPLETE_SYSTEMS:
            raise
        return parsed_system, canonical
    return str(record.system), str(record.code)


def store_feedback(
    db: Database,
    kb: Any,
    body: FeedbackRequest,
    principal: Principal,
    request_id: str,
    *,
    store_text: bool,
    model_version: str | None,
) -> tuple[int, bool]:
    """Check and store a coder's decisions on one note.

    Args:
        db: the service database.
        kb: the knowledge base used to check codes.
        body: the request.
        principal: who sent it.
        request_id: the request's id.
        store_text: the deployment allows storing note text.
        model_version: the model that made the suggestions being reviewed.

    Returns:
        How many decisions were stored and whether the note text was stored.

    Raises:
        RequestValidationError: a code is malformed or unknown; every bad field is named.
    """
    problems: list[dict[str, Any]] = []
    checked: list[tuple[str, str, str | None, str | None]] = []
    for i, decision in enumerate(body.decisions):
        system = code = new_system = new_code = None
        try:
            system, code = canonical_code(kb, decision.code, decision.system)
        except (MalformedCodeError, UnknownCodeError) as exc:
            problems.append(_problem(("body", "decisions", i, "code"), str(exc)))
        if decision.replaced_by:
            try:
                new_system, new_code = canonical_code(kb, decision.replaced_by, decision.replaced_by_system)
            except (MalformedCodeError, UnknownCodeError) as exc:
                problems.append(_problem(("body", "decisions", i, "replaced_by"), str(exc)))
        if system and code:
            checked.append((system, code, new_system, new_code))
    if problems:
        raise RequestValidationError(problems)
    now = utcnow()
    text_stored = bool(store_text and body.text and body.text.strip())
    with db.session() as session:
        for decision, (system, code, new_system, new_code) in zip(body.decisions, checked, strict=True):
            session.add(
                FeedbackEntry(
                    created_at=now,
                    request_id=request_id,
                    suggestion_request_id=body.suggestion_request_id,
                    key_id=principal.key_id,
                    note_id=body.note_id,
                    user=body.user,
                    system=system,
                    code=code,
                    decision=decision.decision,
                    replaced_by_system=new_system,
                    replaced_by=new_code,
                    reason=decision.reason,
                    setting=body.setting,
                    model_version=model_version,
                )
            )
        if text_stored:
            assert body.text is not None
            session.merge(
                FeedbackNote(
                    note_id=body.note_id,
                    text=body.text,
                    setting=body.setting,
                    key_id=principal.key_id,
                    updated_at=now,
                )
            )
    logger.info(
        "request %s: stored %d feedback decisions (text stored: %s)",
        request_id,
        len(checked),
        text_stored,
    )
    return len(checked), text_stored


def _problem(loc: tuple[Any, ...], message: str) -> dict[str, Any]:
    return {"loc": loc, "msg": message, "type": "value_error", "input": None}


@dataclass(slots=True)
class ExportReport:
    """What ``export-feedback`` wrote and skipped.

    Attributes:
        written: notes written to the corpus.
        skipped_no_text: notes skipped because their text was not stored.
        skipped_no_codes: notes skipped because no code was accepted, added or modified.
        decisions: decisions read.
        out: the corpus file.
    """

    written: int = 0
    skipped_no_text: int = 0
    skipped_no_codes: int = 0
    decisions: int = 0
    out: Path | None = None
    skipped_ids: dict[str, list[str]] = field(default_factory=dict)

    def summary(self) -> str:
        """One readable paragraph for the command line."""
        lines = [f"wrote {self.written} notes from {self.decisions} decisions to {self.out}"]
        if self.skipped_no_text:
            lines.append(
                f"skipped {self.skipped_no_text} notes whose text was not stored "
                "(CODESUGGEST_FEEDBACK_STORE_TEXT was off when their feedback came)"
            )
        if self.skipped_no_codes:
            lines.append(f"skipped {self.skipped_no_codes} notes with no accepted, added or modified code")
        return "\n".join(lines)


def final_codes(entries: Sequence[FeedbackEntry]) -> list[tuple[str, str]]:
    """The codes a note ends up with: the latest decision about each code wins.

    Args:
        entries: the note's decisions, oldest first.

    Returns:
        ``(system, code)`` pairs in order of first mention.
    """
    state: dict[tuple[str, str], bool] = {}
    for entry in entries:
        key = (entry.system, entry.code)
        if entry.decision in POSITIVE:
            state[key] = True
        elif entry.decision == "rejected":
            state[key] = False
        elif entry.decision == "modified" and entry.replaced_by and entry.replaced_by_system:
            state[key] = False
            state[(entry.replaced_by_system, entry.replaced_by)] = True
    return [key for key, keep in state.items() if keep]


def export_feedback(
    db: Database, out: Path, reviewed: Callable[[ExportReport], list[CorpusNote]] | None = None
) -> ExportReport:
    """Write the feedback as a corpus file (JSONL, one note a line).

    Args:
        db: the service database.
        out: the corpus file to write (atomically; its folder is created).
        reviewed: gives the workbench's submitted encounters as corpus notes
            (:func:`service.encounters.reviewed_notes`, which needs the encounter key), counting
            the ones it skips in the report; their decisions are not replayed again.

    Returns:
        The report (written and skipped notes, and why).
    """
    report = ExportReport(out=Path(out), skipped_ids={"no_text": [], "no_codes": []})
    notes: list[CorpusNote] = []
    encounters = reviewed(report) if reviewed is not None else []
    notes.extend(encounters)
    done = {note.id for note in encounters} | set(report.skipped_ids["no_text"]) | set(report.skipped_ids["no_codes"])
    with db.session() as session:
        entries = list(
            session.scalars(
                select(FeedbackEntry).order_by(FeedbackEntry.note_id, FeedbackEntry.created_at, FeedbackEntry.id)
            )
        )
        texts = {row.note_id: row for row in session.scalars(select(FeedbackNote))}
    report.decisions += len(entries)
    by_note: dict[str, list[FeedbackEntry]] = {}
    for entry in entries:
        by_note.setdefault(entry.note_id, []).append(entry)
    for note_id, note_entries in by_note.items():
        if note_id in done:
            continue
        stored = texts.get(note_id)
        if stored is None:
            report.skipped_no_text += 1
            report.skipped_ids["no_text"].append(note_id)
            continue
        codes = final_codes(note_entries)
        if not codes:
            report.skipped_no_codes += 1
            report.skipped_ids["no_codes"].append(note_id)
            continue
        settings = [e.setting for e in note_entries if e.setting]
        notes.append(
            CorpusNote(
                id=note_id,
                text=stored.text,
                codes=[CorpusCode(system=s, code=c) for s, c in codes],
                setting=stored.setting or (settings[-1] if settings else None),
                meta={
                    "source": "codesuggest-feedback",
                    "users": sorted({e.user for e in note_entries}),
                    "decisions": len(note_entries),
                    "model_versions": sorted({e.model_version for e in note_entries if e.model_version}),
                    "last_feedback_at": note_entries[-1].created_at.isoformat(),
                },
            )
        )
    report.written = write_corpus(Path(out), notes)
    logger.info(
        "exported %d notes (%d without text, %d without codes skipped)",
        report.written,
        report.skipped_no_text,
        report.skipped_no_codes,
    )
    return report
