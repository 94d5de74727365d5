"""Claim order of the diagnoses: statement order, "code first" / "use additional code" (I.A.13),
the sequela's residual first (I.C.19.a), external causes last; the first code is first-listed
(IV.G) or principal (II)."""

from __future__ import annotations

from pipeline.encounter.diagnoses.context import (
    EXTERNAL,
    INJURY,
    DxContext,
)
from pipeline.encounter.diagnoses.state import DxCode, NoteState, Rule
from pipeline.encounter.rule_data import flat


def sequence(ctx: DxContext, s: NoteState) -> list[DxCode]:
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
                    Rule("icd.sequela", f"the residual condition is sequenced before the injury {c.code} (I.C.19.a)")
                )
    for _ in range(len(active)):
        moved = False
        for c in list(active):
            for ref in ctx.notes(c.code, "code_first"):
                first = next((o for o in active if o is not c and ref.covers(flat(o.code))), None)
                if first is not None and active.index(first) > active.index(c):
                    active.remove(first)
                    active.insert(active.index(c), first)
                    moved = True
            for ref in ctx.notes(c.code, "use_additional"):
                after = next((o for o in active if o is not c and ref.covers(flat(o.code))), None)
                if after is not None and active.index(after) < active.index(c) and after.origin != "statement":
                    active.remove(after)
                    active.insert(active.index(c) + 1, after)
                    moved = True
        if not moved:
            break
    for c in active:
        for ref in ctx.notes(c.code, "code_first"):
            first = next((o for o in active if o is not c and ref.covers(flat(o.code))), None)
            if first is not None and not any(r.id == "icd.code_first" for r in c.rules):
                c.rules.append(
                    Rule("icd.code_first", f"'code first' ({ref.note}): {first.code} is sequenced before it (I.A.13)")
                )
        for ref in ctx.notes(c.code, "use_additional"):
            for o in active:
                if o is not c and ref.covers(flat(o.code)) and not any(r.id == "icd.use_additional" for r in o.rules):
                    o.rules.append(
                        Rule(
                            "icd.use_additional",
                            f"{c.code} says 'use additional code' ({ref.note}): reported with it (I.A.13)",
                        )
                    )
                    o.companion_of = c.code
    return active
