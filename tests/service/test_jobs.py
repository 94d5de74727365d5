"""Asynchronous batch jobs: queueing, polling, one-time results, restarts, limits."""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

import pytest
from sqlalchemy import select, update

from service.jobs import STALE_MESSAGE
from service.models import Job, JobResult
from service.schemas import JobAccepted, JobStatus
from tests.service.conftest import FakeSuggester, Service


def submit(svc: Service, n: int, role: str = "integration", **extra: Any) -> dict[str, Any]:
    notes = [{"note_id": f"n{i}", "text": f"ankle sprain number {i}"} for i in range(n)]
    response = svc.client.post("/v1/suggestions/batch", json={"notes": notes, **extra}, headers=svc.headers(role))
    assert response.status_code == 202, response.text
    assert response.headers["Location"] == response.json()["status_url"]
    return dict(response.json())


def wait_done(svc: Service, url: str, role: str = "integration", timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = svc.client.get(url, headers=svc.headers(role))
        assert response.status_code == 200, response.text
        data = dict(response.json())
        if data["status"] in ("succeeded", "failed"):
            return data
        time.sleep(0.05)
    raise AssertionError("job did not finish")


def wait_row(svc: Service, token: str, timeout: float = 20) -> Job:
    """Wait for a job to finish by reading its row (a status read would consume the results)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with svc.db.session() as session:
            row = session.get(Job, token[:20])
            if row is not None and row.status in ("succeeded", "failed"):
                return row
        time.sleep(0.05)
    raise AssertionError("job did not finish")


def test_jobs_large_batch_runs_in_background_and_results_are_fetched_once(service: Service) -> None:
    accepted = submit(service, 7)
    assert accepted["status"] == "queued"
    assert accepted["n_notes"] == 7
    assert accepted["job_id"].startswith("job_")
    assert accepted["model_version"] == "fake-model 0.0.1"
    done = wait_done(service, accepted["status_url"])
    JobStatus.model_validate(done)
    JobAccepted.model_validate(accepted)
    assert done["status"] == "succeeded"
    assert done["n_done"] == 7
    assert done["results_state"] == "available"
    assert [r["note_id"] for r in done["results"]] == [f"n{i}" for i in range(7)]
    assert all(r["suggestions"][0]["code"] == "S93.401A" for r in done["results"])
    again = service.client.get(accepted["status_url"], headers=service.headers("integration")).json()
    assert again["status"] == "succeeded"
    assert again["results_state"] == "delivered"
    assert again["results"] is None
    with service.db.session() as session:
        assert session.scalars(select(JobResult)).all() == []


def test_jobs_status_survives_an_app_restart(service_factory: Any) -> None:
    first = service_factory()
    accepted = submit(first, 5)
    wait_row(first, accepted["job_id"])
    first.stop()
    second = service_factory()
    # Same database (same tmp_path), a fresh process-like app: the job and its results are there.
    second.keys = first.keys
    data = second.client.get(accepted["status_url"], headers=second.headers("integration")).json()
    assert data["status"] == "succeeded"
    assert len(data["results"]) == 5


def test_jobs_unfinished_job_of_a_stopped_process_is_reported_failed(service: Service) -> None:
    accepted = submit(service, 4)
    wait_done(service, accepted["status_url"])
    job_id = accepted["job_id"][:20]
    old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    with service.db.session() as session:
        session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(status="running", owner="gone", heartbeat_at=old, results_fetched_at=None)
        )
    data = service.client.get(accepted["status_url"], headers=service.headers("integration")).json()
    assert data["status"] == "failed"
    assert data["error"] == STALE_MESSAGE
    assert data["results_state"] == "none"


@pytest.mark.parametrize("mangle", ["other-key", "wrong-secret", "malformed", "unknown"])
def test_jobs_are_invisible_to_other_callers_and_guessed_ids(service: Service, mangle: str) -> None:
    accepted = submit(service, 4)
    wait_done_url = accepted["status_url"]
    url, role = wait_done_url, "integration"
    if mangle == "other-key":
        from service.security import create_key

        with service.db.session() as session:
            _, token = create_key(session, "another integration", "integration")
        response = service.client.get(url, headers={"X-API-Key": token})
    else:
        if mangle == "wrong-secret":
            url = url[:-4] + ("0000" if not url.endswith("0000") else "1111")
        elif mangle == "malformed":
            url = "/v1/jobs/not-a-job"
        else:
            url = "/v1/jobs/job_" + "a" * 48
        response = service.client.get(url, headers=service.headers(role))
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found"


def test_jobs_admin_reads_any_job(service: Service) -> None:
    accepted = submit(service, 4, role="integration")
    data = wait_done(service, accepted["status_url"], role="admin")
    assert data["status"] == "succeeded"


def test_jobs_failure_is_reported_with_a_message(service: Service) -> None:
    notes = [{"text": "ankle"}] * 4 + [{"text": "BOOM"}]
    response = service.client.post("/v1/suggestions/batch", json={"notes": notes}, headers=service.headers())
    data = wait_done(service, response.json()["status_url"], role="admin")
    assert data["status"] == "failed"
    assert "internal error while coding notes 5-5" in data["error"]
    assert data["results"] is None
    with service.db.session() as session:
        assert session.scalars(select(JobResult)).all() == []


def test_jobs_too_many_in_progress_is_429(service_factory: Any) -> None:
    gate = threading.Event()
    svc = service_factory(FakeSuggester(gate=gate), job_max_active=1)
    try:
        submit(svc, 4)
        notes = [{"text": "ankle"}] * 4
        response = svc.client.post("/v1/suggestions/batch", json={"notes": notes}, headers=svc.headers())
        assert response.status_code == 429
        assert response.json()["error"]["type"] == "too_many_jobs"
    finally:
        gate.set()


def test_jobs_shutdown_marks_unfinished_jobs_failed(service_factory: Any) -> None:
    gate = threading.Event()
    svc = service_factory(FakeSuggester(gate=gate))
    accepted = submit(svc, 6)
    job_id = accepted["job_id"][:20]
    stopper = threading.Thread(target=svc.stop)
    stopper.start()
    time.sleep(0.2)
    gate.set()
    stopper.join(30)
    from service.db import Database

    db = Database(svc.settings.database_url)
    with db.session() as session:
        row = session.get(Job, job_id)
        assert row is not None
        assert row.status == "failed"
        assert "shut down" in (row.error or "")
    db.dispose()


def test_jobs_unfetched_results_expire(service: Service) -> None:
    accepted = submit(service, 4)
    jobs = service.client.app.state.jobs  # type: ignore[attr-defined]
    job_id = wait_row(service, accepted["job_id"]).id
    with service.db.session() as session:
        session.execute(
            update(Job).where(Job.id == job_id).values(finished_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=30))
        )
    assert jobs.expire_results() == 1
    data = service.client.get(accepted["status_url"], headers=service.headers("integration")).json()
    assert data["results_state"] == "expired"
    assert data["results"] is None
