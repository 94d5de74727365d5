"""The note as a tree of highlighted spans: each evidence span of a code is one element.

Evidence spans of different codes often nest (the external cause "fall from a ladder" sentence
holds the injury "right ankle sprain", which holds "ankle"): a span inside another becomes its
child, so every span stays a single ``<mark data-testid="evidence" data-code="...">`` and
selecting by ``data-code`` finds exactly a code's spans. Spans that only partly overlap are rare;
the later one is cut at the edge of the earlier one. Excluded mentions (negated, family...) are
spans too, marked with their reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Span:
    """A highlighted stretch of the note.

    Attributes:
        start: offset of its first character.
        end: offset after its last character.
        code: the code it is evidence for, or None for an excluded mention.
        reason: for an excluded mention, why it was left out.
        children: what it contains, in order: plain text and nested spans.
    """

    start: int
    end: int
    code: str | None = None
    reason: str | None = None
    children: list[Span | str] = field(default_factory=list)

    @property
    def span_id(self) -> str:
        """``"<start>-<end>"``: the same for every code of one stretch."""
        return f"{self.start}-{self.end}"


def _nest(text: str, items: list[Span], lo: int, hi: int) -> list[Span | str]:
    out: list[Span | str] = []
    pos = lo
    items = sorted(items, key=lambda s: (s.start, -s.end))
    while items:
        first = items.pop(0)
        if first.start > pos:
            out.append(text[pos : first.start])
        inner: list[Span] = []
        rest: list[Span] = []
        for item in items:
            if item.end <= first.end:
                inner.append(item)
            elif item.start < first.end:  # a partial overlap: cut at the outer span's edge
                inner.append(Span(item.start, first.end, item.code, item.reason))
                rest.append(Span(first.end, item.end, item.code, item.reason))
            else:
                rest.append(item)
        first.children = _nest(text, inner, first.start, first.end)
        out.append(first)
        pos = first.end
        items = sorted(rest, key=lambda s: (s.start, -s.end))
    if pos < hi:
        out.append(text[pos:hi])
    return out


def spans_tree(
    text: str, evidence: dict[str, list[tuple[int, int]]], excluded: list[dict[str, Any]]
) -> list[Span | str]:
    """Build the tree of a note's highlighted spans.

    Args:
        text: the note.
        evidence: code -> its evidence spans ``(start, end)``, in the order codes are listed
            (an earlier code's span encloses a later code's identical span).
        excluded: excluded mentions (``start``, ``end``, ``reason``).

    Returns:
        The note's top level: plain text and spans, in order; joined, the texts are the note.
    """
    n = len(text)
    items: list[Span] = []
    for x in excluded:
        start, end = int(x["start"]), int(x["end"])
        if 0 <= start < end <= n:
            items.append(Span(start, end, reason=str(x.get("reason") or "excluded")))
    for code, ranges in evidence.items():
        for start, end in ranges:
            if 0 <= start < end <= n:
                items.append(Span(start, end, code=code))
    return _nest(text, items, 0, n)


def evidence_by_code(result: dict[str, Any], codes: list[str]) -> dict[str, list[tuple[int, int]]]:
    """The evidence spans of the listed codes, from a suggestion result.

    Args:
        result: the suggestion result body.
        codes: the codes to show, in order (the working set's, then the consider list's).

    Returns:
        code -> spans, in the order of ``codes``.
    """
    spans: dict[str, list[tuple[int, int]]] = {code: [] for code in codes}
    for suggestion in result.get("suggestions", []):
        code = suggestion.get("code")
        if code in spans:
            for ev in suggestion.get("evidence", []):
                span = (int(ev["start"]), int(ev["end"]))
                if span not in spans[code]:
                    spans[code].append(span)
    return {code: ranges for code, ranges in spans.items() if ranges}
