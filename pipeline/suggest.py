"""The one way through: note text -> suggestions with evidence, a valid encounter code set.

The CLI (``codesuggest suggest``), the service (``POST /v1/suggestions``) and the evaluator all
call :meth:`Suggester.suggest`; none of them re-implements a step.
"""

from __future__ import annotations

import functools
import gc
import logging
import re
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from spacy.language import Language

from pipeline.encounter.coder import RULES_FOLDER, EncounterCoder
from pipeline.errors import ArtefactError, EmptyNoteError, InputError
from pipeline.kb.model import SYSTEMS
from pipeline.kb.store import KnowledgeBase
from pipeline.locations import default_kb_dir, default_model_dir
from pipeline.manifest import Manifest
from pipeline.ranking.artefact import TrainParams, load_estimators, read_model_settings
from pipeline.ranking.estimators import CodeRanker, DocumentModel
from pipeline.ranking.features import CodeInfoCache, Priors, candidate_codes, note_features
from pipeline.types import SETTINGS, Patient, SuggestionResult

logger = logging.getLogger(__name__)


class Suggester:
    """A loaded model: the spaCy pipeline, the note-level model, the ranker and the code sets.

    Load once with :meth:`load` and call :meth:`suggest` per note; safe to share between threads
    for reading (spaCy pipelines and fitted estimators are not mutated by prediction).
    """

    def __init__(
        self,
        model_dir: Path,
        kb: KnowledgeBase,
        manifest: Manifest,
        settings: dict[str, Any],
        nlp: Language,
        document_model: DocumentModel,
        ranker: CodeRanker,
    ) -> None:
        self.model_dir = model_dir
        self.kb = kb
        self.manifest = manifest
        self.settings = settings
        self.nlp = nlp
        self.document_model = document_model
        self.ranker = ranker
        self.threshold = float(settings["threshold"])
        self.params = TrainParams(**settings["params"])
        self.priors = Priors.from_dict(settings["priors"])
        self._info = CodeInfoCache(kb)
        # The encounter rules, and the lists they share with the pipeline, as the model saved them.
        mentions: Any = nlp.get_pipe("cs_mentions")
        sections: Any = nlp.get_pipe("cs_sections")
        attributes: Any = nlp.get_pipe("cs_attributes")
        self.encounter = EncounterCoder(
            kb,
            rules_dir=model_dir / RULES_FOLDER,
            word_groups=mentions.word_groups,
            sections=sections.rules,
            attributes=attributes.rules,
        )

    @property
    def model_version(self) -> str:
        """``name version`` of the model."""
        return f"{self.manifest.name} {self.manifest.version}"

    @property
    def code_set_versions(self) -> dict[str, str]:
        """Versions of the code sets the knowledge base holds."""
        return dict(self.kb.versions)

    @classmethod
    def load(cls, model_dir: Path | None = None, kb_dir: Path | None = None) -> Suggester:
        """Load a model artefact and its knowledge base, checking both manifests first.

        Args:
            model_dir: the model folder (default: the committed ``models/default``).
            kb_dir: the knowledge-base folder (default: the committed ``models/kb``).

        Returns:
            The ready suggester.

        Raises:
            ArtefactError: a folder is missing, corrupt, built with other library versions, or the
                model was built against another knowledge base.
        """
        started = time.perf_counter()
        model_dir = Path(model_dir or default_model_dir())
        kb_dir = Path(kb_dir or default_kb_dir())
        manifest, settings = read_model_settings(model_dir)
        kb = KnowledgeBase.load(kb_dir)
        expected = settings.get("kb", {}).get("code_sets")
        if expected and expected != kb.versions:
            raise ArtefactError(
                f"{model_dir} was built with code sets {expected}, but {kb_dir} holds {kb.versions}; "
                "retrain the model (make model) or point --kb at the knowledge base it was built with"
            )
        nlp, document_model, ranker = load_estimators(model_dir)
        suggester = cls(model_dir, kb, manifest, settings, nlp, document_model, ranker)
        # The knowledge base and term tables are a few million long-lived objects: moved out of the
        # collector's reach, they stop making every full collection (and so some requests) slow.
        gc.collect()
        gc.freeze()
        logger.info("loaded %s %s in %.1f s", manifest.name, manifest.version, time.perf_counter() - started)
        return suggester

    def model_info(self) -> dict[str, Any]:
        """What an integration needs to know about the loaded model."""
        return {
            "name": self.manifest.name,
            "version": self.manifest.version,
            "created_at": self.manifest.created_at,
            "git_commit": self.manifest.git_commit,
            "training_data": self.manifest.training_data,
            "metrics": self.manifest.metrics,
            "threshold": self.threshold,
            "code_set_versions": self.code_set_versions,
        }

    def suggest(
        self,
        text: str,
        *,
        setting: str = "outpatient",
        code_systems: Sequence[str] | None = None,
        top_k: int | None = None,
        min_score: float | None = None,
        patient: Patient | None = None,
        encounter_date: date | None = None,
        note_id: str | None = None,
    ) -> SuggestionResult:
        """Suggest codes for one note.

        Args:
            text: the note.
            setting: ``outpatient`` or ``inpatient`` (decides how uncertain diagnoses are coded).
            code_systems: systems to return (default all: ICD10CM, CPT, HCPCS).
            top_k: at most this many suggestions.
            min_score: leave out suggestions scoring below this.
            patient: age and sex, when known.
            encounter_date: the date of service, when known.
            note_id: the caller's id for the note (logged; never the text).

        Returns:
            The ranked suggestions, excluded mentions and the encounter code set.

        Raises:
            EmptyNoteError: the text is empty or whitespace.
            InputError: an unknown setting or code system, or a bad ``top_k`` / ``min_score``.
        """
        return self.suggest_batch(
            [text],
            setting=setting,
            code_systems=code_systems,
            top_k=top_k,
            min_score=min_score,
            patient=patient,
            encounter_date=encounter_date,
            note_ids=[note_id],
        )[0]

    def suggest_batch(
        self,
        texts: Sequence[str],
        *,
        setting: str = "outpatient",
        code_systems: Sequence[str] | None = None,
        top_k: int | None = None,
        min_score: float | None = None,
        patient: Patient | None = None,
        encounter_date: date | None = None,
        note_ids: Sequence[str | None] | None = None,
    ) -> list[SuggestionResult]:
        """Suggest codes for several notes at once (the pipeline runs them as one batch).

        Args and raises as for :meth:`suggest`; ``note_ids`` gives one id per text.
        """
        systems = _check_options(setting, code_systems, top_k, min_score)
        for i, text in enumerate(texts):
            if not isinstance(text, str) or not text.strip():
                where = f" (note {i + 1})" if len(texts) > 1 else ""
                raise EmptyNoteError(f"the note text is empty or whitespace only{where}")
        started = time.perf_counter()
        docs = list(self.nlp.pipe(texts))
        X = self.document_model.transform(list(texts))
        all_scores, all_near = self.document_model.code_scores(X), self.document_model.neighbours(X)
        shared = (time.perf_counter() - started) / len(texts)  # the batch's common work, per note
        results = []
        for i, (doc, scores, near) in enumerate(zip(docs, all_scores, all_near, strict=True)):
            t0 = time.perf_counter()
            codes = candidate_codes(doc, scores, near, self.params.doc_top, frozenset({"ICD10CM"}))
            feats = note_features(doc, codes, scores, near, self.priors, self._info)
            probs: Any = self.ranker.predict_proba(feats)[:, 1] if codes else []
            ranked = sorted(zip(codes, (float(p) for p in probs), strict=True), key=lambda cp: -cp[1])
            explain = _Explainer(self.document_model, X[i], doc.text)
            outcome = self.encounter.code(
                doc,
                ranked,
                threshold=self.threshold,
                setting=setting,
                patient=patient,
                encounter_date=encounter_date,
                explain=explain,
            )
            suggestions = [s for s in outcome.suggestions if s.system in systems]
            if min_score is not None:
                suggestions = [s for s in suggestions if s.score >= min_score]
            if top_k is not None:
                suggestions = suggestions[:top_k]
            for rank, s in enumerate(suggestions, start=1):
                s.rank = rank
            code_set = [line for line in outcome.code_set if line.system in systems]
            elapsed = shared + (time.perf_counter() - t0)
            note_id = note_ids[i] if note_ids else None
            logger.info(
                "suggest note_id=%s chars=%d suggestions=%d ms=%.1f",
                note_id,
                len(doc.text),
                len(suggestions),
                1000 * elapsed,
            )
            results.append(
                SuggestionResult(
                    suggestions=suggestions,
                    excluded=outcome.excluded,
                    code_set=code_set,
                    model_version=self.model_version,
                    code_set_versions=self.code_set_versions,
                    setting=setting,
                    elapsed_ms=round(1000 * elapsed, 2),
                    note_length=len(doc.text),
                    extra=outcome.extra,
                )
            )
        return results


