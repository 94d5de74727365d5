"""Signing in to the workbench: roles, sessions, revocation, CSRF, security headers."""

from __future__ import annotations

import re

import pytest

from service.security import revoke_key
from tests.service.ui.conftest import Workbench, csrf_of, sign_in


def test_auth_pages_redirect_to_sign_in(workbench: Workbench) -> None:
    response = workbench.client.get("/ui/encounters/enc-1", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/login?next=%2Fui%2Fencounters%2Fenc-1"


@pytest.mark.parametrize("role", ["coder", "admin"])
def test_auth_coder_and_admin_sign_in(workbench: Workbench, role: str) -> None:
    response = sign_in(workbench.client, workbench.svc.keys[role])
    assert response.status_code == 200 and response.url.path == "/ui/worklist"
    assert "Signed in as" in response.text and f"({role})" in response.text
    cookie = next(c for c in workbench.client.cookies.jar if c.name == "cs_session")
    assert cookie.path == "/ui" and cookie.has_nonstandard_attr("HttpOnly")


def test_auth_session_cookie_flags(workbench: Workbench) -> None:
    page = workbench.client.get("/ui/login")
    token = re.search(r'name="login_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    response = workbench.client.post(
        "/ui/login",
        data={"api_key": workbench.svc.keys["coder"], "login_token": token, "next": "/ui/worklist"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    set_cookie = response.headers["set-cookie"].lower()
    assert "httponly" in set_cookie and "samesite=strict" in set_cookie and "path=/ui" in set_cookie


def test_auth_integration_key_cannot_open_the_workbench(workbench: Workbench) -> None:
    response = sign_in(workbench.client, workbench.svc.keys["integration"])
    assert response.status_code == 403
    assert "cannot open the workbench" in response.text
    assert workbench.client.get("/ui/worklist", follow_redirects=False).status_code == 303


def test_auth_bad_key_and_missing_form_token(workbench: Workbench) -> None:
    assert sign_in(workbench.client, "csk_000000000000_" + "0" * 64).status_code == 401
    forged = workbench.client.post("/ui/login", data={"api_key": workbench.svc.keys["coder"], "login_token": "x"})
    assert forged.status_code == 403 and "expired" in forged.text


def test_auth_revoking_the_key_ends_the_session(workbench: Workbench) -> None:
    sign_in(workbench.client, workbench.svc.keys["coder"])
    assert workbench.client.get("/ui/worklist").status_code == 200
    key_id = workbench.svc.keys["coder"].split("_")[1]
    with workbench.svc.db.session() as session:
        revoke_key(session, key_id)
    assert workbench.client.get("/ui/worklist", follow_redirects=False).status_code == 303


def test_auth_forms_need_the_csrf_token(workbench: Workbench, coder) -> None:  # type: ignore[no-untyped-def]
    workbench.post_encounter("enc-1")
    page = coder.get("/ui/encounters/enc-1")
    line = re.search(r'data-line="(\d+)"', page.text).group(1)  # type: ignore[union-attr]
    url = f"/ui/encounters/enc-1/lines/{line}/decision"
    assert coder.post(url, data={"decision": "accepted"}).status_code == 403
    assert coder.post(url, data={"decision": "accepted", "csrf_token": "wrong"}).status_code == 403
    foreign = coder.post(
        url, data={"decision": "accepted", "csrf_token": csrf_of(page.text)}, headers={"Origin": "https://evil.example"}
    )
    assert foreign.status_code == 403
    assert coder.post(url, data={"decision": "accepted", "csrf_token": csrf_of(page.text)}).status_code == 200


def test_auth_logout(workbench: Workbench, coder) -> None:  # type: ignore[no-untyped-def]
    page = coder.get("/ui/worklist")
    assert coder.post("/ui/logout", data={"csrf_token": csrf_of(page.text)}).url.path == "/ui/login"
    assert coder.get("/ui/worklist", follow_redirects=False).status_code == 303


@pytest.mark.parametrize("path", ["/ui/worklist", "/ui/login", "/docs", "/redoc", "/ui/productivity"])
def test_auth_pages_carry_a_strict_csp_and_no_inline_script(workbench: Workbench, coder, path: str) -> None:  # type: ignore[no-untyped-def]
    response = coder.get(path)
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "http:" not in csp and "https:" not in csp and "unsafe-eval" not in csp
    assert "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
    assert response.headers["x-frame-options"] == "DENY"
    for tag in re.findall(r"<script[^>]*>", response.text):
        assert 'src="/ui/static/' in tag, tag
    assert not re.search(r"<script[^>]*>\s*[^<\s]", response.text), "inline script"
    assert not re.search(r"https?://", " ".join(re.findall(r'(?:src|href)="([^"]+)"', response.text)))
    assert " style=" not in response.text and " on" + "click=" not in response.text
