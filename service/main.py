"""The FastAPI application: :func:`create_app` and its ``lifespan``.

Run it with ``codesuggest serve`` (or ``uvicorn --factory service.main:create_app``). At startup
the lifespan migrates the database, loads the suggester once (a missing or corrupt model stops
startup with the loader's message) and starts the job worker; at shutdown it stops the worker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from pipeline import __version__
from pipeline.suggest import Suggester
from service.audit import RequestMiddleware
from service.config import Settings, load_settings
from service.db import Database
from service.errors import install_error_handlers
from service.idempotency import IdempotencyStore
from service.jobs import Housekeeper, JobManager
from service.routes import codes, encounters, feedback, health, jobs, suggestions
from service.suggesting import BoundedSuggester, SuggesterLike
from service.ui import install as install_workbench

logger = logging.getLogger(__name__)

INSECURE_WARNING = (
    "INSECURE DEV MODE: API keys are NOT checked and every caller is admin. "
    "Never run like this with real notes or on a shared network."
)

DESCRIPTION = """
Suggest ICD-10-CM, CPT and HCPCS codes for clinical notes, with evidence, through the same
`suggest` path as the `codesuggest` command line.

**Authentication**: send an API key as `Authorization: Bearer <key>` or `X-API-Key: <key>`
(`codesuggest keys create --name N --role integration|coder|admin`). Roles: suggestions and code
lookups for every role; batches, jobs and encounters for review for `integration` and `admin`;
feedback for `coder` and `admin`. Coders work in the browser at `/ui/` (the coder's workbench).

**Errors** all have the body `{"error": {"type", "message", "request_id", "fields"?}}`.
Every answer carries the headers `X-Request-ID`, `X-Model-Version` and `X-Code-Set-Versions`.

**Idempotency**: send `Idempotency-Key` on a POST to make retries safe.
"""


# A made-up note (no PHI) coded once at startup so that lazily built structures (spaCy
# vocabulary, caches, the code search index) are ready before the first real request.
WARMUP_NOTE = (
    "Assessment: right ankle sprain after a fall at home; type 2 diabetes mellitus without "
    "complications. Plan: ankle brace, continue metformin."
)


def load_suggester(settings: Settings) -> SuggesterLike:
    """Load the suggestion model and its knowledge base named by the settings, then warm it up.

    Args:
        settings: deployment settings (``model_dir``, ``kb_dir``, ``warmup``).

    Returns:
        The loaded suggester.

    Raises:
        ArtefactError: the model or knowledge base is missing, corrupt or incompatible.
    """
    suggester: SuggesterLike = Suggester.load(settings.model_dir, settings.kb_dir)
    if settings.warmup:
        warm_up(suggester)
    return suggester


def warm_up(suggester: SuggesterLike) -> float:
    """Code a made-up note and run a code search once, so the first request is not slow.

    Args:
        suggester: the loaded suggester.

    Returns:
        Seconds spent.
    """
    started = time.perf_counter()
    suggester.suggest(WARMUP_NOTE, note_id="warm-up")
    suggester.kb.search("ankle sprain", limit=1)
    elapsed = time.perf_counter() - started
    logger.info("warmed up in %.1f s", elapsed)
    return elapsed


def create_app(settings: Settings | None = None, *, suggester: SuggesterLike | None = None) -> FastAPI:
    """Build the application.

    Args:
        settings: deployment settings; read from ``CODESUGGEST_*`` when omitted.
        suggester: an already loaded suggester to serve instead of loading ``settings.model_dir``
            at startup (tests and benchmarks that share one model between apps).

    Returns:
        The application; the model loads when its lifespan starts.
    """
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.insecure_dev:
            logger.warning(INSECURE_WARNING)
        db = Database(settings.database_url)
        try:
            db.upgrade()
            inner = suggester if suggester is not None else load_suggester(settings)
        except BaseException:
            db.dispose()
            raise
        loaded = BoundedSuggester(inner, settings.suggest_concurrency)
        logger.info("serving %s (code sets %s)", loaded.model_version, loaded.code_set_versions)
        job_manager = JobManager(
            db,
            loaded,
            chunk_size=settings.job_chunk_size,
            max_active=settings.job_max_active,
            stale_seconds=settings.job_stale_seconds,
            result_ttl_seconds=settings.job_result_ttl_seconds,
        )
        idempotency = IdempotencyStore(db, settings.idempotency_ttl_seconds)
        housekeeper = Housekeeper(
            max(1.0, settings.job_stale_seconds / 6),
            [
                job_manager.heartbeat,
                job_manager.fail_stale,
                job_manager.expire_results,
                idempotency.purge_expired,
            ],
        )
        app.state.settings = settings
        app.state.db = db
        app.state.suggester = loaded
        app.state.jobs = job_manager
        app.state.idempotency = idempotency
        job_manager.start()
        housekeeper.start()
        try:
            yield
        finally:
            housekeeper.stop()
            job_manager.stop()
            app.state.suggester = None
            db.dispose()
            logger.info("service stopped")

    app = FastAPI(
        title="codesuggest",
        version=__version__,
        summary="Offline computer-assisted coding: clinical note -> ICD-10-CM / CPT / HCPCS suggestions with evidence",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # /docs and /redoc come from service.ui, with vendored assets (offline)
        redoc_url=None,
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(RequestMiddleware, max_body_bytes=settings.max_body_bytes)
    for module in (health, suggestions, jobs, codes, feedback, encounters):
        app.include_router(module.router)
    install_workbench(app)
    return app
