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
from typing import Any

from spacy.tokens import Doc

from pipeline.encounter.diagnoses.state import DxResult, Rule
from pipeline.encounter.lines import ServiceLine
from pipeline.encounter.reading import Assertions, NoteView
from pipeline.encounter.rule_data import CodeSet, LabeledPhrases, Phrases, RuleReader, in_ranges
from pipeline.errors import RuleFileError
from pipeline.kb.store import KnowledgeBase
from pipeline.types import Patient

EM_SCHEMA = "codesuggest.encounter-em/1"
EM_FILE = "encounter_em.json"

LEVELS = ("straightforward", "low", "moderate", "high")
_PROBLEM_LEVELS = ("minimal", "low", "moderate", "high")
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
    problems_why: str
    tests: tuple[tuple[str, Phrases], ...]
    interpreted_here: dict[str, tuple[tuple[str, str], ...]]
    skip_cues: Phrases
    historian: tuple[re.Pattern[str], ...]
    interpretation: Phrases
    discussion: Phrases
    external_notes: Phrases
    data_why: str
    risk_high: Phrases
    risk_moderate: Phrases
    prescription: tuple[re.Pattern[str], ...]
    otc: Phrases
    risk_headings: Phrases
    risk_why: str
    undiagnosed: CodeSet
    undiagnosed_why: str


def load_em_rules(path: Path | None = None) -> EmRules:
    """Load and check ``encounter_em.json`` (or ``path``).

    Args:
        path: another file to read instead of the packaged one.

    Returns:
        The rules.

    Raises:
        RuleFileError: the file is invalid; the message names file, line and place.
    """
    r = RuleReader.open(
        EM_FILE,
        EM_SCHEMA,
        (
            "report",
            "place",
            "patient",
            "time",
            "problems",
            "not_problems",
            "problem_cues",
            "data",
            "risk",
            "undiagnosed",
        ),
        path,
    )
    rep = r.section_object("report", {"no_em_titles", "separate_cues", "why"})
    place = r.section_object("place", {"emergency", "why"})
    pat = r.section_object("patient", {"new", "established", "why"})
    tim = r.section_object("time", {"patterns", "why"})
    cues = r.section_object("problem_cues", {"progression", "threat", "why"})
    data = r.section_object(
        "data",
        {
            "tests",
            "interpreted_here",
            "skip_cues",
            "historian",
            "interpretation",
            "discussion",
            "external_notes",
            "why",
        },
    )
    risk = r.section_object("risk", {"high", "moderate", "prescription_patterns", "otc", "headings", "why"})
    und = r.section_object("undiagnosed", {"codes", "why"})
    problems = []
    for _, e, p in r.entries("problems"):
        r.keys(e, p, {"class", "level", "codes"})
        problems.append(
            (
                r.text(e["class"], (*p, "class")),
                r.choice(e["level"], (*p, "level"), _PROBLEM_LEVELS),
                r.codes(e["codes"], (*p, "codes")),
            )
        )
    tests = []
    for i, t in enumerate(data["tests"] if isinstance(data["tests"], list) else []):
        tp = ("data", "tests", i)
        r.keys(t, tp, {"name", "phrases"})
        tests.append((r.text(t["name"], (*tp, "name")), Phrases(r.phrases(t["phrases"], (*tp, "phrases")))))
    if not tests:
        raise RuleFileError(f"{r.where('data', 'tests')}: expected a non-empty list of tests")
    here = data["interpreted_here"]
    if not isinstance(here, dict):
        raise RuleFileError(f"{r.where('data', 'interpreted_here')}: expected test name -> code ranges")
    names = {n for n, _ in tests}
    interpreted: dict[str, tuple[tuple[str, str], ...]] = {}
    for name, ranges in here.items():
        if name not in names:
            raise RuleFileError(f"{r.where('data', 'interpreted_here', name)}: {name!r} is not a test name")
        interpreted[name] = r.service_ranges(ranges, ("data", "interpreted_here", name))
    return EmRules(
        no_em_titles=Phrases(r.phrases(rep["no_em_titles"], ("report", "no_em_titles"))),
        separate_cues=Phrases(r.phrases(rep["separate_cues"], ("report", "separate_cues"))),
        no_em_why=r.text(rep["why"], ("report", "why")),
        emergency=Phrases(r.phrases(place["emergency"], ("place", "emergency"))),
        place_why=r.text(place["why"], ("place", "why")),
        new=Phrases(r.phrases(pat["new"], ("patient", "new"))),
        established=Phrases(r.phrases(pat["established"], ("patient", "established"))),
        patient_why=r.text(pat["why"], ("patient", "why")),
        time_patterns=r.patterns(tim["patterns"], ("time", "patterns")),
        time_why=r.text(tim["why"], ("time", "why")),
        problems=tuple(problems),
        not_problems=r.codes(r.section("not_problems"), ("not_problems",)),
        progression=Phrases(r.phrases(cues["progression"], ("problem_cues", "progression"))),
        threat=Phrases(r.phrases(cues["threat"], ("problem_cues", "threat"))),
        problems_why=r.text(cues["why"], ("problem_cues", "why")),
        tests=tuple(tests),
        interpreted_here=interpreted,
        skip_cues=Phrases(r.phrases(data["skip_cues"], ("data", "skip_cues"))),
        historian=r.patterns(data["historian"], ("data", "historian")),
        interpretation=Phrases(r.phrases(data["interpretation"], ("data", "interpretation"))),
        discussion=Phrases(r.phrases(data["discussion"], ("data", "discussion"))),
        external_notes=Phrases(r.phrases(data["external_notes"], ("data", "external_notes"))),
        data_why=r.text(data["why"], ("data", "why")),
        risk_high=Phrases(r.phrases(risk["high"], ("risk", "high"))),
        risk_moderate=Phrases(r.phrases(risk["moderate"], ("risk", "moderate"))),
        prescription=r.patterns(risk["prescription_patterns"], ("risk", "prescription_patterns")),
        otc=Phrases(r.phrases(risk["otc"], ("risk", "otc"))),
        risk_headings=Phrases(r.phrases(risk["headings"], ("risk", "headings"))),
        risk_why=r.text(risk["why"], ("risk", "why")),
        undiagnosed=r.codes(und["codes"], ("undiagnosed", "codes")),
        undiagnosed_why=r.text(und["why"], ("undiagnosed", "why")),
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
