"""The workbench in a real browser: headless Chromium (Debian's) driven by Playwright.

The service runs in a thread with the real default model and knowledge base; the browser signs
in as a coder, works an encounter from the worklist to submission (evidence highlighting both
ways, accept, reject, add, keyboard shortcuts), drafts and answers a physician query, runs a blind
audit, and opens /docs and /redoc, all without one request leaving the machine and without one
Content-Security-Policy violation.

``.ci/run`` installs Debian's ``chromium`` where it can (root, apt); elsewhere these tests are
skipped with the reason. Set ``CODESUGGEST_UI_SCREENSHOTS=docs/images`` to write the screenshots
of the main screens that docs/workbench.md shows.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import select

from service.db import Database
from service.main import create_app
from service.models import Encounter, FeedbackEntry, ReviewEvent
from service.review import Actor, Scope, decide, lines, submit
from service.security import create_key
from tests.service.conftest import make_keys, make_settings
from tests.service.ui.conftest import ENCOUNTER_KEY, NOTE

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = os.environ.get("CODESUGGEST_UI_SCREENSHOTS", "")

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def _browser_missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (make install)"
    if not Path(CHROMIUM).exists():
        return "Debian's chromium is not installed (apt-get install chromium; .ci/run does it as root)"
    return None


def _free_port() -> int:
    for port in range(18100, 18200):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Live:
    """The service running for the browser."""

    url: str
    keys: dict[str, str]
    db: Database
    suggester: Any
    auditor_key: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def post(self, encounter_id: str, text: str = NOTE, **fields: Any) -> None:
        """Send an encounter for review through the API."""
        body = {"encounter_id": encounter_id, "text": text, **fields}
        headers = {"Authorization": f"Bearer {self.keys['integration']}"}
        response = httpx.post(f"{self.url}/v1/encounters", json=body, headers=headers, timeout=30)
        assert response.status_code == 201, response.text


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, suggester: Any) -> Iterator[Live]:
    """The app with the real model, served by uvicorn on a local port."""
    reason = _browser_missing()
    if reason:
        pytest.skip(reason)
    import uvicorn

    folder = tmp_path_factory.mktemp("browser")
    settings = make_settings(folder, encounter_key=ENCOUNTER_KEY)
    keys = make_keys(settings.database_url)
    db = Database(settings.database_url)
    with db.session() as session:
        _, auditor_key = create_key(session, "second coder", "coder")
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, suggester=suggester), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the service did not start"
        time.sleep(0.05)
    yield Live(f"http://127.0.0.1:{port}", keys, db, suggester, auditor_key)
    server.should_exit = True
    thread.join(30)
    db.dispose()


@dataclass
class Watch:
    """What a page did that it must not: CSP violations, script errors, requests off the machine."""

    problems: list[str] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        def console(message: Any) -> None:
            # A refused form (422, 403) is part of the tests; the browser logs its status.
            expected = message.text.startswith("Failed to load resource: the server responded with a status of 4")
            if message.type == "error" and not expected:
                self.problems.append(message.text)

        page.on("console", console)
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))

        def only_local(route: Any) -> None:
            host = urlsplit(route.request.url).hostname
            if host in ("127.0.0.1", "localhost") or route.request.url.startswith(("data:", "blob:")):
                route.continue_()
            else:
                self.problems.append(f"request off the machine: {route.request.url}")
                route.abort()

        page.route("**/*", only_local)


@pytest.fixture(scope="module")
def browser(live: Live) -> Iterator[Any]:
    """Headless Chromium."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def watch() -> Watch:
    """The problems a test's pages reported."""
    return Watch()


def open_page(browser: Any, watch: Watch) -> Any:
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(20_000)
    watch.attach(page)
    return page


def sign_in(page: Any, live: Live, key: str) -> None:
    from playwright.sync_api import expect

    page.goto(f"{live.url}/ui/")
    page.get_by_test_id("api-key-input").fill(key)
    page.get_by_test_id("sign-in").click()
    expect(page).to_have_url(f"{live.url}/ui/worklist")


def shot(page: Any, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        # caret="initial": hiding the caret would inject a style element, which the CSP refuses
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=False, caret="initial")


def row(page: Any, code: str) -> Any:
    return page.locator(f'[data-testid="code-row"][data-code="{code}"]')


