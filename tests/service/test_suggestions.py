"""POST /v1/suggestions and /v1/suggestions/batch against the in-test suggester."""

from __future__ import annotations

from typing import Any

import pytest

from service.schemas import BatchResponse, SuggestionResponse
from tests.service.conftest import FAKE_VERSIONS, Service

NOTE = "Assessment: right ankle sprain after a fall. Plan: brace."


def test_suggestions_returns_ranked_codes_with_evidence_and_versions(service: Service) -> None:
    body = {
        "text": NOTE,
        "note_id": "enc-1",
        "setting": "inpatient",
        "encounter_date": "2026-11-02",
        "patient": {"age": 47, "sex": "female"},
        "code_systems": ["ICD10CM", "CPT"],
        "top_k": 5,
        "min_score": 0.1,
    }
    response = service.client.post("/v1/suggestions", json=body, headers=service.headers("integration"))
    assert response.status_code == 200, response.text
    data = response.json()
    SuggestionResponse.model_validate(data)
    assert data["note_id"] == "enc-1"
    assert data["setting"] == "inpatient"
    assert data["model_version"] == "fake-model 0.0.1"
    assert data["code_set_versions"] == FAKE_VERSIONS
    assert data["request_id"] == response.headers["X-Request-ID"]
    assert response.headers["X-Model-Version"] == "fake-model 0.0.1"
    assert "ICD10CM=FY2026 test" in response.headers["X-Code-Set-Versions"]
    top = data["suggestions"][0]
    assert (top["code"], top["system"], top["rank"], top["status"]) == (
        "S93.401A",
        "ICD10CM",
        1,
        "suggested",
    )
    span = top["evidence"][0]
    assert NOTE[span["start"] : span["end"]] == span["text"]
    assert top["rules"] == [{"id": "icd.7th.initial", "message": "7th character A"}]
    assert data["code_set"][0]["role"] == "first-listed"
    call = service.suggester.calls[-1]
    assert call["setting"] == "inpatient"
    assert call["code_systems"] == ["ICD10CM", "CPT"]
    assert call["top_k"] == 5 and call["min_score"] == 0.1
    assert call["patient"].age == 47 and call["patient"].sex == "female"
    assert str(call["encounter_date"]) == "2026-11-02"
    assert call["note_id"] == "enc-1"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": ""}, "text"),
        ({"text": "   \n\t "}, "text"),
        ({}, "text"),
        ({"text": NOTE, "setting": "emergency"}, "setting"),
        ({"text": NOTE, "top_k": 0}, "top_k"),
        ({"text": NOTE, "top_k": "many"}, "top_k"),
        ({"text": NOTE, "min_score": 1.5}, "min_score"),
        ({"text": NOTE, "code_systems": ["ICD9"]}, "code_systems[0]"),
        ({"text": NOTE, "code_systems": []}, "code_systems"),
        ({"text": NOTE, "patient": {"age": -1}}, "patient.age"),
        ({"text": NOTE, "patient": {"sex": "x"}}, "patient.sex"),
        ({"text": NOTE, "encounter_date": "yesterday"}, "encounter_date"),
        ({"text": NOTE, "encounter_date": 0}, "encounter_date"),
        ({"text": NOTE, "encounter_date": 1700000000}, "encounter_date"),
        ({"text": NOTE, "colour": "blue"}, "colour"),
        ({"text": 42}, "text"),
    ],
)
def test_suggestions_rejects_bad_fields_naming_them(service: Service, body: dict[str, Any], field: str) -> None:
    response = service.client.post("/v1/suggestions", json=body, headers=service.headers())
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["type"] == "validation_error"
    assert field in [f["field"] for f in error["fields"]]
    assert field in error["message"]
    assert error["request_id"] == response.headers["X-Request-ID"]
    assert service.suggester.calls == []


def test_suggestions_empty_text_message_says_why(service: Service) -> None:
    response = service.client.post("/v1/suggestions", json={"text": "  "}, headers=service.headers())
    assert response.json()["error"]["fields"] == [{"field": "text", "message": "text is empty or whitespace only"}]


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"text": "ankle', "application/json"),
        (b"not json at all", "application/json"),
        (b"[1, 2]", "application/json"),
    ],
)
def test_suggestions_invalid_json_is_422_naming_the_body(service: Service, content: bytes, content_type: str) -> None:
    headers = service.headers(**{"Content-Type": content_type})
    response = service.client.post("/v1/suggestions", content=content, headers=headers)
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["field"] == "body"


