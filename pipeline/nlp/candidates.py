"""Candidate codes: from a matched term to billable codes.

:class:`CodeTree` takes a term's code, which may be a category ("S93.4") or an index code
  still incomplete ("S93.40-"), down to billable codes, choosing each level's child by the words
  and attributes around the mention (laterality, the other words of the sentence), and adds the
  7th character from the episode of care with the ``X`` placeholder where needed
  (ICD-10-CM Official Guidelines I.A.5 and I.C.19.a). Phrases no term matches are found by
  :class:`~pipeline.nlp.fuzzy.FuzzyIndex`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from pipeline.kb.store import KnowledgeBase
from pipeline.nlp.textnorm import Normalizer

logger = logging.getLogger(__name__)

SIDES = ("right", "left", "bilateral")


@dataclass(slots=True)
class Candidate:
    """One candidate code for one mention.

    Attributes:
        code: billable canonical code.
        system: its system.
        source: how it was found: index, title, inclusion, lexicon, neoplasm, drug, external,
            cpt, hcpcs or fuzzy.
        term: the knowledge-base phrase that matched.
        similarity: 1.0 for a term match; the cosine for a fuzzy match.
        completion: penalty of the choices made to reach a billable code (0 when the term named
            a billable code or every choice was supported by the note).
        n_keys: words the term required.
        compactness: matched words over span width.
        subsumed: a longer term covers the same words.
        defaulted: the choice fell back to an "unspecified" child or a default 7th character.
    """

    code: str
    system: str
    source: str
    term: str
    similarity: float = 1.0
    completion: float = 0.0
    n_keys: int = 1
    compactness: float = 1.0
    subsumed: bool = False
    defaulted: bool = False


@dataclass(slots=True)
class CodeCandidate:
    """A code proposed for a note, aggregated over its mentions.

    Attributes:
        code: billable canonical code.
        system: its system.
        mentions: indices into ``doc.spans["cs_mentions"]`` of the mentions that propose it.
        candidates: the per-mention candidates, in mention order.
    """

    code: str
    system: str
    mentions: list[int] = field(default_factory=list)
    candidates: list[Candidate] = field(default_factory=list)


@dataclass(slots=True)
class CodeNode:
    """One ICD-10-CM code of the :class:`CodeTree`: its children and the facts completion weighs."""

    children: tuple[str, ...]
    keys: frozenset[str]
    side: str | None
    unspecified: bool
    other: bool
    without: bool
    billable: bool
    seventh: int | None  # index into CodeTree.sevenths


class CodeTree:
    """The ICD-10-CM hierarchy reduced to what completion needs.

    Args:
        nodes: code -> node (7th-character expansions are not stored: they are derived).
        sevenths: distinct 7th-character tables (character -> meaning).
        billable_other: billable codes of other systems (CPT, HCPCS), kept as a set.
    """

    def __init__(self, nodes: dict[str, CodeNode], sevenths: list[dict[str, str]], billable_other: set[str]) -> None:
        self.nodes = nodes
        self.sevenths = sevenths
        self.billable_other = billable_other

    @classmethod
    def build(cls, kb: KnowledgeBase, normalizer: Normalizer) -> CodeTree:
        """Derive the tree from the knowledge base."""
        sevenths: list[dict[str, str]] = []
        seventh_ids: dict[str, int] = {}
        nodes: dict[str, CodeNode] = {}
        for rec in kb.iter_codes("ICD10CM"):
            if is_seventh_expansion(rec.code, rec.seventh):
                continue
            seventh_id = None
            if rec.seventh:
                ident = json.dumps(rec.seventh, sort_keys=True)
                if ident not in seventh_ids:
                    seventh_ids[ident] = len(sevenths)
                    sevenths.append(dict(rec.seventh))
                seventh_id = seventh_ids[ident]
            words = set(normalizer.keys(rec.title))
            title_lower = rec.title.lower()
            children = tuple(c.code for c in kb.children(rec.code) if not is_seventh_expansion(c.code, c.seventh))
            nodes[rec.code] = CodeNode(
                children=children,
                keys=frozenset(normalizer.required_keys(rec.title)),
                side=_side_of(words),
                unspecified="unspecified" in title_lower,
                other=title_lower.startswith("other") or " other " in title_lower,
                without=" without " in f" {title_lower} ",
                billable=rec.billable,
                seventh=seventh_id,
            )
        billable_other = {r.code for s in ("CPT", "HCPCS") for r in kb.iter_codes(s) if r.billable}  # type: ignore[arg-type]
        return cls(nodes, sevenths, billable_other)

    # -- persistence ---------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """Serialisable form."""
        return {
            "schema": "codesuggest.code-tree/2",
            "sevenths": self.sevenths,
            "billable_other": sorted(self.billable_other),
            "nodes": {
                code: [
                    list(n.children),
                    sorted(n.keys),
                    n.side,
                    n.unspecified,
                    n.other,
                    n.without,
                    n.billable,
                    n.seventh,
                ]
                for code, n in self.nodes.items()
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CodeTree:
        """Inverse of :meth:`to_json`."""
        if data.get("schema") != "codesuggest.code-tree/2":
            raise ValueError(f"unexpected code tree schema {data.get('schema')!r}")
        nodes = {
            code: CodeNode(tuple(ch), frozenset(keys), side, bool(unsp), bool(other), bool(wo), bool(bill), sev)
            for code, (ch, keys, side, unsp, other, wo, bill, sev) in data["nodes"].items()
        }
        return cls(nodes, data["sevenths"], set(data["billable_other"]))

    # -- completion ----------------------------------------------------------------------------
    def is_billable(self, code: str) -> bool:
        """True for a billable code of any system (7th-character expansions included)."""
        node = self.nodes.get(code)
        if node is not None:
            return node.billable
        if code in self.billable_other:
            return True
        base = _strip_seventh(code)
        if base is None:
            return False
        parent, char = base
        parent_node = self.nodes.get(parent)
        return (
            parent_node is not None
            and parent_node.seventh is not None
            and not parent_node.children
            and char in self.sevenths[parent_node.seventh]
        )

    def seventh_table(self, code: str) -> dict[str, str] | None:
        """The 7th characters that apply to a code (None when it takes none)."""
        node = self.nodes.get(code)
        if node is None or node.seventh is None:
            return None
        return self.sevenths[node.seventh]

    def complete(
        self,
        code: str,
        context: frozenset[str] | set[str],
        *,
        laterality: str | None = None,
        episode: str | None = None,
        attributes: dict[str, Any] | None = None,
        alternatives: int = 2,
        max_results: int = 4,
    ) -> list[tuple[str, float, bool]]:
        """Take a code down to billable codes supported by the context.

        Args:
            code: the term's code (billable or not).
            context: match keys of the sentence around the mention.
            laterality: right, left, bilateral or None.
            episode: initial, subsequent, sequela or None.
            attributes: further mention attributes (``open``, ``healing``...).
            alternatives: children kept at each level besides the best one, when close.
            max_results: cap on returned codes.

        Returns:
            ``(billable code, penalty, defaulted)`` tuples, best first; empty when the code is
            unknown.
        """
        if code in self.billable_other:
            return [(code, 0.0, False)]
        if code not in self.nodes:
            # A term may name a full 7th-character code ("fell" -> W19.XXXA): its 7th character
            # is chosen again from the note's episode of care.
            stripped = _strip_seventh(code)
            if stripped is None or not self.is_billable(code):
                return []
            code = stripped[0]
            if code not in self.nodes:
                return []
        results: list[tuple[str, float, bool]] = []
        self._walk(code, context, laterality, episode, attributes or {}, alternatives, 0.0, False, results)
        results.sort(key=lambda r: r[1])
        seen: set[str] = set()
        unique = []
        for r in results:
            if r[0] not in seen:
                seen.add(r[0])
                unique.append(r)
        return unique[:max_results]

    def _walk(
        self,
        code: str,
        ctx: frozenset[str] | set[str],
        side: str | None,
        episode: str | None,
        attrs: dict[str, Any],
        alternatives: int,
        penalty: float,
        defaulted: bool,
        out: list[tuple[str, float, bool]],
    ) -> None:
        node = self.nodes[code]
        if node.billable:
            out.append((code, penalty, defaulted))
            return
        if not node.children:
            if node.seventh is not None:
                char, by_default = choose_seventh(self.sevenths[node.seventh], episode, attrs)
                out.append((add_seventh(code, char), penalty, defaulted or by_default))
            return
        scored = sorted(
            ((self._score_child(node, self.nodes[c], ctx, side), c) for c in node.children if c in self.nodes),
            key=lambda sc: (-sc[0][0], sc[1]),
        )
        if not scored:
            return
        best = scored[0][0][0]
        for (score, by_default), child in scored[: 1 + alternatives]:
            if best - score > 1.5:
                break
            self._walk(
                child,
                ctx,
                side,
                episode,
                attrs,
                max(alternatives - 1, 0),
                penalty + (best - score),
                defaulted or by_default,
                out,
            )

    @staticmethod
    def _score_child(
        parent: CodeNode, child: CodeNode, ctx: frozenset[str] | set[str], side: str | None
    ) -> tuple[float, bool]:
        new = child.keys - parent.keys - set(SIDES)
        hits = len(new & ctx)
        # "without complications" is what a note that names no complication means (the index
        # sends "Diabetes, type 2" to E11.9): its words need not be written.
        misses = 0 if child.without and hits == 0 else len(new - ctx)
        score = 2.0 * hits - 0.6 * misses
        by_default = hits == 0
        if child.side is not None:
            if side is None:
                score -= 1.0
            elif child.side == side:
                score += 2.5
                by_default = False
            else:
                score -= 3.0
        elif side is None and child.unspecified:
            score += 0.2
        if hits == 0 and child.without:
            score += 0.7
        elif hits == 0 and child.unspecified:
            score += 0.5  # I.A.9 / "unspecified" when the note says nothing more
            if side is not None and any(s in child.keys for s in SIDES):
                score -= 1.0
        elif hits == 0 and child.other:
            score -= 0.2
        return score, by_default


def choose_seventh(table: dict[str, str], episode: str | None, attrs: dict[str, Any]) -> tuple[str, bool]:
    """Pick the 7th character from the episode of care (Guidelines I.C.19.a, I.C.19.c.1).

    Args:
        table: allowed characters and their meanings.
        episode: initial, subsequent, sequela or None (treated as initial, flagged as default).
        attrs: ``open`` (bool) and ``healing`` (routine, delayed, nonunion, malunion) for fractures.

    Returns:
        The character and whether it was a default rather than read from the note.
    """
    fracture = "G" in table and "K" in table  # fracture tables carry healing characters
    is_open = bool(attrs.get("open"))
    healing = attrs.get("healing")
    if episode == "sequela" and "S" in table:
        return "S", False
    if episode == "subsequent":
        if fracture:
            letters = {"delayed": ("G", "H"), "nonunion": ("K", "M"), "malunion": ("P", "Q")}
            closed, opened = letters.get(healing or "", ("D", "E"))
            char = opened if is_open and opened in table else closed
            return (char, False) if char in table else ("D", True)
        if "D" in table:
            return "D", False
    if fracture and is_open and "B" in table:
        return "B", False
    if "A" in table:
        return "A", episode is None
    return sorted(table)[0], True


def add_seventh(code: str, char: str) -> str:
    """Append a 7th character, padding with the ``X`` placeholder (Guidelines I.A.5)."""
    flat = code.replace(".", "")
    flat = flat.ljust(6, "X") + char
    return f"{flat[:3]}.{flat[3:]}"


def is_seventh_expansion(code: str, seventh: dict[str, str] | None) -> bool:
    """True for a code formed by adding a 7th character to a shorter code."""
    return seventh is not None and len(code.replace(".", "")) == 7


def _strip_seventh(code: str) -> tuple[str, str] | None:
    flat = code.replace(".", "")
    if len(flat) != 7:
        return None
    base = flat[:6].rstrip("X")
    parent = base[:3] + (f".{base[3:]}" if len(base) > 3 else "")
    return parent, flat[6]


def _side_of(words: set[str]) -> str | None:
    for side in ("bilateral", "right", "left"):
        if side in words:
            return side
    return None
