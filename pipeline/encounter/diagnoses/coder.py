"""Diagnosis rules of the encounter coder: from mentions to the claim's ICD-10-CM codes.

:class:`DiagnosisCoder` applies the ICD-10-CM Official Guidelines for Coding and Reporting
FY2026 (the section is cited at each rule) to the mentions of one note:

* diagnoses come from the provider's final diagnostic statements (IV.C, II, III), one code per
  stated condition: the longest mention that the statement fully states wins over the mentions
  inside it, and among its codes the most specific one the words support (I.A.9, I.B.13);
* negated and hypothetical conditions are never coded; uncertain ones are not coded in the
  outpatient setting (IV.H) and are coded as established at inpatient discharge (II.H, III.C);
* a condition of a family member becomes a family history code, a resolved one a personal
  history code (I.C.21.c.4), chronic conditions on treatment documented in the history are
  coded (IV.J);
* the external cause of an injury is looked up in the External Cause Index (I.C.20);
* hypertension combinations (I.C.9.a), signs and symptoms routine to a coded diagnosis (I.B.5),
  Excludes1 pairs (I.A.12.a), "use additional code" companions, 7th characters (I.C.19.a),
  physician queries (I.B.14, III.B, I.C.1.d.1.a.ii), sequencing (I.A.13, I.C.19.a) and the
  first-listed (IV.G) or principal (II) diagnosis.

Every decision is recorded on the code it touched as a :class:`~pipeline.suggest.RuleDecision`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.encounter.reading import (
    _ENUMERATOR,
    Assertions,
    Coverage,
    Mention,
    NoteTokens,
    NoteView,
    ReadingRules,
    Statement,
)
from pipeline.encounter.rule_data import CodeSet, LabeledPhrases, Phrases, RuleReader, flat
from pipeline.errors import RuleFileError
from pipeline.kb.store import NoteReference, parse_note_references

if TYPE_CHECKING:
    from spacy.tokens import Doc

    from pipeline.kb.store import KnowledgeBase

DIAGNOSES_SCHEMA = "codesuggest.encounter-diagnoses/1"
DIAGNOSES_FILE = "encounter_diagnoses.json"

ICD_KINDS = frozenset({"diagnosis", "symptom", "finding", "external"})
INJURY = CodeSet.parse(["S00-T88"], "injury chapter")
EXTERNAL = CodeSet.parse(["V00-Y99"], "external cause chapter")
SYMPTOM = CodeSet.parse(["R00-R99"], "symptom chapter")
HISTORY = CodeSet.parse(["Z85-Z87", "Z80-Z84", "Z92"], "history codes")
FAMILY = CodeSet.parse(["Z80-Z84"], "family history codes")
_AGE = re.compile(r"\b(\d{1,3})[- ](?:year|yr)s?[- ]old\b", re.IGNORECASE)
_NUMBER = re.compile(r"\b\d+(?:\.\d+)?\b")
_WITH = re.compile(r"\b(with|without)\s+([a-z][a-z -]*?)(?=,|;|\)|\(|\band\b|\bor\b|$| >)", re.IGNORECASE)


# -- rule data ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Mapping:
    """Conditions -> a history code."""

    conditions: CodeSet
    code: str
    why: str


@dataclass(frozen=True, slots=True)
class Integral:
    """Symptoms routine to some diagnoses (I.B.5)."""

    symptoms: CodeSet
    diagnoses: CodeSet
    why: str


@dataclass(frozen=True, slots=True)
class Combination:
    """Codes that together are reported as one combination code."""

    all_of: tuple[CodeSet, ...]
    none_of: tuple[CodeSet, ...]
    code: str | None
    remove: CodeSet
    why: str


@dataclass(frozen=True, slots=True)
class Redirect:
    """A code that, with another condition in the same statement, becomes another code."""

    code: CodeSet
    with_: CodeSet
    to: str
    history: bool
    why: str


@dataclass(frozen=True, slots=True)
class QueryRule:
    """When the provider must be asked instead of a code being assigned."""

    kind: str
    phrases: Phrases
    code_prefix: str
    question: str
    treatment: Phrases
    why: str


@dataclass(frozen=True, slots=True)
class DiagnosisRules:
    """The contents of ``encounter_diagnoses.json``."""

    personal_history: tuple[Mapping, ...]
    family_history: tuple[Mapping, ...]
    chronic: CodeSet
    chronic_cues: Phrases
    chronic_why: str
    integral: tuple[Integral, ...]
    combinations: tuple[Combination, ...]
    redirects: tuple[Redirect, ...]
    default_titles: tuple[str, ...]
    companions: tuple[tuple[str, Phrases], ...]
    companion_negation: Phrases
    companion_only: CodeSet
    bmi_patterns: tuple[re.Pattern[str], ...]
    bmi_adult_age: int
    bmi_bands: tuple[tuple[float, float, str], ...]
    not_reported: CodeSet
    not_reported_why: str
    queries: tuple[QueryRule, ...]
    conflict_question: str
    seventh: dict[str, Phrases]
    external_connectors: frozenset[str]
    external_default_levels: tuple[str, ...]
    external_why: str


_SEVENTH_KEYS = ("sequela", "subsequent", "initial", "open", "open_severe", "closed", "delayed", "nonunion", "malunion")


def load_diagnosis_rules(path: Path | None = None) -> DiagnosisRules:
    """Load and check ``encounter_diagnoses.json`` (or ``path``).

    Args:
        path: another file to read instead of the packaged one.

    Returns:
        The rules.

    Raises:
        RuleFileError: the file is invalid; the message names file, line and place.
    """
    sections = (
        "personal_history",
        "family_history",
        "current_when_treated",
        "integral_symptoms",
        "combinations",
        "redirects",
        "default_titles",
        "companions",
        "companion_negation",
        "companion_only",
        "bmi",
        "not_reported",
        "queries",
        "conflict_question",
        "seventh",
        "external_causes",
    )
    r = RuleReader.open(DIAGNOSES_FILE, DIAGNOSES_SCHEMA, sections, path)

    def mappings(key: str) -> tuple[Mapping, ...]:
        out = []
        for _, e, p in r.entries(key):
            r.keys(e, p, {"conditions", "code", "why"})
            out.append(
                Mapping(
                    r.codes(e["conditions"], (*p, "conditions")),
                    r.icd_code(e["code"], (*p, "code")),
                    r.text(e["why"], (*p, "why")),
                )
            )
        return tuple(out)

    cw = r.section_object("current_when_treated", {"conditions", "cues", "why"})
    integral = []
    for _, e, p in r.entries("integral_symptoms"):
        r.keys(e, p, {"symptoms", "diagnoses", "why"})
        integral.append(
            Integral(
                r.codes(e["symptoms"], (*p, "symptoms")),
                r.codes(e["diagnoses"], (*p, "diagnoses")),
                r.text(e["why"], (*p, "why")),
            )
        )
    combinations = []
    for _, e, p in r.entries("combinations"):
        r.keys(e, p, {"all_of", "remove", "why"}, {"none_of", "code"})
        for key in ("all_of", "none_of"):
            if not isinstance(e.get(key, []), list):
                raise RuleFileError(f"{r.where(*p, key)}: expected a list of code lists")
        combinations.append(
            Combination(
                tuple(r.codes(v, (*p, "all_of", i)) for i, v in enumerate(e["all_of"])),
                tuple(r.codes(v, (*p, "none_of", i)) for i, v in enumerate(e.get("none_of", []))),
                r.icd_code(e["code"], (*p, "code")) if "code" in e else None,
                r.codes(e["remove"], (*p, "remove")),
                r.text(e["why"], (*p, "why")),
            )
        )
    redirects = []
    for _, e, p in r.entries("redirects"):
        r.keys(e, p, {"code", "with", "to", "history", "why"})
        if not isinstance(e["history"], bool):
            raise RuleFileError(f"{r.where(*p, 'history')}: expected true or false")
        redirects.append(
            Redirect(
                r.codes(e["code"], (*p, "code")),
                r.codes(e["with"], (*p, "with")),
                r.icd_code(e["to"], (*p, "to")),
                e["history"],
                r.text(e["why"], (*p, "why")),
            )
        )
    companions = []
    for _, e, p in r.entries("companions"):
        r.keys(e, p, {"code", "phrases"})
        companions.append((r.icd_code(e["code"], (*p, "code")), Phrases(r.phrases(e["phrases"], (*p, "phrases")))))
    bmi = r.section_object("bmi", {"patterns", "adult_age", "bands"})
    bands = []
    for i, band in enumerate(bmi["bands"] if isinstance(bmi["bands"], list) else []):
        p = ("bmi", "bands", i)
        r.keys(band, p, {"min", "max", "code"})
        lo, hi = r.number(band["min"], (*p, "min"), minimum=0), r.number(band["max"], (*p, "max"), minimum=0)
        if hi < lo:
            raise RuleFileError(f"{r.where(*p)}: max below min")
        bands.append((lo, hi, r.icd_code(band["code"], (*p, "code"))))
    if not bands:
        raise RuleFileError(f"{r.where('bmi', 'bands')}: expected a non-empty list of bands")
    nr = r.section_object("not_reported", {"codes", "why"})
    queries = []
    for _, e, p in r.entries("queries"):
        r.keys(e, p, {"kind", "phrases", "code_prefix", "question", "why"}, {"treatment"})
        kind = r.choice(e["kind"], (*p, "kind"), ("term", "lab"))
        if kind == "lab" and "treatment" not in e:
            raise RuleFileError(f"{r.where(*p)}: a 'lab' query needs 'treatment' phrases")
        queries.append(
            QueryRule(
                kind,
                Phrases(r.phrases(e["phrases"], (*p, "phrases"))),
                r.text(e["code_prefix"], (*p, "code_prefix")),
                r.text(e["question"], (*p, "question")),
                Phrases(r.phrases(e.get("treatment", []), (*p, "treatment"), allow_empty=True)),
                r.text(e["why"], (*p, "why")),
            )
        )
    sev = r.section_object("seventh", set(_SEVENTH_KEYS))
    ext = r.section_object("external_causes", {"connectors", "default_levels", "why"})
    return DiagnosisRules(
        personal_history=mappings("personal_history"),
        family_history=mappings("family_history"),
        chronic=r.codes(cw["conditions"], ("current_when_treated", "conditions")),
        chronic_cues=Phrases(r.phrases(cw["cues"], ("current_when_treated", "cues"))),
        chronic_why=r.text(cw["why"], ("current_when_treated", "why")),
        integral=tuple(integral),
        combinations=tuple(combinations),
        redirects=tuple(redirects),
        default_titles=r.phrases(r.section("default_titles"), ("default_titles",)),
        companions=tuple(companions),
        companion_negation=Phrases(r.phrases(r.section("companion_negation"), ("companion_negation",))),
        companion_only=r.codes(r.section("companion_only"), ("companion_only",)),
        bmi_patterns=r.patterns(bmi["patterns"], ("bmi", "patterns")),
        bmi_adult_age=int(r.number(bmi["adult_age"], ("bmi", "adult_age"), integer=True, minimum=0)),
        bmi_bands=tuple(bands),
        not_reported=r.codes(nr["codes"], ("not_reported", "codes")),
        not_reported_why=r.text(nr["why"], ("not_reported", "why")),
        queries=tuple(queries),
        conflict_question=r.text(r.section("conflict_question"), ("conflict_question",)),
        seventh={k: Phrases(r.phrases(sev[k], ("seventh", k))) for k in _SEVENTH_KEYS},
        external_connectors=frozenset(r.phrases(ext["connectors"], ("external_causes", "connectors"))),
        external_default_levels=r.phrases(ext["default_levels"], ("external_causes", "default_levels")),
        external_why=r.text(ext["why"], ("external_causes", "why")),
    )


# -- results ----------------------------------------------------------------------------------------
@dataclass
class Rule:
    """A rule decision before it becomes a :class:`~pipeline.suggest.RuleDecision`."""

    id: str
    message: str


@dataclass
class DxCode:
    """One diagnosis code the rules considered.

    Attributes:
        code: the ICD-10-CM code.
        origin: where it came from: ``statement``, ``history``, ``family``, ``chronic``,
            ``external``, ``companion``, ``redirect`` or ``combination``.
        support: 3 for a final diagnostic statement, 2 for a direct mention elsewhere, 1 for a
            code derived by a rule.
        order: sequencing key (statement order, position).
        mentions: indices of the supporting mentions.
        spans: supporting character spans that are not mentions (companion evidence...).
        rules: rule decisions.
        uncertain: documented as uncertain (kept only in the inpatient setting).
        kind: the kind of the mention it came from.
        statement: the statement it came from.
        dropped: why it is not in the code set (None while it is).
    """

    code: str
    origin: str
    support: int
    order: tuple[int, int]
    mentions: list[int] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    uncertain: bool = False
    kind: str = "diagnosis"
    statement: Statement | None = None
    dropped: Rule | None = None
    detail: tuple[int, int] = (0, 0)
    explained: frozenset[str] = frozenset()
    companion_of: str | None = None


@dataclass
class Query:
    """A condition the provider must clarify before it can be coded."""

    code: str
    question: str
    spans: list[tuple[int, int]]
    mentions: list[int]
    rule: Rule


@dataclass
class Left:
    """A mention left out of coding."""

    mention: int
    reason: str
    codes: list[str]


@dataclass
class DxResult:
    """The diagnosis part of one encounter.

    Attributes:
        codes: the claim's diagnosis codes, in claim order (first-listed or principal first).
        dropped: codes the rules considered and left out (with ``dropped`` set).
        queries: physician queries.
        left_out: mentions not coded (negated, hypothetical, uncertain...).
    """

    codes: list[DxCode]
    dropped: list[DxCode]
    queries: list[Query]
    left_out: list[Left]


# -- the coder ----------------------------------------------------------------------------------------
class DiagnosisCoder:
    """Applies the diagnosis rules to one annotated note.

    Args:
        kb: the knowledge base.
        rules: the diagnosis rules.
        reading: the reading rules.
        coverage: the term coverage checker.
    """

    def __init__(self, kb: KnowledgeBase, rules: DiagnosisRules, reading: ReadingRules, coverage: Coverage) -> None:
        self.kb = kb
        self.rules = rules
        self.reading = reading
        self.coverage = coverage
        self.external = ExternalCauseIndex(kb, coverage, rules)
        self._notes: dict[tuple[str, str], tuple[NoteReference, ...]] = {}
        self._titles: dict[str, str] = {}
        self._distinct: dict[tuple[str, str], frozenset[str]] = {}
        self._blocks: dict[str, str | None] = {}
        self._companion_phrases = LabeledPhrases((code, p.phrases) for code, p in rules.companions)
        self._companion_codes = tuple(code for code, _ in rules.companions) + tuple(b[2] for b in rules.bmi_bands)
        self._relevant: dict[tuple[str, bool, bool], bool] = {}
        # How many titles use each word (a rare word is a specific one), read once.
        self._title_counts: dict[str, int] = {}
        for rec in kb.iter_codes("ICD10CM"):
            for k in coverage.words(rec.title):
                self._title_counts[k] = self._title_counts.get(k, 0) + 1
        self._chains: dict[str, list[str]] = {}

    # -- helpers ------------------------------------------------------------------------------
    def title(self, code: str) -> str:
        """The code's title ('' when unknown)."""
        if code not in self._titles:
            rec = self.kb.get(code, "ICD10CM")
            self._titles[code] = rec.title if rec is not None else ""
        return self._titles[code]

    def notes(self, code: str, kind: str) -> tuple[NoteReference, ...]:
        """``code_first`` / ``use_additional`` / ``excludes1`` references that apply to a code.

        Notes printed under the code, its ancestors, its block and its chapter apply (I.A.12-13).
        """
        key = (code, kind)
        if key in self._notes:
            return self._notes[key]
        rec = self.kb.get(code, "ICD10CM")
        refs: list[NoteReference] = []
        if rec is not None:
            owners: list[Any] = [rec, *self.kb.ancestors(rec.code)]
            if rec.block:
                owners.append(self.kb.header(rec.block))
            if rec.chapter:
                owners.append(self.kb.header(f"chapter:{rec.chapter}"))
            for owner in owners:
                if owner is None:
                    continue
                name = f"chapter:{owner.code}" if getattr(owner, "kind", None) == "chapter" else owner.code
                for note in getattr(owner, kind, ()):
                    ref = parse_note_references(note, name)
                    if ref is not None:
                        refs.append(ref)
        self._notes[key] = tuple(refs)
        return self._notes[key]

    def _rarity(self, words: frozenset[str]) -> float:
        """How specific the rarest of some words is: the inverse of how many ICD-10-CM titles use it."""
        if not words:
            return 0.0
        return max(1.0 / (1 + self._title_counts.get(w, 0)) for w in words)

    def _block(self, code: str) -> str | None:
        if code not in self._blocks:
            rec = self.kb.get(code, "ICD10CM")
            self._blocks[code] = rec.block if rec is not None else None
        return self._blocks[code]

    def _is_default(self, code: str) -> bool:
        title = self.title(code).lower()
        return any(w in title for w in self.rules.default_titles)

    # -- main -----------------------------------------------------------------------------------
    def code(
        self,
        doc: Doc,
        view: NoteView,
        asserts: Assertions,
        mentions: Sequence[Mention],
        *,
        setting: str,
        probs: dict[str, float],
        age: int | None = None,
    ) -> DxResult:
        """Code the diagnoses of one note.

        Args:
            doc: the annotated note.
            view: its layout.
            asserts: its assertions.
            mentions: its mentions (:func:`~pipeline.encounter.reading.read_mentions`).
            setting: ``outpatient`` or ``inpatient``.
            probs: the ranker's probability per code (to choose between close codes).
            age: the patient's age when known.

        Returns:
            Codes, dropped codes, queries and mentions left out.
        """
        state = _State(doc, view, asserts, mentions, setting, probs)
        self._from_statements(state)
        self._from_history(state)
        self._external_cause(state)
        self._redirects(state)
        self._conflicts(state)
        self._companions(state, age if age is not None else _age(view.text))
        self._combinations(state)
        self._specificity(state)
        self._integral(state)
        self._excludes1(state)
        self._queries(state)
        self._not_reported(state)
        self._seventh(state)
        self._billable(state)
        codes = self._sequence(state)
        for c in state.codes:
            if c.dropped is None and c.code in EXTERNAL:
                c.rules.append(Rule("icd.external_cause", self.rules.external_why))
        return DxResult(codes, [c for c in state.codes if c.dropped is not None], state.queries, state.left)

    # -- statements ---------------------------------------------------------------------------
    def _from_statements(self, s: _State) -> None:
        by_statement: dict[int, list[_Mention]] = {}
        for i, span in enumerate(s.mentions):
            if span.kind not in ICD_KINDS or span.kind == "external":
                continue
            st = s.view.statement_at(span.start_char, span.end_char)
            if st is None:
                continue
            m = self._mention(s, i, span, st.start, st.end)
            if m is not None:
                by_statement.setdefault(st.order, []).append(m)
        for order, found in sorted(by_statement.items()):
            st = s.view.statements[order]
            for m in found:
                m.code = self._choose(s, m)
                m.explained, m.titled = self._explained(m, s.view.text[st.start : st.end])
            # The widest statement of a condition wins: a mention whose chosen code explains no
            # word of the clause that a kept one does not is part of the kept one (I.A.9).
            found.sort(key=lambda m: (-len(m.explained), -len(m.titled), -len(m.tokens), m.span.start))
            kept: list[_Mention] = []
            said: set[str] = set()
            for m in found:
                if m.explained <= said:
                    continue
                kept.append(m)
                said |= m.explained
            # A kept mention all of whose words the others state is part of them.
            for m in sorted(kept, key=lambda k: len(k.explained)):
                others = set().union(*(k.explained for k in kept if k is not m))
                if len(kept) > 1 and m.explained <= others:
                    kept.remove(m)
            for m in kept:
                if m.span.text.lower().strip() in self.reading.generic_terms:
                    continue
                self._add_statement_mention(s, m, st)

    def _mention(self, s: _State, index: int, span: Mention, lo: int, hi: int) -> _Mention | None:
        """A mention with the codes its clause fully states, best first; None when none is."""
        key = (index, lo, hi)
        if key not in s.mention_cache:
            s.mention_cache[key] = self._read_mention(s, index, span, lo, hi)
        return s.mention_cache[key]

    def _read_mention(self, s: _State, index: int, span: Mention, lo: int, hi: int) -> _Mention | None:
        text = s.view.text
        enum = _ENUMERATOR.match(text, lo, hi)
        if enum is not None:
            lo = enum.end()
        words = self.coverage.words(text[lo:hi])
        raw = self.coverage.raw_words(text[lo:hi])
        clause = text[lo:hi].lower()
        covered_matches = [
            m
            for m in (span.matches or ())
            if m.system == "ICD10CM"
            and self.coverage.covered(m.text, m.source, words, raw)
            and not _polarity_conflict(m.text, clause)
            and (m.source == "fuzzy" or _compact(span.tokens, m.tokens))
        ]
        if not covered_matches:
            return None
        cands = []
        side = _side(span, clause)
        stated = words | ({side} if side in ("right", "left", "bilateral") else set())
        for cand in span.candidates or ():
            if cand.system != "ICD10CM":
                continue
            support = [m for m in covered_matches if self._extends(m.code, cand.code, stated)]
            if not support:
                continue
            title = self.title(cand.code)
            if not title or _polarity_conflict(title, clause) or not self.coverage.numbers_stated(title, raw):
                continue
            code_side = _code_side(title)
            if side is not None and code_side is not None and code_side != side:
                continue
            # An index path that leads to the code states it (the index is the classification's
            # own way in, I.A.8); a title states only the words the clause repeats.
            indexed = any(m.source in Coverage.INDEX_SOURCES or m.source == "lexicon" for m in support)
            missing = (
                0
                if indexed or self.coverage.covered(title, "title", stated, raw)
                else len(self._title_keys(cand.code) - stated)
            )
            cands.append((cand, code_side, missing))
        if not cands:
            return None
        tokens = frozenset(t for m in covered_matches for t in m.tokens)
        return _Mention(index, span, tokens, cands, side, covered_matches)

    def _extends(self, base: str, code: str, words: frozenset[str] | set[str]) -> bool:
        """True when every level from a matched code down to a candidate is stated (I.A.9).

        The term names ``base``; the candidate adds a side, a 7th character, or a more specific
        child. Each child's title words beyond its parent's must be in the clause (defaults such
        as "unspecified" excepted), so a shallow term never justifies an "other ..." child.
        """
        if code == base:
            return True
        if not flat(code).startswith(flat(base)):
            return False
        chain = self._chains.get(code)
        if chain is None:
            rec = self.kb.get(code, "ICD10CM")
            chain = self._chains[code] = [rec.code, *(a.code for a in self.kb.ancestors(rec.code))] if rec else []
        if base not in chain:
            return False
        path = chain[: chain.index(base) + 1][::-1]
        for parent, child in pairwise(path):
            if len(flat(child)) == 7 and flat(child)[:6].rstrip("X") == flat(parent).rstrip("X"):
                continue  # the 7th character is chosen by its own rule
            if not self._distinguishing(parent, child) <= words:
                return False
        return True

    def _distinguishing(self, parent: str, child: str) -> frozenset[str]:
        """Title words that set a child apart from its parent and its siblings."""
        key = (parent, child)
        found = self._distinct.get(key)
        if found is None:
            new = self._title_keys(child) - self._title_keys(parent)
            siblings = [c.code for c in self.kb.children(parent) if c.code != child]
            shared = frozenset.intersection(*(self._title_keys(c) for c in siblings)) if siblings else frozenset()
            found = self._distinct[key] = frozenset(new - shared)
        return found

    def _explained(self, m: _Mention, clause: str) -> tuple[frozenset[str], frozenset[str]]:
        """The clause words a mention's chosen code states: by its title and its matched words,
        and by its title alone."""
        words = self.coverage.words(clause)
        title = re.sub(r"\([^)]*\)|\[[^\]]*\]", " ", self.title(m.code))
        titled = self.coverage.words(title) & words
        texts = m.span.tokens.texts
        stated = words | {m.side or ""}
        matched: set[str] = set()
        for match in m.matches:
            if not self._extends(match.code, m.code, stated):
                continue
            own = self.coverage.words(match.text)
            for t in match.tokens:
                keys = self.coverage.words(texts[t])
                # A fuzzy match spans a whole chunk; only the words its alias shares count.
                if match.source != "fuzzy" or keys & own:
                    matched |= keys
        return frozenset((titled | matched) & words), frozenset(titled)

    def _title_keys(self, code: str) -> frozenset[str]:
        title = re.sub(r"\([^)]*\)|\[[^\]]*\]", " ", self.title(code))
        ignore = self.coverage._ignore
        return frozenset(k for k in self.coverage.words(title) if k not in ignore)

    def _choose(self, s: _State, m: _Mention) -> str:
        """The code of a stated condition: fully stated first, then specific over default (I.A.9),
        the stated side (I.B.13), the ranker's score, the candidate order."""
        pool = [c for c in m.cands if c[2] == 0] or list(m.cands)
        cats_specified = {c[0].code[:3] for c in pool if not self._is_default(c[0].code)}
        pool = [c for c in pool if not (self._is_default(c[0].code) and c[0].code[:3] in cats_specified)]
        if m.side is not None and any(c[1] == m.side for c in pool):
            pool = [c for c in pool if c[1] == m.side]
        order = {id(c[0]): i for i, c in enumerate(m.cands)}
        best = min(pool, key=lambda c: (c[2], -s.probs.get(c[0].code, 0.0), order[id(c[0])]))
        return best[0].code

    def _add_statement_mention(self, s: _State, m: _Mention, st: Statement) -> None:
        a = s.asserts.of(m.span)
        code = m.code or self._choose(s, m)
        if a["negated"] or a["hypothetical"]:
            s.left.append(Left(m.index, "negated" if a["negated"] else "hypothetical", [code]))
            return
        if a["family"]:
            self._family(s, m.index, code, support=3)
            return
        if a["historical"]:
            if self._history_of(code) is not None:
                self._history(s, m.index, code, support=3, order=(st.order, m.span.start_char))
                return
            title = self.title(code).lower()
            current = (
                code in HISTORY
                or code in self.rules.chronic
                or any(w in title for w in ("sequela", "following", "late effect", "history"))
            )
            if not current:
                # "History of X": no longer present, and no personal history code names it (III).
                s.left.append(Left(m.index, "historical", [code]))
                return
        rules: list[Rule] = []
        if a["uncertain"]:
            if s.setting == "outpatient":
                s.left.append(Left(m.index, "uncertain", [code]))
                s.uncertain_dropped = True
                s.add(
                    DxCode(
                        code,
                        "statement",
                        3,
                        (st.order, m.span.start_char),
                        [m.index],
                        kind=str(m.span.kind),
                        statement=st,
                        uncertain=True,
                        dropped=Rule(
                            "icd.uncertain.outpatient",
                            "documented as uncertain ('probable', 'likely', 'rule out'...): "
                            "not coded in the outpatient setting; the signs and symptoms "
                            "are coded instead (IV.H)",
                        ),
                    )
                )
                return
            rules.append(
                Rule(
                    "icd.uncertain.inpatient",
                    "documented as uncertain at discharge: coded as if established (II.H, III.C)",
                )
            )
        if code in FAMILY:
            rules.append(Rule("icd.family_history", "family history stated (I.C.21.c.4)"))
        elif code in HISTORY:
            rules.append(
                Rule("icd.personal_history", "personal history stated: the condition no longer exists (I.C.21.c.4)")
            )
        if m.side is not None and _code_side(self.title(code)) == m.side:
            rules.append(Rule("icd.laterality", f"{m.side} side from the diagnostic statement (I.B.13)"))
        s.add(
            DxCode(
                code,
                "statement",
                3,
                (st.order, m.span.start_char),
                [m.index],
                rules=rules,
                uncertain=a["uncertain"],
                kind=str(m.span.kind),
                statement=st,
                detail=(len(m.explained), max((len(x.text.split(" > ")) for x in m.matches), default=0)),
                explained=m.explained,
            )
        )

    # -- history, family, chronic -------------------------------------------------------------
    def _history_of(self, code: str) -> Mapping | None:
        for mapping in self.rules.personal_history:
            if code in mapping.conditions:
                return mapping
        return None

    def _family(self, s: _State, index: int, code: str, support: int) -> None:
        if code in FAMILY:
            s.add(
                DxCode(
                    code,
                    "family",
                    support,
                    (10_000, s.mentions[index].start_char),
                    [index],
                    rules=[Rule("icd.family_history", "family history documented (I.C.21.c.4)")],
                )
            )
            return
        for mapping in self.rules.family_history:
            if code in mapping.conditions:
                s.add(
                    DxCode(
                        mapping.code,
                        "family",
                        1,
                        (10_000, s.mentions[index].start_char),
                        [index],
                        rules=[
                            Rule(
                                "icd.family_history",
                                f"{code} is documented in a family member, not the patient: "
                                f"{mapping.code} ({mapping.why})",
                            )
                        ],
                    )
                )
                return
        s.left.append(Left(index, "family", [code]))

    def _history(self, s: _State, index: int, code: str, support: int, order: tuple[int, int]) -> None:
        mapping = self._history_of(code)
        if mapping is None:
            return
        s.add(
            DxCode(
                mapping.code,
                "history",
                min(support, 2),
                (order[0] + 5_000, order[1]),
                [index],
                rules=[
                    Rule(
                        "icd.personal_history",
                        f"{code} is documented as past and no longer present: {mapping.code} ({mapping.why})",
                    )
                ],
            )
        )

    def _history_relevant(self, code: str, family: bool, historical: bool) -> bool:
        key = (code, family, historical)
        found = self._relevant.get(key)
        if found is None:
            if family:
                found = code in FAMILY or any(code in mp.conditions for mp in self.rules.family_history)
            else:
                found = (
                    code in HISTORY or code in self.rules.chronic or (historical and self._history_of(code) is not None)
                )
            self._relevant[key] = found
        return found

    def _from_history(self, s: _State) -> None:
        """Mentions outside the diagnostic statements: family, personal history, chronic on treatment."""
        text = s.view.text
        for i, span in enumerate(s.mentions):
            kind = span.kind
            if kind not in ICD_KINDS or kind == "external":
                continue
            if s.view.statement_at(span.start_char, span.end_char) is not None:
                continue
            a = s.asserts.of(span)
            if a["negated"] or a["hypothetical"] or a["uncertain"]:
                if span.text.lower().strip() not in self.reading.generic_terms and (a["negated"] or a["hypothetical"]):
                    lo, hi = s.view.clause_bounds(span.start_char, span.end_char)
                    left = self._mention(s, i, span, lo, hi)
                    if left is not None:
                        reason = "negated" if a["negated"] else "hypothetical"
                        s.left.append(Left(i, reason, [self._choose(s, left)]))
                continue
            lo, hi = s.view.clause_bounds(span.start_char, span.end_char)
            region = s.view.region_at(span.start_char)
            family = a["family"] or (region is not None and region.kind == "family")
            if span.text.lower().strip() in self.reading.generic_terms:
                continue
            if not any(self._history_relevant(c.code, family, a["historical"]) for c in span.candidates):
                continue  # nothing a family, personal history or chronic rule could code
            m = self._mention(s, i, span, lo, hi)
            if m is None:
                continue
            code = self._choose(s, m)
            if family:
                if code in FAMILY or any(code in mp.conditions for mp in self.rules.family_history):
                    s.family_candidates.append((i, code, m))
                continue
            if code in HISTORY and code not in FAMILY:
                s.history_candidates.append((i, code, m))
                continue
            if a["historical"] and self._history_of(code) is not None and code not in self.rules.chronic:
                s.history_candidates.append((i, code, m))
                continue
            if code in self.rules.chronic:
                cue = self.rules.chronic_cues.search(text, span.end_char, hi)
                if cue is not None:
                    s.chronic_candidates.append((i, code, m))
        for group, handler in (
            (s.family_candidates, "family"),
            (s.history_candidates, "history"),
            (s.chronic_candidates, "chronic"),
        ):
            # Among nested mentions keep the widest (the one stating the most words).
            for i, code, m in group:
                if any(m.tokens < other.tokens for _, _, other in group):
                    continue
                if handler == "family":
                    self._family(s, i, code, support=2)
                elif handler == "history":
                    if code in HISTORY:
                        s.add(
                            DxCode(
                                code,
                                "history",
                                2,
                                (5_000, s.mentions[i].start_char),
                                [i],
                                rules=[Rule("icd.personal_history", "personal history documented (I.C.21.c.4)")],
                            )
                        )
                    else:
                        self._history(s, i, code, 2, (0, s.mentions[i].start_char))
                else:
                    s.add(
                        DxCode(
                            code,
                            "chronic",
                            2,
                            (2_000, s.mentions[i].start_char),
                            [i],
                            rules=[Rule("icd.coexisting", self.rules.chronic_why)],
                        )
                    )

    # -- external cause -----------------------------------------------------------------------
    def _external_cause(self, s: _State) -> None:
        """The mechanism of the injury, once, from the External Cause Index (I.C.20)."""
        if not any(c.code in INJURY for c in s.active()):
            return
        best: tuple[int, int, str, int, int] | None = None  # (depth, keys, code, start, end)
        text = s.view.text
        for start, end in _sentences(text):
            hit = self.external.find(text[start:end])
            if hit is None:
                continue
            depth, nkeys, code = hit
            if self._negated_region(s, start, end, code):
                continue
            if best is None or (depth, nkeys) > (best[0], best[1]):
                best = (depth, nkeys, code, start, end)
        if best is None:
            return
        _, _, base, start, end = best
        s.add(DxCode(base, "external", 2, (90_000, start), spans=[(start, end)], kind="external"))

    def _negated_region(self, s: _State, start: int, end: int, code: str) -> bool:
        """True when every external-cause mention of the sentence is negated or hypothetical."""
        spans = [m for m in s.mentions if m.kind == "external" and start <= m.start_char < end]
        if not spans:
            return False
        return all(s.asserts.of(m)["negated"] or s.asserts.of(m)["hypothetical"] for m in spans)

    # -- redirects, companions, combinations ----------------------------------------------------
    def _redirects(self, s: _State) -> None:
        for c in list(s.active()):
            for rule in self.rules.redirects:
                if c.code not in rule.code or c.statement is None:
                    continue
                partners = [o for o in s.active() if o is not c and o.statement is c.statement and o.code in rule.with_]
                if not partners:
                    continue
                c.dropped = Rule(
                    "icd.redirect", f"with {partners[0].code} in the same statement: {rule.to} ({rule.why})"
                )
                s.add(
                    DxCode(
                        rule.to,
                        "redirect",
                        3,
                        c.order,
                        list(c.mentions),
                        kind=c.kind,
                        statement=c.statement,
                        rules=[Rule("icd.redirect", rule.why)],
                    )
                )
                if rule.history:
                    for o in partners:
                        mapping = self._history_of(o.code)
                        o.dropped = Rule(
                            "icd.personal_history", f"treatment completed: {mapping.code if mapping else 'history'}"
                        )
                        if mapping is not None:
                            s.add(
                                DxCode(
                                    mapping.code,
                                    "history",
                                    2,
                                    (o.order[0], o.order[1] + 1),
                                    list(o.mentions),
                                    rules=[
                                        Rule(
                                            "icd.personal_history",
                                            f"{o.code} treated and no longer present: {mapping.code} ({mapping.why})",
                                        )
                                    ],
                                )
                            )

    def _companions(self, s: _State, age: int | None) -> None:
        """'Use additional code' companions found in the note (I.A.13)."""
        text = s.view.text
        evidence: dict[str, tuple[list[int], list[tuple[int, int]]]] = {}
        wanted = {
            code
            for parent in s.active()
            for ref in self.notes(parent.code, "use_additional")
            for code in self._companion_codes
            if ref.covers(flat(code))
        }
        if not wanted:
            return
        for match in self._companion_phrases.finditer(text):
            code = self._companion_phrases.label(match)
            if code not in wanted or self._companion_negated(s, match.start()):
                continue
            evidence.setdefault(code, ([], []))[1].append((match.start(), match.end()))
        for i, span in enumerate(s.mentions):
            if span.kind not in ICD_KINDS:
                continue
            a = s.asserts.of(span)
            if a["negated"] or a["hypothetical"] or a["family"] or a["uncertain"]:
                continue
            if not any(c.code in self.rules.companion_only for c in span.candidates):
                continue
            for cand in span.candidates or ():
                if cand.code in self.rules.companion_only and cand.system == "ICD10CM":
                    lo, hi = s.view.clause_bounds(span.start_char, span.end_char)
                    m = self._mention(s, i, span, lo, hi)
                    if m is not None and any(c[0].code == cand.code for c in m.cands):
                        evidence.setdefault(cand.code, ([], []))[0].append(i)
        bmi = self._bmi(text, age)
        if bmi is not None:
            evidence.setdefault(bmi[0], ([], []))[1].append((bmi[1], bmi[2]))
        added: set[str] = set()
        for c in s.active():
            if c.code in self.rules.companion_only and c.origin != "companion":
                evidence.setdefault(c.code, ([], []))[0].extend(c.mentions)
                c.dropped = Rule(
                    "icd.use_additional",
                    "reported only with a condition whose 'use additional code' note asks for it (I.A.13)",
                )
        changed = True
        while changed:
            changed = False
            for parent in list(s.active()):
                refs = self.notes(parent.code, "use_additional")
                for code, (mention_ids, spans) in evidence.items():
                    if code in added or s.has(code):
                        continue
                    f = flat(code)
                    ref = next((r for r in refs if r.covers(f)), None)
                    if ref is None:
                        continue
                    added.add(code)
                    changed = True
                    s.add(
                        DxCode(
                            code,
                            "companion",
                            1,
                            (parent.order[0], parent.order[1] + 1),
                            list(mention_ids),
                            list(spans),
                            kind="finding",
                            rules=[
                                Rule(
                                    "icd.use_additional",
                                    f"{parent.code} says 'use additional code' ({ref.note}); "
                                    f"the note documents it (I.A.13)",
                                )
                            ],
                        )
                    )

    def _companion_negated(self, s: _State, pos: int) -> bool:
        lo, _ = s.view.clause_bounds(pos, pos)
        window = s.view.text[max(lo, pos - 40) : pos]
        return self.rules.companion_negation.search(window) is not None

    def _bmi(self, text: str, age: int | None) -> tuple[str, int, int] | None:
        if age is not None and age < self.rules.bmi_adult_age:
            return None
        for pattern in self.rules.bmi_patterns:
            match = pattern.search(text)
            if match is None:
                continue
            value = float(match.group(1))
            for lo, hi, code in self.rules.bmi_bands:
                if lo <= value <= hi:
                    return code, match.start(), match.end()
        return None

    def _combinations(self, s: _State) -> None:
        """Hypertension combinations and the like (I.C.9.a), applied until nothing changes."""
        for _ in range(4):
            changed = False
            for rule in self.rules.combinations:
                active = s.active()
                codes = [c.code for c in active]
                if not all(any(code in group for code in codes) for group in rule.all_of):
                    continue
                if any(any(code in group for code in codes) for group in rule.none_of):
                    continue
                members = [c for c in active if any(c.code in g for g in rule.all_of)]
                target = None
                if rule.code is not None:
                    target = next((c for c in active if c.code == rule.code), None)
                    if target is None:
                        first = min(members, key=lambda c: c.order)
                        target = DxCode(
                            rule.code,
                            "combination",
                            max(m.support for m in members),
                            first.order,
                            [i for m in members for i in m.mentions],
                            kind="diagnosis",
                            statement=first.statement,
                        )
                        s.add(target)
                        changed = True
                    target.rules.append(Rule("icd.combination", rule.why))
                for c in active:
                    if c is not target and c.code in rule.remove and c.dropped is None:
                        c.dropped = Rule(
                            "icd.combination", f"included in {rule.code or 'the combination code'} ({rule.why})"
                        )
                        if target is not None and c.order < target.order:
                            target.order = c.order
                        changed = True
            if not changed:
                return

    def _specificity(self, s: _State) -> None:
        """One code per condition: a default ('unspecified') code gives way to a specific one of
        its category, and a code from the history gives way to the statement's (I.A.9)."""
        active = s.active()
        for c in active:
            if c.dropped is not None:
                continue
            for o in active:
                if o is c or o.dropped is not None:
                    continue
                if o.code[:3] != c.code[:3]:
                    if (
                        o.code in INJURY
                        and c.code in INJURY
                        and self.title(o.code).startswith("Unspecified injury")
                        and self._block(o.code) == self._block(c.code)
                        and not c.code.startswith("T14")
                    ):
                        o.dropped = Rule(
                            "icd.specificity",
                            f"the specific injury {c.code} is coded for this "
                            "region; an unspecified injury is not added (I.A.9)",
                        )
                    continue
                if o.code == c.code:
                    if (o.support, -o.order[0]) < (c.support, -c.order[0]) or (
                        o.support == c.support and o.order > c.order
                    ):
                        c.mentions.extend(i for i in o.mentions if i not in c.mentions)
                        o.dropped = Rule("icd.duplicate", f"same code as {c.code}")
                    continue
                if o.origin in ("companion",) or c.origin in ("companion",):
                    continue
                if o.statement is not None and o.statement is c.statement and o.origin == c.origin == "statement":
                    # One condition of one statement: the code stating more of it, then the one
                    # stating the rarer (more specific) word, then a specified code, then the score.
                    rare_o = self._rarity(o.explained - c.explained)
                    rare_c = self._rarity(c.explained - o.explained)
                    if (o.detail[0], rare_o, o.detail[1], not self._is_default(o.code), s.probs.get(o.code, 0.0)) < (
                        c.detail[0],
                        rare_c,
                        c.detail[1],
                        not self._is_default(c.code),
                        s.probs.get(c.code, 0.0),
                    ):
                        o.dropped = Rule(
                            "icd.specificity", f"one condition of the statement: {c.code} states it more fully (I.A.9)"
                        )
                    continue
                o_default, c_default = self._is_default(o.code), self._is_default(c.code)
                if o_default and not c_default and o.support <= c.support + 1:
                    o.dropped = Rule("icd.specificity", f"{c.code} states the condition more specifically (I.A.9)")
                elif o.support < c.support and o.origin == "chronic":
                    o.dropped = Rule("icd.specificity", f"the diagnostic statement gives {c.code} for this condition")

    def _integral(self, s: _State) -> None:
        """Signs and symptoms routine to a coded diagnosis are not coded (I.B.5)."""
        active = s.active()
        for c in active:
            if c.dropped is not None or c.origin == "companion":
                continue
            for rel in self.rules.integral:
                if c.code not in rel.symptoms:
                    continue
                owner = next(
                    (
                        o
                        for o in active
                        if o is not c
                        and o.dropped is None
                        and o.code in rel.diagnoses
                        and not self._asks_for(o.code, c.code)
                    ),
                    None,
                )
                if owner is not None:
                    c.dropped = Rule(
                        "icd.integral_symptom",
                        f"routinely part of {owner.code} {self.title(owner.code)}: not coded separately ({rel.why})",
                    )
                    owner.rules.append(Rule("icd.integral_symptom", f"{c.code} is part of this diagnosis"))
                    break

    def _asks_for(self, parent: str, child: str) -> bool:
        f = flat(child)
        return any(r.covers(f) for r in self.notes(parent, "use_additional")) or any(
            r.covers(flat(parent)) for r in self.notes(child, "code_first")
        )

    def _excludes1(self, s: _State) -> None:
        """Excludes1 pairs (I.A.12.a): keep the better-supported code and say why; Excludes2 pairs are
        both reported (I.A.12.b)."""
        active = [c for c in s.active() if c.code not in EXTERNAL]
        for i, a in enumerate(active):
            for b in active[i + 1 :]:
                if a.dropped is not None or b.dropped is not None:
                    continue
                try:
                    source = self.kb.excludes1_source(a.code, b.code)
                except Exception:
                    source = None
                if source is None:
                    continue
                owner, note = source
                keep, lose = self._better(a, b, owner)
                lose.dropped = Rule("icd.excludes1", f"Excludes1 with {keep.code} ({note}): {keep.code} kept")
                keep.rules.append(
                    Rule("icd.excludes1", f"kept over {lose.code}: Excludes1 ({note}); " + self._why_better(keep, lose))
                )
        for i, a in enumerate(s.active()):
            for b in s.active()[i + 1 :]:
                try:
                    note2 = self.kb.excludes2_notes(a.code, b.code)
                except Exception:
                    note2 = None
                if note2 and not (a.code in SYMPTOM or b.code in SYMPTOM):
                    a.rules.append(Rule("icd.excludes2", f"Excludes2 with {b.code} ({note2}): both reported"))

    def _better(self, a: DxCode, b: DxCode, owner: str) -> tuple[DxCode, DxCode]:
        if a.support != b.support:
            return (a, b) if a.support > b.support else (b, a)
        a_sym, b_sym = a.code in SYMPTOM, b.code in SYMPTOM
        if a_sym != b_sym:
            return (b, a) if a_sym else (a, b)
        a_def, b_def = self._is_default(a.code), self._is_default(b.code)
        if a_def != b_def:
            return (b, a) if a_def else (a, b)
        # The note points at the code that classifies the condition: keep that one.
        owner_flat = flat(owner)
        if flat(a.code).startswith(owner_flat):
            return b, a
        if flat(b.code).startswith(owner_flat):
            return a, b
        return (a, b) if a.order <= b.order else (b, a)

    @staticmethod
    def _why_better(keep: DxCode, lose: DxCode) -> str:
        if keep.support != lose.support:
            return "it is documented as a final diagnosis"
        if lose.code in SYMPTOM:
            return "a definitive diagnosis is preferred to a symptom"
        return "the note documents it more specifically"

    def _conflicts(self, s: _State) -> None:
        """Conflicting documentation: the record states two mutually exclusive forms of one
        condition (Excludes1 partners of one block, both specific): query the attending (I.B.14)."""
        stated: dict[str, list[int]] = {}
        mine = [c for c in s.active() if c.origin == "statement" and c.code not in SYMPTOM]
        refs = [r for c in mine for r in self.notes(c.code, "excludes1")]
        if not refs:
            return
        cats = {c.code[:3] for c in mine}
        memo: dict[str, bool] = {}

        def partner(code: str) -> bool:
            if code not in memo:
                memo[code] = code[:3] in cats or any(r.covers(flat(code)) for r in refs)
            return memo[code]

        for i, span in enumerate(s.mentions):
            if span.kind != "diagnosis":
                continue
            if not any(partner(c.code) for c in span.candidates if c.system == "ICD10CM"):
                continue
            a = s.asserts.of(span)
            if a["negated"] or a["hypothetical"] or a["family"] or a["uncertain"]:
                continue
            lo, hi = s.view.clause_bounds(span.start_char, span.end_char)
            m = self._mention(s, i, span, lo, hi)
            if m is None:
                continue
            text = s.view.text[lo:hi]
            words = self.coverage.words(text)
            raw = self.coverage.raw_words(text)
            for cand, _, _ in m.cands:
                cat = cand.code[:3]
                title = self.title(cat)
                # The category itself is stated ("type 1 diabetes"), not only a default child.
                if title and self._title_keys(cat) <= words and self.coverage.numbers_stated(title, raw):
                    stated.setdefault(cat, []).append(i)
        for c in list(s.active()):
            if c.origin != "statement" or c.code in SYMPTOM:
                continue
            own = stated.get(c.code[:3])
            if not own:
                continue
            for other, where in stated.items():
                if other == c.code[:3] or self._block(other) != self._block(c.code):
                    continue
                try:
                    source = self.kb.excludes1_source(c.code, other)
                except Exception:
                    source = None
                if source is None:
                    continue
                rec = self.kb.get(other, "ICD10CM")
                question = self.rules.conflict_question.format(
                    first=self.title(c.code),
                    first_code=c.code,
                    second=rec.title if rec is not None else other,
                    second_code=f"{other}.-",
                )
                for o in s.active():
                    if o.code[:3] in (c.code[:3], other):
                        o.dropped = Rule(
                            "icd.query",
                            f"the record documents both {c.code[:3]} and {other} "
                            f"({source[1]}): conflicting documentation, query first "
                            "(I.B.14)",
                        )
                s.queries.append(
                    Query(
                        c.code[:3],
                        question,
                        [],
                        [*own, *where],
                        Rule(
                            "icd.query",
                            f"Excludes1 ({source[1]}) between two documented forms "
                            "of the condition; the provider must clarify (I.B.14)",
                        ),
                    )
                )
                break

    def _queries(self, s: _State) -> None:
        text = s.view.text
        for rule in self.rules.queries:
            for st in s.view.statements:
                match = rule.phrases.search(text, st.start, st.end)
                if match is None:
                    continue
                if rule.kind == "term":
                    s.queries.append(
                        Query(
                            rule.code_prefix,
                            rule.question.format(term=match.group(0)),
                            [(match.start(), match.end())],
                            [],
                            Rule("icd.query", rule.why),
                        )
                    )
                    for c in s.active():
                        if c.statement is st:
                            c.dropped = Rule("icd.query", f"'{match.group(0)}' needs a physician query first")
                    continue
                if match.start() != st.start:
                    continue  # a lab value that is the subject of the statement
                if any(c.statement is st for c in s.codes if c.dropped is None):
                    continue
                value = _NUMBER.search(text, match.end(), st.end)
                if value is None:
                    continue
                line_end = text.find("\n", st.end)
                line_end = len(text) if line_end < 0 else line_end
                treated = rule.treatment.search(text, st.end, line_end)
                if treated is None:
                    continue
                s.queries.append(
                    Query(
                        rule.code_prefix,
                        rule.question.format(
                            term=match.group(0).capitalize(),
                            value=value.group(0),
                            treatment=f" with {treated.group(0)}",
                        ),
                        [(st.start, st.end), (treated.start(), treated.end())],
                        [],
                        Rule("icd.query", rule.why),
                    )
                )

    def _not_reported(self, s: _State) -> None:
        for c in s.active():
            if c.code in self.rules.not_reported:
                c.dropped = Rule("icd.not_reported", self.rules.not_reported_why)

    # -- 7th character ------------------------------------------------------------------------
    def _seventh(self, s: _State) -> None:
        """The 7th character from the note's cues (I.C.19.a, I.C.19.c.1), X placeholders (I.A.17)."""
        injuries = []
        for c in s.active():
            if c.code in EXTERNAL:
                continue
            base = self._seventh_base(c.code)
            if base is None:
                continue
            table = self.kb.seventh_characters(base)
            if not table:
                continue
            span_text = self._context(s, c)
            char, why = self._pick_seventh(table, span_text)
            code = self.kb.complete(base, char)
            if code != c.code:
                c.rules.append(Rule("icd.7th", f"{c.code} -> {code}: {why}"))
                c.code = code
            else:
                c.rules.append(Rule("icd.7th", f"7th character {char}: {why}"))
            c.rules.append(
                Rule(
                    "icd.billable",
                    f"{base} is not billable without its 7th character; {code} is (placeholder X where needed, I.A.17)",
                )
            )
            injuries.append(c)
        for c in s.active():
            if c.code not in EXTERNAL or not injuries:
                continue
            base = self._seventh_base(c.code)
            if base is None:
                continue
            table = self.kb.seventh_characters(base) or {}
            main = injuries[0].code[-1]
            table_main = self.kb.seventh_characters(self._seventh_base(injuries[0].code) or "") or {}
            meaning = table_main.get(main, "")
            char = "S" if "sequela" in meaning else "D" if "subsequent" in meaning else "A"
            if char in table:
                code = self.kb.complete(base, char)
                c.rules.append(
                    Rule(
                        "icd.7th",
                        f"7th character {char} as for {injuries[0].code} "
                        "(I.C.20.a.2: the external cause takes the injury's encounter)",
                    )
                )
                c.code = code

    def _billable(self, s: _State) -> None:
        """Only billable codes leave the engine (I.A.6); a header is specified from the note when one
        of its codes is stated there, else the provider is asked which one applies."""
        for c in s.active():
            rec = self.kb.get(c.code, "ICD10CM")
            if rec is None or rec.billable:
                continue
            kids = [k.code for k in self.kb.billable_descendants(c.code)]
            stated = [k for k in kids if any(o.code == k for o in s.codes if o is not c)]
            if stated:
                c.dropped = Rule("icd.billable", f"{c.code} is a header; the note states {stated[0]}")
                continue
            c.dropped = Rule(
                "icd.billable", f"{c.code} is not billable and the note does not say which of its codes applies: query"
            )
            shown = ", ".join(f"{k} {self.title(k)}" for k in kids[:6])
            s.queries.append(
                Query(
                    c.code,
                    f"{c.code} {self.title(c.code)} needs more detail to be billed. "
                    f"Which applies: {shown}{' ...' if len(kids) > 6 else ''}?",
                    list(c.spans),
                    list(c.mentions),
                    Rule("icd.billable", "only billable codes are reported (I.A.6)"),
                )
            )

    def _seventh_base(self, code: str) -> str | None:
        rec = self.kb.get(code, "ICD10CM")
        if rec is None or rec.seventh is None:
            return None
        f = flat(code)
        if len(f) == 7:
            base = f[:6].rstrip("X")
            return base[:3] + (f".{base[3:]}" if len(base) > 3 else "")
        return code

    def _context(self, s: _State, c: DxCode) -> str:
        text = s.view.text
        if c.statement is not None:
            line_start = text.rfind("\n", 0, c.statement.start) + 1
            line_end = text.find("\n", c.statement.end)
            return text[line_start : len(text) if line_end < 0 else line_end].lower()
        parts = []
        for i in c.mentions:
            lo, hi = s.view.clause_bounds(s.mentions[i].start_char, s.mentions[i].end_char)
            parts.append(text[lo:hi])
        return " ".join(parts).lower()

    def _pick_seventh(self, table: dict[str, str], context: str) -> tuple[str, str]:
        """The 7th character whose meaning matches the note's cues (I.C.19.a, I.C.19.c.1).

        Args:
            table: character -> meaning, from the tabular list.
            context: the lower-case diagnostic line or clause of the injury.

        Returns:
            The character and why.
        """
        cues = self.rules.seventh
        if cues["sequela"].search(context) and "S" in table:
            return "S", "documented as a sequela (late effect) of the injury (I.C.19.a)"
        fracture = any("fracture" in m for m in table.values())
        episode, why = "initial", "the injury is under active treatment: initial encounter (I.C.19.a)"
        healing = None
        if fracture:
            healing = next((k for k in ("nonunion", "malunion", "delayed") if cues[k].search(context)), None)
        if healing is not None or cues["subsequent"].search(context):
            episode = "subsequent"
            why = "the injury is in its healing or recovery phase: subsequent encounter (I.C.19.a)"
            healing = healing or "routine"
        wanted = [episode]
        relaxed = [episode]
        if fracture:
            if cues["open_severe"].search(context):
                wanted.append("type iiia")
                relaxed.append("open fracture")
                why += "; open fracture type III (I.C.19.c.1)"
            elif cues["open"].search(context):
                wanted.append("type i or ii")
                relaxed.append("open fracture")
                why += "; open fracture type I or II (I.C.19.c.1: Gustilo I/II, or open without a type)"
            else:
                wanted.append("closed fracture")
                relaxed.append("closed fracture")
                why += "; closed fracture (the default, I.C.19.c.1)"
            if episode == "subsequent":
                words = {
                    "routine": "routine healing",
                    "delayed": "delayed healing",
                    "nonunion": "nonunion",
                    "malunion": "malunion",
                }[healing or "routine"]
                wanted.append(words)
                relaxed.append(words)
                if healing != "routine":
                    why += f"; {words}"
        for needed in (wanted, relaxed, [episode]):
            for char, meaning in table.items():
                if all(w in meaning.lower() for w in needed):
                    return char, why
        return ("A" if "A" in table else sorted(table)[0]), "no cue: initial encounter assumed (I.C.19.a)"

    # -- sequencing ---------------------------------------------------------------------------
    def _sequence(self, s: _State) -> list[DxCode]:
        """Claim order: statement order, 'code first' / 'use additional' and sequela residual
        first (I.A.13, I.C.19.a), external causes last; the first code is first-listed (IV.G) or
        principal (II)."""
        active = [c for c in s.active()]
        active.sort(key=lambda c: (c.code in EXTERNAL, c.order))
        # Sequela: the residual condition before the injury it follows (I.C.19.a).
        for c in list(active):
            if c.code in INJURY and c.code.endswith("S"):
                residual = next(
                    (
                        o
                        for o in active
                        if o is not c and o.statement is c.statement and o.code not in INJURY and o.code not in EXTERNAL
                    ),
                    None,
                )
                if residual is not None and active.index(residual) > active.index(c):
                    active.remove(residual)
                    active.insert(active.index(c), residual)
                    residual.rules.append(
                        Rule(
                            "icd.sequela", f"the residual condition is sequenced before the injury {c.code} (I.C.19.a)"
                        )
                    )
        for _ in range(len(active)):
            moved = False
            for c in list(active):
                for ref in self.notes(c.code, "code_first"):
                    first = next((o for o in active if o is not c and ref.covers(flat(o.code))), None)
                    if first is not None and active.index(first) > active.index(c):
                        active.remove(first)
                        active.insert(active.index(c), first)
                        moved = True
                for ref in self.notes(c.code, "use_additional"):
                    after = next((o for o in active if o is not c and ref.covers(flat(o.code))), None)
                    if after is not None and active.index(after) < active.index(c) and after.origin != "statement":
                        active.remove(after)
                        active.insert(active.index(c) + 1, after)
                        moved = True
            if not moved:
                break
        for c in active:
            for ref in self.notes(c.code, "code_first"):
                first = next((o for o in active if o is not c and ref.covers(flat(o.code))), None)
                if first is not None and not any(r.id == "icd.code_first" for r in c.rules):
                    c.rules.append(
                        Rule(
                            "icd.code_first", f"'code first' ({ref.note}): {first.code} is sequenced before it (I.A.13)"
                        )
                    )
            for ref in self.notes(c.code, "use_additional"):
                for o in active:
                    if (
                        o is not c
                        and ref.covers(flat(o.code))
                        and not any(r.id == "icd.use_additional" for r in o.rules)
                    ):
                        o.rules.append(
                            Rule(
                                "icd.use_additional",
                                f"{c.code} says 'use additional code' ({ref.note}): reported with it (I.A.13)",
                            )
                        )
                        o.companion_of = c.code
        return active


