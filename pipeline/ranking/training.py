"""Training the suggestion model: pipeline + document model + calibrated ranker, as one artefact.

Training rows for the ranker need the note-level signals (document model, nearest notes,
priors) the way they will look on unseen notes, so for training notes they are cross-fitted:
each fold's notes are scored by models fitted on the other folds (folds are notes, so no note's
candidates leak into its own signals). The final document model is then fitted on all training
notes, the threshold between ``suggested`` and ``consider`` is chosen on the dev notes (best
micro-F1), and the dev figures are written into the manifest.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.model_selection import KFold

from pipeline.evaluate import NotePrediction, score
from pipeline.manifest import Manifest, read_manifest, sha256_file, write_manifest
from pipeline.ranking.estimators import CodeRanker, DocumentModel
from pipeline.ranking.features import CodeInfo, CodeInfoCache, Priors, candidate_codes, note_features

logger = logging.getLogger(__name__)

MODEL_KIND = "model"
MODEL_SCHEMA = "codesuggest.model-settings/1"


@dataclass
class TrainParams:
    """What the model does; saved with it.

    Attributes:
        name: artefact name.
        version: artefact version.
        folds: cross-fitting folds for the training notes' note-level signals.
        doc_top: candidates added from the document model per note.
        knn_k: nearest training notes consulted.
        min_code_notes: codes need this many training notes to get a regression.
        ranker: keyword arguments of :class:`~pipeline.ranking.estimators.CodeRanker`.
        pipeline: per-component settings of the spaCy pipeline.
        seed: random seed.
    """

    name: str = "codesuggest-default"
    version: str = "1.0.0"
    folds: int = 5
    doc_top: int = 70
    knn_k: int = 20
    min_code_notes: int = 2
    ranker: dict[str, Any] = field(default_factory=dict)
    pipeline: dict[str, dict[str, Any]] = field(default_factory=dict)
    seed: int = 13


@dataclass
class TrainingNote:
    """A note as training sees it: id, text and its gold ICD-10-CM codes."""

    id: str
    text: str
    gold: set[str]


def _data_references(corpus_refs: Sequence[Path], train_notes: int, dev_notes: int) -> list[dict[str, Any]]:
    """Manifest entries for the corpus files: the first is the training corpus, the second the dev one."""
    if len(corpus_refs) > 2:
        raise ValueError(f"corpus_refs: at most a training and a dev corpus file, got {len(corpus_refs)}")
    roles = (("train", train_notes), ("dev", dev_notes))
    return [
        {"path": str(path), "role": role, "sha256": sha256_file(path), "notes": notes}
        for path, (role, notes) in zip(corpus_refs, roles, strict=False)
    ]


def train_model(
    train: Sequence[TrainingNote],
    dev: Sequence[TrainingNote] | None,
    kb_dir: Path,
    out_dir: Path,
    params: TrainParams | None = None,
    corpus_refs: Sequence[Path] = (),
    progress: bool = True,
    pipeline_from: Path | None = None,
) -> Manifest:
    """Train and save a model artefact.

    Args:
        train: training notes.
        dev: notes for the threshold and the reported figures (None: 0.5 threshold, no figures).
        kb_dir: the knowledge-base artefact.
        out_dir: the artefact folder to write (replaced atomically).
        params: model settings.
        corpus_refs: the training corpus file, then the dev corpus file if any; each is recorded with
            its role, sha256 and note count.
        progress: show progress bars.
        pipeline_from: reuse the spaCy pipeline of this model folder (verified first) instead of
            building it from the knowledge base: saves a minute when only the ranker changes.

    Returns:
        The written manifest.
    """
    from tqdm import tqdm

    from pipeline.kb.store import KnowledgeBase
    from pipeline.manifest import verify_manifest
    from pipeline.nlp.assembly import build_pipeline, load_pipeline, save_pipeline

    params = params or TrainParams()
    started = time.perf_counter()
    kb = KnowledgeBase.load(kb_dir)
    info = CodeInfoCache(kb)
    if pipeline_from is not None:
        verify_manifest(pipeline_from, kind=MODEL_KIND)
        nlp = load_pipeline(Path(pipeline_from) / "nlp")
    else:
        nlp = build_pipeline(kb_dir, config=params.pipeline)
    # Saved now, before it reads a note: spaCy's string store keeps every word it has seen, and
    # the artefact must not carry words of the training notes (names, if a corpus holds any).
    # The folder goes when the object does, on an error too.
    pristine = tempfile.TemporaryDirectory(prefix="codesuggest-nlp-")
    saved_pipeline = Path(pristine.name) / "nlp"
    save_pipeline(nlp, saved_pipeline)
    docs = list(
        tqdm(
            nlp.pipe([n.text for n in train]),
            total=len(train),
            desc="annotate train",
            disable=not progress,
        )
    )
    gold = [n.gold for n in train]
    texts = [n.text for n in train]
    # The document model learns only codes it may suggest: billable in the knowledge base
    # (corpora carry retired codes and codes missing their 7th character).
    learnable = [{c for c in g if (rec := kb.get(c, "ICD10CM")) is not None and rec.billable} for g in gold]

    # Cross-fitted note-level signals for the training rows.
    doc_scores: list[dict[str, float]] = [{} for _ in train]
    knn: list[dict[str, tuple[float, int]]] = [{} for _ in train]
    fold_priors: list[Priors] = [Priors(0, {}, {}) for _ in train]
    kfold = KFold(n_splits=params.folds, shuffle=True, random_state=params.seed)
    splits = list(kfold.split(np.arange(len(train))))
    with tqdm(total=len(splits) + 1, desc="fit document models", disable=not progress) as bar:
        for tr, held in splits:
            model = _document_model(params).fit([texts[i] for i in tr], [learnable[i] for i in tr])
            X = model.transform([texts[i] for i in held])
            priors = Priors.fit([gold[i] for i in tr])
            for i, s, k in zip(held, model.code_scores(X), model.neighbours(X), strict=True):
                doc_scores[i], knn[i], fold_priors[i] = s, k, priors
            bar.update(1)
        final_model = _document_model(params).fit(texts, learnable)
        bar.update(1)
    priors_all = Priors.fit(gold)

    rows, labels, groups = [], [], []
    for i, doc in enumerate(tqdm(docs, desc="features", disable=not progress)):
        codes = candidate_codes(doc, doc_scores[i], knn[i], params.doc_top, frozenset({"ICD10CM"}))
        rows.append(note_features(doc, codes, doc_scores[i], knn[i], fold_priors[i], info))
        labels.append(np.fromiter((c in gold[i] for c in codes), dtype=np.int8, count=len(codes)))
        groups.append(np.full(len(codes), i))
    X_train, y_train, g_train = np.vstack(rows), np.concatenate(labels), np.concatenate(groups)
    logger.info("ranker rows: %d (%.1f%% positive)", len(y_train), 100 * y_train.mean())
    ranker = CodeRanker(random_state=params.seed, **params.ranker).fit(X_train, y_train, g_train)

    threshold, metrics = 0.5, {}
    if dev:
        dev_docs = list(
            tqdm(
                nlp.pipe([n.text for n in dev]),
                total=len(dev),
                desc="annotate dev",
                disable=not progress,
            )
        )
        ranked = rank_notes(dev_docs, [n.text for n in dev], final_model, ranker, priors_all, info, params)
        threshold = choose_threshold(ranked, [n.gold for n in dev])
        preds = [_prediction(n, r, threshold) for n, r in zip(dev, ranked, strict=True)]
        metrics = {"dev": score(preds, priors_all.code_counts), "threshold": threshold}
    elapsed = time.perf_counter() - started

    settings = {
        "schema": MODEL_SCHEMA,
        "threshold": threshold,
        "params": asdict(params),
        "priors": priors_all.to_dict(),
        "kb": _kb_reference(kb_dir),
        "systems": ["ICD10CM"],
        "train_seconds": round(elapsed, 1),
    }
    manifest = Manifest(
        name=params.name,
        version=params.version,
        kind=MODEL_KIND,
        code_sets=dict(kb.versions),
        training_data=_data_references(corpus_refs, len(train), len(dev or [])),
        params=asdict(params),
        metrics=metrics,
        extra={
            "train_notes": len(train),
            "dev_notes": len(dev or []),
            "train_seconds": round(elapsed, 1),
            "ranker_rows": len(y_train),
            "kb": settings["kb"],
        },
    )
    _write_artefact(out_dir, saved_pipeline, final_model, ranker, settings, manifest)
    pristine.cleanup()
    logger.info("model written to %s in %.0f s", out_dir, elapsed)
    return read_manifest(out_dir)


def _document_model(params: TrainParams) -> DocumentModel:
    return DocumentModel(knn_k=params.knn_k, min_code_notes=params.min_code_notes)


def rank_notes(
    docs: Sequence[Any],
    texts: Sequence[str],
    model: DocumentModel,
    ranker: CodeRanker,
    priors: Priors,
    info: dict[str, CodeInfo],
    params: TrainParams,
) -> list[list[tuple[str, float]]]:
    """Score every ICD-10-CM candidate of each note; returns ``(code, probability)`` best first."""
    X = model.transform(texts)
    out = []
    for doc, scores, near in zip(docs, model.code_scores(X), model.neighbours(X), strict=True):
        codes = candidate_codes(doc, scores, near, params.doc_top, frozenset({"ICD10CM"}))
        feats = note_features(doc, codes, scores, near, priors, info)
        probs = ranker.predict_proba(feats)[:, 1] if len(codes) else np.zeros(0)
        out.append(sorted(zip(codes, probs.tolist(), strict=True), key=lambda cp: -cp[1]))
    return out


def choose_threshold(ranked: Sequence[list[tuple[str, float]]], gold: Sequence[set[str]]) -> float:
    """The probability cut that maximises micro-F1 over the given notes."""
    pairs = sorted(((p, c in g) for r, g in zip(ranked, gold, strict=True) for c, p in r), key=lambda x: -x[0])
    total_gold = sum(len(g) for g in gold)
    best_f1, best_t, tp = 0.0, 0.5, 0
    for k, (p, hit) in enumerate(pairs, start=1):
        tp += hit
        f1 = 2 * tp / (k + total_gold)
        if f1 > best_f1:
            best_f1, best_t = f1, p
    return float(best_t)


def _prediction(note: TrainingNote, ranked: list[tuple[str, float]], threshold: float) -> NotePrediction:
    return NotePrediction(
        note.id,
        [c for c, _ in ranked],
        {c for c, p in ranked if p >= threshold},
        note.gold,
        dict(ranked),
    )


def _kb_reference(kb_dir: Path) -> dict[str, Any]:
    manifest = read_manifest(kb_dir)
    return {
        "name": manifest.name,
        "version": manifest.version,
        "manifest_sha256": sha256_file(Path(kb_dir) / "manifest.json"),
        "code_sets": manifest.code_sets,
    }


def _write_artefact(
    out_dir: Path,
    saved_pipeline: Path,
    model: DocumentModel,
    ranker: CodeRanker,
    settings: dict[str, Any],
    manifest: Manifest,
) -> None:
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        shutil.copytree(saved_pipeline, staging / "nlp")
        joblib.dump(model, staging / "document_model.joblib", compress=3)
        joblib.dump(ranker, staging / "ranker.joblib", compress=3)
        (staging / "model.json").write_text(json.dumps(settings, indent=1, sort_keys=True) + "\n", "utf-8")
        (staging / "MODEL_CARD.md").write_text(model_card(manifest, settings), "utf-8")
        write_manifest(staging, manifest)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def model_card(manifest: Manifest, settings: dict[str, Any]) -> str:
    """The model card written beside the artefact."""
    dev = manifest.metrics.get("dev", {})

    return f"""# Model card: {manifest.name} {manifest.version}