def test_browser_coder_works_an_encounter_to_submission(browser: Any, live: Live, watch: Watch) -> None:
    from playwright.sync_api import expect

    live.post("enc-out-1", setting="outpatient", encounter_date="2026-11-20")
    live.post("enc-in-1", setting="inpatient", encounter_date="2026-11-25", expected_value=8200.0)
    page = open_page(browser, watch)
    sign_in(page, live, live.keys["coder"])
    items = page.get_by_test_id("worklist-item")
    assert items.count() == 2
    assert items.first.get_attribute("data-encounter") == "enc-in-1"  # inpatient discharges first
    shot(page, "worklist")
    page.locator('[data-testid="worklist-item"][data-encounter="enc-out-1"] a').click()
    expect(page).to_have_url(f"{live.url}/ui/encounters/enc-out-1")
    note = page.get_by_test_id("note-text")
    assert "right ankle sprain" in note.inner_text()

    # highlighted evidence, both ways
    sprain = page.locator('[data-testid="evidence"][data-code="S93.401A"]')
    assert sprain.count() >= 1 and "ankle sprain" in sprain.first.inner_text()
    row(page, "S93.401A").locator(".code-link").click()
    assert "active" in (sprain.first.get_attribute("class") or "")
    diabetes = page.locator('[data-testid="evidence"][data-code="E11.9"]').first
    diabetes.click()
    assert "active" in (row(page, "E11.9").get_attribute("class") or "")
    assert "E11.9" in page.locator("#span-codes").inner_text()
    shot(page, "review")

    # accept one, reject one (with its reason), add one
    row(page, "S93.401A").get_by_test_id("accept").click()
    page.wait_for_selector('[data-testid="code-row"][data-code="S93.401A"][data-status="accepted"]')
    row(page, "Z82.49").get_by_test_id("reject-reason").select_option("not clinically significant for this encounter")
    row(page, "Z82.49").get_by_test_id("reject").click()
    page.wait_for_selector('[data-testid="code-row"][data-code="Z82.49"][data-status="rejected"]')
    add = page.get_by_test_id("add-code-input")
    add.fill("I10")
    page.wait_for_selector("#code-help [data-testid='billable']")
    add.press("Enter")
    page.wait_for_selector('[data-testid="code-row"][data-code="I10"][data-status="added"]')

    # the 7th-character helper: a code that needs one offers the choice
    add.fill("S93.402")
    page.wait_for_selector("[data-testid='seventh-select']")
    add.fill("")

    # keyboard: j selects the next line, a accepts it
    pending = page.locator('[data-testid="code-row"][data-status="pending"]')
    while pending.count():
        code = pending.first.get_attribute("data-code")
        page.locator("body").click(position={"x": 5, "y": 5})
        page.keyboard.press("j")
        selected = page.locator('[data-testid="code-row"].selected')
        for _ in range(20):
            if selected.get_attribute("data-code") == code:
                break
            page.keyboard.press("j")
        page.keyboard.press("a")
        page.wait_for_selector(f'[data-testid="code-row"][data-code="{code}"][data-status="accepted"]')
    page.get_by_test_id("submit-review").click()
    expect(page).to_have_url(f"{live.url}/ui/worklist?submitted=enc-out-1")
    assert page.get_by_test_id("worklist-item").count() == 1

    with live.db.session() as session:
        stored = {
            (f.code, f.decision): f
            for f in session.scalars(select(FeedbackEntry).where(FeedbackEntry.note_id == "enc-out-1"))
        }
        assert {("S93.401A", "accepted"), ("Z82.49", "rejected"), ("I10", "added")} <= set(stored)
        assert stored[("Z82.49", "rejected")].reason == "not clinically significant for this encounter"
        assert {f.user for f in stored.values()} == {"test coder"} and all(f.created_at for f in stored.values())
        encounter = session.scalars(select(Encounter).where(Encounter.encounter_id == "enc-out-1")).one()
        assert encounter.status == "submitted" and encounter.submitted_by == "test coder"
    assert watch.problems == []


def test_browser_physician_query_puts_the_encounter_on_hold(browser: Any, live: Live, watch: Watch) -> None:
    live.post("enc-q-1", setting="inpatient", encounter_date="2026-11-02")
    page = open_page(browser, watch)
    sign_in(page, live, live.keys["coder"])
    page.goto(f"{live.url}/ui/encounters/enc-q-1")
    page.get_by_test_id("note-text").wait_for()
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("q")  # opens the query draft
    page.get_by_test_id("query-template").select_option("specificity")
    page.get_by_test_id("query-condition").fill("type 2 diabetes")
    page.get_by_test_id("query-indicators").fill('"Type 2 diabetes, stable on metformin" (assessment)')
    page.get_by_test_id("query-options").fill("Would you agree it is uncontrolled?")
    page.get_by_test_id("query-create").click()
    assert "not compliant" in page.get_by_test_id("query-error").inner_text()
    page.get_by_test_id("query-options").fill(
        "Type 2 diabetes without complications\nType 2 diabetes with hyperglycemia"
    )
    page.get_by_test_id("query-create").click()
    page.wait_for_selector('[data-testid="query"][data-status="open"]')
    assert page.get_by_test_id("review-status").inner_text() == "on hold"
    shot(page, "query")
    page.get_by_test_id("submit-review").click()
    assert "query is still open" in page.get_by_test_id("review-error").inner_text()
    page.get_by_test_id("query-answer-input").fill("Type 2 diabetes without complications")
    page.get_by_test_id("query-answer").click()
    page.wait_for_selector('[data-testid="query"][data-status="answered"]')
    assert page.get_by_test_id("review-status").inner_text() == "in review"
    assert watch.problems == []


