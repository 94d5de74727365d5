"""The note cut into pieces for display: each piece knows the codes whose evidence covers it.

Evidence spans of different codes may coincide or overlap; the note is cut at every span edge,
and each piece carries the codes (and excluded mentions) that cover it. The template wraps a
piece in one ``<mark data-testid="evidence" data-code="...">`` per code, nested, so that a span
of one code is exactly one element and selecting by ``data-code`` finds every span of a code.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Piece:
    """A stretch of the note.

    Attributes:
        text: the characters.
        start: offset of the first one.
        codes: codes whose evidence covers it, in the order of the code list.
        excluded: reasons of excluded mentions covering it (``negated``, ``family``...).
        span_ids: the evidence spans covering it (``"<start>-<end>"``), one per code.
    """

    text: str
    start: int
    codes: list[str] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    span_ids: dict[str, str] = field(default_factory=dict)


def pieces(text: str, evidence: dict[str, list[tuple[int, int]]], excluded: list[dict[str, Any]]) -> list[Piece]:
    """Cut a note at every evidence and exclusion edge.

    Args:
        text: the note.
        evidence: code -> its evidence spans ``(start, end)``, in the order codes are listed.
        excluded: excluded mentions (``start``, ``end``, ``reason``).

    Returns:
        Consecutive pieces that together are the whole note.
    """
    n = len(text)
    spans: list[tuple[int, int, str | None, str | None]] = []
    for code, ranges in evidence.items():
        for start, end in ranges:
            if 0 <= start < end <= n:
                spans.append((start, end, code, None))
    for x in excluded:
        start, end = int(x["start"]), int(x["end"])
        if 0 <= start < end <= n:
            spans.append((start, end, None, str(x.get("reason", "excluded"))))
    edges = sorted({0, n, *(s for s, _, _, _ in spans), *(e for _, e, _, _ in spans)})
    order = {code: i for i, code in enumerate(evidence)}
    out: list[Piece] = []
    for left, right in itertools.pairwise(edges):
        piece = Piece(text[left:right], left)
        for start, end, covering, reason in spans:
            if start <= left and right <= end:
                if covering is not None and covering not in piece.codes:
                    piece.codes.append(covering)
                    piece.span_ids[covering] = f"{start}-{end}"
                elif reason is not None and reason not in piece.excluded:
                    piece.excluded.append(reason)
        piece.codes.sort(key=lambda c: order[c])
        out.append(piece)
    return out


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
