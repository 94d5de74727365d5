"""GET /v1/codes/{code} and GET /v1/codes?q= against the in-test knowledge base."""

from __future__ import annotations

import pytest

from tests.service.conftest import FAKE_VERSIONS, Service


@pytest.mark.parametrize(
    ("typed", "code", "system"),
    [
        ("S93.401A", "S93.401A", "ICD10CM"),
        ("s93401a", "S93.401A", "ICD10CM"),
        ("l1906", "L1906", "HCPCS"),
        ("99213", "99213", "CPT"),
    ],
)
def test_codes_lookup_normalises_what_is_typed(shared_service: Service, typed: str, code: str, system: str) -> None:
    response = shared_service.client.get(f"/v1/codes/{typed}", headers=shared_service.headers("coder"))
    assert response.status_code == 200, response.text
    data = response.json()
    assert (data["code"], data["system"]) == (code, system)
    assert data["description"]
    assert data["code_set_versions"] == FAKE_VERSIONS
    assert data["model_version"] == response.headers["X-Model-Version"]


def test_codes_lookup_returns_notes_and_seventh_characters(shared_service: Service) -> None:
    data = shared_service.client.get("/v1/codes/S93.401A", headers=shared_service.headers()).json()
    assert data["billable"] is True
    assert data["parent"] == "S93.401"
    assert data["seventh"]["A"] == "initial encounter"


@pytest.mark.parametrize(
    ("typed", "status", "kind"),
    [
        ("Z99.999", 404, "unknown_code"),
        ("1234567", 422, "malformed_code"),
        ("S9.3", 422, "malformed_code"),
    ],
)
def test_codes_lookup_unknown_is_404_and_malformed_422(
    shared_service: Service, typed: str, status: int, kind: str
) -> None:
    response = shared_service.client.get(f"/v1/codes/{typed}", headers=shared_service.headers())
    assert response.status_code == status
    assert response.json()["error"]["type"] == kind


def test_codes_search_finds_by_words(shared_service: Service) -> None:
    response = shared_service.client.get(
        "/v1/codes", params={"q": "ankle sprain", "limit": 5}, headers=shared_service.headers()
    )
    assert response.status_code == 200
    data = response.json()
    assert data["query"] == "ankle sprain"
    assert data["results"][0]["code"] == "S93.401A"
    assert len(data["results"]) <= 5


def test_codes_search_filters_by_system(shared_service: Service) -> None:
    params = {"q": "ankle orthosis", "system": "HCPCS"}
    data = shared_service.client.get("/v1/codes", params=params, headers=shared_service.headers()).json()
    assert [h["code"] for h in data["results"]] == ["L1906"]
    assert data["system"] == "HCPCS"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "q"),
        ({"q": ""}, "q"),
        ({"q": "   "}, "q"),
        ({"q": "ankle", "limit": 0}, "limit"),
        ({"q": "ankle", "limit": 101}, "limit"),
        ({"q": "ankle", "system": "ICD9"}, "system"),
        ({"q": "x" * 201}, "q"),
    ],
)
def test_codes_search_rejects_bad_parameters(shared_service: Service, params: dict[str, object], field: str) -> None:
    response = shared_service.client.get("/v1/codes", params=params, headers=shared_service.headers())
    assert response.status_code == 422
    assert field in [f["field"] for f in response.json()["error"]["fields"]]


@pytest.mark.parametrize(("system", "status"), [("HCPCS", 200), ("ICD10CM", 404), ("CPT", 422), ("ICD9", 422)])
def test_codes_lookup_can_force_a_system(shared_service: Service, system: str, status: int) -> None:
    response = shared_service.client.get("/v1/codes/L1906", params={"system": system}, headers=shared_service.headers())
    assert response.status_code == status
