"""What every diagnosis stage consults: the knowledge base (with the lookups the stages repeat,
remembered), the rules, and how a mention's clause states its codes.

(This is the stages' shared context object; the clinical ConText assertions are the pipeline's
``cs_context`` component.)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

from pipeline.encounter.diagnoses.rules import DiagnosisRules, Mapping
from pipeline.encounter.diagnoses.state import CodedMention, NoteState
from pipeline.encounter.reading import ENUMERATOR, Coverage, Mention, NoteTokens, ReadingRules
from pipeline.encounter.rule_data import CodeSet, LabeledPhrases, flat
from pipeline.kb.store import KnowledgeBase, NoteReference, parse_note_references

ICD_KINDS = frozenset({"diagnosis", "symptom", "finding", "external"})
INJURY = CodeSet.parse(["S00-T88"], "injury chapter")
EXTERNAL = CodeSet.parse(["V00-Y99"], "external cause chapter")
SYMPTOM = CodeSet.parse(["R00-R99"], "symptom chapter")
HISTORY = CodeSet.parse(["Z85-Z87", "Z80-Z84", "Z92"], "history codes")
FAMILY = CodeSet.parse(["Z80-Z84"], "family history codes")
AGE = re.compile(r"\b(\d{1,3})[- ](?:year|yr)s?[- ]old\b", re.IGNORECASE)
_WITH = re.compile(r"\b(with|without)\s+([a-z][a-z -]*?)(?=,|;|\)|\(|\band\b|\bor\b|$| >)", re.IGNORECASE)


class DxContext:
    """The knowledge base, the rules and the shared readings of one diagnosis coder.

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
        self._notes: dict[tuple[str, str], tuple[NoteReference, ...]] = {}
        self._titles: dict[str, str] = {}
        self._distinct: dict[tuple[str, str], frozenset[str]] = {}
        self._blocks: dict[str, str | None] = {}
        self.companion_phrases = LabeledPhrases((code, p.phrases) for code, p in rules.companions)
        self.companion_codes = tuple(code for code, _ in rules.companions) + tuple(b[2] for b in rules.bmi_bands)
        self._relevant: dict[tuple[str, bool, bool], bool] = {}
        # How many titles use each word (a rare word is a specific one), read once.
        self._title_counts: dict[str, int] = {}
        for rec in kb.iter_codes("ICD10CM"):
            for k in coverage.words(rec.title):
                self._title_counts[k] = self._title_counts.get(k, 0) + 1
        self._chains: dict[str, list[str]] = {}

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

    def rarity(self, words: frozenset[str]) -> float:
        """How specific the rarest of some words is: the inverse of how many ICD-10-CM titles use it."""
        if not words:
            return 0.0
        return max(1.0 / (1 + self._title_counts.get(w, 0)) for w in words)

    def block(self, code: str) -> str | None:
        if code not in self._blocks:
            rec = self.kb.get(code, "ICD10CM")
            self._blocks[code] = rec.block if rec is not None else None
        return self._blocks[code]

    def is_default(self, code: str) -> bool:
        title = self.title(code).lower()
        return any(w in title for w in self.rules.default_titles)

    def mention(self, s: NoteState, index: int, span: Mention, lo: int, hi: int) -> CodedMention | None:
        """A mention with the codes its clause fully states, best first; None when none is."""
        key = (index, lo, hi)
        if key not in s.mention_cache:
            s.mention_cache[key] = self._read_mention(s, index, span, lo, hi)
        return s.mention_cache[key]

    def _read_mention(self, s: NoteState, index: int, span: Mention, lo: int, hi: int) -> CodedMention | None:
        text = s.view.text
        enum = ENUMERATOR.match(text, lo, hi)
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
            and not polarity_conflict(m.text, clause)
            and (m.source == "fuzzy" or compact(span.tokens, m.tokens))
        ]
        if not covered_matches:
            return None
        cands = []
        side = side_of_clause(span, clause)
        stated = words | ({side} if side in ("right", "left", "bilateral") else set())
        for cand in span.candidates or ():
            if cand.system != "ICD10CM":
                continue
            support = [m for m in covered_matches if self.extends(m.code, cand.code, stated)]
            if not support:
                continue
            title = self.title(cand.code)
            if not title or polarity_conflict(title, clause) or not self.coverage.numbers_stated(title, raw):
                continue
            code_side = side_of_title(title)
            if side is not None and code_side is not None and code_side != side:
                continue
            # An index path that leads to the code states it (the index is the classification's
            # own way in, I.A.8); a title states only the words the clause repeats.
            indexed = any(m.source in Coverage.INDEX_SOURCES or m.source == "lexicon" for m in support)
            missing = (
                0
                if indexed or self.coverage.covered(title, "title", stated, raw)
                else len(self.title_keys(cand.code) - stated)
            )
            cands.append((cand, code_side, missing))
        if not cands:
            return None
        tokens = frozenset(t for m in covered_matches for t in m.tokens)
        return CodedMention(index, span, tokens, cands, side, covered_matches)

    def extends(self, base: str, code: str, words: frozenset[str] | set[str]) -> bool:
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
            if not self.distinguishing(parent, child) <= words:
                return False
        return True

    def distinguishing(self, parent: str, child: str) -> frozenset[str]:
        """Title words that set a child apart from its parent and its siblings."""
        key = (parent, child)
        found = self._distinct.get(key)
        if found is None:
            new = self.title_keys(child) - self.title_keys(parent)
            siblings = [c.code for c in self.kb.children(parent) if c.code != child]
            shared = frozenset.intersection(*(self.title_keys(c) for c in siblings)) if siblings else frozenset()
            found = self._distinct[key] = frozenset(new - shared)
        return found

    def explained(self, m: CodedMention, clause: str) -> tuple[frozenset[str], frozenset[str]]:
        """The clause words a mention's chosen code states: by its title and its matched words,
        and by its title alone."""
        words = self.coverage.words(clause)
        title = re.sub(r"\([^)]*\)|\[[^\]]*\]", " ", self.title(m.code))
        titled = self.coverage.words(title) & words
        texts = m.span.tokens.texts
        stated = words | {m.side or ""}
        matched: set[str] = set()
        for match in m.matches:
            if not self.extends(match.code, m.code, stated):
                continue
            own = self.coverage.words(match.text)
            for t in match.tokens:
                keys = self.coverage.words(texts[t])
                # A fuzzy match spans a whole chunk; only the words its alias shares count.
                if match.source != "fuzzy" or keys & own:
                    matched |= keys
        return frozenset((titled | matched) & words), frozenset(titled)

    def title_keys(self, code: str) -> frozenset[str]:
        title = re.sub(r"\([^)]*\)|\[[^\]]*\]", " ", self.title(code))
        ignore = self.coverage._ignore
        return frozenset(k for k in self.coverage.words(title) if k not in ignore)

    def choose(self, s: NoteState, m: CodedMention) -> str:
        """The code of a stated condition: fully stated first, then specific over default (I.A.9),
        the stated side (I.B.13), the ranker's score, the candidate order."""
        pool = [c for c in m.cands if c[2] == 0] or list(m.cands)
        cats_specified = {c[0].code[:3] for c in pool if not self.is_default(c[0].code)}
        pool = [c for c in pool if not (self.is_default(c[0].code) and c[0].code[:3] in cats_specified)]
        if m.side is not None and any(c[1] == m.side for c in pool):
            pool = [c for c in pool if c[1] == m.side]
        order = {id(c[0]): i for i, c in enumerate(m.cands)}
        best = min(pool, key=lambda c: (c[2], -s.probs.get(c[0].code, 0.0), order[id(c[0])]))
        return best[0].code

    def history_of(self, code: str) -> Mapping | None:
        for mapping in self.rules.personal_history:
            if code in mapping.conditions:
                return mapping
        return None

    def history_relevant(self, code: str, family: bool, historical: bool) -> bool:
        key = (code, family, historical)
        found = self._relevant.get(key)
        if found is None:
            if family:
                found = code in FAMILY or any(code in mp.conditions for mp in self.rules.family_history)
            else:
                found = (
                    code in HISTORY or code in self.rules.chronic or (historical and self.history_of(code) is not None)
                )
            self._relevant[key] = found
        return found

    def asks_for(self, parent: str, child: str) -> bool:
        f = flat(child)
        return any(r.covers(f) for r in self.notes(parent, "use_additional")) or any(
            r.covers(flat(parent)) for r in self.notes(child, "code_first")
        )

    def seventh_base(self, code: str) -> str | None:
        rec = self.kb.get(code, "ICD10CM")
        if rec is None or rec.seventh is None:
            return None
        f = flat(code)
        if len(f) == 7:
            base = f[:6].rstrip("X")
            return base[:3] + (f".{base[3:]}" if len(base) > 3 else "")
        return code


def polarity_conflict(term: str, clause: str) -> bool:
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


def compact(note: NoteTokens, tokens: Sequence[int]) -> bool:
    """A term's words lie close together: at least 40% of the content words between its first and
    last word are its own, and the stretch is at most three times as long as the term."""
    lo, hi = min(tokens), max(tokens)
    if hi - lo + 1 > 3 * len(tokens) + 3:
        return False
    return len(set(tokens)) >= 0.4 * note.content(lo, hi)


def side_of_title(title: str) -> str | None:
    """The side a code's title names: ``right``, ``left``, ``bilateral``, ``unspecified`` or None."""
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


def side_of_clause(span: Any, clause: str) -> str | None:
    """The side a mention's clause states (its laterality attribute, else the clause's words), or None."""
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


def stated_age(text: str) -> int | None:
    """The patient's age stated as "N-year-old" in a note, or None."""
    match = AGE.search(text)
    return int(match.group(1)) if match else None