def _coded_and_submitted(live: Live, encounter_id: str) -> None:
    """A submitted review made through the review functions (the audit needs some)."""
    from service.encounters import EncounterVault, ensure_coded

    vault = EncounterVault(bytes.fromhex(ENCOUNTER_KEY))
    ensure_coded(live.db, vault, live.suggester, encounter_id, "browser-test")
    actor = Actor("test coder", None, "coder")
    with live.db.session() as session:
        scope = Scope(session.scalars(select(Encounter).where(Encounter.encounter_id == encounter_id)).one())
        scope.encounter.assigned_to = actor.user
        for line in lines(session, scope):
            decide(session, live.suggester.kb, scope, actor, "browser-test", line.id, "accepted")
        submit(session, scope, actor)


def test_browser_blind_audit_and_agreement(browser: Any, live: Live, watch: Watch) -> None:
    from playwright.sync_api import expect

    for i in range(2):
        live.post(f"enc-a-{i}", encounter_date="2026-11-10")
        _coded_and_submitted(live, f"enc-a-{i}")
    admin = open_page(browser, watch)
    sign_in(admin, live, live.keys["admin"])
    admin.goto(f"{live.url}/ui/audits")
    admin.get_by_test_id("audit-auditor").select_option("second coder")
    admin.get_by_test_id("audit-size").fill("1")
    admin.get_by_test_id("audit-create").click()
    admin.wait_for_selector("text=created")

    auditor = open_page(browser, watch)
    sign_in(auditor, live, live.auditor_key)
    auditor.goto(f"{live.url}/ui/audits")
    auditor.locator('[data-testid="audit-item"] a').first.click()
    auditor.get_by_test_id("note-text").wait_for()
    assert "test coder" not in auditor.content()  # blind: the first coder's name and decisions are hidden
    assert auditor.locator('[data-testid="code-row"][data-status="pending"]').count() >= 2
    shot(auditor, "audit")
    first = auditor.locator('[data-testid="code-row"]').first.get_attribute("data-code")
    row(auditor, first).get_by_test_id("reject").click()
    auditor.wait_for_selector(f'[data-testid="code-row"][data-code="{first}"][data-status="rejected"]')
    pending = auditor.locator('[data-testid="code-row"][data-status="pending"]')
    while pending.count():
        code = pending.first.get_attribute("data-code")
        row(auditor, code).get_by_test_id("accept").click()
        auditor.wait_for_selector(f'[data-testid="code-row"][data-code="{code}"][data-status="accepted"]')
    auditor.get_by_test_id("submit-review").click()
    expect(auditor).to_have_url(f"{live.url}/ui/audits")

    admin.goto(f"{live.url}/ui/audits")
    assert admin.get_by_test_id("audit-encounters").inner_text() == "1"
    assert admin.get_by_test_id("encounter-agreement").inner_text().startswith("0 (0%)")
    disagreement = admin.get_by_test_id("disagreement")
    assert disagreement.count() == 1 and first in disagreement.inner_text()
    shot(admin, "agreement")
    admin.goto(f"{live.url}/ui/productivity")
    assert admin.locator('[data-testid="coder-plot"][data-coder="test coder"] svg').count() == 1
    shot(admin, "productivity")
    with live.db.session() as session:
        audit_events = session.scalars(select(ReviewEvent).where(ReviewEvent.audit_pk.is_not(None))).all()
        assert {e.user for e in audit_events} == {"second coder"} and "submitted" in {e.action for e in audit_events}
    assert watch.problems == []


def test_browser_integration_key_is_refused(browser: Any, live: Live, watch: Watch) -> None:
    page = open_page(browser, watch)
    page.goto(f"{live.url}/ui/login")
    page.get_by_test_id("api-key-input").fill(live.keys["integration"])
    page.get_by_test_id("sign-in").click()
    assert "cannot open the workbench" in page.locator("[role=alert]").inner_text()
    page.goto(f"{live.url}/ui/worklist")
    assert "/ui/login" in page.url


def test_browser_api_docs_render_offline(browser: Any, live: Live, watch: Watch) -> None:
    page = open_page(browser, watch)
    page.goto(f"{live.url}/docs")
    page.wait_for_selector(".swagger-ui .info .title")
    assert "codesuggest" in page.locator(".swagger-ui .info .title").inner_text()
    page.get_by_text("/v1/encounters/batch").first.wait_for()
    shot(page, "docs")
    page.goto(f"{live.url}/redoc")
    page.get_by_role("heading", name="Store an encounter for a coder's review in the workbench").wait_for()
    shot(page, "redoc")
    # ReDoc's sidebar always tries its attribution logo from its CDN and hides it when it fails
    # to load: the CSP blocks it before any request leaves the machine.
    blocked_logo = [p for p in watch.problems if "cdn.redoc.ly/redoc/logo-mini.svg" in p and "Content Security" in p]
    assert [p for p in watch.problems if p not in blocked_logo] == []
