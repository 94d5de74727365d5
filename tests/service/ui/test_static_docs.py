"""Vendored assets (hashes, licences) and /docs, /redoc working offline."""

from __future__ import annotations

import hashlib
import json
import re

import pytest

from service.ui.render import STATIC_DIR
from tests.service.conftest import Service


def test_static_vendored_files_match_their_recorded_hashes_and_carry_licences() -> None:
    manifest = json.loads((STATIC_DIR / "vendor" / "vendor.json").read_text("utf-8"))
    assert set(manifest["packages"]) == {"htmx", "swagger-ui", "redoc"}
    for name, package in manifest["packages"].items():
        folder = STATIC_DIR / "vendor" / name
        assert sorted(p.name for p in folder.iterdir()) == sorted(package["files"]), name
        assert "LICENSE" in package["files"], name
        for file, digest in package["files"].items():
            assert hashlib.sha256((folder / file).read_bytes()).hexdigest() == digest, f"{name}/{file}"


@pytest.mark.parametrize(
    ("page", "assets"),
    [
        (
            "/docs",
            [
                "/ui/static/vendor/swagger-ui/swagger-ui-bundle.js",
                "/ui/static/vendor/swagger-ui/swagger-ui.css",
                "/ui/static/docs-init.js",
            ],
        ),
        ("/redoc", ["/ui/static/vendor/redoc/redoc.standalone.js"]),
    ],
)
def test_static_api_pages_load_only_vendored_assets(shared_service: Service, page: str, assets: list[str]) -> None:
    response = shared_service.client.get(page)
    assert response.status_code == 200
    referenced = re.findall(r'(?:src|href)="([^"]+)"', response.text)
    assert sorted(referenced) == sorted(assets)
    assert 'spec-url="/openapi.json"' in response.text or 'data-openapi-url="/openapi.json"' in response.text
    for asset in assets:
        served = shared_service.client.get(asset)
        assert (
            served.status_code == 200
            and served.content == (STATIC_DIR / asset.removeprefix("/ui/static/")).read_bytes()
        )


def test_static_openapi_lists_the_encounter_endpoints_not_the_ui(shared_service: Service) -> None:
    paths = shared_service.client.get("/openapi.json").json()["paths"]
    assert {"/v1/encounters", "/v1/encounters/batch", "/v1/encounters/{encounter_id}"} <= set(paths)
    assert not [p for p in paths if p.startswith("/ui") or p in ("/docs", "/redoc")]