## What it does
Ranks ICD-10-CM diagnosis codes for a clinical note (scores calibrated so that 0.8 means about
80% of such suggestions are accepted); codes scoring at or above {settings["threshold"]:.3f} are
`suggested`, the rest `consider`. CPT and HCPCS lines come from the encounter rules, not from this
ranker.

## Data
Trained on the CodiEsp training split (CLEF eHealth 2020, CC BY 4.0; cite Miranda-Escalada et al.,
CEUR-WS Vol-2696, 2020): {manifest.extra.get("train_notes")} clinical case reports; threshold chosen on
the {manifest.extra.get("dev_notes")} dev notes. The CodiEsp test split was never used.

## Dev figures (ICD-10-CM)
{_figure_table(dev)}

## Limits
- The notes are Spanish case reports machine-translated into English, and were coded under Spanish
  rules (CIE-10-ES 2018): symptoms are coded beside the diagnoses that explain them, which US
  outpatient guidelines would not do. The encounter rules apply US guidelines on top of the ranker.
- Published case reports, not EHR notes: the style, length and section headings differ from a
  clinic's documentation. Retrain on your own de-identified notes (`codesuggest train`).
- About 1.5% of the gold codes do not exist in ICD-10-CM FY2026 and can never be suggested.
- Codes never seen in training can only come from the dictionary; their recall is lower.
- Derived from its notes: the document model holds the TF-IDF vocabulary (words and word pairs in
  two or more training notes) and the training notes' vectors and codes. A model trained on your
  own notes is to be handled like them.
"""


def notes_from_corpus(path: Path, system: str = "ICD10CM") -> list[TrainingNote]:
    """Read a corpus file (validated as a whole) into training notes with their gold codes.

    Raises:
        CorpusFormatError: the file has bad lines (every one is listed).
    """
    from corpora.format import read_corpus

    return [TrainingNote(n.id, n.text, set(n.codes_of(system))) for n in read_corpus(Path(path))]


_FIGURES = ("map", "micro_precision", "micro_recall", "micro_f1", "macro_f1", "p_at_5", "r_at_10", "r_at_15")


def _figure_table(dev: dict[str, Any]) -> str:
    def row(label: str, figures: dict[str, Any]) -> str:
        cells = [f"{figures[k]:.3f}" if isinstance(figures.get(k), float) else "n/a" for k in _FIGURES]
        return f"| {label} | " + " | ".join(cells) + " |"

    header = "| level | " + " | ".join(_FIGURES) + " |\n|" + "---|" * (len(_FIGURES) + 1)
    return "\n".join([header, row("code", dev), row("category", dev.get("category", {}))])
