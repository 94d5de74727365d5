"""The model artefact: what a trained model is on disk, how it is written and how it is read.

A model folder holds the spaCy pipeline (``nlp/``), the two fitted estimators
(``document_model.joblib``, ``ranker.joblib``), the settings (``model.json``), a model card and
``manifest.json`` (hashes of every file, library versions; checked before anything is unpickled).
The settings carry :data:`MODEL_SCHEMA`; an artefact of another schema is refused with one line
naming the rebuild command, before its pickles are read.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
from spacy.language import Language

from pipeline.errors import ArtefactError
from pipeline.manifest import Manifest, read_manifest, sha256_file, verify_manifest, write_manifest
from pipeline.nlp.assembly import load_pipeline
from pipeline.ranking.estimators import CodeRanker, DocumentModel

MODEL_KIND = "model"
# Version 2: the estimators moved from pipeline.ranker to pipeline.ranking.estimators, so the pickles
# of a version-1 artefact name modules that no longer exist. Version 3: the encounter rule files are
# saved in the artefact (``encounter/``) and hashed in its manifest; a version-2 artefact has none.
MODEL_SCHEMA = "codesuggest.model-settings/3"


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


def read_model_settings(model_dir: Path) -> tuple[Manifest, dict[str, Any]]:
    """Check a model folder's manifest and read its settings (``model.json``), unpickling nothing.

    Args:
        model_dir: the model folder.

    Returns:
        The verified manifest and the settings.

    Raises:
        ArtefactError: the folder is missing, corrupt, built with other library versions, or
            written by another version of the artefact format (rebuild it with ``make model``).
    """
    manifest = verify_manifest(model_dir, kind=MODEL_KIND)
    settings = json.loads((Path(model_dir) / "model.json").read_text("utf-8"))
    schema = settings.get("schema")
    if schema != MODEL_SCHEMA:
        raise ArtefactError(
            f"{model_dir}: model format {schema!r}, but this codesuggest reads {MODEL_SCHEMA!r}; "
            "rebuild it with `make model` (or `codesuggest train ... --out DIR`)"
        )
    return manifest, settings


def load_estimators(model_dir: Path) -> tuple[Language, DocumentModel, CodeRanker]:
    """Load the spaCy pipeline and the two fitted estimators of a checked model folder.

    Call :func:`read_model_settings` first: it verifies the hashes and the format.

    Raises:
        ArtefactError: a file cannot be read.
    """
    try:
        nlp = load_pipeline(Path(model_dir) / "nlp")
        document_model = joblib.load(Path(model_dir) / "document_model.joblib")
        ranker = joblib.load(Path(model_dir) / "ranker.joblib")
    except (OSError, ValueError, EOFError) as exc:
        raise ArtefactError(f"{model_dir}: cannot load the model: {exc}") from exc
    return nlp, document_model, ranker


def kb_reference(kb_dir: Path) -> dict[str, Any]:
    """What a model records about the knowledge base it was built with (name, version, manifest sha256, code sets)."""
    manifest = read_manifest(kb_dir)
    return {
        "name": manifest.name,
        "version": manifest.version,
        "manifest_sha256": sha256_file(Path(kb_dir) / "manifest.json"),
        "code_sets": manifest.code_sets,
    }


def write_model(
    out_dir: Path,
    saved_pipeline: Path,
    model: DocumentModel,
    ranker: CodeRanker,
    settings: dict[str, Any],
    manifest: Manifest,
    rule_files: Mapping[str, str],
) -> None:
    """Write a model artefact folder atomically: pipeline, estimators, rules, settings, model card, manifest.

    Args:
        out_dir: the folder to write (replaced as a whole).
        saved_pipeline: the spaCy pipeline, saved before it read any note.
        model: the fitted document model.
        ranker: the fitted ranker.
        settings: what ``model.json`` holds (schema, threshold, params, priors, kb).
        manifest: the manifest to write (file hashes are added).
        rule_files: rule files the model reads besides its pipeline's (the encounter rules), as
            folder-relative path -> validated text; saved and hashed with the rest, so that the
            model's answers do not change when the package's copies do.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        shutil.copytree(saved_pipeline, staging / "nlp")
        for rel, text in rule_files.items():
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, "utf-8")
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


_FIGURES = ("map", "micro_precision", "micro_recall", "micro_f1", "macro_f1", "p_at_5", "r_at_10", "r_at_15")


def _figure_table(dev: dict[str, Any]) -> str:
    def row(label: str, figures: dict[str, Any]) -> str:
        cells = [f"{figures[k]:.3f}" if isinstance(figures.get(k), float) else "n/a" for k in _FIGURES]
        return f"| {label} | " + " | ".join(cells) + " |"

    header = "| level | " + " | ".join(_FIGURES) + " |\n|" + "---|" * (len(_FIGURES) + 1)
    return "\n".join([header, row("code", dev), row("category", dev.get("category", {}))])
