"""Features of (note, candidate code) pairs, and the note-level learned signals behind them.

Candidates for a note are the union of what the spaCy pipeline found (``doc._.cs_candidates``)
and what the note-level models propose: a linear TF-IDF model per code seen in training (so a
code implied but not written can surface) and the codes of the most similar training notes.
Every candidate gets the same fixed vector of :data:`FEATURES`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from spacy.tokens import Doc

from pipeline.nlp.candidates import CodeCandidate
from pipeline.nlp.extensions import MENTIONS, assertions_of

DICT_SOURCES = (
    "lexicon",
    "index",
    "inclusion",
    "title",
    "neoplasm",
    "drug",
    "external",
    "fuzzy",
    "cpt",
    "hcpcs",
)
ASSESSMENT_SECTIONS = frozenset(
    {"assessment", "assessment_plan", "impression", "diagnoses", "discharge_diagnoses", "plan"}
)
HISTORY_SECTIONS = frozenset({"past_medical_history", "past_surgical_history"})

FEATURES: tuple[str, ...] = (
    "dict_found",
    "n_mentions",
    "n_affirmed",
    "frac_negated",
    "any_family",
    "any_historical",
    "any_hypothetical",
    "any_uncertain",
    *(f"src_{s}" for s in DICT_SOURCES),
    "n_sources",
    "best_similarity",
    "min_completion",
    "all_defaulted",
    "max_n_keys",
    "max_compactness",
    "all_subsumed",
    "first_position",
    "in_assessment",
    "in_hpi",
    "in_history_section",
    "in_family_section",
    "side_stated",
    "episode_stated",
    "is_symptom",
    "is_z",
    "is_external",
    "is_injury",
    "code_length",
    "title_unspecified",
    "title_other",
    "chapter",
    "log_prior",
    "cat_log_prior",
    "seen_in_train",
    "doc_score",
    "doc_rank",
    "has_doc_model",
    "knn_score",
    "knn_count",
    "n_same_category",
    "category_dict_found",
    "category_doc_score",
)
INDEX = {name: i for i, name in enumerate(FEATURES)}


@dataclass(slots=True)
class CodeInfo:
    """What the features need to know about a code (from the knowledge base)."""

    title_unspecified: bool
    title_other: bool
    chapter: int


class CodeInfoCache(dict[str, CodeInfo]):
    """Code facts looked up in the knowledge base on first use.

    Args:
        kb: the knowledge base (anything with ``get(code) -> CodeRecord | None``).
    """

    def __init__(self, kb: Any) -> None:
        super().__init__()
        self.kb = kb

    def __missing__(self, code: str) -> CodeInfo:
        rec = self.kb.get(code)
        title = (rec.title if rec is not None else "").lower()
        chapter = int(rec.chapter) if rec is not None and str(rec.chapter or "").isdigit() else 0
        info = self[code] = CodeInfo("unspecified" in title, title.startswith("other") or " other " in title, chapter)
        return info

    def get(self, code: str, default: Any = None) -> CodeInfo:  # type: ignore[override]
        """The facts of ``code`` (looked up when missing)."""
        return self[code]


@dataclass(slots=True)
class Priors:
    """Training-set code frequencies.

    Attributes:
        n_notes: training notes.
        code_counts: code -> notes it is gold in.
        category_counts: 3-character category -> notes it is gold in.
    """

    n_notes: int
    code_counts: dict[str, int]
    category_counts: dict[str, int]

    @classmethod
    def fit(cls, gold: Sequence[set[str]]) -> Priors:
        """Count codes and categories over training notes."""
        codes: Counter[str] = Counter()
        cats: Counter[str] = Counter()
        for g in gold:
            codes.update(g)
            cats.update({c[:3] for c in g})
        return cls(len(gold), dict(codes), dict(cats))

    def log_prior(self, code: str) -> float:
        """Smoothed log share of training notes that carry the code."""
        return math.log((self.code_counts.get(code, 0) + 0.5) / (self.n_notes + 1))

    def cat_log_prior(self, code: str) -> float:
        """Smoothed log share of training notes that carry the code's category."""
        return math.log((self.category_counts.get(code[:3], 0) + 0.5) / (self.n_notes + 1))

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "n_notes": self.n_notes,
            "code_counts": self.code_counts,
            "category_counts": self.category_counts,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Priors:
        """Inverse of :meth:`to_dict`."""
        return cls(int(data["n_notes"]), dict(data["code_counts"]), dict(data["category_counts"]))


def candidate_codes(
    doc: Doc,
    doc_scores: dict[str, float],
    knn_scores: dict[str, tuple[float, int]],
    doc_top: int,
    systems: frozenset[str] | None = None,
) -> list[str]:
    """The note's candidate codes: every pipeline candidate plus the note-level models' best.

    Args:
        doc: the annotated note.
        doc_scores: code -> note-level linear model probability.
        knn_scores: code -> (similarity share, count) from the nearest training notes.
        doc_top: how many of the linear model's best codes to add.
        systems: keep only codes of these systems (None keeps all).

    Returns:
        Codes in a stable order: pipeline candidates first (by first mention), then learned ones.
    """
    found: dict[str, CodeCandidate] = doc._.cs_candidates or {}
    codes = [c for c, cand in found.items() if systems is None or cand.system in systems]
    seen = set(codes)
    if systems is None or "ICD10CM" in systems:
        for code, _ in sorted(doc_scores.items(), key=lambda kv: -kv[1])[:doc_top]:
            if code not in seen:
                codes.append(code)
                seen.add(code)
        for code in sorted(knn_scores, key=lambda c: -knn_scores[c][0]):
            if code not in seen:
                codes.append(code)
                seen.add(code)
    return codes


