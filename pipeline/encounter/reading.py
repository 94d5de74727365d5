"""How the encounter rules read a note: headings, final diagnostic statements, assertions.

A coder takes the diagnoses of a claim from the provider's final diagnostic statements (the
assessment, impression or discharge diagnoses), not from every word of the history or the exam.
:class:`NoteReader` finds the headings of a note ("Assessment/Plan:", "Final impression:",
"Discharge diagnoses:"...), the regions they open, and in the diagnostic regions the statements
(clauses) a code may come from. It also gives the assertions of a mention as the encounter rules
use them: medspaCy ConText's findings, corrected where a trigger sits inside the mention
("cystitis without hematuria" is not a negated cystitis), plus the uncertainty and negation cues of
``resources/encounter_reading.json`` that ConText lacks ("probable", "likely", "... ruled out").

Everything here reads character offsets of ``doc.text``; nothing is logged (note text is PHI).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field
from spacy.tokens import Doc

from pipeline.encounter.rule_data import Phrases
from pipeline.nlp.components.section_rules import SECTION_RULES_FILE, SectionRules, load_section_rules
from pipeline.nlp.extensions import ASSERTIONS, CONTEXT_ATTRIBUTES, MENTIONS
from pipeline.nlp.textnorm import Normalizer
from pipeline.rulefile import (
    NonBlank,
    Phrase,
    PhraseList,
    PositiveInt,
    RuleFile,
    RuleModel,
    load_rules,
    read_rule_text,
    schema_field,
)

READING_FILE = "encounter_reading.json"

REGION_KINDS = ("diagnostic", "assessment_plan", "family", "other")

_HEADING = re.compile(
    r"(?:^|(?<=[.!?]\s)|(?<=[.!?]\s\s))[ \t]*(?P<name>[A-Za-z][A-Za-z0-9 /&'()+-]*?)[ \t]*:(?=\s|$)",
    re.MULTILINE,
)
ENUMERATOR = re.compile(r"[ \t]*(?:\(?\d{1,2}[.)]|[-*\u2022])[ \t]+")
_SENTENCE_END = re.compile(r"[.!?](?=\s+[A-Z0-9\"'(])|[.!?]\s*$")
_CLAUSE_BREAK = re.compile(r"[;:\n]|[.!?](?=\s|$)")
_WORD = re.compile(r"[A-Za-z0-9]+(?:'[a-z]+)?")


@dataclass(frozen=True, slots=True)
class ReadingRules:
    """The contents of ``encounter_reading.json``.

    Attributes:
        max_heading_words: a heading has at most this many words.
        diagnostic_headings: words that make a heading a final diagnostic statement.
        plan_headings: words that make a diagnostic heading an assessment-and-plan one.
        not_final_headings: words that make a diagnostic heading a working one (admission).
        family_headings: headings of family history.
        comment_separators: strings after which a diagnostic line turns into comment or plan.
        non_diagnostic_starts: a clause starting with one of these is a plan or comment.
        generic_terms: single words that never make a code on their own.
        cues: ``(category, direction, phrases)`` assertion cues.
        ignorable_words: words of a code title that a note need not repeat.
        irregular_forms: word -> the form the knowledge base uses (``fell`` -> ``fall``).
        source: the file read.
    """

    max_heading_words: int
    diagnostic_headings: Phrases
    plan_headings: Phrases
    not_final_headings: Phrases
    family_headings: Phrases
    comment_separators: tuple[str, ...]
    non_diagnostic_starts: Phrases
    generic_terms: frozenset[str]
    cues: tuple[tuple[str, str, Phrases], ...]
    ignorable_words: frozenset[str]
    irregular_forms: dict[str, str]
    implied_terms: dict[str, tuple[str, ...]] = field(default_factory=dict)
    default_qualifiers: tuple[str, ...] = ()
    source: str = ""


class _Headings(RuleModel):
    max_words: PositiveInt
    diagnostic: PhraseList
    with_plan: PhraseList
    not_final: PhraseList


class _Statements(RuleModel):
    comment_separators: Annotated[tuple[NonBlank, ...], Field(min_length=1)]
    non_diagnostic_starts: PhraseList
    generic_terms: PhraseList


class _Cue(RuleModel):
    category: Literal["negated", "uncertain", "hypothetical"]
    direction: Literal["forward", "backward"]
    phrases: PhraseList


class _Coverage(RuleModel):
    ignorable_words: PhraseList
    irregular_forms: dict[Phrase, Phrase]
    implied_terms: dict[str, PhraseList]
    default_qualifiers: PhraseList


class ReadingFile(RuleFile):
    """``encounter_reading.json`` (schema ``codesuggest.encounter-reading/1``)."""

    schema_id: Literal["codesuggest.encounter-reading/1"] = schema_field()
    headings: _Headings
    statements: _Statements
    assertion_cues: tuple[_Cue, ...]
    coverage: _Coverage


def packaged_section_rules() -> SectionRules:
    """The packaged section rules (``resources/section_rules.json``)."""
    return load_section_rules(*read_rule_text(SECTION_RULES_FILE))


def load_reading_rules(path: Path | None = None, sections: SectionRules | None = None) -> ReadingRules:
    """Load and check ``encounter_reading.json`` (or ``path``).

    The family-history headings are the section rules' (``family_history``): that file owns
    the headings.

    Args:
        path: another file to read instead of the packaged one.
        sections: the section rules of the model's pipeline (None: the packaged ones).

    Returns:
        The rules.

    Raises:
        RuleFileError: the file is invalid; the message names file, line and entry.
    """
    text, source = read_rule_text(READING_FILE, path)
    f = load_rules(ReadingFile, text, source)
    h, s, c = f.headings, f.statements, f.coverage
    return ReadingRules(
        max_heading_words=h.max_words,
        diagnostic_headings=Phrases(h.diagnostic),
        plan_headings=Phrases(h.with_plan),
        not_final_headings=Phrases(h.not_final),
        family_headings=Phrases((sections or packaged_section_rules()).literals("family_history")),
        comment_separators=s.comment_separators,
        non_diagnostic_starts=Phrases(s.non_diagnostic_starts),
        generic_terms=frozenset(s.generic_terms),
        cues=tuple((cue.category, cue.direction, Phrases(cue.phrases)) for cue in f.assertion_cues),
        ignorable_words=frozenset(c.ignorable_words),
        irregular_forms=dict(c.irregular_forms),
        implied_terms=dict(c.implied_terms),
        default_qualifiers=c.default_qualifiers,
        source=source,
    )


@dataclass(frozen=True, slots=True)
class Region:
    """The text under one heading.

    Attributes:
        heading: the heading as written (without the colon).
        kind: ``diagnostic``, ``assessment_plan``, ``family`` or ``other``.
        start: first character after the heading's colon.
        end: first character of the next heading (or the end of the note).
        order: position among the regions.
    """

    heading: str
    kind: str
    start: int
    end: int
    order: int


@dataclass(frozen=True, slots=True)
class Statement:
    """A clause of a final diagnostic statement.

    Attributes:
        start: first character.
        end: one past the last character.
        region: index of its region.
        item: index of its item (numbered line) in the note, for first-listed order.
        order: position among all statements.
    """

    start: int
    end: int
    region: int
    item: int
    order: int


@dataclass
class NoteView:
    """What :class:`NoteReader` found in one note.

    Attributes:
        text: the note.
        regions: the headed regions, in order.
        statements: final diagnostic statements (clauses), in order.
    """

    text: str
    regions: list[Region] = field(default_factory=list)
    statements: list[Statement] = field(default_factory=list)
    _starts: list[int] = field(default_factory=list)
    _region_starts: list[int] = field(default_factory=list)

    def statement_at(self, start: int, end: int) -> Statement | None:
        """The statement that contains ``[start, end)``, or None."""
        i = bisect_right(self._starts, start) - 1
        if i >= 0:
            st = self.statements[i]
            if st.start <= start and end <= st.end:
                return st
        return None

    def region_at(self, pos: int) -> Region | None:
        """The region that contains a character, or None (text before the first heading)."""
        i = bisect_right(self._region_starts, pos) - 1
        if i >= 0 and pos < self.regions[i].end:
            return self.regions[i]
        return None

    def clause_bounds(self, start: int, end: int) -> tuple[int, int]:
        """The clause around ``[start, end)``: bounded by ``; : .`` and line ends."""
        text = self.text
        lo = start
        while lo > 0:
            ch = text[lo - 1]
            if ch in ";:\n" or (ch in ".!?" and (lo >= len(text) or text[lo].isspace())):
                break
            lo -= 1
        match = _CLAUSE_BREAK.search(text, end)
        hi = match.start() if match else len(text)
        return lo, hi


class NoteReader:
    """Finds headings, regions and final diagnostic statements.

    Args:
        rules: the reading rules.
    """

    def __init__(self, rules: ReadingRules) -> None:
        self.rules = rules

    def read(self, text: str) -> NoteView:
        """Read one note.

        Args:
            text: the note.

        Returns:
            Its regions and statements.
        """
        view = NoteView(text)
        heads = []
        for match in _HEADING.finditer(text):
            name = match.group("name").strip()
            if 0 < len(name.split()) <= self.rules.max_heading_words:
                heads.append((match.start("name"), match.end(), name))
        for i, (_, body_start, name) in enumerate(heads):
            end = heads[i + 1][0] if i + 1 < len(heads) else len(text)
            view.regions.append(Region(name, self._kind(name), body_start, end, i))
        view._region_starts = [r.start for r in view.regions]
        item = 0
        for index, region in enumerate(view.regions):
            if region.kind not in ("diagnostic", "assessment_plan"):
                continue
            for line_start, line_end in _lines(text, region.start, region.end):
                item += 1
                for start, end in self._clauses(text, line_start, line_end, region.kind):
                    view.statements.append(Statement(start, end, index, item, len(view.statements)))
        view._starts = [s.start for s in view.statements]
        return view

    def _kind(self, heading: str) -> str:
        rules = self.rules
        if rules.family_headings.search(heading):
            return "family"
        if rules.diagnostic_headings.search(heading) and not rules.not_final_headings.search(heading):
            return "assessment_plan" if rules.plan_headings.search(heading) else "diagnostic"
        return "other"

    def _clauses(self, text: str, start: int, end: int, kind: str) -> list[tuple[int, int]]:
        """Diagnostic clauses of one line of a diagnostic region."""
        enum = ENUMERATOR.match(text, start, end)
        if enum:
            start = enum.end()
        sentences = []
        pos = start
        for match in _SENTENCE_END.finditer(text, start, end):
            sentences.append((pos, match.start()))
            pos = match.end()
        if pos < end and text[pos:end].strip():
            sentences.append((pos, end))
        if kind == "assessment_plan":
            sentences = sentences[:1]
        out = []
        for s_start, s_end in sentences:
            cut = s_end
            for sep in self.rules.comment_separators:
                at = text.find(sep, s_start, cut)
                if at >= 0:
                    cut = at
            if kind == "assessment_plan":
                colon = text.find(": ", s_start, cut)
                if colon >= 0:
                    cut = colon
            pos = s_start
            for part_end in [*(m.start() for m in re.finditer(";", text[s_start:cut])), cut - s_start]:
                c_start, c_end = _strip(text, pos, s_start + part_end)
                pos = s_start + part_end + 1
                if c_end <= c_start:
                    continue
                first = self.rules.non_diagnostic_starts.search(text, c_start, c_end)
                if first is not None and first.start() == c_start:
                    continue
                out.append((c_start, c_end))
        return out


def _lines(text: str, start: int, end: int) -> Iterable[tuple[int, int]]:
    pos = start
    while pos < end:
        nl = text.find("\n", pos, end)
        stop = end if nl < 0 else nl
        s, e = _strip(text, pos, stop)
        if e > s:
            yield s, e
        pos = stop + 1


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start] in " \t\"'\u201c\u201d,":
        start += 1
    while end > start and text[end - 1] in " \t.,\"'\u201c\u201d":
        end -= 1
    return start, end


# -- mentions --------------------------------------------------------------------------------------
class NoteTokens:
    """Token texts of a note and a running count of its content words (read once per note).

    Args:
        doc: the annotated note.
        key: the word normalizer's key function (None for stop words).
    """

    def __init__(self, doc: Doc, key: Any) -> None:
        self.texts = [t.text for t in doc]
        self._content = [0]
        for text in self.texts:
            content = text.isalnum() and key(text) is not None
            self._content.append(self._content[-1] + (1 if content else 0))

    def content(self, lo: int, hi: int) -> int:
        """Content words among tokens ``lo..hi`` inclusive."""
        return self._content[hi + 1] - self._content[lo]


@dataclass(slots=True)
class Mention:
    """A mention of ``doc.spans["cs_mentions"]`` with its ``._`` values read once.

    spaCy builds a new object for every ``span._`` access; the encounter rules read each value
    many times, so they work on these copies.
    """

    index: int
    start: int
    end: int
    start_char: int
    end_char: int
    text: str
    kind: str
    section: str | None
    laterality: str | None
    site: tuple[str, ...]
    views: int | None
    matches: tuple[Any, ...]
    candidates: tuple[Any, ...]
    flags: dict[str, bool]
    tokens: NoteTokens


def read_mentions(doc: Doc, key: Any) -> list[Mention]:
    """The note's mentions with their attributes (empty when the pipeline found none).

    Args:
        doc: the annotated note.
        key: the word normalizer's key function.

    Returns:
        One :class:`Mention` per span of ``doc.spans["cs_mentions"]``.
    """
    if MENTIONS not in doc.spans:
        return []
    tokens = NoteTokens(doc, key)
    out = []
    for i, span in enumerate(doc.spans[MENTIONS]):
        ext = span._
        flags = {ours: bool(getattr(ext, attr, False)) for attr, ours in CONTEXT_ATTRIBUTES.items()}
        out.append(
            Mention(
                i,
                span.start,
                span.end,
                span.start_char,
                span.end_char,
                span.text,
                str(ext.cs_kind or ""),
                ext.cs_section,
                ext.cs_laterality,
                tuple(ext.cs_site or ()),
                ext.cs_views,
                tuple(ext.cs_matches or ()),
                tuple(ext.cs_candidates or ()),
                flags,
                tokens,
            )
        )
    return out


# -- assertions -----------------------------------------------------------------------------------
class Assertions:
    """The assertions of the mentions of one note, as the encounter rules use them.

    Args:
        doc: the annotated note.
        view: the note's layout.
        rules: the reading rules (extra cues).
    """

    def __init__(self, doc: Doc, view: NoteView, rules: ReadingRules) -> None:
        self.doc = doc
        self.view = view
        self.rules = rules
        self._edges: dict[tuple[int, int], list[tuple[str, int, int]]] = {}
        graph = getattr(doc._, "context_graph", None) if doc.has_extension("context_graph") else None
        for target, modifier in getattr(graph, "edges", None) or ():
            ms, me = modifier.modifier_span
            self._edges.setdefault((target.start, target.end), []).append((modifier.category, ms, me))
        self._cache: dict[tuple[int, int], dict[str, bool]] = {}

    def of(self, span: Mention) -> dict[str, bool]:
        """The five assertion booleans of a mention (``negated``, ``uncertain``...).

        ConText's negation and uncertainty are kept unless every trigger behind them sits
        inside the mention after its first word ("cystitis without hematuria") or follows it
        past a comma ("cast applied, fingers free"); the reading rules' cues are added within
        the mention's clause.
        """
        key = (span.start, span.end)
        if key in self._cache:
            return self._cache[key]
        flags = dict(span.flags)
        edges = self._edges.get(key)
        if edges is not None:
            texts = span.tokens.texts
            kept = dict.fromkeys(ASSERTIONS, False)
            names = {
                "NEGATED_EXISTENCE": "negated",
                "POSSIBLE_EXISTENCE": "uncertain",
                "HYPOTHETICAL": "hypothetical",
                "HISTORICAL": "historical",
                "FAMILY": "family",
            }
            for category, ms, me in edges:
                name = names.get(category)
                if name is None:
                    continue
                if name in ("negated", "uncertain"):
                    if span.start < ms and me <= span.end:
                        continue  # the mention carries its own cue ("X without Y")
                    if ms >= span.end and any(t in ",;" for t in texts[span.end : ms]):
                        continue  # a backward cue of another clause
                    if me <= span.start and ";" in texts[me : span.start]:
                        continue  # a forward cue of the clause before
                kept[name] = True
            for name in ("negated", "uncertain", "hypothetical"):
                flags[name] = kept[name]
        lo, hi = self.view.clause_bounds(span.start_char, span.end_char)
        text = self.view.text
        for category, direction, phrases in self.rules.cues:
            if flags[category]:
                continue
            if direction == "forward":
                # Uncertainty reaches a condition named after its cue even inside a long mention
                # ("bleeding, likely from hemorrhoids"); negation inside a mention does not
                # ("cystitis without hematuria").
                stop = span.end_char if category == "uncertain" else span.start_char
                m = phrases.search(text, lo, stop)
                if m is not None and (m.start() <= span.start_char or m.end() < span.end_char):
                    flags[category] = True
            else:
                m = phrases.search(text, span.start_char + 1, hi)
                if m is not None and "," not in text[span.end_char : m.start()]:
                    flags[category] = True
        self._cache[key] = flags
        return flags


# -- term coverage --------------------------------------------------------------------------------
class Coverage:
    """Checks that a note states every word of a knowledge-base term (Guidelines I.A.9-I.A.12).

    A mention matches a term when the term's required words are in the sentence; some terms have
    more words than they require (an index line's parents, a title's qualifiers). The encounter
    rules code only terms the clause fully states: every word of a title or lexicon term, and at
    least one alternative of every level of an index path ("Sprain > ankle > talofibular
    ligament"); words such as "unspecified" or "initial encounter" (the defaults) need not be
    written. Fuzzy matches must also be fully stated, each word or a part of a note word.

    Args:
        normalizer: the word normalizer of the term table.
        rules: the reading rules (ignorable words, irregular word forms).
    """

    INDEX_SOURCES = frozenset({"index", "external", "neoplasm", "drug"})

    def __init__(self, normalizer: Normalizer, rules: ReadingRules) -> None:
        self.normalizer = normalizer
        self.rules = rules
        self._ignore = frozenset(k for w in rules.ignorable_words for k in normalizer.keys(w))
        self._generic = frozenset(k for w in rules.generic_terms for k in normalizer.keys(w))
        self._defaults = frozenset(k for w in rules.default_qualifiers for k in normalizer.keys(w))
        self._levels = lru_cache(maxsize=50_000)(self._term_levels)
        self.words = lru_cache(maxsize=50_000)(self._words)  # type: ignore[method-assign]
        self.raw_words = lru_cache(maxsize=50_000)(self._raw_words)  # type: ignore[method-assign]

    def words(self, text: str) -> frozenset[str]:
        """The match keys of a piece of note text (irregular forms mapped; cached)."""
        return self._words(text)

    def raw_words(self, text: str) -> tuple[str, ...]:
        """Lower-case words of a piece of note text (for partial-word checks; cached)."""
        return self._raw_words(text)

    def _words(self, text: str) -> frozenset[str]:
        forms = self.rules.irregular_forms
        out = set()
        for w in _WORD.findall(text):
            lower = w.lower()
            key = self.normalizer.key(forms.get(lower, lower))
            if key:
                out.add(key)
        return frozenset(out)

    def _raw_words(self, text: str) -> tuple[str, ...]:
        return tuple(w.lower() for w in _WORD.findall(text))

    def _term_levels(self, term: str, source: str) -> tuple[tuple[frozenset[str], ...], ...]:
        text = re.sub(r"\([^)]*\)|\[[^\]]*\]", " ", term)
        text = _ELSEWHERE.sub(" ", text)
        if source in self.INDEX_SOURCES:
            levels = []
            parts = text.split(" > ")
            implied = self.rules.implied_terms.get(parts[0].split(",")[0].strip().lower())
            if implied is not None:
                # A main term a note states in other words ("old stroke" for "Sequelae").
                levels.append(tuple(frozenset(self.words(w)) for w in implied))
                parts = parts[1:]
            for depth, level in enumerate(parts):
                pieces = [frozenset(k for k in self.words(alt) if k not in self._ignore) for alt in level.split(", ")]
                pieces = [p for p in pieces if p]
                if not pieces:
                    continue
                if depth == 0 and implied is None and len(pieces) > 1:
                    # A main term's comma parts are spellings ("Fall, falling", "Keloid, cheloid")
                    # or a qualifier that names another main term ("Fracture, pathological"),
                    # which the note must state unless it is the default ("Fracture, traumatic").
                    head = pieces[0]
                    variants = [p for p in pieces[1:] if _variant(p, head)]
                    levels.append((head, *variants))
                    levels.extend((p,) for p in pieces[1:] if p not in variants and not p <= self._defaults)
                    continue
                levels.append(tuple(pieces))
            return tuple(levels)
        text = text.replace(" > ", " ")
        levels = []
        # "adenomatous and serrated", "nausea or vomiting": either word states the pair.
        for m in _PAIR.finditer(text):
            pair = tuple(frozenset(k for k in self.words(w) if k not in self._ignore) for w in m.groups())
            pair = tuple(p for p in pair if p)
            if len(pair) == 2:
                levels.append(pair)
        rest = _PAIR.sub(" ", text)
        keys = frozenset(k for k in self.words(rest) if k not in self._ignore)
        if keys:
            levels.append((keys,))
        return tuple(levels)

    def covered(self, term: str, source: str, words: frozenset[str], raw: Iterable[str] = ()) -> bool:
        """True when the clause words state the whole term.

        Args:
            term: the term as matched (``TermMatch.text``).
            source: its source (index paths are read level by level).
            words: the clause's match keys (:meth:`words`).
            raw: the clause's lower-case words, for the partial-word check of fuzzy terms.

        Returns:
            Whether every level of the term is stated.
        """
        levels = self._levels(term, source)
        if not levels:
            return False
        if all(alt <= self._generic for level in levels for alt in level):
            return False  # a term made only of class words ("Old", "Rest") names nothing
        raw_words = tuple(raw)
        if source == "fuzzy":
            # Fuzzy aliases are checked word by word against the note's own words (a word may
            # be part of a note word: "colectomy" in "hemicolectomy").
            stop = self.normalizer.word_groups.stopwords | self.rules.ignorable_words
            alias = [w for w in self.raw_words(text_of(term)) if w not in stop]
            return bool(alias) and all(_soft(w, words, raw_words) for w in alias)
        if not all(any(alt <= words for alt in level) for level in levels):
            return False
        return self.numbers_stated(term, raw_words)

    def numbers_stated(self, term: str, raw: Iterable[str]) -> bool:
        """A number belongs to the word before it: "stage 2" is not "stage 3b ... type 2"."""
        raw_words = tuple(raw)
        for m in _NUMBERED.finditer(re.sub(r"\([^)]*\)", " ", term.lower())):
            if raw_words and m.group(1) in raw_words and not _contiguous(raw_words, (m.group(1), m.group(2))):
                return False
        return True


_ELSEWHERE = re.compile(r"\b(?:diseases? )?(?:specified|classified) elsewhere\b", re.IGNORECASE)
_PAIR = re.compile(r"\b([a-z]{4,}) (?:and|or) ([a-z]{4,})\b")
_NUMBERED = re.compile(r"\b(stage|type|grade|class|degree)\s+([0-9]+[a-z]?|i{1,3}v?|iv|v)\b")


def _variant(keys: frozenset[str], head: frozenset[str]) -> bool:
    """True when one-word parts of an index main term are spellings of one word."""
    if keys & head:
        return True
    if len(keys) != 1 or len(head) != 1:
        return False
    return SequenceMatcher(None, next(iter(keys)), next(iter(head))).ratio() >= 0.6


def text_of(term: str) -> str:
    """A term without its parenthesised parts and index separators."""
    return re.sub(r"\([^)]*\)|\[[^\]]*\]", " ", term).replace(" > ", " ")


def _contiguous(words: tuple[str, ...], pair: tuple[str, str]) -> bool:
    return any(words[i] == pair[0] and words[i + 1] == pair[1] for i in range(len(words) - 1))


def _soft(key: str, words: frozenset[str], raw: tuple[str, ...]) -> bool:
    if key in words or key in raw:
        return True
    if len(key) >= 4 and any(key in w for w in raw):
        return True
    return len(key) >= 5 and any(len(w) >= 5 and w[:5] == key[:5] for w in raw)
