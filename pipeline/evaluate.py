"""Evaluation of ranked code suggestions against gold codes (CodiEsp definitions).

* ``map``: mean over notes of average precision of the ranked list against the gold set, where
  AP = (sum over ranks k holding a gold code of precision@k) / |gold| (the CodiEsp / trec_eval
  definition; a note with no correct code scores 0).
* ``micro_precision`` / ``micro_recall`` / ``micro_f1``: over every (note, code) pair, using the
  codes the model marks ``suggested`` (score at or above its threshold).
* ``macro_f1``: the mean over codes of each code's F1, over every code that is in the gold set or
  predicted for some note (a code predicted but never gold counts with F1 = 0; a code neither
  gold nor predicted does not count).
* ``p_at_5``, ``r_at_10``, ``r_at_15``: precision at 5 and recall at 10 and 15 of the ranked list,
  averaged over notes.
Each figure is given at full-code level and, under ``category``, at 3-character category level
(codes mapped to their first three characters and deduplicated, keeping the best rank).
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(slots=True)
class NotePrediction:
    """What a model said about one note.

    Attributes:
        note_id: the note's id.
        ranked: codes best first (the whole ranked list).
        predicted: the codes marked ``suggested``.
        gold: the gold codes.
        scores: code -> score, for the error report.
    """

    note_id: str
    ranked: list[str]
    predicted: set[str]
    gold: set[str]
    scores: dict[str, float] = field(default_factory=dict)


def category(code: str) -> str:
    """The 3-character category of an ICD-10-CM code (other systems: the code itself).

    Canonical ICD-10-CM codes longer than a category carry a dot; HCPCS and CPT codes never do.
    """
    return code[:3] if "." in code else code


def average_precision(ranked: Sequence[str], gold: set[str]) -> float:
    """Average precision of a ranked list against a gold set (0 when gold is empty)."""
    if not gold:
        return 0.0
    hits = 0
    total = 0.0
    seen: set[str] = set()
    for k, code in enumerate(ranked, start=1):
        if code in gold and code not in seen:
            hits += 1
            total += hits / k
        seen.add(code)
    return total / len(gold)


def _to_category(pred: NotePrediction) -> NotePrediction:
    ranked: list[str] = []
    for code in pred.ranked:
        cat = category(code)
        if cat not in ranked:
            ranked.append(cat)
    return NotePrediction(
        pred.note_id,
        ranked,
        {category(c) for c in pred.predicted},
        {category(c) for c in pred.gold},
    )


def score(
    predictions: Sequence[NotePrediction],
    train_counts: Mapping[str, int] | None = None,
    frequent_at: int = 5,
) -> dict[str, Any]:
    """Compute every figure at code and category level.

    Args:
        predictions: one entry per note.
        train_counts: code -> number of training notes it is gold in (for frequency buckets).
        frequent_at: a code seen in at least this many training notes is "frequent".

    Returns:
        A JSON-ready dict with the keys listed in the module docstring, ``category``,
        ``recall_by_frequency`` and ``notes``.
    """
    result = _figures(predictions)
    result["category"] = _figures([_to_category(p) for p in predictions])
    if train_counts is not None:
        result["recall_by_frequency"] = recall_by_frequency(predictions, train_counts, frequent_at)
    result["notes"] = len(predictions)
    return result


def _figures(predictions: Sequence[NotePrediction]) -> dict[str, Any]:
    n = len(predictions)
    if n == 0:
        return {
            k: 0.0
            for k in (
                "map",
                "micro_precision",
                "micro_recall",
                "micro_f1",
                "macro_f1",
                "p_at_5",
                "r_at_10",
                "r_at_15",
            )
        }
    tp = fp = fn = 0
    per_code: dict[str, list[int]] = {}
    for p in predictions:
        for code in p.predicted | p.gold:
            counts = per_code.setdefault(code, [0, 0, 0])  # tp, fp, fn
            if code in p.predicted and code in p.gold:
                counts[0] += 1
            elif code in p.predicted:
                counts[1] += 1
            else:
                counts[2] += 1
        tp += len(p.predicted & p.gold)
        fp += len(p.predicted - p.gold)
        fn += len(p.gold - p.predicted)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1s = [2 * a / (2 * a + b + c) if a else 0.0 for a, b, c in per_code.values()]

    def at_k(p: NotePrediction, k: int) -> tuple[float, float]:
        top = set(p.ranked[:k])
        hit = len(top & p.gold)
        return hit / k, (hit / len(p.gold) if p.gold else 0.0)

    with_gold = [p for p in predictions if p.gold]
    return {
        "map": sum(average_precision(p.ranked, p.gold) for p in predictions) / n,
        "micro_precision": precision,
        "micro_recall": recall,
        "micro_f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "macro_f1": sum(f1s) / len(f1s) if f1s else 0.0,
        "p_at_5": sum(at_k(p, 5)[0] for p in predictions) / n,
        "r_at_10": sum(at_k(p, 10)[1] for p in with_gold) / max(len(with_gold), 1),
        "r_at_15": sum(at_k(p, 15)[1] for p in with_gold) / max(len(with_gold), 1),
    }


def recall_by_frequency(
    predictions: Sequence[NotePrediction], train_counts: Mapping[str, int], frequent_at: int = 5
) -> dict[str, dict[str, float]]:
    """Recall of the ``suggested`` codes and of the whole ranked list per training-frequency bucket."""
    buckets: dict[str, Counter[str]] = {b: Counter() for b in ("frequent", "rare", "unseen")}
    for p in predictions:
        ranked = set(p.ranked)
        for code in p.gold:
            seen = train_counts.get(code, 0)
            bucket = "frequent" if seen >= frequent_at else "rare" if seen > 0 else "unseen"
            buckets[bucket]["gold"] += 1
            buckets[bucket]["suggested"] += code in p.predicted
            buckets[bucket]["ranked"] += code in ranked
    return {
        name: {
            "gold": c["gold"],
            "recall": c["suggested"] / c["gold"] if c["gold"] else 0.0,
            "ranked_recall": c["ranked"] / c["gold"] if c["gold"] else 0.0,
        }
        for name, c in buckets.items()
    }


def write_errors(path: Path, predictions: Iterable[NotePrediction]) -> int:
    """Write every missed and every wrong code, one row each; returns the row count."""
    rows = 0
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["note_id", "code", "error", "score", "rank"])
        for p in predictions:
            rank_of = {c: i + 1 for i, c in enumerate(p.ranked)}
            for code in sorted(p.gold - p.predicted):
                writer.writerow([p.note_id, code, "missed", _fmt(p.scores.get(code)), rank_of.get(code, "")])
                rows += 1
            for code in sorted(p.predicted - p.gold):
                writer.writerow([p.note_id, code, "wrong", _fmt(p.scores.get(code)), rank_of.get(code, "")])
                rows += 1
    return rows


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


# External causes with no national reporting requirement: neither expected nor forbidden
# (corpora/synthetic/README.md, decision 1), so left out of the produced set when scoring.
NOT_SCORED_PREFIXES = ("Y92", "Y93", "Y99")


def encounter_row(note: Any, result: Any) -> dict[str, Any]:
    """One note of the encounter evaluation: expected and produced lines, pointers, forbidden hits.

    A forbidden entry ending in ``.-`` is an ICD-10-CM prefix (``S82.-``); Y92/Y93/Y99 lines are
    not scored (see :data:`NOT_SCORED_PREFIXES`).
    """
    expected = [(c.system, c.code, tuple(sorted(c.modifiers or ()))) for c in note.codes if c.system != "ICD10PCS"]
    lines = [
        line for line in result.code_set if not (line.system == "ICD10CM" and line.code.startswith(NOT_SCORED_PREFIXES))
    ]
    got = [(line.system, line.code, tuple(sorted(line.modifiers))) for line in lines]
    forbidden = (note.meta or {}).get("forbidden", [])
    hits = {
        line.code
        for line in lines
        for f in forbidden
        if line.code == f or (f.endswith(".-") and line.system == "ICD10CM" and line.code.startswith(f[:-2]))
    }
    return {
        "id": note.id,
        "expected": expected,
        "got": got,
        "first_expected": expected[0][1] if expected else None,
        "first_got": got[0][1] if got else None,
        "forbidden_hits": sorted(hits),
        "pointers_expected": {
            (c.system, c.code, tuple(sorted(c.modifiers or ()))): tuple(c.pointers)
            for c in note.codes
            if c.system in ("CPT", "HCPCS")
        },
        "pointers_got": {
            (line.system, line.code, tuple(sorted(line.modifiers))): tuple(line.pointers)
            for line in lines
            if line.system in ("CPT", "HCPCS")
        },
    }


def score_encounters(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Exact-set accuracy and code-level precision/recall of encounter code sets.

    A note counts as exact when its code set equals the expected one as a set of
    (system, code, modifiers); code-level figures ignore modifiers; ``modifier_accuracy`` is the
    share of correctly found service codes that also carry the expected modifiers;
    ``pointer_accuracy`` the share of correctly found service lines (code and modifiers) that
    point to exactly the expected diagnoses, in order (rows without pointers are skipped).
    """
    exact = tp = fp = fn = mod_ok = mod_total = first_ok = forbidden = ptr_ok = ptr_total = 0
    failures = []
    for row in rows:
        expected, got = set(row["expected"]), set(row["got"])
        exp_codes = {(s, c) for s, c, _ in expected}
        got_codes = {(s, c) for s, c, _ in got}
        exact += expected == got
        tp += len(exp_codes & got_codes)
        fp += len(got_codes - exp_codes)
        fn += len(exp_codes - got_codes)
        first_ok += row["first_expected"] == row["first_got"]
        forbidden += bool(row["forbidden_hits"])
        mods_exp = {(s, c): m for s, c, m in expected if s != "ICD10CM"}
        for s, c, m in got:
            if (s, c) in mods_exp:
                mod_total += 1
                mod_ok += mods_exp[(s, c)] == m
        ptr_exp, ptr_got = row.get("pointers_expected", {}), row.get("pointers_got", {})
        for key, pointers in ptr_got.items():
            if key in ptr_exp:
                ptr_total += 1
                ptr_ok += ptr_exp[key] == pointers
        if expected != got:
            failures.append(
                {
                    "id": row["id"],
                    "missing": sorted("-".join([c, *m]) for _, c, m in expected - got),
                    "unexpected": sorted("-".join([c, *m]) for _, c, m in got - expected),
                    "forbidden": row["forbidden_hits"],
                }
            )
    n = max(len(rows), 1)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return {
        "notes": len(rows),
        "exact_set_accuracy": exact / n,
        "code_precision": precision,
        "code_recall": recall,
        "code_f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "modifier_accuracy": mod_ok / mod_total if mod_total else 0.0,
        "pointer_accuracy": ptr_ok / ptr_total if ptr_total else 0.0,
        "first_listed_accuracy": first_ok / n,
        "notes_with_forbidden_codes": forbidden,
        "failures": failures,
    }


