"""Encounter-level coding: from ranked candidates to suggestions and a claim-ready code set.

:class:`EncounterCoder` receives the annotated note and the ranker's ICD-10-CM scores and applies
the coding rules, recording every decision on the suggestion it touched as a
:class:`~pipeline.types.RuleDecision`:

* diagnoses (:mod:`pipeline.encounter.diagnoses.coder`): ICD-10-CM Official Guidelines for Coding and
  Reporting FY2026, the section cited at each rule;
* service lines (:mod:`pipeline.encounter.services`): CPT and HCPCS Level II codes of the
  procedures and supplies the note documents as done today, with units, modifiers and
  diagnosis pointers;
* evaluation and management (:mod:`pipeline.encounter.em`): the office or emergency E/M level
  from documented time or medical decision making.

The rules' knowledge is data (``pipeline/resources/encounter_*.json``), read strictly once when
the coder is built; a model artefact keeps its own copies (``encounter/``, hashed in its manifest)
so that its answers do not change with the package's files. A claim line needs documentation:
only codes supported by affirmed words of the note enter the code set; codes proposed only by the
document model stay ``consider``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from spacy.tokens import Doc

from pipeline.encounter.diagnoses.coder import DiagnosisCoder
from pipeline.encounter.diagnoses.rules import DIAGNOSES_FILE, load_diagnosis_rules
from pipeline.encounter.diagnoses.state import DxCode, Rule
from pipeline.encounter.em import EM_FILE, EmCoder, load_em_rules
from pipeline.encounter.lines import ServiceLine
from pipeline.encounter.reading import (
    READING_FILE,
    Assertions,
    Coverage,
    Mention,
    NoteReader,
    load_reading_rules,
    read_mentions,
)
from pipeline.encounter.services import SERVICES_FILE, ServiceCoder, load_service_rules
from pipeline.errors import RuleFileError
from pipeline.kb.store import KnowledgeBase
from pipeline.nlp.components.attribute_rules import AttributeRules
from pipeline.nlp.components.section_rules import SectionRules
from pipeline.nlp.textnorm import Normalizer, WordGroups
from pipeline.rulefile import read_rule_text
from pipeline.types import CodeSetLine, Evidence, ExcludedMention, Patient, RuleDecision, Suggestion

logger = logging.getLogger(__name__)

Explain = Callable[[str], list[tuple[int, int, str]]]


@dataclass
class EncounterOutcome:
    """What the encounter rules produced for one note."""

    suggestions: list[Suggestion]
    excluded: list[ExcludedMention]
    code_set: list[CodeSetLine]
    extra: dict[str, Any] = field(default_factory=dict)


# The encounter rule files and their loaders; a model artefact holds them under RULES_FOLDER.
RULE_LOADERS: dict[str, Callable[[Path | None], Any]] = {
    READING_FILE: load_reading_rules,
    DIAGNOSES_FILE: load_diagnosis_rules,
    SERVICES_FILE: load_service_rules,
    EM_FILE: load_em_rules,
}
RULES_FOLDER = "encounter"


def encounter_rule_files() -> dict[str, str]:
    """The packaged encounter rule files, each checked by its loader, for a model artefact.

    Returns:
        ``"encounter/<file>"`` -> the file's text, as :func:`pipeline.ranking.training.train_model`
        saves it.

    Raises:
        RuleFileError: a packaged file is invalid.
    """
    files = {}
    for name, load in RULE_LOADERS.items():
        load(None)
        files[f"{RULES_FOLDER}/{name}"] = read_rule_text(name)[0]
    return files


class EncounterCoder:
    """Applies encounter-level rules.

    Args:
        kb: the knowledge base (titles, billable flags, notes, index, CPT/HCPCS features).
        rules_dir: the folder holding every ``encounter_*.json`` file (a model's ``encounter/``);
            None reads the packaged files.
        word_groups: the word groups of the model's term matcher (None: the packaged ones).
        sections: the section rules of the model's pipeline, which own the headings (None: the
            packaged ones).
        attributes: the attribute rules of the model's pipeline, which own the new and
            established patient cues (None: the packaged ones).

    Raises:
        RuleFileError: a rule file is missing from ``rules_dir`` or invalid.
    """

    def __init__(
        self,
        kb: KnowledgeBase,
        *,
        rules_dir: Path | None = None,
        word_groups: WordGroups | None = None,
        sections: SectionRules | None = None,
        attributes: AttributeRules | None = None,
    ) -> None:
        def local(name: str) -> Path | None:
            if rules_dir is None:
                return None
            path = Path(rules_dir) / name
            if not path.is_file():
                raise RuleFileError(f"{path}: missing (a rules folder holds every encounter rule file)")
            return path

        self.kb = _CachedKb(kb)
        kb = self.kb  # type: ignore[assignment]
        self.reading = load_reading_rules(local(READING_FILE), sections)
        self.reader = NoteReader(self.reading)
        self.coverage = Coverage(Normalizer(word_groups or WordGroups.default()), self.reading)
        self.diagnoses = DiagnosisCoder(kb, load_diagnosis_rules(local(DIAGNOSES_FILE)), self.reading, self.coverage)
        self.services = ServiceCoder(kb, load_service_rules(local(SERVICES_FILE)), self.coverage)
        self.em = EmCoder(kb, load_em_rules(local(EM_FILE), attributes))

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
            threshold: the model's cut between likely and unlikely codes (kept in the output as
                the ``score``; the rules, not the threshold, decide what the claim contains).
            setting: ``outpatient`` or ``inpatient``.
            patient: age and sex when known.
            encounter_date: date of service when known.
            explain: finds the words behind a learned (not dictionary) suggestion.

        Returns:
            Suggestions, excluded mentions, the ordered code set and encounter facts
            (``extra["em"]``, ``extra["units"]``, ``extra["queries"]``).
        """
        started = time.perf_counter()
        view = self.reader.read(doc.text)
        asserts = Assertions(doc, view, self.reading)
        mentions = read_mentions(doc, self.coverage.normalizer.key)
        probs = dict(ranked)
        age = patient.age if patient is not None else None
        dx = self.diagnoses.code(doc, view, asserts, mentions, setting=setting, probs=probs, age=age)
        lines = [] if setting == "inpatient" else self.services.code(doc, view, asserts, mentions, dx.codes)
        em = None if setting == "inpatient" else self.em.code(doc, view, asserts, dx, lines, patient=patient)
        if em is not None and em.line is not None:
            lines.insert(0, em.line)
        self.services.finish(lines, dx.codes, em)
        code_set: list[CodeSetLine] = []
        for i, c in enumerate(dx.codes):
            role = (
                ("principal" if setting == "inpatient" else "first-listed")
                if i == 0
                else ("external-cause" if c.kind == "external" else "secondary")
            )
            code_set.append(CodeSetLine(len(code_set) + 1, c.code, "ICD10CM", self.diagnoses.title(c.code), role))
        for line in lines:
            code_set.append(
                CodeSetLine(
                    len(code_set) + 1,
                    line.code,
                    line.system,
                    line.title,
                    line.role,
                    list(line.modifiers),
                    list(line.pointers),
                )
            )
        suggestions = self._suggestions(view.text, mentions, dx, lines, ranked, explain, threshold)
        excluded = self._excluded(mentions, dx)
        extra: dict[str, Any] = {}
        if em is not None:
            extra["em"] = em.to_dict()
        units = {line.code: line.units for line in lines if line.units != 1}
        if units:
            extra["units"] = units
        if dx.queries:
            extra["queries"] = [{"code": q.code, "question": q.question} for q in dx.queries]
        logger.debug("encounter rules: %d codes, %.1f ms", len(code_set), 1000 * (time.perf_counter() - started))
        del encounter_date
        return EncounterOutcome(suggestions, excluded, code_set, extra)

    # -- output ---------------------------------------------------------------------------------
    def _suggestions(
        self,
        text: str,
        mentions: Sequence[Mention],
        dx: Any,
        lines: list[ServiceLine],
        ranked: Sequence[tuple[str, float]],
        explain: Explain | None,
        threshold: float,
    ) -> list[Suggestion]:
        probs = dict(ranked)
        out: list[Suggestion] = []
        seen: set[tuple[str, str]] = set()

        def evidence(mention_ids: Sequence[int], spans: Sequence[tuple[int, int]]) -> list[Evidence]:
            ev = []
            for i in mention_ids:
                span = mentions[i]
                ev.append(Evidence(span.start_char, span.end_char, span.text, span.section, dict(span.flags)))
            for start, end in spans:
                ev.append(Evidence(start, end, text[start:end], None, dict.fromkeys(_ASSERTION_NAMES, False)))
            return ev

        def decisions(rules: Sequence[Any]) -> list[RuleDecision]:
            return [RuleDecision(r.id, r.message) for r in rules]

        for c in dx.codes:
            seen.add(("ICD10CM", c.code))
            out.append(
                Suggestion(
                    code=c.code,
                    system="ICD10CM",
                    description=self.diagnoses.title(c.code),
                    score=round(probs.get(c.code, 1.0), 4),
                    rank=0,
                    status="suggested",
                    evidence=evidence(c.mentions, c.spans),
                    rationale=_rationale(c, mentions),
                    rules=decisions(c.rules),
                )
            )
        for line in lines:
            seen.add((line.system, line.code))
            out.append(
                Suggestion(
                    code=line.code,
                    system=line.system,
                    description=line.title,
                    score=1.0,
                    rank=0,
                    status="suggested",
                    evidence=evidence(line.mentions, line.spans),
                    rationale=line.rationale,
                    modifiers=list(line.modifiers),
                    rules=decisions(line.rules),
                    pointers=list(line.pointers),
                )
            )
        for q in dx.queries:
            out.append(
                Suggestion(
                    code=q.code,
                    system="ICD10CM",
                    description=self.diagnoses.title(q.code) or q.code,
                    score=0.0,
                    rank=0,
                    status="query",
                    evidence=evidence(q.mentions, q.spans),
                    rationale="needs a physician query before it can be coded",
                    rules=decisions([q.rule]),
                    query=q.question,
                )
            )
        dropped = {c.code: c for c in dx.dropped}
        explained = 0
        for code, prob in ranked[:_LISTED]:
            if ("ICD10CM", code) in seen:
                continue
            rec = self.kb.get(code, "ICD10CM")
            if rec is None:
                continue
            seen.add(("ICD10CM", code))
            d = dropped.get(code)
            rules = [d.dropped] if d is not None and d.dropped is not None else []
            ev = evidence(d.mentions, d.spans) if d is not None else []
            if not ev and explain is not None and explained < _EXPLAINED:
                explained += 1
                ev = evidence([], [(s, e) for s, e, _ in explain(code)])
            # The model's calibrated score above its threshold makes a code "suggested" unless a
            # coding rule left it out; only rule-approved codes with documentation reach the claim.
            status = "suggested" if prob >= threshold and d is None else "consider"
            question = None
            if not rec.billable:
                # Only billable codes are reported (I.A.6): a header the note specifies is already
                # in the code set; otherwise the question is what the provider must answer.
                if any(c.code.replace(".", "").startswith(code.replace(".", "")) for c in dx.codes):
                    continue
                rule = _billable_rule(self.kb, code)
                rules = [*rules, rule]
                status, question = "query", rule.message
            out.append(
                Suggestion(
                    code=code,
                    system="ICD10CM",
                    description=rec.title,
                    score=round(prob, 4),
                    rank=0,
                    status=status,  # type: ignore[arg-type]
                    query=question,
                    evidence=ev,
                    rationale="left out by the coding rules"
                    if d is not None
                    else "coded in similar notes; not in the claim: no affirmed diagnostic statement of it",
                    rules=decisions(rules),
                )
            )
        # Ranked by status (claim-ready first, then codes needing a query, then the rest), then by
        # the model's calibrated score; the claim order itself is the code set's.
        order = {"suggested": 0, "query": 1, "consider": 2}
        out.sort(key=lambda sg: (order[sg.status], -sg.score))
        for rank, sg in enumerate(out, start=1):
            sg.rank = rank
        return out

    def _excluded(self, mentions: Sequence[Mention], dx: Any) -> list[ExcludedMention]:
        out = []
        for left in dx.left_out:
            span = mentions[left.mention]
            out.append(ExcludedMention(span.text, span.start_char, span.end_char, left.reason, list(left.codes)))
        return out


