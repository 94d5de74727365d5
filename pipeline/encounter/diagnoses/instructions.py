"""Classification instructions of the tabular list and the guidelines: redirects, "use additional
code" companions (I.A.13), combination codes (I.C.9.a), signs and symptoms integral to a diagnosis
(I.B.5), and codes that are not reported."""

from __future__ import annotations

from pipeline.encounter.diagnoses.context import (
    ICD_KINDS,
    DxContext,
)
from pipeline.encounter.diagnoses.state import DxCode, NoteState, Rule
from pipeline.encounter.rule_data import flat


def apply_redirects(ctx: DxContext, s: NoteState) -> None:
    for c in list(s.active()):
        for rule in ctx.rules.redirects:
            if c.code not in rule.code or c.statement is None:
                continue
            partners = [o for o in s.active() if o is not c and o.statement is c.statement and o.code in rule.with_]
            if not partners:
                continue
            c.dropped = Rule("icd.redirect", f"with {partners[0].code} in the same statement: {rule.to} ({rule.why})")
            s.add(
                DxCode(
                    rule.to,
                    "redirect",
                    3,
                    c.order,
                    list(c.mentions),
                    kind=c.kind,
                    statement=c.statement,
                    rules=[Rule("icd.redirect", rule.why)],
                )
            )
            if rule.history:
                for o in partners:
                    mapping = ctx.history_of(o.code)
                    o.dropped = Rule(
                        "icd.personal_history", f"treatment completed: {mapping.code if mapping else 'history'}"
                    )
                    if mapping is not None:
                        s.add(
                            DxCode(
                                mapping.code,
                                "history",
                                2,
                                (o.order[0], o.order[1] + 1),
                                list(o.mentions),
                                rules=[
                                    Rule(
                                        "icd.personal_history",
                                        f"{o.code} treated and no longer present: {mapping.code} ({mapping.why})",
                                    )
                                ],
                            )
                        )


def add_companions(ctx: DxContext, s: NoteState, age: int | None) -> None:
    """'Use additional code' companions found in the note (I.A.13)."""
    text = s.view.text
    evidence: dict[str, tuple[list[int], list[tuple[int, int]]]] = {}
    wanted = {
        code
        for parent in s.active()
        for ref in ctx.notes(parent.code, "use_additional")
        for code in ctx.companion_codes
        if ref.covers(flat(code))
    }
    if not wanted:
        return
    for match in ctx.companion_phrases.finditer(text):
        code = ctx.companion_phrases.label(match)
        if code not in wanted or _companion_negated(ctx, s, match.start()):
            continue
        evidence.setdefault(code, ([], []))[1].append((match.start(), match.end()))
    for i, span in enumerate(s.mentions):
        if span.kind not in ICD_KINDS:
            continue
        a = s.asserts.of(span)
        if a["negated"] or a["hypothetical"] or a["family"] or a["uncertain"]:
            continue
        if not any(c.code in ctx.rules.companion_only for c in span.candidates):
            continue
        for cand in span.candidates or ():
            if cand.code in ctx.rules.companion_only and cand.system == "ICD10CM":
                lo, hi = s.view.clause_bounds(span.start_char, span.end_char)
                m = ctx.mention(s, i, span, lo, hi)
                if m is not None and any(c[0].code == cand.code for c in m.cands):
                    evidence.setdefault(cand.code, ([], []))[0].append(i)
    bmi = _bmi(ctx, text, age)
    if bmi is not None:
        evidence.setdefault(bmi[0], ([], []))[1].append((bmi[1], bmi[2]))
    added: set[str] = set()
    for c in s.active():
        if c.code in ctx.rules.companion_only and c.origin != "companion":
            evidence.setdefault(c.code, ([], []))[0].extend(c.mentions)
            c.dropped = Rule(
                "icd.use_additional",
                "reported only with a condition whose 'use additional code' note asks for it (I.A.13)",
            )
    changed = True
    while changed:
        changed = False
        for parent in list(s.active()):
            refs = ctx.notes(parent.code, "use_additional")
            for code, (mention_ids, spans) in evidence.items():
                if code in added or s.has(code):
                    continue
                f = flat(code)
                ref = next((r for r in refs if r.covers(f)), None)
                if ref is None:
                    continue
                added.add(code)
                changed = True
                s.add(
                    DxCode(
                        code,
                        "companion",
                        1,
                        (parent.order[0], parent.order[1] + 1),
                        list(mention_ids),
                        list(spans),
                        kind="finding",
                        rules=[
                            Rule(
                                "icd.use_additional",
                                f"{parent.code} says 'use additional code' ({ref.note}); "
                                f"the note documents it (I.A.13)",
                            )
                        ],
                    )
                )


