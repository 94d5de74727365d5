"""Physician queries asked for by a diagnostic statement's words or lab values (I.B.14, III.B,
I.C.1.d.1.a.ii)."""

from __future__ import annotations

import re

from pipeline.encounter.diagnoses.context import (
    DxContext,
)
from pipeline.encounter.diagnoses.state import NoteState, Query, Rule

_NUMBER = re.compile(r"\b\d+(?:\.\d+)?\b")


def add_queries(ctx: DxContext, s: NoteState) -> None:
    text = s.view.text
    for rule in ctx.rules.queries:
        for st in s.view.statements:
            match = rule.phrases.search(text, st.start, st.end)
            if match is None:
                continue
            if rule.kind == "term":
                s.queries.append(
                    Query(
                        rule.code_prefix,
                        rule.question.format(term=match.group(0)),
                        [(match.start(), match.end())],
                        [],
                        Rule("icd.query", rule.why),
                    )
                )
                for c in s.active():
                    if c.statement is st:
                        c.dropped = Rule("icd.query", f"'{match.group(0)}' needs a physician query first")
                continue
            if match.start() != st.start:
                continue  # a lab value that is the subject of the statement
            if any(c.statement is st for c in s.codes if c.dropped is None):
                continue
            value = _NUMBER.search(text, match.end(), st.end)
            if value is None:
                continue
            line_end = text.find("\n", st.end)
            line_end = len(text) if line_end < 0 else line_end
            treated = rule.treatment.search(text, st.end, line_end)
            if treated is None:
                continue
            s.queries.append(
                Query(
                    rule.code_prefix,
                    rule.question.format(
                        term=match.group(0).capitalize(),
                        value=value.group(0),
                        treatment=f" with {treated.group(0)}",
                    ),
                    [(st.start, st.end), (treated.start(), treated.end())],
                    [],
                    Rule("icd.query", rule.why),
                )
            )