def _check_options(
    setting: str, code_systems: Sequence[str] | None, top_k: int | None, min_score: float | None
) -> frozenset[str]:
    if setting not in SETTINGS:
        raise InputError(f"setting must be one of {list(SETTINGS)}, not {setting!r}")
    systems = frozenset(code_systems) if code_systems else frozenset(SYSTEMS)
    unknown = systems - set(SYSTEMS)
    if unknown:
        raise InputError(f"unknown code system(s) {sorted(unknown)}; use {list(SYSTEMS)}")
    if top_k is not None and top_k < 1:
        raise InputError("top_k must be at least 1")
    if min_score is not None and not 0.0 <= min_score <= 1.0:
        raise InputError("min_score must be between 0 and 1")
    return systems


class _Explainer:
    """Points at the words of a note that drove the document model's score for a code.

    Built once per note: the note's non-zero TF-IDF columns are kept sorted so that each code's
    (pruned, sparse) weight row is intersected with them directly, and each code's answer is
    cached, because the encounter rules may ask for many codes.
    """

    def __init__(self, model: DocumentModel, vector: Any, text: str) -> None:
        self.model = model
        row = vector.tocsr()
        order = np.argsort(row.indices)
        self._cols = row.indices[order]
        self._vals = row.data[order]
        self.text = text
        self._lower = text.lower()
        self._index = {c: i for i, c in enumerate(model.codes_)}
        self._cache: dict[str, list[tuple[int, int, str]]] = {}

    def __call__(self, code: str, k: int = 3) -> list[tuple[int, int, str]]:
        """Up to ``k`` ``(start, end, text)`` spans of the strongest positive features."""
        if code in self._cache:
            return self._cache[code][:k]
        row = self._index.get(code)
        spans: list[tuple[int, int, str]] = []
        if row is not None and len(self._cols):
            weights = self.model.weights_
            lo, hi = weights.indptr[row], weights.indptr[row + 1]
            cols, w = weights.indices[lo:hi], weights.data[lo:hi]
            at = np.clip(np.searchsorted(self._cols, cols), 0, len(self._cols) - 1)
            hit = self._cols[at] == cols
            contrib = w[hit] * self._vals[at[hit]]
            names = self.model.feature_names()
            for j in np.argsort(-contrib):
                if contrib[j] <= 0 or len(spans) >= k:
                    break
                term = str(names[cols[hit][j]])
                found = _word_pattern(term).search(self._lower)
                if found is not None:
                    spans.append((found.start(), found.end(), self.text[found.start() : found.end()]))
        self._cache[code] = spans
        return spans[:k]