# -- per-note state -----------------------------------------------------------------------------------
@dataclass
class _Mention:
    index: int
    span: Any
    tokens: frozenset[int]
    cands: list[tuple[Any, str | None, int]]
    side: str | None
    matches: list[Any] = field(default_factory=list)
    code: str = ""
    explained: frozenset[str] = frozenset()
    titled: frozenset[str] = frozenset()


class _State:
    def __init__(
        self,
        doc: Doc,
        view: NoteView,
        asserts: Assertions,
        mentions: Sequence[Any],
        setting: str,
        probs: dict[str, float],
    ) -> None:
        self.doc = doc
        self.view = view
        self.asserts = asserts
        self.mentions = mentions
        self.setting = setting
        self.probs = probs
        self.codes: list[DxCode] = []
        self.queries: list[Query] = []
        self.left: list[Left] = []
        self.uncertain_dropped = False
        self.family_candidates: list[tuple[int, str, _Mention]] = []
        self.history_candidates: list[tuple[int, str, _Mention]] = []
        self.chronic_candidates: list[tuple[int, str, _Mention]] = []
        self.mention_cache: dict[tuple[int, int, int], _Mention | None] = {}

    def add(self, code: DxCode) -> None:
        for c in self.codes:
            if (
                c.dropped is None
                and c.code == code.code
                and c.statement is not None
                and c.statement is code.statement
                and c.origin == code.origin
            ):
                c.mentions.extend(i for i in code.mentions if i not in c.mentions)
                c.rules.extend(code.rules)
                return
        self.codes.append(code)

    def active(self) -> list[DxCode]:
        return [c for c in self.codes if c.dropped is None]

    def has(self, code: str) -> bool:
        return any(c.code == code for c in self.active())


