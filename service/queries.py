"""Physician queries: compliant templates, a wording check, and open/answered tracking.

A coder drafts a query from a suggestion the pipeline marked ``query`` (the template, condition,
clinical indicators and choices are filled in from it) or by hand. The templates
(``service/resources/query_templates.json``) follow the principles of a compliant query practice:
the clinical indicators of the record are stated, every multiple-choice query also offers
"other" and "clinically unable to determine", yes/no is used only for present-on-admission, and
nothing mentions payment. :func:`check_wording` refuses the phrases that lead or talk money.

While a query is open the encounter is on hold (``on_hold``); recording the answer (or withdrawing
the query) puts it back in review. The question and answer quote the record, so they are sealed
like the note itself and purged with it.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.errors import DataFileError, InputError
from service.encounters import EncounterVault
from service.models import PhysicianQuery, utcnow
from service.review import Actor, Scope, record_event

SCHEMA = "codesuggest.query_templates/1"
MAX_FIELD = 2000
MAX_OPTIONS = 10


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class QueryTemplate(_Strict):
    """One query template."""

    id: str = Field(pattern=r"^[a-z_]+$")
    title: str
    question: str
    options: tuple[str, ...] = ()
    options_editable: bool = False
    open_ended: bool = False
    settings: tuple[str, ...] = ("inpatient", "outpatient")


class WordingRule(_Strict):
    """Phrases a query must not contain, and why."""

    id: str
    why: str
    phrases: tuple[str, ...]


class QueryTemplates(_Strict):
    """The template file."""

    schema_: str = Field(alias="schema")
    description: str
    always_options: tuple[str, ...]
    templates: tuple[QueryTemplate, ...]
    wording_rules: tuple[WordingRule, ...]

    def get(self, template_id: str) -> QueryTemplate:
        """The template with this id.

        Raises:
            InputError: no such template.
        """
        for template in self.templates:
            if template.id == template_id:
                return template
        raise InputError(f"unknown query template {template_id!r}")


@functools.cache
def load_templates() -> QueryTemplates:
    """Read and check the packaged template file (once).

    Raises:
        DataFileError: the file breaks its schema; the message names the entry.
    """
    name = "query_templates.json"
    text = resources.files("service.resources").joinpath(name).read_text("utf-8")
    try:
        data = QueryTemplates.model_validate(json.loads(text))
    except (ValidationError, json.JSONDecodeError) as exc:
        raise DataFileError(f"{name}: {exc}") from exc
    if data.schema_ != SCHEMA:
        raise DataFileError(f"{name}: schema {data.schema_!r}, expected {SCHEMA!r}")
    ids = [t.id for t in data.templates]
    if len(set(ids)) != len(ids):
        raise DataFileError(f"{name}: a template id appears twice")
    return data


@dataclass(frozen=True, slots=True)
class WordingProblem:
    """A phrase a query must not use."""

    rule: str
    phrase: str
    why: str


def check_wording(text: str) -> list[WordingProblem]:
    """Find leading or financial phrases in a query's wording.

    Args:
        text: the question and choices as the provider will read them.

    Returns:
        One problem per phrase found (empty when the wording is compliant).
    """
    lowered = " ".join(text.lower().split())
    problems = []
    for rule in load_templates().wording_rules:
        for phrase in rule.phrases:
            pattern = re.escape(phrase) if not phrase[:1].isalnum() else rf"(?<![\w-]){re.escape(phrase)}(?![\w-])"
            if re.search(pattern, lowered):
                problems.append(WordingProblem(rule.id, phrase, rule.why))
    return problems


@dataclass(frozen=True, slots=True)
class Draft:
    """A query before it is sent: what the form shows."""

    template: str
    condition: str
    indicators: str
    options: tuple[str, ...]
    system: str | None = None
    code: str | None = None


def compose(draft: Draft, setting: str) -> str:
    """Write the query as the provider reads it: the question, then the numbered choices.

    Args:
        draft: the filled-in template.
        setting: the encounter's setting (some templates are for inpatient stays only).

    Returns:
        The query text.

    Raises:
        InputError: a missing condition or indicators, a template that does not apply, too many
            or repeated choices, or leading or financial wording (every phrase is named).
    """
    catalogue = load_templates()
    template = catalogue.get(draft.template)
    if setting not in template.settings:
        raise InputError(f"the {template.title.lower()} query is for {' and '.join(template.settings)} encounters")
    condition = " ".join(draft.condition.split())[:MAX_FIELD]
    indicators = " ".join(draft.indicators.split())[:MAX_FIELD]
    if not condition:
        raise InputError("name the documented condition or finding the query is about")
    if not indicators:
        raise InputError("quote the clinical indicators from the record")
    options: list[str] = []
    if not template.open_ended:
        given = [" ".join(o.split()) for o in draft.options] if template.options_editable else []
        for option in [*template.options, *given]:
            if option and option.lower() not in {o.lower() for o in options}:
                options.append(option)
        if template.options_editable and not given and not template.options:
            raise InputError("list the clinically reasonable choices, one a line")
        if len(options) > MAX_OPTIONS:
            raise InputError(f"at most {MAX_OPTIONS} choices besides 'other' and 'unable to determine'")
        for extra in catalogue.always_options:
            if extra.lower() not in {o.lower() for o in options}:
                options.append(extra)
    question = template.question.format(condition=condition, indicators=indicators)
    text = question + "".join(f"\n{i}. {option}" for i, option in enumerate(options, start=1))
    problems = check_wording(text)
    if problems:
        listed = "; ".join(f"'{p.phrase}' ({p.why})" for p in problems)
        raise InputError(f"the query is not compliant: {listed}")
    return text


def draft_from_suggestion(kb: Any, suggestion: dict[str, Any], note: str) -> Draft:
    """Fill a template in from a suggestion the pipeline marked ``query``.

    Args:
        kb: the knowledge base (the billable codes under a header become the choices).
        suggestion: the suggestion (``SuggestionOut`` body).
        note: the note text (the evidence spans are the clinical indicators).

    Returns:
        The draft.
    """
    rule_ids = {r.get("id") for r in suggestion.get("rules", [])}
    messages = " ".join(r.get("message", "") for r in suggestion.get("rules", []))
    quotes = []
    for ev in suggestion.get("evidence", []):
        quote = " ".join(note[ev["start"] : ev["end"]].split())
        if quote and quote not in quotes:
            quotes.append(f'"{quote}"' + (f" ({ev['section']})" if ev.get("section") else ""))
    indicators = "; ".join(quotes)
    condition = suggestion.get("description") or suggestion.get("code", "")
    options: tuple[str, ...] = ()
    if "icd.billable" in rule_ids:
        template = "specificity"
        try:
            options = tuple(r.title for r in kb.billable_descendants(suggestion["code"])[:6])
        except Exception:  # a code the knowledge base cannot expand: the coder lists the choices
            options = ()
    elif "Excludes1" in messages:
        template = "conflicting"
    elif quotes:
        template = "clinical_significance"
    else:
        template = "open"
    return Draft(template, condition, indicators, options, suggestion.get("system"), suggestion.get("code"))


def create_query(
    session: Session,
    vault: EncounterVault,
    scope: Scope,
    actor: Actor,
    draft: Draft,
    addressed_to: str | None,
) -> PhysicianQuery:
    """Send a query: store it sealed and put the encounter on hold.

    Args:
        session: an open session.
        vault: seals the wording.
        scope: the coder's working set.
        actor: who sends it.
        draft: the filled-in template.
        addressed_to: the provider asked.

    Returns:
        The stored query.

    Raises:
        InputError: the wording or choices are not compliant (see :func:`compose`), or the
            encounter was already submitted.
    """
    encounter = scope.encounter
    if encounter.status == "submitted":
        raise InputError("the encounter was submitted; a query now would not change its codes")
    text = compose(draft, encounter.setting)
    row = PhysicianQuery(
        encounter_pk=encounter.id,
        template=draft.template,
        system=draft.system,
        code=draft.code,
        status="open",
        addressed_to=(addressed_to or "").strip()[:200] or None,
        question_sealed=vault.seal_text(encounter.encounter_id, "query", text),
        created_at=utcnow(),
        created_by=actor.user,
    )
    session.add(row)
    session.flush()
    encounter.status = "on_hold"
    if encounter.assigned_to is None:
        encounter.assigned_to, encounter.assigned_key_id = actor.user, actor.key_id
    record_event(session, scope, actor, "query_sent", system=draft.system, code=draft.code, detail={"query": row.id})
    return row


def close_query(
    session: Session,
    vault: EncounterVault,
    scope: Scope,
    actor: Actor,
    query_id: int,
    *,
    answer: str | None,
    withdraw: bool = False,
) -> PhysicianQuery:
    """Record a provider's answer (or withdraw the query); the last open one ends the hold.

    Args:
        session: an open session.
        vault: seals the answer.
        scope: the coder's working set.
        actor: who records it.
        query_id: the query.
        answer: the provider's answer (required unless withdrawing).
        withdraw: withdraw the query instead.

    Returns:
        The query.

    Raises:
        InputError: no such open query, or an empty answer.
    """
    row = session.get(PhysicianQuery, query_id)
    encounter = scope.encounter
    if row is None or row.encounter_pk != encounter.id:
        raise InputError(f"query {query_id} is not a query of this encounter")
    if row.status != "open":
        raise InputError(f"query {query_id} is already {row.status}")
    answer = (answer or "").strip()[:MAX_FIELD]
    if not withdraw and not answer:
        raise InputError("type the provider's answer")
    row.status = "withdrawn" if withdraw else "answered"
    row.answered_at, row.answered_by = utcnow(), actor.user
    if answer:
        row.answer_sealed = vault.seal_text(encounter.encounter_id, "query", answer)
    session.flush()
    still_open = session.scalars(
        select(PhysicianQuery.id).where(PhysicianQuery.encounter_pk == encounter.id, PhysicianQuery.status == "open")
    ).first()
    if still_open is None and encounter.status == "on_hold":
        encounter.status = "in_review"
    record_event(
        session,
        scope,
        actor,
        "query_withdrawn" if withdraw else "query_answered",
        system=row.system,
        code=row.code,
        detail={"query": row.id},
    )
    return row


@dataclass(frozen=True, slots=True)
class QueryView:
    """A query as the review screen lists it."""

    id: int
    template: str
    status: str
    code: str | None
    addressed_to: str | None
    question: str | None
    answer: str | None
    created_at: Any
    created_by: str
    answered_at: Any


def list_queries(session: Session, vault: EncounterVault, scope: Scope) -> list[QueryView]:
    """The encounter's queries, newest first, their wording opened (None once purged)."""
    encounter = scope.encounter
    rows = session.scalars(
        select(PhysicianQuery)
        .where(PhysicianQuery.encounter_pk == encounter.id)
        .order_by(PhysicianQuery.created_at.desc(), PhysicianQuery.id.desc())
    )
    out = []
    for row in rows:

        def opened(blob: bytes | None) -> str | None:
            if blob is None:
                return None
            return vault.open_text(encounter.encounter_id, "query", blob, encounter.key_fingerprint)

        out.append(
            QueryView(
                row.id,
                row.template,
                row.status,
                row.code,
                row.addressed_to,
                opened(row.question_sealed),
                opened(row.answer_sealed),
                row.created_at,
                row.created_by,
                row.answered_at,
            )
        )
    return out
