"""The 7th character chosen from a diagnostic line's cues (I.C.19.a, I.C.19.c.1)."""

from __future__ import annotations

import pytest

from pipeline.encounter.diagnoses.rules import load_diagnosis_rules
from pipeline.encounter.diagnoses.seventh import pick_seventh
from pipeline.suggest import Suggester


@pytest.mark.parametrize(
    ("context", "table", "char"),
    [
        ("sprain of the ankle, initial encounter", "ankle", "A"),
        ("sprain of the ankle, subsequent encounter", "ankle", "D"),
        ("scar, sequela of laceration", "ankle", "S"),
        ("closed fracture of the radius", "fracture", "A"),
        ("open fracture, gustilo type ii", "fracture", "B"),
        ("open fracture, gustilo type iiib", "fracture", "C"),
        ("fracture, subsequent encounter with delayed healing", "fracture", "G"),
        ("fracture with nonunion", "fracture", "K"),
        ("open fracture with malunion", "fracture", "Q"),
    ],
)
def test_seventh_pick_seventh_from_the_cues(suggester: Suggester, context: str, table: str, char: str) -> None:
    tables = {"ankle": "S93.401", "fracture": "S82.221"}
    seventh = suggester.kb.seventh_characters(tables[table])
    assert seventh is not None
    assert pick_seventh(load_diagnosis_rules().seventh, seventh, context)[0] == char
