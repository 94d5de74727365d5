"""Evaluation and management: whether a visit has an E/M line, and its code and level.

:class:`EmCoder` decides, for an outpatient note:

* whether an E/M is reported: not for a visit that is a planned or minor procedure or a nurse
  drug administration, unless a separate problem was evaluated (CPT surgical package, NCCI);
* the place: emergency department (99281-99285, by medical decision making, no new or
  established distinction) or office/outpatient (99202-99205, 99211-99215);
* new or established patient, from the note's cues;
* the level, by documented total time (current AMA thresholds, read from the CPT starter
  lexicon) or by medical decision making: problems, data and risk, two of three; when both are
  documented the higher level is used, as CPT allows.

The basis is shown in ``extra["em"]`` and as a rule decision (``em.time`` / ``em.mdm``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator
from spacy.tokens import Doc

from pipeline.encounter.diagnoses.state import DxResult, Rule
from pipeline.encounter.lines import ServiceLine
from pipeline.encounter.reading import Assertions, NoteView
from pipeline.encounter.rule_data import CodeSet, IcdCodes, LabeledPhrases, Phrases, ServiceRanges, in_ranges
from pipeline.kb.store import KnowledgeBase
from pipeline.nlp.components.attribute_rules import ATTRIBUTE_RULES_FILE, AttributeRules, load_attribute_rules
from pipeline.rulefile import PhraseList, RegexList, RuleFile, RuleModel, Text, load_rules, read_rule_text, schema_field
from pipeline.types import Patient

EM_FILE = "encounter_em.json"

_PROBLEM_LEVELS = ("minimal", "low", "moderate", "high")

LEVELS = ("straightforward", "low", "moderate", "high")
_DATA_LEVELS = ("minimal", "limited", "moderate", "extensive")


@dataclass(frozen=True, slots=True)
class EmRules:
    """The contents of ``encounter_em.json`` (see the file's description)."""

    no_em_titles: Phrases
    separate_cues: Phrases
    no_em_why: str
    emergency: Phrases
    place_why: str
    new: Phrases
    established: Phrases
    patient_why: str
    time_patterns: tuple[re.Pattern[str], ...]
    time_why: str
    problems: tuple[tuple[str, str, CodeSet], ...]
    not_problems: CodeSet
    progression: Phrases
    threat: Phrases
    tests: tuple[tuple[str, Phrases], ...]
    interpreted_here: dict[str, tuple[tuple[str, str], ...]]
    skip_cues: Phrases
    historian: tuple[re.Pattern[str], ...]
    interpretation: Phrases
    discussion: Phrases
    external_notes: Phrases
    risk_high: Phrases
    risk_moderate: Phrases
    prescription: tuple[re.Pattern[str], ...]
    otc: Phrases
    risk_headings: Phrases
    risk_why: str
    undiagnosed: CodeSet
    undiagnosed_why: str


class _Report(RuleModel):
    no_em_titles: PhraseList
    separate_cues: PhraseList
    why: Text


class _Place(RuleModel):
    emergency: PhraseList
    why: Text


class _Patient(RuleModel):
    why: Text


class _Time(RuleModel):
    patterns: RegexList
    why: Text


class _Problem(RuleModel):
    class_: Text = Field(alias="class")
    level: Literal["minimal", "low", "moderate", "high"]
    codes: IcdCodes


class _ProblemCues(RuleModel):
    progression: PhraseList
    threat: PhraseList


class _Test(RuleModel):
    name: Text
    phrases: PhraseList


class _Data(RuleModel):
    tests: Annotated[tuple[_Test, ...], Field(min_length=1)]
    interpreted_here: dict[str, ServiceRanges]
    skip_cues: PhraseList
    historian: RegexList
    interpretation: PhraseList
    discussion: PhraseList
    external_notes: PhraseList

    @model_validator(mode="after")
    def _known_tests(self) -> _Data:
        names = {t.name for t in self.tests}
        for name in self.interpreted_here:
            if name not in names:
                raise ValueError(f"interpreted_here: {name!r} is not a test name")
        return self


class _Risk(RuleModel):
    high: PhraseList
    moderate: PhraseList
    prescription_patterns: RegexList
    otc: PhraseList
    headings: PhraseList
    why: Text


class _Undiagnosed(RuleModel):
    codes: IcdCodes
    why: Text


class EmFile(RuleFile):
    """``encounter_em.json`` (schema ``codesuggest.encounter-em/1``)."""

    schema_id: Literal["codesuggest.encounter-em/1"] = schema_field()
    report: _Report
    place: _Place
    patient: _Patient
    time: _Time
    problems: tuple[_Problem, ...]
    not_problems: IcdCodes
    problem_cues: _ProblemCues
    data: _Data
    risk: _Risk
    undiagnosed: _Undiagnosed


def load_em_rules(path: Path | None = None, attributes: AttributeRules | None = None) -> EmRules:
    """Load and check ``encounter_em.json`` (or ``path``).

    The new and established patient cues are the attribute rules' (``encounter``): that file
    owns them.

    Args:
        path: another file to read instead of the packaged one.
        attributes: the attribute rules of the model's pipeline (None: the packaged ones).

    Returns:
        The rules.

    Raises:
        RuleFileError: the file is invalid; the message names file, line and entry.
    """
    text, source = read_rule_text(EM_FILE, path)
    f = load_rules(EmFile, text, source)
    rep, pat, data, risk = f.report, f.patient, f.data, f.risk
    if attributes is None:
        attributes = load_attribute_rules(*read_rule_text(ATTRIBUTE_RULES_FILE))
    cues = attributes.encounter
    return EmRules(
        no_em_titles=Phrases(rep.no_em_titles),
        separate_cues=Phrases(rep.separate_cues),
        no_em_why=rep.why,
        emergency=Phrases(f.place.emergency),
        place_why=f.place.why,
        new=Phrases(cues.new_patient),
        established=Phrases(cues.established_patient),
        patient_why=pat.why,
        time_patterns=f.time.patterns,
        time_why=f.time.why,
        problems=tuple((p.class_, p.level, p.codes) for p in f.problems),
        not_problems=f.not_problems,
        progression=Phrases(f.problem_cues.progression),
        threat=Phrases(f.problem_cues.threat),
        tests=tuple((t.name, Phrases(t.phrases)) for t in data.tests),
        interpreted_here=dict(data.interpreted_here),
        skip_cues=Phrases(data.skip_cues),
        historian=data.historian,
        interpretation=Phrases(data.interpretation),
        discussion=Phrases(data.discussion),
        external_notes=Phrases(data.external_notes),
        risk_high=Phrases(risk.high),
        risk_moderate=Phrases(risk.moderate),
        prescription=risk.prescription_patterns,
        otc=Phrases(risk.otc),
        risk_headings=Phrases(risk.headings),
        risk_why=risk.why,
        undiagnosed=f.undiagnosed.codes,
        undiagnosed_why=f.undiagnosed.why,
    )


@dataclass
class EmDecision:
    """The E/M outcome of one note.

    Attributes:
        code: the E/M code, or None when no E/M is reported.
        place: ``office`` or ``ed``.
        patient: ``new``, ``established`` or None (ED).
        basis: ``time`` or ``mdm``.
        minutes: documented total time, or None.
        mdm: the medical decision making level.
        elements: level and reasons of ``problems``, ``data`` and ``risk``.
        reasons: why this code (or why none).
        separate_statements: items of the assessment documented as separately evaluated.
        line: the claim line (None when no E/M).
    """

    code: str | None
    place: str
    patient: str | None
    basis: str | None
    minutes: int | None
    mdm: str | None
    elements: dict[str, dict[str, Any]] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    separate_statements: set[int] = field(default_factory=set)
    line: ServiceLine | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form put in ``SuggestionResult.extra["em"]``."""
        return {
            "code": self.code,
            "place": self.place,
            "patient": self.patient,
            "basis": self.basis,
            "minutes": self.minutes,
            "mdm": self.mdm,
            "elements": self.elements,
            "reasons": self.reasons,
        }


class EmCoder:
    """Decides the E/M line of an outpatient note.

    Args:
        kb: the knowledge base (E/M levels and time thresholds of the CPT starter lexicon).
        rules: the E/M rules.
    """

    def __init__(self, kb: KnowledgeBase, rules: EmRules) -> None:
        self.kb = kb
        self.rules = rules
        self._tests = LabeledPhrases((name, p.phrases) for name, p in rules.tests)
        self.office: dict[str, list[tuple[str, str | None, int | None]]] = {"new": [], "established": []}
        self.ed: dict[str, str] = {}
        for rec in kb.iter_codes("CPT"):
            setting = rec.meta.get("em.setting")
            if setting == "office" and rec.meta.get("em.patient") in self.office:
                minutes = rec.meta.get("em.minutes")
                self.office[rec.meta["em.patient"]].append(
                    (rec.code, rec.meta.get("em.mdm"), int(minutes) if minutes else None)
                )
            elif setting == "emergency" and rec.meta.get("em.mdm"):
                self.ed[rec.meta["em.mdm"]] = rec.code

    def code(
        self,
        doc: Doc,
        view: NoteView,
        asserts: Assertions,
        dx: DxResult,
        lines: Sequence[ServiceLine],
        *,
        patient: Patient | None = None,
    ) -> EmDecision:
        """The E/M decision of one outpatient note.

        Args:
            doc: the annotated note.
            view: its layout.
            asserts: its assertions.
            dx: the diagnosis outcome.
            lines: the other service lines of the claim.
            patient: what the caller says about the patient.

        Returns:
            The decision, with its claim line when an E/M is reported.
        """
        text = view.text
        lower = text.lower()
        title = lower[: max(text.find("\n"), 0) or 120]
        place = "ed" if self.rules.emergency.search(title) else "office"
        separate = {
            st.item
            for st in view.statements
            if self.rules.separate_cues.search(lower, st.start, _line_end(text, st.end))
        }
        separate_anywhere = self.rules.separate_cues.search(lower) is not None
        if self.rules.no_em_titles.search(title) and not separate_anywhere:
            return EmDecision(None, place, None, None, None, None, reasons=[f"no E/M: {self.rules.no_em_why}"])
        problems = self._problems(view, dx)
        data = self._data(view, asserts, doc, lines)
        risk = self._risk(view)
        levels = sorted((problems[0], data[0], risk[0]), reverse=True)
        mdm_index = max(levels[1], 0)
        mdm = LEVELS[mdm_index]
        elements = {
            "problems": {"level": _PROBLEM_LEVELS[problems[0]], "reasons": problems[1]},
            "data": {"level": _DATA_LEVELS[data[0]], "reasons": data[1]},
            "risk": {"level": _PROBLEM_LEVELS[risk[0]], "reasons": risk[1]},
        }
        minutes = self._minutes(text)
        if place == "ed":
            code = self.ed.get(mdm)
            decision = EmDecision(code, place, None, "mdm", minutes, mdm, elements, separate_statements=separate)
            decision.reasons.append(f"emergency department visit: MDM {mdm} -> {code} ({self.rules.place_why})")
            rules = [Rule("em.mdm", decision.reasons[-1])]
        else:
            kind, why = self._patient(lower, patient)
            table = self.office[kind]
            by_mdm = next((c for c, m, _ in table if m == mdm), None)
            by_time = None
            if minutes is not None:
                eligible = [(t, c) for c, _, t in table if t is not None and minutes >= t]
                by_time = max(eligible)[1] if eligible else None
            rank = {c: i for i, (c, _, _) in enumerate(sorted(table))}
            if by_time is not None and (by_mdm is None or rank[by_time] >= rank[by_mdm]):
                code, basis = by_time, "time"
                reason = (
                    f"total time {minutes} minutes, {kind} patient -> {code} ({self.rules.time_why}); "
                    f"MDM would give {by_mdm}"
                )
            else:
                code, basis = by_mdm, "mdm"
                reason = (
                    f"MDM {mdm} (problems {elements['problems']['level']}, data {elements['data']['level']}, "
                    f"risk {elements['risk']['level']}; two of three), {kind} patient -> {code}"
                )
                if minutes is not None:
                    reason += f"; documented time ({minutes} minutes) gives {by_time}"
            decision = EmDecision(code, place, kind, basis, minutes, mdm, elements, separate_statements=separate)
            decision.reasons += [reason, why]
            rules = [Rule(f"em.{basis}", reason), Rule("em.new_vs_established", why)]
        if decision.code is None:
            return decision
        rec = self.kb.get(decision.code, "CPT")
        decision.line = ServiceLine(
            decision.code,
            "CPT",
            rec.title if rec else decision.code,
            "em",
            "em",
            rules=rules,
            rationale=decision.reasons[0],
            start=-1,
        )
        return decision

    # -- parts --------------------------------------------------------------------------------
    def _patient(self, lower: str, patient: Patient | None) -> tuple[str, str]:
        new = self.rules.new.search(lower)
        est = self.rules.established.search(lower)
        if new and not est:
            return "new", f"new patient: '{new.group(0)}' ({self.rules.patient_why})"
        if est and not new:
            return "established", f"established patient: '{est.group(0)}' ({self.rules.patient_why})"
        if new and est:
            first = new if new.start() < est.start() else est
            kind = "new" if first is new else "established"
            return kind, f"{kind} patient: '{first.group(0)}' stated first ({self.rules.patient_why})"
        return "established", "not stated; established assumed (most office visits are)"

    def _minutes(self, text: str) -> int | None:
        for pattern in self.rules.time_patterns:
            m = pattern.search(text)
            if m:
                value = int(m.group(1))
                if 0 < value <= 600:
                    return value
        return None

    def _problems(self, view: NoteView, dx: DxResult) -> tuple[int, list[str]]:
        text = view.text.lower()
        reasons: list[str] = []
        level = 0
        chronic = 0
        for i, c in enumerate(dx.codes):
            if c.code in self.rules.not_problems or c.origin == "companion" or c.companion_of is not None:
                continue  # a code reported because another asks for it describes that condition
            line = _line_of(text, c.statement.start) if c.statement is not None else ""
            if line and self.rules.threat.search(line):
                reasons.append(f"{c.code}: threat to life or bodily function")
                level = max(level, 3)
                continue
            if (
                i == 0
                and c.code in self.rules.undiagnosed
                and any(x.dropped is not None and x.dropped.id == "icd.uncertain.outpatient" for x in dx.dropped)
            ):
                reasons.append(f"{c.code}: {self.rules.undiagnosed_why}")
                level = max(level, 2)
                continue
            klass = next(((name, lvl) for name, lvl, codes in self.rules.problems if c.code in codes), None)
            if klass is None:
                continue
            name, lvl = klass
            if name == "chronic illness":
                rec = self.kb.get(c.code, "ICD10CM")
                title = rec.title.lower() if rec is not None else ""
                if self.rules.progression.search(line) or "exacerbation" in title:
                    reasons.append(f"{c.code}: chronic illness with exacerbation or progression")
                    level = max(level, 2)
                    continue
                chronic += 1
            reasons.append(f"{c.code}: {name}")
            level = max(level, _PROBLEM_LEVELS.index(lvl))
        if chronic >= 2:
            level = max(level, 2)
            reasons.append("two or more chronic illnesses")
        if self.rules.threat.search(text) and level < 3:
            m = self.rules.threat.search(text)
            assert m is not None
            reasons.append(f"'{m.group(0)}' documented")
            level = 3
        return level, reasons

    def _data(
        self, view: NoteView, asserts: Assertions, doc: Doc, lines: Sequence[ServiceLine]
    ) -> tuple[int, list[str]]:
        text = view.text
        lower = text.lower()
        reasons: list[str] = []
        found: set[str] = set()
        claimed = {
            name
            for name, here in self.rules.interpreted_here.items()
            if any(in_ranges(ln.code, here) and "TC" not in ln.modifiers for ln in lines)
        }
        for m in self._tests.finditer(text):
            name = self._tests.label(m)
            if name in found or name in claimed:
                continue  # counted already, or its interpretation is reported on this claim
            s_lo, s_hi = _sentence_bounds(text, m.start())
            if self.rules.skip_cues.search(lower, s_lo, s_hi):
                continue
            found.add(name)
        historian = any(p.search(text) for p in self.rules.historian)
        interpretation = self.rules.interpretation.search(lower) is not None
        discussion = self.rules.discussion.search(lower) is not None
        external = self.rules.external_notes.search(lower) is not None
        category1 = len(found) + int(external) + int(historian)
        if found:
            reasons.append(f"tests ordered or reviewed: {', '.join(sorted(found))}")
        if external:
            reasons.append("outside records reviewed")
        if historian:
            reasons.append("independent historian")
        if interpretation:
            reasons.append("independent interpretation of a test reported by another provider")
        if discussion:
            reasons.append("management discussed with an external physician")
        categories = int(category1 >= 3) + int(interpretation) + int(discussion)
        if categories >= 2:
            return 3, reasons
        if categories == 1:
            return 2, reasons
        if len(found) + int(external) >= 2 or historian:
            return 1, reasons
        return 0, reasons

    def _risk(self, view: NoteView) -> tuple[int, list[str]]:
        text = view.text
        lower = text.lower()
        m = self.rules.risk_high.search(lower)
        if m is not None:
            return 3, [f"'{m.group(0)}': {self.rules.risk_why}"]
        level, reasons = 0, []
        m = self.rules.risk_moderate.search(lower)
        if m is not None:
            level, reasons = 2, [f"decision about elective major surgery: '{m.group(0)}'"]
        for region in view.regions:
            if not self.rules.risk_headings.search(region.heading.lower()):
                continue
            for s_lo, s_hi in _sentences(text, region.start, region.end):
                sentence = lower[s_lo:s_hi]
                if self.rules.otc.search(sentence):
                    if level < 1:
                        level, reasons = 1, ["over-the-counter drug"]
                    continue
                if any(p.search(sentence) for p in self.rules.prescription) and level < 2:
                    level, reasons = 2, ["prescription drug management"]
        return level, reasons


def _line_end(text: str, pos: int) -> int:
    end = text.find("\n", pos)
    return len(text) if end < 0 else end


def _line_of(text: str, pos: int) -> str:
    start = text.rfind("\n", 0, pos) + 1
    return text[start : _line_end(text, pos)]


def _sentence_bounds(text: str, pos: int) -> tuple[int, int]:
    lo = pos
    while lo > 0 and not (text[lo - 1] == "\n" or (text[lo - 1] in ".!?" and text[lo].isspace())):
        lo -= 1
    m = re.compile(r"[.!?](?=\s|$)|\n").search(text, pos)
    return lo, m.start() if m else len(text)


def _sentences(text: str, start: int, end: int) -> list[tuple[int, int]]:
    out = []
    pos = start
    for m in re.compile(r"[.!?](?=\s|$)|\n").finditer(text, start, end):
        if m.start() > pos:
            out.append((pos, m.start()))
        pos = m.end()
    if pos < end:
        out.append((pos, end))
    return out