@pytest.mark.parametrize(("limit", "length", "status"), [(50, 50, 200), (50, 51, 413), (1000, 1001, 413)])
def test_suggestions_text_over_the_limit_is_413(service_factory: Any, limit: int, length: int, status: int) -> None:
    svc = service_factory(max_text_chars=limit)
    text = ("ankle " * length)[:length]
    response = svc.client.post("/v1/suggestions", json={"text": text}, headers=svc.headers())
    assert response.status_code == status, response.text
    if status == 413:
        error = response.json()["error"]
        assert error["type"] == "note_too_long"
        assert f"{limit:,}" in error["message"]


def test_suggestions_body_over_the_byte_limit_is_413(service_factory: Any) -> None:
    svc = service_factory(max_body_bytes=2048)
    response = svc.client.post("/v1/suggestions", json={"text": "a" * 4000}, headers=svc.headers())
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "payload_too_large"
    assert response.headers["X-Request-ID"]


def test_suggestions_unexpected_error_is_500_with_error_body(service: Service) -> None:
    response = service.client.post("/v1/suggestions", json={"text": "BOOM ankle"}, headers=service.headers())
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["type"] == "internal_error"
    assert error["request_id"] == response.headers["X-Request-ID"]
    assert "Traceback" not in response.text


def test_suggestions_batch_small_is_answered_in_order(service: Service) -> None:
    notes = [
        {"note_id": "a", "text": "ankle sprain"},
        {"note_id": "b", "text": "diabetes", "setting": "inpatient"},
        {"note_id": "c", "text": "nothing to code here", "patient": {"age": 3}},
    ]
    response = service.client.post(
        "/v1/suggestions/batch",
        json={"notes": notes, "code_systems": ["ICD10CM"]},
        headers=service.headers("integration"),
    )
    assert response.status_code == 200, response.text
    data = response.json()
    BatchResponse.model_validate(data)
    assert data["n_notes"] == 3
    assert [r["note_id"] for r in data["results"]] == ["a", "b", "c"]
    assert [r["setting"] for r in data["results"]] == ["outpatient", "inpatient", "outpatient"]
    assert data["results"][0]["suggestions"][0]["code"] == "S93.401A"
    assert data["results"][1]["suggestions"][0]["code"] == "E11.9"
    assert data["results"][2]["suggestions"] == []
    assert {r["request_id"] for r in data["results"]} == {data["request_id"]}
    assert data["model_version"] == "fake-model 0.0.1"


def test_suggestions_batch_groups_notes_sharing_arguments(service_factory: Any) -> None:
    svc = service_factory(batch_sync_limit=10)
    notes = [{"note_id": str(i), "text": f"ankle {i}"} for i in range(5)]
    response = svc.client.post("/v1/suggestions/batch", json={"notes": notes}, headers=svc.headers())
    assert response.status_code == 200
    assert svc.suggester.batch_calls == 1
    assert [c["note_id"] for c in svc.suggester.calls] == ["0", "1", "2", "3", "4"]


@pytest.mark.parametrize(
    ("notes", "field"),
    [
        ([{"text": "ankle"}, {"text": " "}], "notes[1].text"),
        ([{"text": "ankle", "setting": "ward"}], "notes[0].setting"),
        ([], "notes"),
        ([{"text": "ankle", "extra": 1}], "notes[0].extra"),
    ],
)
def test_suggestions_batch_rejects_bad_notes_naming_them(service: Service, notes: list[Any], field: str) -> None:
    response = service.client.post("/v1/suggestions/batch", json={"notes": notes}, headers=service.headers())
    assert response.status_code == 422
    assert field in [f["field"] for f in response.json()["error"]["fields"]]


def test_suggestions_batch_note_over_the_limit_is_413_naming_it(service_factory: Any) -> None:
    svc = service_factory(max_text_chars=20)
    notes = [{"text": "ankle"}, {"text": "x" * 21}]
    response = svc.client.post("/v1/suggestions/batch", json={"notes": notes}, headers=svc.headers())
    assert response.status_code == 413
    assert "notes[1].text" in response.json()["error"]["message"]


def test_suggestions_batch_over_the_job_limit_is_413(service_factory: Any) -> None:
    svc = service_factory(job_max_notes=4)
    notes = [{"text": "ankle"}] * 5
    response = svc.client.post("/v1/suggestions/batch", json={"notes": notes}, headers=svc.headers())
    assert response.status_code == 413
    assert "split the batch" in response.json()["error"]["message"]
    assert svc.suggester.calls == []
