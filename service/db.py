"""The service database: engine, sessions and Alembic migrations run from code.

SQLite (a file, by default ``var/codesuggest.sqlite3`` under the working directory) or PostgreSQL
with a ``postgresql+psycopg://user:password@host/db`` URL (psycopg 3 is a dependency; the same
migrations and tests run on both: tests/service/test_postgres.py).
:meth:`Database.upgrade` brings the schema to the newest migration; the service runs it at
startup and ``codesuggest db upgrade`` runs it by hand.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from service.errors import ServiceConfigError

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers (status polls) proceed while the job worker writes; NORMAL is durable
    # across application crashes, which is what an audit log of a stateless service needs.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_engine(url: str) -> Engine:
    """Create the SQLAlchemy engine for a database URL.

    For a SQLite file the parent folder is created; connections may be shared by the request
    threads and the job worker thread.

    Args:
        url: SQLAlchemy URL, e.g. ``sqlite:///var/codesuggest.sqlite3``.

    Returns:
        The engine.

    Raises:
        ServiceConfigError: the URL cannot be parsed, or its driver is not installed.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ServiceConfigError(f"bad database URL {url!r}: {exc}") from exc
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    is_sqlite = parsed.get_backend_name() == "sqlite"
    if is_sqlite:
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            folder = Path(database).expanduser().parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ServiceConfigError(f"cannot create the database folder {folder}: {exc}") from exc
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    try:
        engine = create_engine(parsed, **kwargs)
    except (ImportError, ArgumentError) as exc:
        raise ServiceConfigError(
            f"cannot use database URL {parsed.render_as_string(hide_password=True)}: {exc}"
        ) from exc
    if is_sqlite:
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def head_revision() -> str:
    """Return the newest revision of the migrations (what :meth:`Database.upgrade` reaches)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(config).get_current_head()
    if head is None:  # pragma: no cover - the package always ships its migrations
        raise ServiceConfigError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


class Database:
    """An engine, a session factory and the migrations for one database URL.

    Args:
        url: SQLAlchemy URL.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def safe_url(self) -> str:
        """The URL with any password hidden, for messages and logs."""
        return self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """Open a session that commits on success and rolls back on error.

        Yields:
            The session.
        """
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def upgrade(self, revision: str = "head", attempts: int = 3) -> None:
        """Apply the Alembic migrations up to ``revision``.

        Args:
            revision: target revision.
            attempts: tries when another process migrates the same database at the same time.

        Raises:
            ServiceConfigError: the database cannot be reached or migrated.
        """
        self._migrate("upgrade", revision, attempts)

    def downgrade(self, revision: str = "base") -> None:
        """Revert the migrations down to ``revision`` (``base``: drop every table).

        Args:
            revision: target revision.

        Raises:
            ServiceConfigError: the database cannot be reached or migrated.
        """
        self._migrate("downgrade", revision, 1)

    def _migrate(self, direction: str, revision: str, attempts: int) -> None:
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        step = command.upgrade if direction == "upgrade" else command.downgrade
        for attempt in range(1, attempts + 1):
            try:
                with self.engine.begin() as connection:
                    config.attributes["connection"] = connection
                    step(config, revision)
                break
            except OperationalError as exc:
                if attempt == attempts:
                    raise ServiceConfigError(f"cannot migrate database {self.safe_url}: {exc.orig}") from exc
                logger.info("migration attempt %d failed (%s); retrying", attempt, exc.orig)
                time.sleep(0.2 * attempt)
            except SQLAlchemyError as exc:
                raise ServiceConfigError(f"cannot migrate database {self.safe_url}: {exc}") from exc
        logger.debug("database %s at revision %s", self.safe_url, self.current_revision())

    def current_revision(self) -> str | None:
        """Return the Alembic revision the database is at, or None before any migration."""
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def ping(self) -> bool:
        """Return True when the database answers a trivial query."""
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            return True
        except SQLAlchemyError as exc:
            logger.warning("database %s not reachable: %s", self.safe_url, type(exc).__name__)
            return False

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
