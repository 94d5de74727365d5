"""The 7th character of injury codes from the note's cues (I.C.19.a, I.C.19.c.1), with X
placeholders (I.A.17); the external cause takes its injury's encounter (I.C.20.a.2)."""

from __future__ import annotations

from pipeline.encounter.diagnoses.context import (
    EXTERNAL,
    DxContext,
)
from pipeline.encounter.diagnoses.state import DxCode, NoteState, Rule
from pipeline.encounter.rule_data import Phrases


def assign_seventh(ctx: DxContext, s: NoteState) -> None:
    """The 7th character from the note's cues (I.C.19.a, I.C.19.c.1), X placeholders (I.A.17)."""
    injuries = []
    for c in s.active():
        if c.code in EXTERNAL:
            continue
        base = ctx.seventh_base(c.code)
        if base is None:
            continue
        table = ctx.kb.seventh_characters(base)
        if not table:
            continue
        span_text = _context(s, c)
        char, why = pick_seventh(ctx.rules.seventh, table, span_text)
        code = ctx.kb.complete(base, char)
        if code != c.code:
            c.rules.append(Rule("icd.7th", f"{c.code} -> {code}: {why}"))
            c.code = code
        else:
            c.rules.append(Rule("icd.7th", f"7th character {char}: {why}"))
        c.rules.append(
            Rule(
                "icd.billable",
                f"{base} is not billable without its 7th character; {code} is (placeholder X where needed, I.A.17)",
            )
        )
        injuries.append(c)
    for c in s.active():
        if c.code not in EXTERNAL or not injuries:
            continue
        base = ctx.seventh_base(c.code)
        if base is None:
            continue
        table = ctx.kb.seventh_characters(base) or {}
        main = injuries[0].code[-1]
        table_main = ctx.kb.seventh_characters(ctx.seventh_base(injuries[0].code) or "") or {}
        meaning = table_main.get(main, "")
        char = "S" if "sequela" in meaning else "D" if "subsequent" in meaning else "A"
        if char in table:
            code = ctx.kb.complete(base, char)
            c.rules.append(
                Rule(
                    "icd.7th",
                    f"7th character {char} as for {injuries[0].code} "
                    "(I.C.20.a.2: the external cause takes the injury's encounter)",
                )
            )
            c.code = code


def pick_seventh(cues: dict[str, Phrases], table: dict[str, str], context: str) -> tuple[str, str]:
    """The 7th character whose meaning matches the note's cues (I.C.19.a, I.C.19.c.1).

    Args:
        cues: the cue phrases of each 7th-character meaning (``encounter_diagnoses.json``).
        table: character -> meaning, from the tabular list.
        context: the lower-case diagnostic line or clause of the injury.

    Returns:
        The character and why.
    """
    if cues["sequela"].search(context) and "S" in table:
        return "S", "documented as a sequela (late effect) of the injury (I.C.19.a)"
    fracture = any("fracture" in m for m in table.values())
    episode, why = "initial", "the injury is under active treatment: initial encounter (I.C.19.a)"
    healing = None
    if fracture:
        healing = next((k for k in ("nonunion", "malunion", "delayed") if cues[k].search(context)), None)
    if healing is not None or cues["subsequent"].search(context):
        episode = "subsequent"
        why = "the injury is in its healing or recovery phase: subsequent encounter (I.C.19.a)"
        healing = healing or "routine"
    wanted = [episode]
    relaxed = [episode]
    if fracture:
        if cues["open_severe"].search(context):
            wanted.append("type iiia")
            relaxed.append("open fracture")
            why += "; open fracture type III (I.C.19.c.1)"
        elif cues["open"].search(context):
            wanted.append("type i or ii")
            relaxed.append("open fracture")
            why += "; open fracture type I or II (I.C.19.c.1: Gustilo I/II, or open without a type)"
        else:
            wanted.append("closed fracture")
            relaxed.append("closed fracture")
            why += "; closed fracture (the default, I.C.19.c.1)"
        if episode == "subsequent":
            words = {
                "routine": "routine healing",
                "delayed": "delayed healing",
                "nonunion": "nonunion",
                "malunion": "malunion",
            }[healing or "routine"]
            wanted.append(words)
            relaxed.append(words)
            if healing != "routine":
                why += f"; {words}"
    for needed in (wanted, relaxed, [episode]):
        for char, meaning in table.items():
            if all(w in meaning.lower() for w in needed):
                return char, why
    return ("A" if "A" in table else sorted(table)[0]), "no cue: initial encounter assumed (I.C.19.a)"


def _context(s: NoteState, c: DxCode) -> str:
    text = s.view.text
    if c.statement is not None:
        line_start = text.rfind("\n", 0, c.statement.start) + 1
        line_end = text.find("\n", c.statement.end)
        return text[line_start : len(text) if line_end < 0 else line_end].lower()
    parts = []
    for i in c.mentions:
        lo, hi = s.view.clause_bounds(s.mentions[i].start_char, s.mentions[i].end_char)
        parts.append(text[lo:hi])
    return " ".join(parts).lower()