# -- external cause index ---------------------------------------------------------------------------
class ExternalCauseIndex:
    """The External Cause Index read level by level against a sentence (I.C.20).

    An entry matches a sentence when every level of its path is stated (any one of a level's
    comma-separated alternatives; connector words such as "from, off, out of" need not be);
    the deepest matching entry is the most specific mechanism. "See" and "see also" main terms
    ("Cut, cutting - see Contact, with") lend their words to the entries they point at.

    Args:
        kb: the knowledge base (its External Cause Index entries).
        coverage: the word normalizer.
        rules: the diagnosis rules (connectors, default levels).
    """

    def __init__(self, kb: KnowledgeBase, coverage: Coverage, rules: DiagnosisRules) -> None:
        self.kb = kb
        self.coverage = coverage
        connectors = frozenset(k for w in rules.external_connectors for k in coverage.words(w)) | frozenset(
            rules.external_connectors
        )
        defaults = tuple(coverage.words(d) for d in rules.external_default_levels)
        aliases: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
        for e in kb.index_entries:
            if e.source == "external" and len(e.path) == 1 and e.code is None and e.see_path:
                aliases.setdefault(tuple(p.lower() for p in e.see_path), []).append(e.path)
        self.entries: list[tuple[tuple[tuple[frozenset[str], ...], ...], str, int, tuple[frozenset[str], ...]]] = []
        for e in kb.index_entries:
            if e.source != "external" or e.code is None:
                continue
            rec = kb.get(e.code, "ICD10CM")
            if rec is None:
                continue
            paths = [e.path]
            for target, sources in aliases.items():
                if tuple(p.lower() for p in e.path[: len(target)]) == target:
                    paths.extend((*src, *e.path[len(target) :]) for src in sources)
            for path in paths:
                levels: list[tuple[frozenset[str], ...]] = []
                negative: list[frozenset[str]] = []
                for level in path:
                    if level.lower().startswith("without "):
                        negative.append(frozenset(coverage.words(level[len("without ") :])))
                        continue
                    alts = []
                    for alt in re.split(r", | or ", level):
                        keys = frozenset(
                            k for k in coverage.words(re.sub(r"\([^)]*\)", " ", alt)) if k not in connectors
                        )
                        alts.append(keys)
                    if all(not a for a in alts):
                        continue  # a connector level ("from, off, out of")
                    if any(a in defaults for a in alts if a):
                        continue  # a default level ("same level")
                    levels.append(tuple(a for a in alts if a))
                if len(levels) == 1 and e.nonessential:
                    # A lone main term qualified by its modifiers ("standing (prolonged) (static)")
                    # means the mechanism only with one of them.
                    levels.append(tuple(frozenset(coverage.words(n)) for n in e.nonessential if coverage.words(n)))
                if levels and all(levels):
                    self.entries.append(
                        (tuple(levels), e.code, sum(len(min(lv, key=len)) for lv in levels), tuple(negative))
                    )
        self._by_first: dict[str, list[int]] = {}
        for i, (entry_levels, _, _, _) in enumerate(self.entries):
            for alt in entry_levels[0]:
                for k in alt:
                    self._by_first.setdefault(k, []).append(i)
        self._firsts = frozenset(self._by_first)
        self._seconds = [frozenset().union(*lv[1]) if len(lv) > 1 else frozenset() for lv, _, _, _ in self.entries]

    def _title(self, code: str) -> str:
        rec = self.kb.get(code, "ICD10CM")
        return rec.title if rec is not None else ""

    def find(self, sentence: str) -> tuple[int, int, str] | None:
        """The most specific mechanism stated in a sentence.

        Args:
            sentence: the text.

        Returns:
            ``(depth, words, code)`` of the deepest matching entry, or None.
        """
        words = self.coverage.words(sentence)
        if not words & self._firsts:
            return None
        found: list[tuple[int, int, str]] = []
        seen: set[int] = set()
        for w in words:
            for i in self._by_first.get(w, ()):
                if i in seen:
                    continue
                seen.add(i)
                levels, code, nkeys, negative = self.entries[i]
                if len(levels) > 1 and not self._seconds[i] & words:
                    continue
                if any(n and n <= words for n in negative):
                    continue
                if all(any(alt <= words for alt in level) for level in levels):
                    found.append((len(levels), nkeys, code))
        if not found:
            return None
        depth = max(f[0] for f in found)
        top = sorted({f[2] for f in found if f[0] == depth})
        # Among equally deep entries, the code another's Excludes1 note sends the case to wins
        # ("fall ... due to ice or snow (W00.0)"), then a specified code over a default one.
        for code in list(top):
            for other in top:
                if other != code and other in top:
                    try:
                        src = self.kb.excludes1_source(code, other)
                    except Exception:
                        src = None
                    if src is not None and flat(code).startswith(flat(src[0])) and len(top) > 1:
                        top.remove(code)
                        break
        specified = [c for c in top if "unspecified" not in self._title(c).lower()]
        code = (specified or top)[0]
        nkeys = max(f[1] for f in found if f[0] == depth and f[2] == code)
        return depth, nkeys, code


