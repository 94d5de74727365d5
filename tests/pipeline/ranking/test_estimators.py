"""The document model and the calibrated ranker."""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import pytest

from pipeline.ranking.estimators import CodeRanker, DocumentModel
from pipeline.ranking.features import FEATURES, Priors

TEXTS = [
    "fever and cough with pneumonia in the right lower lobe",
    "pneumonia with fever, cough and dyspnea",
    "ankle sprain after a fall on the stairs",
    "sprain of the left ankle after twisting",
    "type 2 diabetes with high blood sugar",
    "diabetes mellitus type 2 on metformin",
] * 2
GOLD = [{"J18.9", "R50.9"}, {"J18.9", "R05.9"}, {"S93.409A"}, {"S93.402A"}, {"E11.9"}, {"E11.9"}] * 2


@pytest.fixture(scope="module")
def model() -> DocumentModel:
    return DocumentModel(max_features=500, keep_weights=20, knn_k=3).fit(TEXTS, GOLD)


def test_ranker_document_model_learns_codes_seen_twice(model: DocumentModel) -> None:
    assert "J18.9" in model.codes_ and "E11.9" in model.codes_
    assert model.weights_.shape == (len(model.codes_), len(model.feature_names()))
    assert max(model.weights_.getnnz(axis=1)) <= 20


def test_ranker_document_model_scores_the_right_code_first(model: DocumentModel) -> None:
    X = model.transform(["cough and fever, likely pneumonia", "her diabetes is controlled"])
    scores = model.code_scores(X)
    assert max(scores[0], key=scores[0].get) == "J18.9"
    assert max(scores[1], key=scores[1].get) == "E11.9"


def test_ranker_neighbours_share_codes_and_exclude_self(model: DocumentModel) -> None:
    X = model.transform([TEXTS[0]])
    near = model.neighbours(X)[0]
    assert near["J18.9"][1] >= 2
    assert model.neighbours(X, exclude=[0])[0]["J18.9"][1] >= 1


def test_ranker_code_ranker_is_calibrated_and_round_trips(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 3000
    X = rng.normal(size=(n, len(FEATURES))).astype(np.float32)
    y = (X[:, 0] + 0.5 * rng.normal(size=n) > 0.8).astype(int)
    groups = np.arange(n) // 10
    ranker = CodeRanker(max_iter=50, calibration_folds=3).fit(X, y, groups)
    p = ranker.predict_proba(X)[:, 1]
    assert p.min() >= 0.0 and p.max() <= 1.0
    # calibrated: mean probability close to the base rate, and higher scores where y is 1
    assert abs(p.mean() - y.mean()) < 0.03
    assert p[y == 1].mean() > p[y == 0].mean() + 0.4
    joblib.dump(ranker, tmp_path / "r.joblib")
    again = joblib.load(tmp_path / "r.joblib")
    assert np.allclose(again.predict_proba(X[:50]), ranker.predict_proba(X[:50]))
    assert ranker.predict_proba(np.zeros((0, len(FEATURES)))).shape == (0, 2)


def test_ranker_priors_round_trip_and_smoothing() -> None:
    priors = Priors.fit([{"I10", "E11.9"}, {"I10"}])
    assert priors.code_counts == {"I10": 2, "E11.9": 1}
    assert priors.log_prior("I10") > priors.log_prior("E11.9") > priors.log_prior("Z00.00")
    assert Priors.from_dict(priors.to_dict()) == priors
