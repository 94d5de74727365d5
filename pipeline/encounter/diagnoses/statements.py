"""Diagnoses from the provider's final diagnostic statements (IV.C, II, III), and what their
assertions decide: negated and hypothetical conditions are never coded, uncertain ones only at
inpatient discharge (IV.H, II.H), a family member's condition becomes a family history code and a
resolved one a personal history code (I.C.21.c.4)."""

from __future__ import annotations

from pipeline.encounter.diagnoses.context import (
    FAMILY,
    HISTORY,
    ICD_KINDS,
    DxContext,
    side_of_title,
)
from pipeline.encounter.diagnoses.history import add_family_history, add_personal_history
from pipeline.encounter.diagnoses.state import CodedMention, DxCode, Left, NoteState, Rule
from pipeline.encounter.reading import Statement


def code_statements(ctx: DxContext, s: NoteState) -> None:
    by_statement: dict[int, list[CodedMention]] = {}
    for i, span in enumerate(s.mentions):
        if span.kind not in ICD_KINDS or span.kind == "external":
            continue
        st = s.view.statement_at(span.start_char, span.end_char)
        if st is None:
            continue
        m = ctx.mention(s, i, span, st.start, st.end)
        if m is not None:
            by_statement.setdefault(st.order, []).append(m)
    for order, found in sorted(by_statement.items()):
        st = s.view.statements[order]
        for m in found:
            m.code = ctx.choose(s, m)
            m.explained, m.titled = ctx.explained(m, s.view.text[st.start : st.end])
        # The widest statement of a condition wins: a mention whose chosen code explains no
        # word of the clause that a kept one does not is part of the kept one (I.A.9).
        found.sort(key=lambda m: (-len(m.explained), -len(m.titled), -len(m.tokens), m.span.start))
        kept: list[CodedMention] = []
        said: set[str] = set()
        for m in found:
            if m.explained <= said:
                continue
            kept.append(m)
            said |= m.explained
        # A kept mention all of whose words the others state is part of them.
        for m in sorted(kept, key=lambda k: len(k.explained)):
            others = set().union(*(k.explained for k in kept if k is not m))
            if len(kept) > 1 and m.explained <= others:
                kept.remove(m)
        for m in kept:
            if m.span.text.lower().strip() in ctx.reading.generic_terms:
                continue
            _add_statement_mention(ctx, s, m, st)


def _add_statement_mention(ctx: DxContext, s: NoteState, m: CodedMention, st: Statement) -> None:
    a = s.asserts.of(m.span)
    code = m.code or ctx.choose(s, m)
    if a["negated"] or a["hypothetical"]:
        s.left.append(Left(m.index, "negated" if a["negated"] else "hypothetical", [code]))
        return
    if a["family"]:
        add_family_history(ctx, s, m.index, code, support=3)
        return
    if a["historical"]:
        if ctx.history_of(code) is not None:
            add_personal_history(ctx, s, m.index, code, support=3, order=(st.order, m.span.start_char))
            return
        title = ctx.title(code).lower()
        current = (
            code in HISTORY
            or code in ctx.rules.chronic
            or any(w in title for w in ("sequela", "following", "late effect", "history"))
        )
        if not current:
            # "History of X": no longer present, and no personal history code names it (III).
            s.left.append(Left(m.index, "historical", [code]))
            return
    rules: list[Rule] = []
    if a["uncertain"]:
        if s.setting == "outpatient":
            s.left.append(Left(m.index, "uncertain", [code]))
            s.uncertain_dropped = True
            s.add(
                DxCode(
                    code,
                    "statement",
                    3,
                    (st.order, m.span.start_char),
                    [m.index],
                    kind=str(m.span.kind),
                    statement=st,
                    uncertain=True,
                    dropped=Rule(
                        "icd.uncertain.outpatient",
                        "documented as uncertain ('probable', 'likely', 'rule out'...): "
                        "not coded in the outpatient setting; the signs and symptoms "
                        "are coded instead (IV.H)",
                    ),
                )
            )
            return
        rules.append(
            Rule(
                "icd.uncertain.inpatient",
                "documented as uncertain at discharge: coded as if established (II.H, III.C)",
            )
        )
    if code in FAMILY:
        rules.append(Rule("icd.family_history", "family history stated (I.C.21.c.4)"))
    elif code in HISTORY:
        rules.append(
            Rule("icd.personal_history", "personal history stated: the condition no longer exists (I.C.21.c.4)")
        )
    if m.side is not None and side_of_title(ctx.title(code)) == m.side:
        rules.append(Rule("icd.laterality", f"{m.side} side from the diagnostic statement (I.B.13)"))
    s.add(
        DxCode(
            code,
            "statement",
            3,
            (st.order, m.span.start_char),
            [m.index],
            rules=rules,
            uncertain=a["uncertain"],
            kind=str(m.span.kind),
            statement=st,
            detail=(len(m.explained), max((len(x.text.split(" > ")) for x in m.matches), default=0)),
            explained=m.explained,
        )
    )
