"""The review screen over HTTP: coding on first open, highlighting, decisions as feedback, submit."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from service.models import Encounter, FeedbackEntry, ReviewEvent
from tests.service.ui.conftest import NOTE, Workbench, csrf_of


def rows_of(html: str) -> dict[str, tuple[str, str]]:
    """code -> (line id, status) of the code rows on a page."""
    out = {}
    for tag in re.findall(
        r'<tr id="line-(\d+)" data-testid="code-row" data-code="([^"]+)" data-status="([^"]+)"', html
    ):
        out[tag[1]] = (tag[0], tag[2])
    return out


def act(client: TestClient, path: str, page: str, **data: Any) -> Any:
    return client.post(path, data={"csrf_token": csrf_of(page), **data})


def test_review_opens_codes_once_and_highlights_evidence(workbench: Workbench, coder: TestClient) -> None:
    workbench.post_encounter("enc-1")
    page = coder.get("/ui/encounters/enc-1")
    assert page.status_code == 200
    assert rows_of(page.text) == {"S93.401A": ("1", "pending"), "E11.9": ("2", "pending")}
    assert 'data-testid="note-text"' in page.text
    marks = re.findall(r'<mark class="ev" data-testid="evidence" data-code="([^"]+)"', page.text)
    assert set(marks) == {"S93.401A", "E11.9"}
    assert 'data-testid="excluded"' in page.text and "negated" in page.text  # "No fracture"
    coder.get("/ui/encounters/enc-1")
    assert len(workbench.svc.suggester.calls) == 1  # coded once, then read back sealed
    with workbench.svc.db.session() as session:
        enc = session.scalars(select(Encounter)).one()
        assert enc.status == "in_review" and enc.assigned_to == "test coder"
        assert enc.suggestions_sealed is not None and b"ankle" not in enc.suggestions_sealed


def test_review_accept_reject_add_submit_stores_feedback(workbench: Workbench, coder: TestClient) -> None:
    workbench.post_encounter("enc-1")
    page = coder.get("/ui/encounters/enc-1").text
    rows = rows_of(page)
    base = "/ui/encounters/enc-1"
    early = act(coder, f"{base}/submit", page)
    assert early.status_code == 422 and "still pending" in early.text
    act(coder, f"{base}/lines/{rows['S93.401A'][0]}/decision", page, decision="accepted")
    act(coder, f"{base}/lines/{rows['E11.9'][0]}/decision", page, decision="rejected", reason="not documented")
    not_billable = act(coder, f"{base}/codes", page, code="S93.40")
    assert not_billable.status_code == 422 and "not billable" in not_billable.text
    page = act(coder, f"{base}/codes", page, code="w11xxxa", reason="fall from ladder").text
    assert rows_of(page)["W11.XXXA"][1] == "added"
    submitted = act(coder, f"{base}/submit", page)
    assert submitted.status_code == 200 and submitted.url.path == "/ui/worklist"
    with workbench.svc.db.session() as session:
        feedback = session.scalars(select(FeedbackEntry).order_by(FeedbackEntry.id)).all()
        assert [(f.code, f.decision, f.user) for f in feedback] == [
            ("S93.401A", "accepted", "test coder"),
            ("E11.9", "rejected", "test coder"),
            ("W11.XXXA", "added", "test coder"),
        ]
        assert feedback[1].reason == "not documented" and {f.note_id for f in feedback} == {"enc-1"}
        actions = [e.action for e in session.scalars(select(ReviewEvent).order_by(ReviewEvent.id))]
        assert actions == ["started", "accepted", "rejected", "added", "submitted"]
    state = workbench.client.get("/v1/encounters/enc-1", headers=workbench.svc.headers("integration")).json()
    assert state["status"] == "submitted" and [c["code"] for c in state["code_set"]] == ["S93.401A", "W11.XXXA"]
    closed = act(coder, f"{base}/lines/{rows['E11.9'][0]}/decision", page, decision="accepted")
    assert closed.status_code == 409


def test_review_modify_seventh_character_reorder_and_service_lines(workbench: Workbench, coder: TestClient) -> None:
    workbench.post_encounter("enc-2")
    page = coder.get("/ui/encounters/enc-2").text
    rows = rows_of(page)
    base = "/ui/encounters/enc-2"
    page = act(
        coder,
        f"{base}/lines/{rows['S93.401A'][0]}/decision",
        page,
        decision="modified",
        replacement="S93.401",
        seventh="D",
    ).text
    assert rows_of(page)["S93.401A"][1] == "modified" and 'data-testid="replacement">S93.401D<' in page
    page = act(coder, f"{base}/lines/{rows['E11.9'][0]}/move", page, direction="up").text
    assert list(rows_of(page)) == ["E11.9", "S93.401A"]
    page = act(coder, f"{base}/codes", page, code="29540").text
    line = rows_of(page)["29540"][0]
    bad = act(coder, f"{base}/lines/{line}/edit", page, modifiers="ZZ", units="1", pointers="")
    assert bad.status_code == 422 and "not a modifier" in bad.text
    pending_pointer = act(coder, f"{base}/lines/{line}/edit", page, modifiers="RT", units="2", pointers="E11.9")
    assert pending_pointer.status_code == 422 and "not an accepted diagnosis" in pending_pointer.text
    act(coder, f"{base}/lines/{rows['E11.9'][0]}/decision", page, decision="accepted")
    page = act(coder, f"{base}/lines/{line}/edit", page, modifiers="rt", units="2", pointers="e11.9").text
    assert "Modifiers: <strong>RT</strong> · Units: <strong>2</strong> · Points to: <strong>E11.9</strong>" in page
    assert act(coder, f"{base}/submit", page).url.path == "/ui/worklist"
    codes = workbench.client.get("/v1/encounters/enc-2", headers=workbench.svc.headers("coder")).json()["code_set"]
    assert [(c["code"], c["modifiers"], c["units"], c["pointers"]) for c in codes] == [
        ("E11.9", [], 1, []),
        ("S93.401D", [], 1, []),
        ("29540", ["RT"], 2, ["E11.9"]),
    ]


def test_review_another_coders_encounter_needs_a_take_over(workbench: Workbench, coder: TestClient) -> None:
    from tests.service.ui.conftest import sign_in

    workbench.post_encounter("enc-3")
    coder.get("/ui/encounters/enc-3")
    other = TestClient(workbench.client.app)
    with workbench.svc.db.session() as session:
        from service.security import create_key

        _, token = create_key(session, "second coder", "coder")
    sign_in(other, token)
    page = other.get("/ui/encounters/enc-3").text
    assert "Take over from test coder" in page
    line = rows_of(page)["E11.9"][0]
    refused = act(other, f"/ui/encounters/enc-3/lines/{line}/decision", page, decision="accepted")
    assert refused.status_code == 403 and "take it over first" in refused.text
    page = act(other, "/ui/encounters/enc-3/take", page).text
    assert act(other, f"/ui/encounters/enc-3/lines/{line}/decision", page, decision="accepted").status_code == 200


def test_review_code_lookup_helper(workbench: Workbench, coder: TestClient) -> None:
    seventh = coder.get("/ui/codes/lookup", params={"code": "s93.401"}).text
    assert 'data-testid="seventh-select"' in seventh or "S93.401A" in seventh
    assert 'data-testid="billable"' in coder.get("/ui/codes/lookup", params={"code": "E11.9"}).text
    words = coder.get("/ui/codes/lookup", params={"code": "ankle sprain"}).text
    assert "S93.401A" in words
    assert "is not a code" in coder.get("/ui/codes/lookup", params={"code": "Z99.99"}).text


def test_review_worklist_priority_filters_and_counts(workbench: Workbench, coder: TestClient) -> None:
    workbench.post_encounter("out-old-low", setting="outpatient", encounter_date="2026-10-01", expected_value=10)
    workbench.post_encounter("out-old-high", setting="outpatient", encounter_date="2026-10-01", expected_value=90)
    workbench.post_encounter("out-new", setting="outpatient", encounter_date="2026-11-01")
    workbench.post_encounter("in-new", setting="inpatient", encounter_date="2026-11-05")
    workbench.post_encounter("in-old", setting="inpatient", encounter_date="2026-10-20")
    page = coder.get("/ui/worklist").text
    order = re.findall(r'data-testid="worklist-item" data-encounter="([^"]+)"', page)
    assert order == ["in-old", "in-new", "out-old-high", "out-old-low", "out-new"]
    assert "<strong>5</strong> waiting" in page and "<strong>2</strong> inpatient" in page
    only = coder.get("/ui/worklist", params={"setting": "outpatient", "from": "2026-10-15"}).text
    assert re.findall(r'data-testid="worklist-item" data-encounter="([^"]+)"', only) == ["out-new"]
    coder.get("/ui/encounters/in-new")
    mine = coder.get("/ui/worklist", params={"coder": "me"}).text
    assert re.findall(r'data-testid="worklist-item" data-encounter="([^"]+)"', mine) == ["in-new"]
    assert coder.get("/ui/worklist", params={"from": "yesterday"}).status_code == 400


def test_review_no_note_text_in_logs(workbench: Workbench, coder: TestClient, caplog: Any) -> None:
    caplog.set_level("DEBUG")
    text = NOTE + " Patient Zyxquokka Vandermeulen."
    workbench.post_encounter("enc-log", text=text)
    page = coder.get("/ui/encounters/enc-log").text
    act(coder, "/ui/encounters/enc-log/codes", page, code="I10")
    coder.get("/ui/codes/lookup", params={"code": "ankle sprain"})
    assert "Zyxquokka" in page
    assert "Zyxquokka" not in caplog.text and "ladder" not in caplog.text and "ankle sprain" not in caplog.text


def test_review_spans_nest_so_each_span_is_one_element() -> None:
    from service.ui.highlight import Span, spans_tree

    text = "Assessment: right ankle sprain after a fall from a ladder. No fever."
    evidence = {"W11.XXXA": [(0, 57)], "S93.401A": [(12, 30)], "M25.571": [(18, 23), (25, 40)]}
    tree = spans_tree(text, evidence, [{"start": 59, "end": 67, "reason": "negated"}])

    def flat(nodes: list) -> str:  # type: ignore[type-arg]
        return "".join(n if isinstance(n, str) else flat(n.children) for n in nodes)

    def spans(nodes: list) -> list[tuple[str | None, str]]:  # type: ignore[type-arg]
        out = []
        for n in nodes:
            if isinstance(n, Span):
                out.append((n.code or n.reason, flat(n.children)))
                out.extend(spans(n.children))
        return out

    assert flat(tree) == text
    found = spans(tree)
    assert ("W11.XXXA", text[:57]) in found and ("S93.401A", "right ankle sprain") in found
    assert found.count(("S93.401A", "right ankle sprain")) == 1  # one element, the others nest inside
    assert ("M25.571", "ankle") in found and ("negated", "No fever") in found
    # a span that only partly overlaps another is cut at its edge
    assert ("M25.571", "prain") in found and ("M25.571", " after a f") in found


def test_review_pointers_follow_a_modified_or_rejected_diagnosis(workbench: Workbench, coder: TestClient) -> None:
    workbench.post_encounter("enc-p")
    page = coder.get("/ui/encounters/enc-p").text
    rows = rows_of(page)
    base = "/ui/encounters/enc-p"
    for code in ("S93.401A", "E11.9"):
        page = act(coder, f"{base}/lines/{rows[code][0]}/decision", page, decision="accepted").text
    page = act(coder, f"{base}/codes", page, code="29540").text
    line = rows_of(page)["29540"][0]
    page = act(coder, f"{base}/lines/{line}/edit", page, modifiers="RT", pointers="S93.401A, E11.9").text
    page = act(
        coder, f"{base}/lines/{rows['S93.401A'][0]}/decision", page, decision="modified", replacement="S93.401D"
    ).text
    assert "Points to: <strong>S93.401D, E11.9</strong>" in page
    page = act(coder, f"{base}/lines/{rows['E11.9'][0]}/decision", page, decision="rejected", reason="wrong code").text
    assert "Points to: <strong>S93.401D</strong>" in page
    page = act(
        coder, f"{base}/lines/{rows['S93.401A'][0]}/decision", page, decision="rejected", reason="wrong code"
    ).text
    refused = act(coder, f"{base}/submit", page)
    assert refused.status_code == 422 and "points to no diagnosis" in refused.text
