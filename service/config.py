"""Where and how the service runs: settings from ``CODESUGGEST_*`` environment variables.

What the model does is saved with the model; this module holds only the deployment side (paths,
database, limits, security switches). ``.env.example`` at the project root lists every variable
with its default. Nothing else in the service reads the environment.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipeline.locations import default_kb_dir, default_model_dir
from service.errors import ServiceConfigError

logger = logging.getLogger(__name__)

ENV_PREFIX = "CODESUGGEST_"
DEFAULT_DATABASE_URL = "sqlite:///var/codesuggest.sqlite3"
DEFAULT_ENCOUNTER_KEY_FILE = Path("var/encounter.key")
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class Settings(BaseSettings):
    """Deployment settings; each field ``x`` is read from ``CODESUGGEST_X``.

    Attributes:
        model_dir: the suggestion model artefact (default ``models/default``).
        kb_dir: the code knowledge base artefact (default ``models/kb``).
        database_url: SQLAlchemy URL; SQLite paths are relative to the working directory and
            their folder is created. PostgreSQL: ``postgresql+psycopg://user:pw@host/db``.
        max_text_chars: longest note accepted (longer: 413).
        max_body_bytes: largest request body accepted (larger: 413).
        batch_sync_limit: notes answered synchronously by the batch endpoint; more become a job.
        job_max_notes: most notes in one asynchronous job (more: 413).
        job_max_active: most queued or running jobs per service process (more: 429).
        job_chunk_size: notes processed (and their results saved) together inside a job.
        job_result_ttl_seconds: how long unfetched job results are kept.
        job_stale_seconds: a queued or running job whose worker has not reported for this long
            is reported as failed (its worker stopped).
        idempotency_ttl_seconds: how long an ``Idempotency-Key`` answer is kept for replay.
        log_level: level of the service's log.
        insecure_dev: serve without API keys (every caller is admin); for local development only.
        host: address ``codesuggest serve`` binds to.
        port: its port.
        workers: its worker processes.
        feedback_store_text: store the note text sent with feedback (it is PHI; default off).
        warmup: code a made-up note at startup, so that the first request is not slow.
        suggest_concurrency: notes coded at once per process (more threads only contend for the
            interpreter lock; scale with ``workers``).
        encounter_key: the key that seals the workbench's note texts (64 hex digits); when unset,
            ``encounter_key_file`` is read, and created on first use.
        encounter_key_file: where the encounter key is kept when ``encounter_key`` is unset
            (default ``var/encounter.key`` under the working directory, beside the default database).
        encounter_retention_days: days an encounter's note text is kept after it arrives, unless
            the request sets its own ``retention_days``.
        ui_session_hours: how long a workbench sign-in lasts.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=".env", env_file_encoding="utf-8", extra="ignore")

    model_dir: Path = Field(default_factory=default_model_dir)
    kb_dir: Path = Field(default_factory=default_kb_dir)
    database_url: str = DEFAULT_DATABASE_URL
    max_text_chars: int = Field(100_000, ge=1)
    max_body_bytes: int = Field(50 * 1024 * 1024, ge=1024)
    batch_sync_limit: int = Field(100, ge=1)
    job_max_notes: int = Field(10_000, ge=1)
    job_max_active: int = Field(4, ge=1)
    job_chunk_size: int = Field(32, ge=1)
    job_result_ttl_seconds: int = Field(7 * 24 * 3600, ge=1)
    job_stale_seconds: int = Field(120, ge=5)
    idempotency_ttl_seconds: int = Field(24 * 3600, ge=1)
    log_level: LogLevel = "INFO"
    insecure_dev: bool = False
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1)
    feedback_store_text: bool = False
    warmup: bool = True
    suggest_concurrency: int = Field(1, ge=1)
    encounter_key: SecretStr | None = None
    encounter_key_file: Path | None = None
    encounter_retention_days: int = Field(90, ge=1, le=3650)
    ui_session_hours: float = Field(8.0, gt=0, le=24 * 30)

    @field_validator("encounter_key", "encounter_key_file", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value


def load_settings(**overrides: Any) -> Settings:
    """Read the settings from the environment (and ``.env``), with explicit overrides on top.

    Args:
        **overrides: field values that win over the environment (command-line flags).

    Returns:
        The settings.

    Raises:
        ServiceConfigError: a variable has an unusable value; the message names it.
    """
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"{ENV_PREFIX}{'.'.join(str(p) for p in err['loc']).upper()}: {err['msg']}" for err in exc.errors()
        )
        raise ServiceConfigError(f"bad setting: {problems}") from exc