_ASSERTION_NAMES = ("negated", "historical", "family", "hypothetical", "uncertain")
# Learned codes whose words are looked up per note (the best-ranked ones; the rest keep none).
_EXPLAINED = 40
# Ranked ICD-10-CM codes listed beyond the rules' own (the rest score far below any threshold; a
# coder never reads 200 of them and every one costs time to build and to send).
_LISTED = 100


class _CachedKb:
    """The knowledge base with record lookups remembered (the rules look codes up many times)."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self._kb = kb
        self._records: dict[tuple[str, str | None], Any] = {}

    def get(self, code: str, system: Any = None) -> Any:
        key = (code, system)
        if key not in self._records:
            self._records[key] = self._kb.get(code, system)
        return self._records[key]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._kb, name)


def _rationale(c: DxCode, mentions: Sequence[Mention]) -> str:
    words = ", ".join(f"'{mentions[i].text}'" for i in c.mentions[:2])
    origin = {
        "statement": "stated in the final diagnostic statement",
        "history": "personal history",
        "family": "family history",
        "chronic": "chronic condition on treatment",
        "external": "external cause of the injury",
        "companion": "asked for by a 'use additional code' note",
        "redirect": "classification instruction",
        "combination": "combination code",
    }.get(c.origin, c.origin)
    return f"{origin}: {words}" if words else origin


def _billable_rule(kb: Any, code: str) -> Rule:
    """The question for a header code: which of its billable codes does the note support."""
    kids = kb.billable_descendants(code)
    shown = "; ".join(f"{r.code} {r.title}" for r in kids[:6])
    return Rule(
        "icd.billable",
        f"{code} is not billable (I.A.6). Which applies: {shown}{'; ...' if len(kids) > 6 else ''}?",
    )