@functools.lru_cache(maxsize=50_000)
def _word_pattern(term: str) -> re.Pattern[str]:
    return re.compile(r"\b" + r"\W+".join(map(re.escape, term.split())) + r"\b")


def format_result(result: SuggestionResult) -> str:
    """Human-readable form of a :class:`SuggestionResult` (the CLI's default output)."""
    out = [f"{result.model_version} | {', '.join(f'{k} {v}' for k, v in result.code_set_versions.items())}"]
    out.append(f"{'rank':>4}  {'code':<9} {'system':<7} {'score':>5}  {'status':<9} description")
    for s in result.suggestions:
        mods = f" -{'-'.join(s.modifiers)}" if s.modifiers else ""
        out.append(f"{s.rank:>4}  {s.code + mods:<9} {s.system:<7} {s.score:>5.2f}  {s.status:<9} {s.description}")
        for e in s.evidence[:3]:
            out.append(f"{'':>8}evidence {e.start}-{e.end}: {e.text!r}" + (f" [{e.section}]" if e.section else ""))
        for r in s.rules:
            out.append(f"{'':>8}rule {r.id}: {r.message}")
        if s.query:
            out.append(f"{'':>8}query: {s.query}")
    if result.excluded:
        out.append("left out:")
        for x in result.excluded:
            out.append(f"  {x.start}-{x.end} {x.text!r}: {x.reason}")
    if result.code_set:
        out.append("encounter code set:")
        for line in result.code_set:
            mods = f" -{'-'.join(line.modifiers)}" if line.modifiers else ""
            ptr = f" -> {', '.join(line.pointers)}" if line.pointers else ""
            out.append(f"  {line.sequence}. {line.code}{mods} ({line.role}) {line.description}{ptr}")
    return "\n".join(out) + "\n"
