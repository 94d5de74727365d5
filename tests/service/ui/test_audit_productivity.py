"""Audit mode (blind second review, agreement) and the productivity page."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from service.coding_audit import agreement
from service.models import AuditReview
from service.security import create_key
from tests.service.ui.conftest import Workbench, csrf_of, sign_in
from tests.service.ui.test_review import rows_of


def code_and_submit(client: TestClient, base: str, reject: set[str] = frozenset(), add: str = "") -> None:  # type: ignore[assignment]
    page = client.get(base).text
    for code, (line, _) in rows_of(page).items():
        decision = {"decision": "rejected", "reason": "not documented"} if code in reject else {"decision": "accepted"}
        page = client.post(f"{base}/lines/{line}/decision", data={"csrf_token": csrf_of(page), **decision}).text
    if add:
        page = client.post(f"{base}/codes", data={"csrf_token": csrf_of(page), "code": add}).text
    done = client.post(f"{base}/submit", data={"csrf_token": csrf_of(page)})
    assert done.status_code == 200, done.text[-500:]


def test_audit_blind_review_and_agreement(workbench: Workbench, coder: TestClient) -> None:
    for i in range(3):
        workbench.post_encounter(f"enc-{i}")
        code_and_submit(coder, f"/ui/encounters/enc-{i}")
    with workbench.svc.db.session() as session:
        _, auditor_key = create_key(session, "auditor one", "coder")
    admin = TestClient(workbench.client.app)
    sign_in(admin, workbench.svc.keys["admin"])
    page = admin.get("/ui/audits").text
    assert "auditor one" in page and "test coder" in page
    refused = admin.post("/ui/audits/samples", data={"csrf_token": csrf_of(page), "auditor": "test coder", "size": "2"})
    assert refused.status_code == 422 and "no submitted encounter qualifies" in refused.text
    made = admin.post("/ui/audits/samples", data={"csrf_token": csrf_of(page), "auditor": "auditor one", "size": "2"})
    assert made.status_code == 200 and "created" in made.text
    auditor = TestClient(workbench.client.app)
    sign_in(auditor, auditor_key)
    listing = auditor.get("/ui/audits").text
    links = re.findall(r'href="(/ui/audits/\d+)"', listing)
    assert len(links) == 2
    blind = auditor.get(links[0]).text
    assert "test coder" not in blind and 'data-status="pending"' in blind  # the coder's decisions are hidden
    code_and_submit(auditor, links[0])
    code_and_submit(auditor, links[1], reject={"E11.9"}, add="I10")
    assert coder.get(links[0]).status_code == 403  # another coder's audit
    with workbench.svc.db.session() as session:
        assert {a.status for a in session.scalars(select(AuditReview))} == {"submitted"}
        report = agreement(session)
    assert (report.encounters, report.identical) == (2, 1)
    assert report.codes_both == 3 and report.codes_coder == 4 and report.codes_auditor == 4
    per_code = {c.code: (c.coder, c.auditor, c.both) for c in report.per_code}
    assert per_code["E11.9"] == (2, 1, 1) and per_code["I10"] == (0, 1, 0) and per_code["S93.401A"] == (2, 2, 2)
    assert [(d.only_coder, d.only_auditor) for d in report.disagreements] == [(["E11.9"], ["I10"])]
    shown = admin.get("/ui/audits").text
    assert 'data-testid="disagreement"' in shown and "75%" in shown  # code agreement 2*3/8


def test_productivity_plots_per_coder(workbench: Workbench, coder: TestClient) -> None:
    workbench.post_encounter("enc-p1")
    workbench.post_encounter("enc-p2")
    code_and_submit(coder, "/ui/encounters/enc-p1")
    code_and_submit(coder, "/ui/encounters/enc-p2", reject={"E11.9"})
    page = coder.get("/ui/productivity", params={"days": 7}).text
    assert page.count('<svg class="chart" role="img"') == 3
    row = re.search(r'data-testid="coder-figures" data-coder="test coder">(.*?)</tr>', page).group(1)  # type: ignore[union-attr]
    cells = re.findall(r"<td>([^<]*)</td>", row)
    assert cells[0] == "test coder" and cells[1] == "2" and cells[3:8] == ["3", "1", "0", "0", "75%"]
    assert "charts coded per day by test coder: 2 from" in page
