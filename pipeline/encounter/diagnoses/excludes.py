"""Excludes1 pairs (I.A.12.a): one code kept and why; Excludes2 pairs reported together (I.A.12.b);
two documented forms of one condition that Excludes1 separates are a physician query (I.B.14).

The knowledge base answers every pair: the codes here come from it or from rule files checked
against it when the coder is built (:class:`~pipeline.encounter.diagnoses.coder.DiagnosisCoder`),
so an error from it is a bug and is not caught.
"""

from __future__ import annotations

from pipeline.encounter.diagnoses.context import (
    EXTERNAL,
    SYMPTOM,
    DxContext,
)
from pipeline.encounter.diagnoses.state import DxCode, NoteState, Query, Rule
from pipeline.encounter.rule_data import flat


def apply_excludes(ctx: DxContext, s: NoteState) -> None:
    """Excludes1 pairs (I.A.12.a): keep the better-supported code and say why; Excludes2 pairs are
    both reported (I.A.12.b)."""
    active = [c for c in s.active() if c.code not in EXTERNAL]
    for i, a in enumerate(active):
        for b in active[i + 1 :]:
            if a.dropped is not None or b.dropped is not None:
                continue
            source = ctx.kb.excludes1_source(a.code, b.code)
            if source is None:
                continue
            owner, note = source
            keep, lose = _better(ctx, a, b, owner)
            lose.dropped = Rule("icd.excludes1", f"Excludes1 with {keep.code} ({note}): {keep.code} kept")
            keep.rules.append(
                Rule("icd.excludes1", f"kept over {lose.code}: Excludes1 ({note}); " + _why_better(keep, lose))
            )
    for i, a in enumerate(s.active()):
        for b in s.active()[i + 1 :]:
            note2 = ctx.kb.excludes2_notes(a.code, b.code)
            if note2 and not (a.code in SYMPTOM or b.code in SYMPTOM):
                a.rules.append(Rule("icd.excludes2", f"Excludes2 with {b.code} ({note2}): both reported"))


def _better(ctx: DxContext, a: DxCode, b: DxCode, owner: str) -> tuple[DxCode, DxCode]:
    if a.support != b.support:
        return (a, b) if a.support > b.support else (b, a)
    a_sym, b_sym = a.code in SYMPTOM, b.code in SYMPTOM
    if a_sym != b_sym:
        return (b, a) if a_sym else (a, b)
    a_def, b_def = ctx.is_default(a.code), ctx.is_default(b.code)
    if a_def != b_def:
        return (b, a) if a_def else (a, b)
    # The note points at the code that classifies the condition: keep that one.
    owner_flat = flat(owner)
    if flat(a.code).startswith(owner_flat):
        return b, a
    if flat(b.code).startswith(owner_flat):
        return a, b
    return (a, b) if a.order <= b.order else (b, a)


def _why_better(keep: DxCode, lose: DxCode) -> str:
    if keep.support != lose.support:
        return "it is documented as a final diagnosis"
    if lose.code in SYMPTOM:
        return "a definitive diagnosis is preferred to a symptom"
    return "the note documents it more specifically"


def query_conflicts(ctx: DxContext, s: NoteState) -> None:
    """Conflicting documentation: the record states two mutually exclusive forms of one
    condition (Excludes1 partners of one block, both specific): query the attending (I.B.14)."""
    stated: dict[str, list[int]] = {}
    mine = [c for c in s.active() if c.origin == "statement" and c.code not in SYMPTOM]
    refs = [r for c in mine for r in ctx.notes(c.code, "excludes1")]
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
        m = ctx.mention(s, i, span, lo, hi)
        if m is None:
            continue
        text = s.view.text[lo:hi]
        words = ctx.coverage.words(text)
        raw = ctx.coverage.raw_words(text)
        for cand, _, _ in m.cands:
            cat = cand.code[:3]
            title = ctx.title(cat)
            # The category itself is stated ("type 1 diabetes"), not only a default child.
            if title and ctx.title_keys(cat) <= words and ctx.coverage.numbers_stated(title, raw):
                stated.setdefault(cat, []).append(i)
    for c in list(s.active()):
        if c.origin != "statement" or c.code in SYMPTOM:
            continue
        own = stated.get(c.code[:3])
        if not own:
            continue
        for other, where in stated.items():
            if other == c.code[:3] or ctx.block(other) != ctx.block(c.code):
                continue
            source = ctx.kb.excludes1_source(c.code, other)
            if source is None:
                continue
            rec = ctx.kb.get(other, "ICD10CM")
            question = ctx.rules.conflict_question.format(
                first=ctx.title(c.code),
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
