"""One code per condition, the most specific the note supports (I.A.9), and only billable codes
(I.A.6)."""

from __future__ import annotations

from pipeline.encounter.diagnoses.context import (
    INJURY,
    DxContext,
)
from pipeline.encounter.diagnoses.state import NoteState, Query, Rule


def apply_specificity(ctx: DxContext, s: NoteState) -> None:
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
                    and ctx.title(o.code).startswith("Unspecified injury")
                    and ctx.block(o.code) == ctx.block(c.code)
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
                rare_o = ctx.rarity(o.explained - c.explained)
                rare_c = ctx.rarity(c.explained - o.explained)
                if (o.detail[0], rare_o, o.detail[1], not ctx.is_default(o.code), s.probs.get(o.code, 0.0)) < (
                    c.detail[0],
                    rare_c,
                    c.detail[1],
                    not ctx.is_default(c.code),
                    s.probs.get(c.code, 0.0),
                ):
                    o.dropped = Rule(
                        "icd.specificity", f"one condition of the statement: {c.code} states it more fully (I.A.9)"
                    )
                continue
            o_default, c_default = ctx.is_default(o.code), ctx.is_default(c.code)
            if o_default and not c_default and o.support <= c.support + 1:
                o.dropped = Rule("icd.specificity", f"{c.code} states the condition more specifically (I.A.9)")
            elif o.support < c.support and o.origin == "chronic":
                o.dropped = Rule("icd.specificity", f"the diagnostic statement gives {c.code} for this condition")


def check_billable(ctx: DxContext, s: NoteState) -> None:
    """Only billable codes leave the engine (I.A.6); a header is specified from the note when one
    of its codes is stated there, else the provider is asked which one applies."""
    for c in s.active():
        rec = ctx.kb.get(c.code, "ICD10CM")
        if rec is None or rec.billable:
            continue
        kids = [k.code for k in ctx.kb.billable_descendants(c.code)]
        stated = [k for k in kids if any(o.code == k for o in s.codes if o is not c)]
        if stated:
            c.dropped = Rule("icd.billable", f"{c.code} is a header; the note states {stated[0]}")
            continue
        c.dropped = Rule(
            "icd.billable", f"{c.code} is not billable and the note does not say which of its codes applies: query"
        )
        shown = ", ".join(f"{k} {ctx.title(k)}" for k in kids[:6])
        s.queries.append(
            Query(
                c.code,
                f"{c.code} {ctx.title(c.code)} needs more detail to be billed. "
                f"Which applies: {shown}{' ...' if len(kids) > 6 else ''}?",
                list(c.spans),
                list(c.mentions),
                Rule("icd.billable", "only billable codes are reported (I.A.6)"),
            )
        )