def _companion_negated(ctx: DxContext, s: NoteState, pos: int) -> bool:
    lo, _ = s.view.clause_bounds(pos, pos)
    window = s.view.text[max(lo, pos - 40) : pos]
    return ctx.rules.companion_negation.search(window) is not None


def _bmi(ctx: DxContext, text: str, age: int | None) -> tuple[str, int, int] | None:
    if age is not None and age < ctx.rules.bmi_adult_age:
        return None
    for pattern in ctx.rules.bmi_patterns:
        match = pattern.search(text)
        if match is None:
            continue
        value = float(match.group(1))
        for lo, hi, code in ctx.rules.bmi_bands:
            if lo <= value <= hi:
                return code, match.start(), match.end()
    return None


def apply_combinations(ctx: DxContext, s: NoteState) -> None:
    """Hypertension combinations and the like (I.C.9.a), applied until nothing changes."""
    for _ in range(4):
        changed = False
        for rule in ctx.rules.combinations:
            active = s.active()
            codes = [c.code for c in active]
            if not all(any(code in group for code in codes) for group in rule.all_of):
                continue
            if any(any(code in group for code in codes) for group in rule.none_of):
                continue
            members = [c for c in active if any(c.code in g for g in rule.all_of)]
            target = None
            if rule.code is not None:
                target = next((c for c in active if c.code == rule.code), None)
                if target is None:
                    first = min(members, key=lambda c: c.order)
                    target = DxCode(
                        rule.code,
                        "combination",
                        max(m.support for m in members),
                        first.order,
                        [i for m in members for i in m.mentions],
                        kind="diagnosis",
                        statement=first.statement,
                    )
                    s.add(target)
                    changed = True
                target.rules.append(Rule("icd.combination", rule.why))
            for c in active:
                if c is not target and c.code in rule.remove and c.dropped is None:
                    c.dropped = Rule(
                        "icd.combination", f"included in {rule.code or 'the combination code'} ({rule.why})"
                    )
                    if target is not None and c.order < target.order:
                        target.order = c.order
                    changed = True
        if not changed:
            return


def drop_integral_symptoms(ctx: DxContext, s: NoteState) -> None:
    """Signs and symptoms routine to a coded diagnosis are not coded (I.B.5)."""
    active = s.active()
    for c in active:
        if c.dropped is not None or c.origin == "companion":
            continue
        for rel in ctx.rules.integral:
            if c.code not in rel.symptoms:
                continue
            owner = next(
                (
                    o
                    for o in active
                    if o is not c and o.dropped is None and o.code in rel.diagnoses and not ctx.asks_for(o.code, c.code)
                ),
                None,
            )
            if owner is not None:
                c.dropped = Rule(
                    "icd.integral_symptom",
                    f"routinely part of {owner.code} {ctx.title(owner.code)}: not coded separately ({rel.why})",
                )
                owner.rules.append(Rule("icd.integral_symptom", f"{c.code} is part of this diagnosis"))
                break


def drop_not_reported(ctx: DxContext, s: NoteState) -> None:
    for c in s.active():
        if c.code in ctx.rules.not_reported:
            c.dropped = Rule("icd.not_reported", ctx.rules.not_reported_why)
