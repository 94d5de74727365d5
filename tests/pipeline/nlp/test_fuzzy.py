"""The fuzzy index: near phrases found, and its to_disk / from_disk round trip."""

from __future__ import annotations

from pathlib import Path

from pipeline.nlp.fuzzy import FuzzyIndex


def test_fuzzy_index_finds_near_phrases_and_round_trips(tmp_path: Path) -> None:
    phrases = [
        ("sprain of ankle", "ICD10CM|S93.409"),
        ("essential hypertension", "ICD10CM|I10"),
        ("type 2 diabetes mellitus", "ICD10CM|E11.9"),
        ("fracture of femur", "ICD10CM|S72.90"),
    ]
    index = FuzzyIndex.build(phrases, m=8, ef_construction=50)
    hits = index.query(["sprained ankle", "hypertension essential"], k=2, threshold=0.3)
    assert hits[0][0][0] == "ICD10CM|S93.409"
    assert hits[1][0][0] == "ICD10CM|I10"
    index.to_disk(tmp_path / "fuzzy")
    again = FuzzyIndex.from_disk(tmp_path / "fuzzy")
    assert again.query(["sprained ankle"], k=2, threshold=0.3) == hits[:1]
    assert index.query([], k=2) == []
