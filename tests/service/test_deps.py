"""Authentication and the role matrix, through HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from service.security import ROLE_MATRIX, create_key, revoke_key
from tests.service.conftest import Service

FEEDBACK = {
    "note_id": "n1",
    "user": "coder-1",
    "decisions": [{"code": "S93.401A", "decision": "accepted"}],
}

# (method, path, body, group of ROLE_MATRIX)
ENDPOINTS: list[tuple[str, str, dict[str, Any] | None, str]] = [
    ("GET", "/v1/model", None, "read"),
    ("GET", "/v1/codes/S93.401A", None, "read"),
    ("GET", "/v1/codes?q=ankle", None, "read"),
    ("POST", "/v1/suggestions", {"text": "ankle"}, "suggest"),
    ("POST", "/v1/suggestions/batch", {"notes": [{"text": "ankle"}]}, "batch"),
    ("GET", "/v1/jobs/job_" + "0" * 48, None, "jobs"),
    ("POST", "/v1/feedback", FEEDBACK, "feedback"),
]


def call(svc: Service, method: str, path: str, body: dict[str, Any] | None, headers: dict[str, str]) -> Any:
    return svc.client.request(method, path, json=body, headers=headers)


@pytest.mark.parametrize(("method", "path", "body", "group"), ENDPOINTS)
@pytest.mark.parametrize("role", ["integration", "coder", "admin"])
def test_deps_role_matrix(shared_service: Service, method: str, path: str, body: Any, group: str, role: str) -> None:
    response = call(shared_service, method, path, body, shared_service.headers(role))
    if role in ROLE_MATRIX[group]:
        assert response.status_code not in (401, 403), response.text
    else:
        assert response.status_code == 403
        error = response.json()["error"]
        assert error["type"] == "permission_denied"
        assert role in error["message"]


@pytest.mark.parametrize(("method", "path", "body", "group"), ENDPOINTS)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer nonsense"},
        {"X-API-Key": "csk_000000000000_" + "0" * 64},
        {"Authorization": "Basic dXNlcjpwdw=="},
    ],
)
def test_deps_missing_or_bad_key_is_401(
    shared_service: Service, method: str, path: str, body: Any, group: str, headers: dict[str, str]
) -> None:
    response = call(shared_service, method, path, body, headers)
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication"
    assert "WWW-Authenticate" in response.headers


def test_deps_wrong_secret_of_a_real_key_is_401(shared_service: Service) -> None:
    token = shared_service.keys["admin"]
    forged = token[:-4] + ("0000" if not token.endswith("0000") else "1111")
    assert call(shared_service, "GET", "/v1/model", None, {"X-API-Key": forged}).status_code == 401


def test_deps_x_api_key_header_works_like_bearer(shared_service: Service) -> None:
    response = call(shared_service, "GET", "/v1/model", None, {"X-API-Key": shared_service.keys["coder"]})
    assert response.status_code == 200


def test_deps_revoked_key_is_401(service: Service) -> None:
    with service.db.session() as session:
        info, token = create_key(session, "short-lived", "integration")
    assert call(service, "GET", "/v1/model", None, {"X-API-Key": token}).status_code == 200
    with service.db.session() as session:
        revoke_key(session, info.id)
    response = call(service, "GET", "/v1/model", None, {"X-API-Key": token})
    assert response.status_code == 401
    assert "revoked" in response.json()["error"]["message"]


def test_deps_insecure_dev_needs_no_key(service_factory: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING"):
        svc = service_factory(insecure_dev=True)
    assert any("INSECURE DEV MODE" in r.getMessage() for r in caplog.records)
    assert call(svc, "POST", "/v1/feedback", FEEDBACK, {}).status_code == 201
    assert call(svc, "GET", "/v1/model", None, {}).status_code == 200


@pytest.mark.parametrize("path", ["/health/live", "/health/ready", "/openapi.json"])
def test_deps_health_and_schema_need_no_key(shared_service: Service, path: str) -> None:
    assert shared_service.client.get(path).status_code == 200
