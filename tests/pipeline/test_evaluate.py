"""CodiEsp-style metrics, checked against figures worked out by hand."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from pipeline.evaluate import NotePrediction, average_precision, category, score, score_encounters, write_errors


@pytest.mark.parametrize(
    ("ranked", "gold", "expected"),
    [
        (["A", "B", "C"], {"A", "C"}, (1 / 1 + 2 / 3) / 2),
        (["X", "A"], {"A"}, 1 / 2),
        (["X", "Y"], {"A"}, 0.0),
        (["A", "A", "B"], {"A", "B"}, (1 + 2 / 3) / 2),
        ([], {"A"}, 0.0),
        (["A"], set(), 0.0),
    ],
)
def test_evaluate_average_precision(ranked: list[str], gold: set[str], expected: float) -> None:
    assert average_precision(ranked, gold) == pytest.approx(expected)


@pytest.mark.parametrize(("code", "cat"), [("S93.401A", "S93"), ("I10", "I10"), ("73610", "73610"), ("L4350", "L4350")])
def test_evaluate_category(code: str, cat: str) -> None:
    assert category(code) == cat


def _preds() -> list[NotePrediction]:
    return [
        NotePrediction("n1", ["A10.1", "B20.0", "C30.0", "A10.2"], {"A10.1", "B20.0"}, {"A10.1", "C30.0"}),
        NotePrediction("n2", ["A10.1", "D40.0"], {"A10.1"}, {"D40.0", "E50.0"}),
    ]


def test_evaluate_score_micro_macro_and_ranking() -> None:
    report = score(_preds(), train_counts={"A10.1": 9, "C30.0": 1})
    # suggested: n1 {A10.1 ok, B20.0 wrong}, n2 {A10.1 wrong}; gold 4 -> tp 1, fp 2, fn 3
    assert report["micro_precision"] == pytest.approx(1 / 3)
    assert report["micro_recall"] == pytest.approx(1 / 4)
    assert report["micro_f1"] == pytest.approx(2 * (1 / 3) * (1 / 4) / (1 / 3 + 1 / 4))
    # per code F1: A10.1 tp1 fp1 -> 2/3; B20.0 fp -> 0; C30.0 fn -> 0; D40.0 fn -> 0; E50.0 fn -> 0
    assert report["macro_f1"] == pytest.approx((2 / 3) / 5)
    ap1 = (1 + 2 / 3) / 2
    ap2 = (1 / 2) / 2
    assert report["map"] == pytest.approx((ap1 + ap2) / 2)
    assert report["p_at_5"] == pytest.approx((2 / 5 + 1 / 5) / 2)
    assert report["r_at_10"] == pytest.approx((1.0 + 0.5) / 2)
    assert report["notes"] == 2
    buckets = report["recall_by_frequency"]
    assert buckets["frequent"]["gold"] == 1 and buckets["frequent"]["recall"] == 1.0
    assert buckets["rare"]["gold"] == 1 and buckets["rare"]["ranked_recall"] == 1.0
    assert buckets["unseen"]["gold"] == 2 and buckets["unseen"]["recall"] == 0.0
    assert set(report["category"]) >= {"map", "micro_f1", "macro_f1", "p_at_5", "r_at_10", "r_at_15"}


def test_evaluate_category_level_merges_codes() -> None:
    preds = [NotePrediction("n", ["A10.2", "A10.1"], {"A10.2"}, {"A10.1"})]
    report = score(preds)
    assert report["map"] == pytest.approx(0.5)
    assert report["category"]["map"] == pytest.approx(1.0)
    assert report["category"]["micro_f1"] == pytest.approx(1.0)


def test_evaluate_score_empty() -> None:
    assert score([])["map"] == 0.0


def test_evaluate_write_errors_lists_missed_and_wrong(tmp_path: Path) -> None:
    out = tmp_path / "errors.csv"
    rows = write_errors(out, _preds())
    with open(out, encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    assert rows == len(table) == 5
    assert {(r["note_id"], r["code"], r["error"]) for r in table} >= {
        ("n1", "C30.0", "missed"),
        ("n1", "B20.0", "wrong"),
        ("n2", "A10.1", "wrong"),
    }


def test_evaluate_score_encounters_exact_and_modifiers() -> None:
    rows = [
        {
            "id": "a",
            "expected": [("ICD10CM", "S93.401A", ()), ("CPT", "73610", ("RT",))],
            "got": [("ICD10CM", "S93.401A", ()), ("CPT", "73610", ("RT",))],
            "first_expected": "S93.401A",
            "first_got": "S93.401A",
            "forbidden_hits": [],
        },
        {
            "id": "b",
            "expected": [("ICD10CM", "I10", ()), ("CPT", "99213", ("25",))],
            "got": [("ICD10CM", "I10", ()), ("CPT", "99213", ()), ("ICD10CM", "R51.9", ())],
            "first_expected": "I10",
            "first_got": "I10",
            "forbidden_hits": ["R51.9"],
        },
    ]
    report = score_encounters(rows)
    assert report["exact_set_accuracy"] == 0.5
    assert report["code_precision"] == pytest.approx(4 / 5)
    assert report["code_recall"] == 1.0
    assert report["modifier_accuracy"] == 0.5
    assert report["notes_with_forbidden_codes"] == 1
    assert report["failures"][0]["id"] == "b"
