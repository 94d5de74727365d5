"""Mentions outside the diagnostic statements: family history, personal history (I.C.21.c.4) and
chronic conditions on treatment documented in the history (IV.J)."""

from __future__ import annotations

from pipeline.encounter.diagnoses.context import (
    FAMILY,
    HISTORY,
    ICD_KINDS,
    DxContext,
)
from pipeline.encounter.diagnoses.state import DxCode, Left, NoteState, Rule


def code_history(ctx: DxContext, s: NoteState) -> None:
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
            if span.text.lower().strip() not in ctx.reading.generic_terms and (a["negated"] or a["hypothetical"]):
                lo, hi = s.view.clause_bounds(span.start_char, span.end_char)
                left = ctx.mention(s, i, span, lo, hi)
                if left is not None:
                    reason = "negated" if a["negated"] else "hypothetical"
                    s.left.append(Left(i, reason, [ctx.choose(s, left)]))
            continue
        lo, hi = s.view.clause_bounds(span.start_char, span.end_char)
        region = s.view.region_at(span.start_char)
        family = a["family"] or (region is not None and region.kind == "family")
        if span.text.lower().strip() in ctx.reading.generic_terms:
            continue
        if not any(ctx.history_relevant(c.code, family, a["historical"]) for c in span.candidates):
            continue  # nothing a family, personal history or chronic rule could code
        m = ctx.mention(s, i, span, lo, hi)
        if m is None:
            continue
        code = ctx.choose(s, m)
        if family:
            if code in FAMILY or any(code in mp.conditions for mp in ctx.rules.family_history):
                s.family_candidates.append((i, code, m))
            continue
        if code in HISTORY and code not in FAMILY:
            s.history_candidates.append((i, code, m))
            continue
        if a["historical"] and ctx.history_of(code) is not None and code not in ctx.rules.chronic:
            s.history_candidates.append((i, code, m))
            continue
        if code in ctx.rules.chronic:
            cue = ctx.rules.chronic_cues.search(text, span.end_char, hi)
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
                add_family_history(ctx, s, i, code, support=2)
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
                    add_personal_history(ctx, s, i, code, 2, (0, s.mentions[i].start_char))
            else:
                s.add(
                    DxCode(
                        code,
                        "chronic",
                        2,
                        (2_000, s.mentions[i].start_char),
                        [i],
                        rules=[Rule("icd.coexisting", ctx.rules.chronic_why)],
                    )
                )


def add_family_history(ctx: DxContext, s: NoteState, index: int, code: str, support: int) -> None:
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
    for mapping in ctx.rules.family_history:
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
                            f"{code} is documented in a family member, not the patient: {mapping.code} ({mapping.why})",
                        )
                    ],
                )
            )
            return
    s.left.append(Left(index, "family", [code]))


def add_personal_history(
    ctx: DxContext, s: NoteState, index: int, code: str, support: int, order: tuple[int, int]
) -> None:
    mapping = ctx.history_of(code)
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
