"""The application: startup and shutdown, health, headers, error shapes, the OpenAPI document."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pipeline.errors import ArtefactError
from service.db import head_revision
from service.main import create_app
from tests.service.conftest import Service, make_settings


def test_main_startup_fails_without_a_model(tmp_path: Path) -> None:
    empty = tmp_path / "empty-model"
    empty.mkdir()
    settings = make_settings(tmp_path, model_dir=empty)
    with pytest.raises(ArtefactError, match="manifest"), TestClient(create_app(settings)):
        pass


def test_main_startup_fails_with_a_tampered_model(tmp_path: Path) -> None:
    from pipeline.manifest import Manifest, write_manifest

    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"\x00" * 64)
    write_manifest(model, Manifest(name="codesuggest-test", version="0", kind="model"))
    (model / "weights.bin").write_bytes(b"\x01" * 64)
    settings = make_settings(tmp_path, model_dir=model)
    with (
        pytest.raises(ArtefactError, match="does not match its manifest hash"),
        TestClient(create_app(settings)),
    ):
        pass


def test_main_startup_migrates_a_fresh_database(tmp_path: Path, service_factory: Any) -> None:
    svc = service_factory(database_url=f"sqlite:///{tmp_path / 'deep' / 'er' / 'db.sqlite3'}")
    assert (tmp_path / "deep" / "er" / "db.sqlite3").is_file()
    assert svc.db.current_revision() == head_revision()


def test_main_health_live_and_ready(service: Service) -> None:
    assert service.client.get("/health/live").json() == {"status": "ok"}
    ready = service.client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "model": True,
        "database": True,
        "model_version": "fake-model 0.0.1",
        "code_set_versions": service.suggester.code_set_versions,
    }


def test_main_ready_is_503_when_the_database_does_not_answer(service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service.db, "ping", lambda: False)
    response = service.client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["status"] == "not_ready"
    assert response.json()["database"] is False


def test_main_model_info(service: Service) -> None:
    data = service.client.get("/v1/model", headers=service.headers("integration")).json()
    assert data["name"] == "fake-model"
    assert data["version"] == "0.0.1"
    assert data["metrics"] == {"micro_f1": 0.5}
    assert data["training_data"][0]["name"] == "unit-test"
    assert data["threshold"] == 0.4
    assert data["model_version"] == "fake-model 0.0.1"
    assert data["code_set_versions"] == service.suggester.code_set_versions


@pytest.mark.parametrize(
    ("method", "path", "status", "kind"),
    [
        ("GET", "/nowhere", 404, "not_found"),
        ("DELETE", "/v1/suggestions", 405, "method_not_allowed"),
        ("GET", "/v1/suggestions", 405, "method_not_allowed"),
    ],
)
def test_main_every_error_has_the_same_shape_and_headers(
    service: Service, method: str, path: str, status: int, kind: str
) -> None:
    response = service.client.request(method, path, headers=service.headers())
    assert response.status_code == status
    error = response.json()["error"]
    assert error["type"] == kind
    assert error["message"]
    assert error["request_id"] == response.headers["X-Request-ID"]
    assert response.headers["X-Model-Version"] == "fake-model 0.0.1"


@pytest.mark.parametrize("path", ["/health/live", "/openapi.json", "/v1/model"])
def test_main_every_answer_carries_request_id_and_versions(service: Service, path: str) -> None:
    response = service.client.get(path, headers=service.headers())
    assert len(response.headers["X-Request-ID"]) == 32
    assert response.headers["X-Model-Version"] == "fake-model 0.0.1"
    assert response.headers["X-Code-Set-Versions"] == "CPT=test lexicon;HCPCS=2020 test;ICD10CM=FY2026 test"


def test_main_openapi_documents_examples_errors_and_keys(service: Service) -> None:
    schema = service.client.get("/openapi.json").json()
    paths = schema["paths"]
    assert set(paths) >= {
        "/v1/suggestions",
        "/v1/suggestions/batch",
        "/v1/jobs/{job_id}",
        "/v1/codes/{code}",
        "/v1/codes",
        "/v1/feedback",
        "/v1/model",
        "/health/live",
        "/health/ready",
    }
    components = schema["components"]["schemas"]
    for name in (
        "SuggestionRequest",
        "SuggestionResponse",
        "BatchRequest",
        "FeedbackRequest",
        "ErrorResponse",
        "CodeOut",
    ):
        assert components[name].get("examples"), name
    post = paths["/v1/suggestions"]["post"]
    assert {"401", "403", "409", "413", "422"} <= set(post["responses"])
    assert "202" in paths["/v1/suggestions/batch"]["post"]["responses"]
    assert {"APIKeyHeader", "HTTPBearer"} <= set(schema["components"]["securitySchemes"])
    headers = [p["name"] for p in post["parameters"] if p["in"] == "header"]
    assert "Idempotency-Key" in headers


def test_main_shutdown_stops_the_background_threads(service_factory: Any) -> None:
    svc = service_factory()
    jobs = svc.client.app.state.jobs  # type: ignore[attr-defined]
    assert jobs.running
    svc.stop()
    assert not jobs.running
    assert svc.client.app.state.suggester is None  # type: ignore[attr-defined]