# -- small helpers ------------------------------------------------------------------------------------
def _polarity_conflict(term: str, clause: str) -> bool:
    """True when the term says "with X" and the clause "without X", or the reverse."""
    said: dict[str, set[str]] = {"with": set(), "without": set()}
    for m in _WITH.finditer(clause.lower()):
        said[m.group(1)].update(w for w in m.group(2).split() if len(w) > 3 and w != "other")
    if not said["without"] and not said["with"]:
        return False
    for m in _WITH.finditer(term.lower()):
        pol = m.group(1)
        other = "without" if pol == "with" else "with"
        words = {w for w in m.group(2).split() if len(w) > 3 and w != "other"}
        if words & said[other] and not words & said[pol]:
            return True
    return False


def _compact(note: NoteTokens, tokens: Sequence[int]) -> bool:
    """A term's words lie close together: at least 40% of the content words between its first and
    last word are its own, and the stretch is at most three times as long as the term."""
    lo, hi = min(tokens), max(tokens)
    if hi - lo + 1 > 3 * len(tokens) + 3:
        return False
    return len(set(tokens)) >= 0.4 * note.content(lo, hi)


def _code_side(title: str) -> str | None:
    t = title.lower()
    if "bilateral" in t:
        return "bilateral"
    if re.search(r"\bright\b", t):
        return "right"
    if re.search(r"\bleft\b", t):
        return "left"
    if re.search(
        r"unspecified (?:side|ear|eye|ankle|knee|hip|shoulder|wrist|hand|foot|arm|leg|"
        r"forearm|elbow|lower limb|upper limb|breast|kidney|lung)",
        t,
    ):
        return "unspecified"
    return None


def _side(span: Any, clause: str) -> str | None:
    side = span.laterality
    words = set(re.findall(r"[a-z]+", clause))
    if "bilateral" in words or "both" in words or "bilaterally" in words:
        return "bilateral"
    if side in ("right", "left", "bilateral"):
        return str(side)
    if "right" in words and "left" not in words:
        return "right"
    if "left" in words and "right" not in words:
        return "left"
    return None


def _sentences(text: str) -> Iterable[tuple[int, int]]:
    start = 0
    for match in re.finditer(r"[.!?](?=\s)|\n", text):
        if match.start() > start:
            yield start, match.start()
        start = match.end()
    if start < len(text):
        yield start, len(text)


def _age(text: str) -> int | None:
    match = _AGE.search(text)
    return int(match.group(1)) if match else None