def format_report(report: dict[str, Any]) -> str:
    """Human-readable form of an evaluation report."""
    lines = [
        f"{report.get('model_version', '')} on {report.get('corpus', '')} ({report['notes']} notes, "
        f"{report.get('system', '')})"
    ]
    if "exact_set_accuracy" in report:
        for key in (
            "exact_set_accuracy",
            "code_precision",
            "code_recall",
            "code_f1",
            "modifier_accuracy",
            "first_listed_accuracy",
        ):
            lines.append(f"  {key:<24} {report[key]:.3f}")
        lines.append(f"  {'notes_with_forbidden_codes':<24} {report['notes_with_forbidden_codes']}")
        for f in report["failures"]:
            lines.append(f"  {f['id']}: missing {f['missing']} unexpected {f['unexpected']}")
        return "\n".join(lines) + "\n"
    keys = (
        "map",
        "micro_precision",
        "micro_recall",
        "micro_f1",
        "macro_f1",
        "p_at_5",
        "r_at_10",
        "r_at_15",
    )
    lines.append(f"  {'':<10}" + "".join(f"{k:>16}" for k in keys))
    lines.append(f"  {'code':<10}" + "".join(f"{report[k]:>16.3f}" for k in keys))
    lines.append(f"  {'category':<10}" + "".join(f"{report['category'][k]:>16.3f}" for k in keys))
    for bucket, fig in report.get("recall_by_frequency", {}).items():
        lines.append(
            f"  recall {bucket:<9} {fig['recall']:.3f} (ranked {fig['ranked_recall']:.3f}, {fig['gold']} gold codes)"
        )
    return "\n".join(lines) + "\n"