def note_features(
    doc: Doc,
    codes: Sequence[str],
    doc_scores: dict[str, float],
    knn_scores: dict[str, tuple[float, int]],
    priors: Priors,
    info: dict[str, CodeInfo],
) -> np.ndarray:
    """Build the feature matrix for one note.

    Args:
        doc: the annotated note.
        codes: its candidate codes (see :func:`candidate_codes`).
        doc_scores: note-level linear model probabilities.
        knn_scores: nearest-neighbour evidence.
        priors: training frequencies.
        info: code facts from the knowledge base.

    Returns:
        A ``len(codes) x len(FEATURES)`` float32 matrix.
    """
    X = np.zeros((len(codes), len(FEATURES)), dtype=np.float32)
    found: dict[str, CodeCandidate] = doc._.cs_candidates or {}
    mentions = list(doc.spans[MENTIONS]) if MENTIONS in doc.spans else []
    text_len = max(len(doc.text), 1)
    doc_rank = {c: r for r, (c, _) in enumerate(sorted(doc_scores.items(), key=lambda kv: -kv[1]))}
    by_category: dict[str, list[str]] = {}
    for code in codes:
        by_category.setdefault(code[:3], []).append(code)
    cat_dict = {cat: any(c in found for c in cs) for cat, cs in by_category.items()}
    cat_doc = {cat: max(doc_scores.get(c, 0.0) for c in cs) for cat, cs in by_category.items()}
    for row, code in enumerate(codes):
        x = X[row]
        cand = found.get(code)
        if cand is not None:
            _dictionary_features(x, cand, mentions, text_len)
        ci = info.get(code)
        x[INDEX["is_symptom"]] = code[0] == "R"
        x[INDEX["is_z"]] = code[0] == "Z"
        x[INDEX["is_external"]] = code[0] in "VWXY"
        x[INDEX["is_injury"]] = code[0] in "ST"
        x[INDEX["code_length"]] = len(code.replace(".", ""))
        if ci is not None:
            x[INDEX["title_unspecified"]] = ci.title_unspecified
            x[INDEX["title_other"]] = ci.title_other
            x[INDEX["chapter"]] = ci.chapter
        x[INDEX["log_prior"]] = priors.log_prior(code)
        x[INDEX["cat_log_prior"]] = priors.cat_log_prior(code)
        x[INDEX["seen_in_train"]] = code in priors.code_counts
        if code in doc_scores:
            x[INDEX["doc_score"]] = doc_scores[code]
            x[INDEX["doc_rank"]] = math.log1p(doc_rank[code])
            x[INDEX["has_doc_model"]] = 1.0
        else:
            x[INDEX["doc_rank"]] = math.log1p(len(doc_scores) + 1)
        share, count = knn_scores.get(code, (0.0, 0))
        x[INDEX["knn_score"]] = share
        x[INDEX["knn_count"]] = count
        x[INDEX["n_same_category"]] = len(by_category[code[:3]])
        x[INDEX["category_dict_found"]] = cat_dict[code[:3]]
        x[INDEX["category_doc_score"]] = cat_doc[code[:3]]
    return X


def _dictionary_features(x: np.ndarray, cand: CodeCandidate, mentions: list[Any], text_len: int) -> None:
    x[INDEX["dict_found"]] = 1.0
    spans = [mentions[i] for i in cand.mentions if i < len(mentions)]
    assertions = [assertions_of(s) for s in spans]
    n = max(len(spans), 1)
    affirmed = sum(1 for a in assertions if not (a["negated"] or a["family"] or a["hypothetical"]))
    x[INDEX["n_mentions"]] = math.log1p(len(spans))
    x[INDEX["n_affirmed"]] = math.log1p(affirmed)
    x[INDEX["frac_negated"]] = sum(a["negated"] for a in assertions) / n
    x[INDEX["any_family"]] = any(a["family"] for a in assertions)
    x[INDEX["any_historical"]] = any(a["historical"] for a in assertions)
    x[INDEX["any_hypothetical"]] = any(a["hypothetical"] for a in assertions)
    x[INDEX["any_uncertain"]] = any(a["uncertain"] for a in assertions)
    sources = {c.source for c in cand.candidates}
    for s in sources:
        key = f"src_{s}"
        if key in INDEX:
            x[INDEX[key]] = 1.0
    x[INDEX["n_sources"]] = len(sources)
    x[INDEX["best_similarity"]] = max(c.similarity for c in cand.candidates)
    x[INDEX["min_completion"]] = min(c.completion for c in cand.candidates)
    x[INDEX["all_defaulted"]] = all(c.defaulted for c in cand.candidates)
    x[INDEX["max_n_keys"]] = max(c.n_keys for c in cand.candidates)
    x[INDEX["max_compactness"]] = max(c.compactness for c in cand.candidates)
    x[INDEX["all_subsumed"]] = all(c.subsumed for c in cand.candidates)
    if spans:
        x[INDEX["first_position"]] = min(s.start_char for s in spans) / text_len
        sections = {s._.cs_section for s in spans}
        x[INDEX["in_assessment"]] = bool(sections & ASSESSMENT_SECTIONS)
        x[INDEX["in_hpi"]] = "hpi" in sections
        x[INDEX["in_history_section"]] = bool(sections & HISTORY_SECTIONS)
        x[INDEX["in_family_section"]] = "family_history" in sections
        x[INDEX["side_stated"]] = any(s._.cs_laterality for s in spans)
        x[INDEX["episode_stated"]] = any(s._.cs_episode for s in spans)
