"""The cards of a CDS Hooks answer.

* The code-set card (``info``): the ordered encounter code set as a Markdown table in ``detail``;
  one suggestion per diagnosis, its action creating the ``Condition`` (the same resource
  ``$suggest-codes`` returns, with the EHR's patient and encounter ids and the note spans as
  evidence), recommended when the model's score is over its threshold; ``selectionBehavior``
  ``any``; override reasons for the coder to choose from. Service lines (E/M, procedures,
  supplies) are in the table: a Condition is a diagnosis, and a CPT line is not something to
  create in the chart.
* The query card (``warning``), only when a diagnosis needs a physician query first: the
  questions. It has no uuid (there is nothing to accept), so EHRs send no feedback on it.

Both link to the workbench review screen when the caller passes its URL (:func:`build_cards`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from pipeline.types import SuggestionResult
from service.fhir import terminology as t
from service.fhir.reading import ClinicalNote
from service.fhir.writing import condition_resource

SOURCE = {"label": "codesuggest"}
SUMMARY_CHARS = 140
LABEL_CHARS = 120

OVERRIDE_REASONS = [
    {"code": "not-documented", "system": t.OVERRIDE_REASON_SYSTEM, "display": "Not supported by the documentation"},
    {"code": "other-code", "system": t.OVERRIDE_REASON_SYSTEM, "display": "Another code fits better"},
    {"code": "not-reportable", "system": t.OVERRIDE_REASON_SYSTEM, "display": "Not reportable for this encounter"},
    {"code": "already-coded", "system": t.OVERRIDE_REASON_SYSTEM, "display": "Already coded"},
]


@dataclass(frozen=True, slots=True)
class OfferedCode:
    """A suggestion of a card: its uuid and the code it adds."""

    uuid: str
    system: str
    code: str


@dataclass(slots=True)
class SentCard:
    """A card with a uuid, as the card store keeps it for feedback."""

    uuid: str
    offered: list[OfferedCode] = field(default_factory=list)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def code_set_table(result: SuggestionResult) -> str:
    """The code set as a GitHub-flavoured Markdown table.

    Args:
        result: the coded note.

    Returns:
        The table.
    """
    rows = ["| # | Code | Description | Role | Modifiers | Points to |", "|---|---|---|---|---|---|"]
    for line in result.code_set:
        rows.append(
            f"| {line.sequence} | {line.code} | {_cell(line.description)} | {line.role} | "
            f"{' '.join(line.modifiers)} | {' '.join(line.pointers)} |"
        )
    return "\n".join(rows)


def _links(review_url: str | None) -> list[dict[str, Any]]:
    return (
        [{"label": "Review in the codesuggest workbench", "url": review_url, "type": "absolute"}] if review_url else []
    )


def build_cards(
    result: SuggestionResult, note: ClinicalNote, review_url: str | None = None
) -> tuple[list[dict[str, Any]], list[SentCard]]:
    """The cards for one coded encounter.

    Args:
        result: what the suggester returned.
        note: the note, with the EHR's patient and encounter references.
        review_url: absolute URL of the workbench review screen for this encounter; no link
            when None (no workbench in this deployment).

    Returns:
        The cards (none when the code set is empty and nothing needs a query) and the cards to
        remember for feedback.
    """
    cards: list[dict[str, Any]] = []
    sent: list[SentCard] = []
    diagnoses = [line for line in result.code_set if line.system == "ICD10CM"]
    services = [line for line in result.code_set if line.system != "ICD10CM"]
    if result.code_set:
        by_code = {(s.system, s.code): s for s in result.suggestions}
        card_id = str(uuid.uuid4())
        record = SentCard(card_id)
        suggestions = []
        for line in diagnoses:
            suggestion = by_code.get((line.system, line.code))
            offered = OfferedCode(str(uuid.uuid4()), line.system, line.code)
            record.offered.append(offered)
            resource = condition_resource(line, suggestion, note, dict(result.code_set_versions))
            suggestions.append(
                {
                    "label": _clip(f"Add {line.code} {line.description}", LABEL_CHARS),
                    "uuid": offered.uuid,
                    "isRecommended": suggestion is None or suggestion.status == "suggested",
                    "actions": [
                        {
                            "type": "create",
                            "description": f"Add {line.code} as a {line.role} diagnosis of this encounter",
                            "resource": resource,
                        }
                    ],
                }
            )
        first = diagnoses[0] if diagnoses else result.code_set[0]
        summary = (
            f"{len(diagnoses)} diagnosis code{'s' if len(diagnoses) != 1 else ''} and {len(services)} service "
            f"line{'s' if len(services) != 1 else ''} suggested; {first.role} {first.code} {first.description}"
        )
        versions = ", ".join(f"{k} {v}" for k, v in result.code_set_versions.items())
        card: dict[str, Any] = {
            "uuid": card_id,
            "summary": _clip(summary, SUMMARY_CHARS),
            "indicator": "info",
            "detail": (
                f"**Suggested code set** ({result.setting}, from {note.setting_basis})\n\n{code_set_table(result)}\n\n"
                f"Suggested by software (model {result.model_version}; {versions}): a coder reviews every code "
                "before the claim is submitted."
            ),
            "source": dict(SOURCE),
            "overrideReasons": [dict(r) for r in OVERRIDE_REASONS],
        }
        if suggestions:
            card["suggestions"] = suggestions
            card["selectionBehavior"] = "any"
        if review_url:
            card["links"] = _links(review_url)
        cards.append(card)
        sent.append(record)
    queries = [q for q in (result.extra or {}).get("queries", []) if isinstance(q, dict)]
    if queries:
        card = {
            "summary": _clip(
                f"{len(queries)} diagnosis question{'s' if len(queries) != 1 else ''} for the physician before coding",
                SUMMARY_CHARS,
            ),
            "indicator": "warning",
            "detail": "\n".join(f"- **{q.get('code')}**: {q.get('question')}" for q in queries),
            "source": dict(SOURCE),
        }
        if review_url:
            card["links"] = _links(review_url)
        cards.append(card)
    return cards, sent
