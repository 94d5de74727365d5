"""The workbench on PostgreSQL: encounters sealed, review, feedback, queries, audit, export.

Runs when ``CODESUGGEST_TEST_POSTGRES_URL`` names an empty database the tests may own (``.ci/run``
starts a local server and sets it); skipped otherwise. The schema starts empty.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from corpora.format import read_corpus
from service.coding_audit import agreement
from service.db import Database
from service.encounters import EncounterVault, reviewed_notes
from service.feedback import export_feedback
from service.models import Encounter, FeedbackEntry
from tests.service.conftest import FakeSuggester, Service
from tests.service.ui.conftest import ENCOUNTER_KEY, NOTE, WorkbenchKB, csrf_of, sign_in
from tests.service.ui.test_audit_productivity import code_and_submit

URL = os.environ.get("CODESUGGEST_TEST_POSTGRES_URL", "")

pytestmark = pytest.mark.skipif(not URL, reason="CODESUGGEST_TEST_POSTGRES_URL is not set")


@pytest.fixture
def pg_workbench(service_factory: Callable[..., Service]) -> Service:
    """The workbench app on an empty PostgreSQL schema."""
    db = Database(URL)
    db.upgrade()
    db.downgrade("base")
    db.dispose()
    return service_factory(FakeSuggester(kb=WorkbenchKB()), database_url=URL, encounter_key=ENCOUNTER_KEY)


def test_postgres_workbench_review_queries_audit_and_export(pg_workbench: Service, tmp_path: Path) -> None:
    svc = pg_workbench
    for i, setting in enumerate(("outpatient", "inpatient", "outpatient")):
        body = {"encounter_id": f"pg-{i}", "text": NOTE, "setting": setting, "encounter_date": f"2026-11-0{i + 1}"}
        assert svc.client.post("/v1/encounters", json=body, headers=svc.headers("integration")).status_code == 201
    sign_in(svc.client, svc.keys["coder"])
    page = svc.client.get("/ui/worklist").text
    assert page.index('data-encounter="pg-1"') < page.index('data-encounter="pg-0"')  # inpatient first
    review = svc.client.get("/ui/encounters/pg-2").text
    sent = svc.client.post(
        "/ui/encounters/pg-2/queries",
        data={
            "csrf_token": csrf_of(review),
            "template": "laterality",
            "condition": "ankle sprain",
            "indicators": '"right ankle sprain" (assessment)',
        },
    )
    assert 'data-status="open"' in sent.text
    code_and_submit(svc.client, "/ui/encounters/pg-0")
    code_and_submit(svc.client, "/ui/encounters/pg-1", reject={"E11.9"})
    with svc.db.session() as session:
        statuses = dict(session.execute(select(Encounter.encounter_id, Encounter.status)).all())
        assert statuses == {"pg-0": "submitted", "pg-1": "submitted", "pg-2": "on_hold"}
        assert session.scalars(select(FeedbackEntry.decision).where(FeedbackEntry.note_id == "pg-1")).all() == [
            "accepted",
            "rejected",
        ]
    admin = type(svc.client)(svc.client.app)
    sign_in(admin, svc.keys["admin"])
    audits = admin.get("/ui/audits").text
    made = admin.post("/ui/audits/samples", data={"csrf_token": csrf_of(audits), "auditor": "test admin", "size": "1"})
    assert made.status_code == 200
    link = made.text.split('href="/ui/audits/')[1].split('"')[0]
    code_and_submit(admin, f"/ui/audits/{link}")
    with svc.db.session() as session:
        assert agreement(session).encounters == 1
    vault = EncounterVault(bytes.fromhex(ENCOUNTER_KEY))
    report = export_feedback(svc.db, tmp_path / "out.jsonl", reviewed=functools.partial(reviewed_notes, svc.db, vault))
    assert report.written == 2
    assert {n.id: [c.code for c in n.codes] for n in read_corpus(tmp_path / "out.jsonl")} == {
        "pg-0": ["S93.401A", "E11.9"],
        "pg-1": ["S93.401A"],
    }
