"""The diagnosis rule file: general rules, each naming its guideline."""

from __future__ import annotations

from pipeline.encounter.diagnoses.rules import load_diagnosis_rules


def test_rules_are_general() -> None:
    rules = load_diagnosis_rules()
    # Every mapping is by category and names why, with a guideline section.
    for mapping in (*rules.personal_history, *rules.family_history):
        assert "I.C." in mapping.why
    for rel in rules.integral:
        assert rel.why.startswith("I.B.5")
