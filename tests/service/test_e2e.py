"""End to end through TestClient with the real default model and knowledge base.

These load ``Suggester.load()`` (``models/default``, ``models/kb``) in the app's lifespan once per
session (the ``real_service`` fixture).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipeline.locations import PROJECT_ROOT
from service.schemas import SuggestionResponse
from tests.service.conftest import Service

pytestmark = pytest.mark.slow

SAMPLES = PROJECT_ROOT / "corpora" / "samples"


def sample(name: str) -> str:
    return (SAMPLES / name).read_text(encoding="utf-8")


def test_e2e_suggestions_match_the_suggest_path(real_service: Service) -> None:
    text = sample("ankle_sprain.txt")
    body = {
        "text": text,
        "note_id": "sample-ankle",
        "encounter_date": "2026-11-02",
        "patient": {"age": 34, "sex": "female"},
    }
    response = real_service.client.post("/v1/suggestions", json=body, headers=real_service.headers("integration"))
    assert response.status_code == 200, response.text
    data = response.json()
    SuggestionResponse.model_validate(data)
    suggester = real_service.suggester
    assert data["model_version"] == suggester.model_version == response.headers["X-Model-Version"]
    assert data["code_set_versions"] == suggester.code_set_versions
    assert data["suggestions"], "the sample ankle note got no suggestions"
    for s in data["suggestions"]:
        for e in s["evidence"]:
            assert text[e["start"] : e["end"]] == e["text"]
    # The same suggest call the CLI makes gives the same ranked codes and scores.
    from datetime import date

    from pipeline.types import Patient

    direct = suggester.suggest(
        text,
        patient=Patient(34, "female"),
        encounter_date=date(2026, 11, 2),
        note_id="sample-ankle",
    )
    assert [(s["code"], s["score"]) for s in data["suggestions"]] == [(s.code, s.score) for s in direct.suggestions]
    assert [line["code"] for line in data["code_set"]] == [line.code for line in direct.code_set]


@pytest.mark.parametrize(
    "name",
    [
        "ankle_sprain.txt",
        "diabetes_follow_up.txt",
        "ed_chest_pain.txt",
        "inpatient_discharge_summary.txt",
    ],
)
def test_e2e_samples_get_icd10cm_suggestions(real_service: Service, name: str) -> None:
    setting = "inpatient" if "inpatient" in name else "outpatient"
    body = {"text": sample(name), "setting": setting, "code_systems": ["ICD10CM"], "top_k": 5}
    data = real_service.client.post("/v1/suggestions", json=body, headers=real_service.headers()).json()
    assert 0 < len(data["suggestions"]) <= 5
    assert {s["system"] for s in data["suggestions"]} == {"ICD10CM"}
    assert [s["rank"] for s in data["suggestions"]] == list(range(1, len(data["suggestions"]) + 1))
    assert {s["status"] for s in data["suggestions"]} <= {"suggested", "consider", "query"}
    assert all(0.0 <= s["score"] <= 1.0 for s in data["suggestions"])


def test_e2e_batch_equals_single_calls(real_service: Service) -> None:
    names = ["ankle_sprain.txt", "diabetes_follow_up.txt", "ed_chest_pain.txt"]
    notes = [{"note_id": n, "text": sample(n)} for n in names]
    batch = real_service.client.post("/v1/suggestions/batch", json={"notes": notes}, headers=real_service.headers())
    assert batch.status_code == 200, batch.text
    for note, result in zip(notes, batch.json()["results"], strict=True):
        single = real_service.client.post("/v1/suggestions", json=note, headers=real_service.headers()).json()
        assert [(s["code"], round(s["score"], 6)) for s in result["suggestions"]] == [
            (s["code"], round(s["score"], 6)) for s in single["suggestions"]
        ]


def test_e2e_code_lookup_and_search(real_service: Service) -> None:
    headers = real_service.headers("coder")
    code = real_service.client.get("/v1/codes/s93401a", headers=headers)
    assert code.status_code == 200, code.text
    assert code.json()["code"] == "S93.401A"
    assert "ankle" in code.json()["description"].lower()
    assert code.json()["seventh"]
    assert real_service.client.get("/v1/codes/Z99.9999", headers=headers).status_code == 404
    hits = real_service.client.get(
        "/v1/codes", params={"q": "sprain of right ankle", "system": "ICD10CM"}, headers=headers
    )
    assert hits.status_code == 200
    codes = [h["code"] for h in hits.json()["results"]]
    assert any(c.startswith("S93.4") for c in codes), codes


def test_e2e_model_info(real_service: Service) -> None:
    data = real_service.client.get("/v1/model", headers=real_service.headers()).json()
    assert f"{data['name']} {data['version']}" == data["model_version"]
    assert data["training_data"]
    assert data["metrics"]
    assert data["code_set_versions"]["ICD10CM"]


def test_e2e_feedback_with_real_codes(real_service: Service, tmp_path: Path) -> None:
    body: dict[str, Any] = {
        "note_id": "sample-ankle",
        "user": "coder-e2e",
        "decisions": [
            {"code": "S93.401A", "decision": "accepted"},
            {"code": "W01.0XXA", "decision": "added"},
            {"code": "S93.409A", "decision": "modified", "replaced_by": "S93.401A"},
            {"code": "L1906", "decision": "rejected"},
        ],
    }
    response = real_service.client.post("/v1/feedback", json=body, headers=real_service.headers("coder"))
    assert response.status_code == 201, response.text
    assert response.json()["stored"] == 4
    bad = {**body, "decisions": [{"code": "S93.999Z", "decision": "added"}]}
    response = real_service.client.post("/v1/feedback", json=bad, headers=real_service.headers("coder"))
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["field"] == "decisions[0].code"
