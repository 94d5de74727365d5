"""Training the suggestion model: pipeline + document model + calibrated ranker, as one artefact.

Training rows for the ranker need the note-level signals (document model, nearest notes,
priors) the way they will look on unseen notes, so for training notes they are cross-fitted:
each fold's notes are scored by models fitted on the other folds (folds are notes, so no note's
candidates leak into its own signals). The final document model is then fitted on all training
notes, the threshold between ``suggested`` and ``consider`` is chosen on the dev notes (best
micro-F1), and the dev figures are written into the manifest.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import KFold
from tqdm import tqdm

from corpora.format import read_corpus
from pipeline.evaluate import NotePrediction, score
from pipeline.kb.store import KnowledgeBase
from pipeline.manifest import Manifest, read_manifest, sha256_file, verify_manifest
from pipeline.nlp.assembly import build_pipeline, load_pipeline, save_pipeline
from pipeline.ranking.artefact import MODEL_KIND, MODEL_SCHEMA, TrainParams, kb_reference, write_model
from pipeline.ranking.estimators import CodeRanker, DocumentModel
from pipeline.ranking.features import CodeInfo, CodeInfoCache, Priors, candidate_codes, note_features

logger = logging.getLogger(__name__)


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
    *,
    rule_files: Mapping[str, str],
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
        rule_files: the rule files the model reads besides its pipeline's (the encounter rules:
            :func:`pipeline.encounter.coder.encounter_rule_files`), saved in the artefact.

    Returns:
        The written manifest.
    """
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
        "kb": kb_reference(kb_dir),
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
    write_model(out_dir, saved_pipeline, final_model, ranker, settings, manifest, rule_files)
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


def notes_from_corpus(path: Path, system: str = "ICD10CM") -> list[TrainingNote]:
    """Read a corpus file (validated as a whole) into training notes with their gold codes.

    Raises:
        CorpusFormatError: the file has bad lines (every one is listed).
    """
    return [TrainingNote(n.id, n.text, set(n.codes_of(system))) for n in read_corpus(Path(path))]
