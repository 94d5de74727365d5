"""Asynchronous batch jobs: a background worker thread per service process.

A batch over ``CODESUGGEST_BATCH_SYNC_LIMIT`` notes becomes a job. The job's row in the database
(status, counts, times, error) survives restarts and is visible to every worker process; the
notes themselves stay only in the memory of the process that accepted the job (they are PHI and
the database must not hold them). Results are saved chunk by chunk, sealed with a key derived
from the secret half of the job id (:mod:`service.sealing`), which only the client holds; the
first read after the job succeeded returns them and deletes them.

A job id reads ``job_<16 hex: public id><32 hex: secret>``. Each process has an owner id and
a heartbeat: a queued or running job whose owner has not reported for
``CODESUGGEST_JOB_STALE_SECONDS`` (the process stopped) is reported as failed and must be
submitted again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import queue
import re
import secrets
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update

from pipeline.errors import CodesuggestError
from service.db import Database
from service.errors import NotFoundError, TooManyJobsError
from service.models import Job, JobResult, utcnow
from service.sealing import derive_key, seal, unseal
from service.security import Principal
from service.suggesting import NoteInput, Options, SuggesterLike, suggest_many

logger = logging.getLogger(__name__)

QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
ACTIVE = (QUEUED, RUNNING)
_TOKEN_RE = re.compile(r"^job_([0-9a-f]{16})([0-9a-f]{32})$")
STALE_MESSAGE = "the service process running this job stopped before it finished; submit the notes again"
SHUTDOWN_MESSAGE = "the service shut down before this job finished; submit the notes again"


@dataclass(slots=True)
class _Pending:
    job_id: str
    secret: str
    notes: list[NoteInput]
    options: Options
    request_id: str


def _secret_hash(secret: str) -> str:
    return hashlib.sha256(b"job.secret\x00" + secret.encode("ascii")).hexdigest()


def _seal_key(secret: str) -> bytes:
    return derive_key("job.seal", secret.encode("ascii"))


class JobManager:
    """Queues, runs and reports the jobs of one service process.

    Args:
        db: the service database.
        suggester: the loaded suggester.
        chunk_size: notes coded (and their results saved) together.
        max_active: most queued or running jobs in this process.
        stale_seconds: after this long without a heartbeat an unfinished job counts as failed.
        result_ttl_seconds: how long unfetched results are kept.
    """

    def __init__(
        self,
        db: Database,
        suggester: SuggesterLike,
        *,
        chunk_size: int = 32,
        max_active: int = 4,
        stale_seconds: int = 120,
        result_ttl_seconds: int = 7 * 24 * 3600,
    ) -> None:
        self.db = db
        self.suggester = suggester
        self.chunk_size = chunk_size
        self.max_active = max_active
        self.stale = dt.timedelta(seconds=stale_seconds)
        self.result_ttl = dt.timedelta(seconds=result_ttl_seconds)
        self.owner = uuid.uuid4().hex
        self._queue: queue.Queue[_Pending | None] = queue.Queue()
        self._active: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker thread (after marking jobs of dead processes as failed)."""
        self.fail_stale()
        self._thread = threading.Thread(target=self._work, name="codesuggest-jobs", daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        """Whether the worker thread is alive (started and not yet stopped)."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the worker after its current chunk; mark this process's unfinished jobs failed.

        Args:
            timeout: seconds to wait for the worker thread.
        """
        self._stop.set()
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)
        with self.db.session() as session:
            session.execute(
                update(Job)
                .where(Job.owner == self.owner, Job.status.in_(ACTIVE))
                .values(status=FAILED, error=SHUTDOWN_MESSAGE, finished_at=utcnow())
            )

    @property
    def active_count(self) -> int:
        """Jobs queued or running in this process."""
        with self._lock:
            return len(self._active)

    # -- submitting ------------------------------------------------------------------------
    def submit(
        self,
        principal: Principal,
        notes: Sequence[NoteInput],
        options: Options,
        request_id: str,
    ) -> tuple[str, Job]:
        """Queue a job.

        Args:
            principal: the caller (only they, or an admin, can read the job).
            notes: the notes, already checked.
            options: shared options.
            request_id: the submitting request's id.

        Returns:
            The job token (``job_...``, the client's only way to the results) and its row.

        Raises:
            TooManyJobsError: this process already has ``max_active`` unfinished jobs.
        """
        with self._lock:
            if len(self._active) >= self.max_active:
                raise TooManyJobsError(
                    f"{len(self._active)} jobs are in progress (the limit is {self.max_active}); "
                    "retry when one has finished"
                )
            job_id = f"job_{secrets.token_hex(8)}"
            self._active.add(job_id)
        secret = secrets.token_hex(16)
        now = utcnow()
        row = Job(
            id=job_id,
            secret_sha256=_secret_hash(secret),
            key_id=principal.key_id,
            request_id=request_id,
            status=QUEUED,
            n_notes=len(notes),
            n_done=0,
            owner=self.owner,
            created_at=now,
            heartbeat_at=now,
            model_version=str(self.suggester.model_version)[:100],
        )
        try:
            with self.db.session() as session:
                session.add(row)
        except BaseException:
            with self._lock:
                self._active.discard(job_id)
            raise
        self._queue.put(_Pending(job_id, secret, list(notes), options, request_id))
        logger.info("request %s: queued %s with %d notes", request_id, job_id, len(notes))
        return f"{job_id}{secret}", row

    def accept(
        self, principal: Principal, notes: Sequence[NoteInput], options: Options, request_id: str
    ) -> dict[str, Any]:
        """Queue a job and build the ``202`` answer (:class:`~service.schemas.JobAccepted`).

        Args:
            principal: the caller.
            notes: the notes, already checked.
            options: shared options.
            request_id: the submitting request's id.

        Returns:
            The response body; ``status_url`` is also the answer's ``Location``.

        Raises:
            TooManyJobsError: this process already has ``max_active`` unfinished jobs.
        """
        token, row = self.submit(principal, notes, options, request_id)
        return {
            "model_version": self.suggester.model_version,
            "code_set_versions": dict(self.suggester.code_set_versions),
            "request_id": request_id,
            "job_id": token,
            "status": row.status,
            "status_url": f"/v1/jobs/{token}",
            "n_notes": row.n_notes,
        }

    # -- reading ---------------------------------------------------------------------------
    def read(self, principal: Principal, token: str) -> tuple[Job, list[dict[str, Any]] | None]:
        """Return a job's row and, on the first read after success, its results (then deleted).

        Args:
            principal: the caller.
            token: the job id as returned at submission.

        Returns:
            The row and the results (None when not available in this read).

        Raises:
            NotFoundError: no such job, a wrong secret, or another caller's job (one answer for
                all three, so that job ids cannot be probed).
        """
        match = _TOKEN_RE.match(token)
        not_found = NotFoundError("no such job (or not yours to see)")
        if match is None:
            raise not_found
        job_id, secret = f"job_{match.group(1)}", match.group(2)
        with self.db.session() as session:
            row = session.get(Job, job_id)
            if row is None or not hmac.compare_digest(row.secret_sha256, _secret_hash(secret)):
                raise not_found
            if principal.role != "admin" and row.key_id != principal.key_id:
                raise not_found
            if row.status in ACTIVE and utcnow() - row.heartbeat_at > self.stale:
                row.status, row.error, row.finished_at = FAILED, STALE_MESSAGE, utcnow()
            if row.status != SUCCEEDED or row.results_fetched_at or row.results_expired_at:
                return row, None
            # Claim the results first, so that two simultaneous reads cannot both deliver them.
            claimed = session.execute(
                update(Job)
                .where(Job.id == job_id, Job.results_fetched_at.is_(None))
                .values(results_fetched_at=utcnow())
            )
            if not getattr(claimed, "rowcount", 0):
                session.refresh(row)
                return row, None
            key = _seal_key(secret)
            results: list[dict[str, Any]] = []
            for chunk in session.scalars(select(JobResult).where(JobResult.job_id == job_id).order_by(JobResult.chunk)):
                results.extend(json.loads(unseal(key, chunk.payload)))
            session.execute(delete(JobResult).where(JobResult.job_id == job_id))
            session.refresh(row)
        logger.info("delivered and deleted the results of %s", job_id)
        return row, results

    # -- housekeeping ----------------------------------------------------------------------
    def heartbeat(self) -> None:
        """Tell other processes that this one's unfinished jobs are alive."""
        with self.db.session() as session:
            session.execute(
                update(Job).where(Job.owner == self.owner, Job.status.in_(ACTIVE)).values(heartbeat_at=utcnow())
            )

    def fail_stale(self) -> int:
        """Mark unfinished jobs whose owner stopped reporting as failed.

        Returns:
            How many jobs were marked.
        """
        cutoff = utcnow() - self.stale
        with self.db.session() as session:
            result = session.execute(
                update(Job)
                .where(Job.status.in_(ACTIVE), Job.heartbeat_at < cutoff)
                .values(status=FAILED, error=STALE_MESSAGE, finished_at=utcnow())
            )
            count = int(getattr(result, "rowcount", 0) or 0)
        if count:
            logger.warning("%d unfinished jobs of stopped processes marked as failed", count)
        return count

    def expire_results(self) -> int:
        """Delete results never fetched within the retention time.

        Returns:
            How many jobs' results were deleted.
        """
        cutoff = utcnow() - self.result_ttl
        with self.db.session() as session:
            ids = list(
                session.scalars(
                    select(Job.id).where(
                        Job.status == SUCCEEDED,
                        Job.finished_at < cutoff,
                        Job.results_fetched_at.is_(None),
                        Job.results_expired_at.is_(None),
                    )
                )
            )
            if ids:
                session.execute(delete(JobResult).where(JobResult.job_id.in_(ids)))
                session.execute(update(Job).where(Job.id.in_(ids)).values(results_expired_at=utcnow()))
        return len(ids)

    # -- the worker ------------------------------------------------------------------------
    def _work(self) -> None:
        while not self._stop.is_set():
            pending = self._queue.get()
            if pending is None:
                break
            try:
                self._run(pending)
            finally:
                with self._lock:
                    self._active.discard(pending.job_id)

    def _set(self, job_id: str, **values: Any) -> None:
        with self.db.session() as session:
            session.execute(update(Job).where(Job.id == job_id).values(**values))

    def _run(self, job: _Pending) -> None:
        self._set(job.job_id, status=RUNNING, started_at=utcnow(), heartbeat_at=utcnow())
        key = _seal_key(job.secret)
        done = 0
        try:
            for chunk, start in enumerate(range(0, len(job.notes), self.chunk_size)):
                if self._stop.is_set():
                    return  # stop() marks the job as failed
                notes = job.notes[start : start + self.chunk_size]
                answers = suggest_many(self.suggester, notes, job.options, job.request_id)
                payload = json.dumps([a.model_dump(mode="json") for a in answers])
                with self.db.session() as session:
                    session.add(JobResult(job_id=job.job_id, chunk=chunk, payload=seal(key, payload.encode())))
                    done += len(notes)
                    session.execute(update(Job).where(Job.id == job.job_id).values(n_done=done, heartbeat_at=utcnow()))
            self._set(job.job_id, status=SUCCEEDED, finished_at=utcnow())
            logger.info("%s succeeded (%d notes)", job.job_id, done)
        except CodesuggestError as exc:
            logger.warning("%s failed after %d notes: %s", job.job_id, done, type(exc).__name__)
            self._fail(job.job_id, f"note {done + 1} and after: {exc}")
        except Exception as exc:
            logger.exception("%s failed after %d notes: %s", job.job_id, done, type(exc).__name__)
            self._fail(
                job.job_id,
                f"internal error while coding notes {done + 1}-"
                f"{min(done + self.chunk_size, len(job.notes))}; see the service log for request "
                f"{job.request_id}",
            )
        finally:
            job.notes.clear()

    def _fail(self, job_id: str, message: str) -> None:
        with self.db.session() as session:
            session.execute(delete(JobResult).where(JobResult.job_id == job_id))
            session.execute(
                update(Job).where(Job.id == job_id).values(status=FAILED, error=message[:2000], finished_at=utcnow())
            )


class Housekeeper:
    """Runs periodic tasks (heartbeat, expiry) in a daemon thread.

    Args:
        interval_seconds: time between rounds.
        tasks: callables run in order each round; an error in one is logged, not raised.
    """

    def __init__(self, interval_seconds: float, tasks: Sequence[Callable[[], object]]) -> None:
        self.interval = interval_seconds
        self.tasks = list(tasks)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="codesuggest-housekeeping", daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread.

        Args:
            timeout: seconds to wait for it.
        """
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def run_once(self) -> None:
        """Run every task once."""
        for task in self.tasks:
            try:
                task()
            except Exception as exc:
                logger.warning("housekeeping task %s failed: %s", getattr(task, "__name__", task), exc)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.run_once()
