"""The external cause of an injury, once per note, from the External Cause Index (I.C.20)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from pipeline.encounter.diagnoses.context import (
    INJURY,
    DxContext,
)
from pipeline.encounter.diagnoses.rules import DiagnosisRules
from pipeline.encounter.diagnoses.state import DxCode, NoteState
from pipeline.encounter.reading import Coverage
from pipeline.encounter.rule_data import flat
from pipeline.kb.store import KnowledgeBase


def code_external_cause(ctx: DxContext, s: NoteState, external: ExternalCauseIndex) -> None:
    """The mechanism of the injury, once, from the External Cause Index (I.C.20)."""
    if not any(c.code in INJURY for c in s.active()):
        return
    best: tuple[int, int, str, int, int] | None = None  # (depth, keys, code, start, end)
    text = s.view.text
    for start, end in sentences(text):
        hit = external.find(text[start:end])
        if hit is None:
            continue
        depth, nkeys, code = hit
        if _negated_region(ctx, s, start, end, code):
            continue
        if best is None or (depth, nkeys) > (best[0], best[1]):
            best = (depth, nkeys, code, start, end)
    if best is None:
        return
    _, _, base, start, end = best
    s.add(DxCode(base, "external", 2, (90_000, start), spans=[(start, end)], kind="external"))


def _negated_region(ctx: DxContext, s: NoteState, start: int, end: int, code: str) -> bool:
    """True when every external-cause mention of the sentence is negated or hypothetical."""
    spans = [m for m in s.mentions if m.kind == "external" and start <= m.start_char < end]
    if not spans:
        return False
    return all(s.asserts.of(m)["negated"] or s.asserts.of(m)["hypothetical"] for m in spans)


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
                    src = self.kb.excludes1_source(code, other)
                    if src is not None and flat(code).startswith(flat(src[0])) and len(top) > 1:
                        top.remove(code)
                        break
        specified = [c for c in top if "unspecified" not in self._title(c).lower()]
        code = (specified or top)[0]
        nkeys = max(f[1] for f in found if f[0] == depth and f[2] == code)
        return depth, nkeys, code


def sentences(text: str) -> Iterable[tuple[int, int]]:
    start = 0
    for match in re.finditer(r"[.!?](?=\s)|\n", text):
        if match.start() > start:
            yield start, match.start()
        start = match.end()
    if start < len(text):
        yield start, len(text)
