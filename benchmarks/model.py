"""Benchmarks of the NLP pipeline and the suggestion model (``make bench``).

``python -m benchmarks.model --data-dir ../shared/data --model models/default --corpus-dir build/corpora``
prints, as a markdown table and optionally as JSON:

* throughput of our pipeline and of a bare ``medspacy.load()`` default pipeline on the same
  CodiEsp dev notes, side by side in one process (after one warm-up pass each);
* resident memory of a fresh process holding the loaded pipeline, and of one holding the whole
  loaded suggestion model;
* candidate recall on CodiEsp train and dev (share of gold ICD-10-CM codes among a note's
  candidates), at full-code and 3-character level: of the spaCy pipeline's candidates alone and
  of the full candidate set the ranker sees (pipeline + document model + nearest notes; for
  train notes the note-level models are cross-fitted so a note never proposes its own codes);
* latency of :meth:`Suggester.suggest` per note (median, p95) once loaded.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.kb import run as kb_run
from pipeline.locations import default_data_dir, default_kb_dir, default_model_dir

# The pipeline, model and knowledge-base modules are imported inside the functions that measure
# them: a child process that measures the memory of the spaCy pipeline alone (``--child``) must not
# have imported the rest of the project first.

logger = logging.getLogger(__name__)


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 1e6


def throughput(model_dir: Path, texts: list[str], repeats: int = 2) -> dict[str, Any]:
    """Notes per second of our pipeline and of ``medspacy.load()``, on the same texts.

    Args:
        model_dir: the model whose ``nlp`` folder is timed.
        texts: the notes.
        repeats: passes timed after a warm-up pass (the best pass counts).

    Returns:
        Per pipeline: notes/s, ms a note, components; and the speed ratio.
    """
    import logging as _logging

    import medspacy
    from loguru import logger as loguru_logger

    from pipeline.nlp.assembly import load_pipeline

    # PyRuSH logs every sentence through loguru unless told not to (FINDINGS.md).
    loguru_logger.disable("PyRuSH")
    _logging.getLogger("PyRuSH").setLevel(_logging.ERROR)
    ours = load_pipeline(model_dir / "nlp")
    bare = medspacy.load()
    out: dict[str, Any] = {"notes": len(texts), "mean_chars": round(statistics.mean(len(t) for t in texts))}
    for name, nlp in (("codesuggest", ours), ("medspacy_default", bare)):
        list(nlp.pipe(texts[:20]))
        best = float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            for _doc in nlp.pipe(texts):
                pass
            best = min(best, time.perf_counter() - started)
        out[name] = {
            "notes_per_s": round(len(texts) / best, 1),
            "ms_per_note": round(1000 * best / len(texts), 2),
            "components": list(nlp.pipe_names),
        }
    out["speedup"] = round(out["codesuggest"]["notes_per_s"] / out["medspacy_default"]["notes_per_s"], 2)
    return out


def candidate_recall(model_dir: Path, train: list[Any], dev: list[Any], kb_dir: Path | None = None) -> dict[str, Any]:
    """Candidate recall of the pipeline alone and of the full candidate set, on train and dev.

    Args:
        model_dir: the model (its pipeline and training settings are used).
        train: training notes (``TrainingNote``).
        dev: dev notes.
        kb_dir: the knowledge base (billable filter for the document model).

    Returns:
        For each split: ``pipeline`` and ``full`` recall at code and category level, and the
        mean number of candidates a note.
    """
    from sklearn.model_selection import KFold

    from pipeline.kb.store import KnowledgeBase
    from pipeline.nlp.assembly import load_pipeline
    from pipeline.ranking.artefact import TrainParams
    from pipeline.ranking.estimators import DocumentModel
    from pipeline.ranking.features import candidate_codes

    settings = json.loads((model_dir / "model.json").read_text("utf-8"))
    params = TrainParams(**settings["params"])
    nlp = load_pipeline(model_dir / "nlp")
    kb = KnowledgeBase.load(kb_dir or default_kb_dir())

    def learnable(gold: set[str]) -> set[str]:
        return {c for c in gold if (rec := kb.get(c, "ICD10CM")) is not None and rec.billable}

    def model() -> DocumentModel:
        return DocumentModel(knn_k=params.knn_k, min_code_notes=params.min_code_notes)

    texts = [n.text for n in train]
    signals: dict[str, list[tuple[dict[str, float], dict[str, tuple[float, int]]]]] = {"train": [({}, {})] * len(train)}
    for tr, held in KFold(params.folds, shuffle=True, random_state=params.seed).split(np.arange(len(train))):
        fold = model().fit([texts[i] for i in tr], [learnable(train[i].gold) for i in tr])
        X = fold.transform([texts[i] for i in held])
        for i, s, k in zip(held, fold.code_scores(X), fold.neighbours(X), strict=True):
            signals["train"][i] = (s, k)
    final = model().fit(texts, [learnable(n.gold) for n in train])
    X = final.transform([n.text for n in dev])
    signals["dev"] = list(zip(final.code_scores(X), final.neighbours(X), strict=True))

    out: dict[str, Any] = {}
    for split, notes in (("train", train), ("dev", dev)):
        counts = {k: 0 for k in ("gold", "pipe", "pipe_cat", "full", "full_cat", "n_pipe", "n_full")}
        for note, doc, (scores, near) in zip(notes, nlp.pipe([n.text for n in notes]), signals[split], strict=True):
            pipe = set(doc._.cs_candidates or {})
            full = set(candidate_codes(doc, scores, near, params.doc_top, frozenset({"ICD10CM"})))
            counts["n_pipe"] += len(pipe)
            counts["n_full"] += len(full)
            pipe_cat, full_cat = {c[:3] for c in pipe}, {c[:3] for c in full}
            for code in note.gold:
                counts["gold"] += 1
                counts["pipe"] += code in pipe
                counts["pipe_cat"] += code[:3] in pipe_cat
                counts["full"] += code in full
                counts["full_cat"] += code[:3] in full_cat
        g = max(counts["gold"], 1)
        out[split] = {
            "notes": len(notes),
            "gold_codes": counts["gold"],
            "pipeline": {
                "code": round(counts["pipe"] / g, 3),
                "category": round(counts["pipe_cat"] / g, 3),
                "candidates_per_note": round(counts["n_pipe"] / max(len(notes), 1), 1),
            },
            "full": {
                "code": round(counts["full"] / g, 3),
                "category": round(counts["full_cat"] / g, 3),
                "candidates_per_note": round(counts["n_full"] / max(len(notes), 1), 1),
            },
        }
    return out


def suggest_latency(model_dir: Path, texts: list[str], kb_dir: Path | None = None) -> dict[str, Any]:
    """Per-note latency of the full suggest path once loaded (median, p95, max in ms)."""
    from pipeline.suggest import Suggester

    started = time.perf_counter()
    suggester = Suggester.load(model_dir, kb_dir)
    load_s = time.perf_counter() - started
    for text in texts[:10]:
        suggester.suggest(text)
    times = []
    for text in texts:
        t0 = time.perf_counter()
        suggester.suggest(text)
        times.append(1000 * (time.perf_counter() - t0))
    times.sort()
    return {
        "notes": len(texts),
        "load_seconds": round(load_s, 2),
        "median_ms": round(statistics.median(times), 1),
        "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1),
        "max_ms": round(times[-1], 1),
        "rss_mb_after": round(_rss_mb(), 0),
    }


def memory(model_dir: Path, kb_dir: Path | None) -> dict[str, Any]:
    """Resident memory of fresh processes holding the pipeline, and the whole model."""
    out = {}
    for what in ("pipeline", "model"):
        cmd = [sys.executable, "-m", "benchmarks.model", "--child", what, "--model", str(model_dir)]
        if kb_dir:
            cmd += ["--kb", str(kb_dir)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(f"memory child failed: {proc.stderr.strip()[-500:]}")
        out[what] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def _child(what: str, model_dir: Path, kb_dir: Path | None) -> None:
    started = time.perf_counter()
    if what == "pipeline":
        from pipeline.nlp.assembly import load_pipeline

        nlp = load_pipeline(model_dir / "nlp")
        nlp("Sprain of the right ankle. No fracture.")
    else:
        from pipeline.suggest import Suggester

        Suggester.load(model_dir, kb_dir).suggest("Sprain of the right ankle. No fracture.")
    print(json.dumps({"load_seconds": round(time.perf_counter() - started, 2), "rss_mb": round(_rss_mb(), 0)}))


def _markdown(report: dict[str, Any]) -> str:
    lines = ["| what | figure |", "|---|---|"]
    tp = report.get("throughput")
    if tp:
        lines.append(
            f"| pipeline throughput, {tp['notes']} CodiEsp dev notes (mean {tp['mean_chars']} chars) | "
            f"{tp['codesuggest']['notes_per_s']} notes/s ({tp['codesuggest']['ms_per_note']} ms a note) |"
        )
        lines.append(
            f"| bare `medspacy.load()` on the same notes, same run | {tp['medspacy_default']['notes_per_s']} "
            f"notes/s ({tp['medspacy_default']['ms_per_note']} ms a note) |"
        )
        lines.append(f"| speed-up over medspaCy's default | {tp['speedup']}x |")
    mem = report.get("memory")
    if mem:
        lines.append(
            f"| resident memory, loaded pipeline (fresh process) | {mem['pipeline']['rss_mb']:.0f} MB "
            f"(load {mem['pipeline']['load_seconds']} s) |"
        )
        lines.append(
            f"| resident memory, whole suggestion model + KB | {mem['model']['rss_mb']:.0f} MB "
            f"(load {mem['model']['load_seconds']} s) |"
        )
    rec = report.get("candidate_recall")
    if rec:
        for split in ("train", "dev"):
            r = rec[split]
            lines.append(
                f"| candidate recall {split}, pipeline only (code / category) | {r['pipeline']['code']} / "
                f"{r['pipeline']['category']} ({r['pipeline']['candidates_per_note']} candidates a note) |"
            )
            lines.append(
                f"| candidate recall {split}, full candidate set (code / category) | {r['full']['code']} / "
                f"{r['full']['category']} ({r['full']['candidates_per_note']} candidates a note) |"
            )
    lat = report.get("suggest_latency")
    if lat:
        lines.append(
            f"| suggest latency per note once loaded ({lat['notes']} dev notes) | median {lat['median_ms']} ms, "
            f"p95 {lat['p95_ms']} ms, max {lat['max_ms']} ms |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.model", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--kb", type=Path, default=None)
    parser.add_argument("--corpus-dir", type=Path, default=Path("build/corpora"))
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--only", choices=["kb", "throughput", "memory", "recall", "latency"], action="append")
    parser.add_argument("--child", choices=["pipeline", "model"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    model_dir = args.model or default_model_dir()
    kb_dir = args.kb or default_kb_dir()
    if args.child:
        _child(args.child, model_dir, kb_dir)
        return 0
    from pipeline.ranking.training import notes_from_corpus

    data_dir = args.data_dir or default_data_dir()
    dev_texts = [p.read_text("utf-8") for p in sorted((data_dir / "codiesp/dev/text_files_en").glob("*.txt"))]
    if not dev_texts:
        sys.stderr.write(f"bench: no CodiEsp dev notes under {data_dir}/codiesp/dev/text_files_en\n")
        return 2
    wanted = set(args.only or ["kb", "throughput", "memory", "recall", "latency"])
    report: dict[str, Any] = {}
    if "kb" in wanted:
        report["kb"] = kb_run(kb_dir)
    if "throughput" in wanted:
        report["throughput"] = throughput(model_dir, dev_texts)
    if "memory" in wanted:
        report["memory"] = memory(model_dir, kb_dir)
    if "recall" in wanted:
        train_file, dev_file = args.corpus_dir / "codiesp-train.jsonl", args.corpus_dir / "codiesp-dev.jsonl"
        if not train_file.is_file() or not dev_file.is_file():
            sys.stderr.write(f"bench: {train_file} or {dev_file} missing; run `make corpora` first\n")
            return 2
        report["candidate_recall"] = candidate_recall(
            model_dir, notes_from_corpus(train_file), notes_from_corpus(dev_file), kb_dir
        )
    if "latency" in wanted:
        report["suggest_latency"] = suggest_latency(model_dir, dev_texts, kb_dir)
    sys.stdout.write(_markdown(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n", "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
