"""The one suggest path with the committed default model."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from pipeline.errors import ArtefactError, EmptyNoteError, InputError
from pipeline.locations import default_kb_dir, default_model_dir
from pipeline.manifest import read_manifest, write_manifest
from pipeline.suggest import Suggester, format_result
from pipeline.types import SuggestionResult

ANKLE = (
    "CHIEF COMPLAINT: Right ankle injury.\n"
    "HPI: She slipped and fell this morning, twisting the right ankle. No numbness.\n"
    "IMAGING: X-ray of the right ankle, three views: no fracture.\n"
    "ASSESSMENT: Sprain of the right ankle, initial encounter.\n"
)


def test_suggest_returns_ranked_codes_with_evidence(suggester: Suggester) -> None:
    result = suggester.suggest(ANKLE, note_id="t1")
    assert isinstance(result, SuggestionResult)
    assert result.model_version == suggester.model_version
    assert result.code_set_versions["ICD10CM"].startswith("FY2026")
    assert result.note_length == len(ANKLE)
    codes = [s.code for s in result.suggestions]
    assert any(c.startswith("S93.4") and c.endswith("A") for c in codes), codes
    assert [s.rank for s in result.suggestions] == list(range(1, len(result.suggestions) + 1))
    icd_scores = [s.score for s in result.suggestions if s.system == "ICD10CM"]
    assert all(0.0 <= s <= 1.0 for s in icd_scores)
    for s in result.suggestions:
        assert suggester.kb.get(s.code, s.system) is not None, s.code  # type: ignore[arg-type]
        assert suggester.kb.get(s.code, s.system).billable  # type: ignore[arg-type, union-attr]
        for e in s.evidence:
            assert ANKLE[e.start : e.end] == e.text
    assert not any(c.startswith("S82") for c in (line.code for line in result.code_set))
    json.dumps(result.to_dict())
    assert "S93.4" in format_result(result)


def test_suggest_options_filter_and_cut(suggester: Suggester) -> None:
    result = suggester.suggest(ANKLE, code_systems=["ICD10CM"], top_k=3, min_score=0.05)
    assert len(result.suggestions) <= 3
    assert all(s.system == "ICD10CM" and s.score >= 0.05 for s in result.suggestions)


def test_suggest_batch_equals_single(suggester: Suggester) -> None:
    texts = [ANKLE, "Assessment: essential hypertension and type 2 diabetes mellitus."]
    batch = suggester.suggest_batch(texts)
    for text, result in zip(texts, batch, strict=True):
        single = suggester.suggest(text)
        assert [(s.code, s.score) for s in single.suggestions] == [(s.code, s.score) for s in result.suggestions]


def test_suggest_elapsed_is_the_time_spent(suggester: Suggester) -> None:
    started = time.perf_counter()
    result = suggester.suggest(ANKLE)
    wall_ms = 1000 * (time.perf_counter() - started)
    assert 0 < result.elapsed_ms <= wall_ms
    # in a batch each note gets its share of the common work plus its own
    started = time.perf_counter()
    batch = suggester.suggest_batch([ANKLE, ANKLE, ANKLE])
    wall_ms = 1000 * (time.perf_counter() - started)
    assert 0 < sum(r.elapsed_ms for r in batch) <= wall_ms


@pytest.mark.parametrize("text", ["", "  \n\t "])
def test_suggest_rejects_empty_notes(suggester: Suggester, text: str) -> None:
    with pytest.raises(EmptyNoteError):
        suggester.suggest(text)


@pytest.mark.parametrize(
    "kwargs",
    [{"setting": "ambulance"}, {"code_systems": ["ICD9"]}, {"top_k": 0}, {"min_score": 1.5}],
)
def test_suggest_rejects_bad_options(suggester: Suggester, kwargs: dict) -> None:
    with pytest.raises(InputError):
        suggester.suggest(ANKLE, **kwargs)


def test_suggest_model_info_reports_the_manifest_and_settings(suggester: Suggester) -> None:
    manifest = read_manifest(default_model_dir())
    settings = json.loads((default_model_dir() / "model.json").read_text("utf-8"))
    info = suggester.model_info()
    assert (info["name"], info["version"]) == (manifest.name, manifest.version)
    assert info["metrics"] == manifest.metrics and info["training_data"] == manifest.training_data
    assert info["threshold"] == settings["threshold"] == suggester.threshold
    assert info["code_set_versions"] == suggester.kb.versions


def test_suggest_load_refuses_a_tampered_model(tmp_path: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(default_model_dir(), copy)
    with open(copy / "ranker.joblib", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ArtefactError, match=r"ranker\.joblib"):
        Suggester.load(copy)


def test_suggest_load_refuses_a_missing_model(tmp_path: Path) -> None:
    with pytest.raises(ArtefactError, match="manifest"):
        Suggester.load(tmp_path)


def test_suggest_load_refuses_another_knowledge_base(tmp_path: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(default_model_dir(), copy)
    settings = json.loads((copy / "model.json").read_text("utf-8"))
    settings["kb"]["code_sets"] = {"ICD10CM": "FY1999"}
    (copy / "model.json").write_text(json.dumps(settings), "utf-8")
    write_manifest(copy, read_manifest(copy))
    with pytest.raises(ArtefactError, match="FY1999"):
        Suggester.load(copy, default_kb_dir())
