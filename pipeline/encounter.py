"""Encounter-level coding: from ranked candidates to suggestions and a claim-ready code set.

:class:`EncounterCoder` receives the annotated note and the ranker's ICD-10-CM scores and applies
the coding rules (ICD-10-CM Official Guidelines for Coding and Reporting; the section is cited
at each rule), recording every decision on the suggestion it touched as a
:class:`~pipeline.suggest.RuleDecision`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from spacy.tokens import Doc

from pipeline.extensions import MENTIONS, assertions_of

if TYPE_CHECKING:
    from pipeline.kb.store import KnowledgeBase
    from pipeline.suggest import CodeSetLine, ExcludedMention, Patient, Suggestion

Explain = Callable[[str], list[tuple[int, int, str]]]


@dataclass
class EncounterOutcome:
    """What the encounter rules produced for one note."""

    suggestions: list[Suggestion]
    excluded: list[ExcludedMention]
    code_set: list[CodeSetLine]
    extra: dict[str, Any] = field(default_factory=dict)


class EncounterCoder:
    """Applies encounter-level rules.

    Args:
        kb: the knowledge base (titles, billable flags, notes).
    """

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb

    def code(
        self,
        doc: Doc,
        ranked: Sequence[tuple[str, float]],
        *,
        threshold: float,
        setting: str,
        patient: Patient | None = None,
        encounter_date: date | None = None,
        explain: Explain | None = None,
    ) -> EncounterOutcome:
        """Turn ranked ICD-10-CM candidates into suggestions and the encounter code set.

        Args:
            doc: the annotated note.
            ranked: ``(code, calibrated probability)`` best first.
            threshold: the model's cut between ``suggested`` and ``consider``.
            setting: ``outpatient`` or ``inpatient``.
            patient: age and sex when known.
            encounter_date: date of service when known.
            explain: finds the words behind a learned (not dictionary) suggestion.

        Returns:
            Suggestions, excluded mentions, the ordered code set and encounter facts.
        """
        from pipeline.suggest import (
            CodeSetLine,
            Evidence,
            ExcludedMention,
            RuleDecision,
            Suggestion,
        )

        mentions = list(doc.spans[MENTIONS]) if MENTIONS in doc.spans else []
        found = doc._.cs_candidates or {}
        suggestions: list[Suggestion] = []
        left_out: dict[tuple[int, int], ExcludedMention] = {}
        for code, prob in ranked:
            rec = self.kb.get(code)
            if rec is None:
                continue
            cand = found.get(code)
            evidence: list[Evidence] = []
            rules: list[RuleDecision] = []
            if cand is not None:
                spans = [mentions[i] for i in cand.mentions]
                affirmed = [s for s in spans if not _left_out(s)]
                for s in spans:
                    evidence.append(Evidence(s.start_char, s.end_char, s.text, s._.cs_section, assertions_of(s)))
                if spans and not affirmed:
                    for s in spans:
                        key = (s.start_char, s.end_char)
                        if key in left_out:
                            if code not in left_out[key].codes:
                                left_out[key].codes.append(code)
                        else:
                            left_out[key] = ExcludedMention(s.text, s.start_char, s.end_char, _reason(s), [code])
                    continue
                terms = sorted({c.term for c in cand.candidates})
                rationale = f"'{spans[0].text}' matches {', '.join(terms[:2])}" if spans else ""
            else:
                for start, end, text in explain(code) if explain else []:
                    evidence.append(
                        Evidence(
                            start,
                            end,
                            text,
                            None,
                            dict.fromkeys(
                                ("negated", "historical", "family", "hypothetical", "uncertain"),
                                False,
                            ),
                        )
                    )
                rationale = "coded in similar notes" + (
                    f"; words: {', '.join(e.text for e in evidence)}" if evidence else ""
                )
            suggestions.append(
                Suggestion(
                    code=code,
                    system="ICD10CM",
                    description=rec.title,
                    score=round(prob, 4),
                    rank=0,
                    status="suggested" if prob >= threshold else "consider",
                    evidence=evidence,
                    rationale=rationale,
                    rules=rules,
                )
            )
        code_set = [
            CodeSetLine(
                i + 1,
                s.code,
                s.system,
                s.description,
                "first-listed" if i == 0 and setting == "outpatient" else "principal" if i == 0 else "secondary",
            )
            for i, s in enumerate(s for s in suggestions if s.status == "suggested")
        ]
        for rank, s in enumerate(suggestions, start=1):
            s.rank = rank
        excluded = sorted(left_out.values(), key=lambda x: (x.start, x.end))
        return EncounterOutcome(suggestions, excluded, code_set)


def _left_out(span: Any) -> bool:
    a = assertions_of(span)
    return a["negated"] or a["hypothetical"] or a["family"]


def _reason(span: Any) -> str:
    a = assertions_of(span)
    for key in ("negated", "hypothetical", "family"):
        if a[key]:
            return key
    return "other"
