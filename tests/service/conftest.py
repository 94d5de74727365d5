"""Fixtures of the service tests: a small in-test suggester, settings in tmp_path, API keys.

Pure HTTP behaviour (validation, auth, idempotency, audit, jobs) is tested against
:class:`FakeSuggester`, handed to :func:`service.main.create_app`; ``test_e2e.py``,
``test_uvicorn.py`` and ``test_schemathesis.py`` load the real model.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pipeline.errors import EmptyNoteError, UnknownCodeError
from pipeline.kb.model import CodeRecord, SearchHit, normalize_code
from pipeline.types import (
    CodeSetLine,
    Evidence,
    ExcludedMention,
    Patient,
    RuleDecision,
    Suggestion,
    SuggestionResult,
)
from service.config import Settings
from service.db import Database
from service.main import create_app
from service.security import create_key

FAKE_VERSIONS = {"ICD10CM": "FY2026 test", "HCPCS": "2020 test", "CPT": "test lexicon"}
ROLES = ("integration", "coder", "admin")

_RECORDS = {
    "S93.401A": CodeRecord(
        "S93.401A",
        "ICD10CM",
        "Sprain of unspecified ligament of right ankle, initial encounter",
        True,
        parent="S93.401",
        chapter="19",
        block="S90-S99",
        seventh={"A": "initial encounter", "D": "subsequent encounter", "S": "sequela"},
    ),
    "S93.409A": CodeRecord("S93.409A", "ICD10CM", "Sprain of ankle, unspecified side", True),
    "W11.XXXA": CodeRecord("W11.XXXA", "ICD10CM", "Fall from ladder, initial", True, placeholder=True),
    "E11.9": CodeRecord("E11.9", "ICD10CM", "Type 2 diabetes mellitus without complications", True),
    "L1906": CodeRecord("L1906", "HCPCS", "Ankle foot orthosis, prefabricated", True),
    "99213": CodeRecord("99213", "CPT", "Office visit, established patient, low", True),
}


class FakeKB:
    """A knowledge base of six codes with the real lookup/search contract."""

    versions = FAKE_VERSIONS

    def lookup(self, code: str, system: Any = None) -> CodeRecord:
        """Return the record of ``code`` (any spelling), read as ``system`` when given."""
        _, canonical = normalize_code(code, system)
        if canonical not in _RECORDS:
            raise UnknownCodeError(f"{canonical} is not a code of the knowledge base")
        return _RECORDS[canonical]

    def search(self, text: str, system: str | None = None, limit: int = 10) -> list[SearchHit]:
        """Codes whose title shares a word with ``text``."""
        words = {w for w in text.lower().split() if len(w) > 2}
        hits = [
            SearchHit(
                r.code,
                r.system,
                r.title,
                float(len(words & set(r.title.lower().split()))),
                r.title,
                "title",
            )
            for r in _RECORDS.values()
            if (system is None or r.system == system) and words & set(r.title.lower().split())
        ]
        return sorted(hits, key=lambda h: -h.score)[:limit]


@dataclass
class FakeSuggester:
    """Codes ``ankle`` as S93.401A and ``diabetes`` as E11.9, quoting the note as evidence.

    ``calls`` records the keyword arguments of every note coded; a note containing ``BOOM``
    raises an unexpected error; ``gate`` (when set) blocks coding until it is opened.
    """

    kb: FakeKB = field(default_factory=FakeKB)
    model_version: str = "fake-model 0.0.1"
    code_set_versions: dict[str, str] = field(default_factory=lambda: dict(FAKE_VERSIONS))
    calls: list[dict[str, Any]] = field(default_factory=list)
    batch_calls: int = 0
    gate: threading.Event | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def model_info(self) -> dict[str, Any]:
        """Manifest-like facts."""
        return {
            "name": "fake-model",
            "version": "0.0.1",
            "created_at": "2026-11-01T00:00:00+00:00",
            "training_data": [{"name": "unit-test", "sha256": "0" * 64}],
            "metrics": {"micro_f1": 0.5},
            "threshold": 0.4,
            "code_set_versions": dict(FAKE_VERSIONS),
        }

    def suggest(self, text: str, **kwargs: Any) -> SuggestionResult:
        """Code one note."""
        note_id = kwargs.pop("note_id", None)
        return self._code(text, note_id, kwargs)

    def suggest_batch(
        self, texts: Sequence[str], note_ids: Sequence[str | None] | None = None, **kwargs: Any
    ) -> list[SuggestionResult]:
        """Code several notes."""
        with self.lock:
            self.batch_calls += 1
        ids = list(note_ids) if note_ids else [None] * len(texts)
        return [self._code(t, i, kwargs) for t, i in zip(texts, ids, strict=True)]

    def _code(self, text: str, note_id: str | None, kwargs: dict[str, Any]) -> SuggestionResult:
        if self.gate is not None:
            assert self.gate.wait(30), "test gate never opened"
        if not text.strip():
            raise EmptyNoteError("the note text is empty or whitespace only")
        if "BOOM" in text:
            raise RuntimeError("simulated bug")
        with self.lock:
            self.calls.append({"note_id": note_id, "length": len(text), **kwargs})
        started = time.perf_counter()
        suggestions: list[Suggestion] = []
        for word, code in (("ankle", "S93.401A"), ("diabetes", "E11.9")):
            at = text.lower().find(word)
            if at >= 0:
                end = min(len(text), at + 40)
                suggestions.append(
                    Suggestion(
                        code=code,
                        system="ICD10CM",
                        description=_RECORDS[code].title,
                        score=0.9 if code == "S93.401A" else 0.7,
                        rank=len(suggestions) + 1,
                        status="suggested",
                        evidence=[Evidence(at, end, text[at:end], "assessment", {"negated": False})],
                        rationale=f"mentioned at {at}",
                        rules=[RuleDecision("icd.7th.initial", "7th character A")],
                    )
                )
        systems = kwargs.get("code_systems")
        if systems:
            suggestions = [s for s in suggestions if s.system in systems]
        top_k = kwargs.get("top_k")
        if top_k:
            suggestions = suggestions[:top_k]
        excluded = [ExcludedMention(text[:5], 0, min(5, len(text)), "negated")] if "no " in text else []
        code_set = [
            CodeSetLine(i + 1, s.code, s.system, s.description, "first-listed" if i == 0 else "secondary")
            for i, s in enumerate(suggestions)
        ]
        return SuggestionResult(
            suggestions=suggestions,
            excluded=excluded,
            code_set=code_set,
            model_version=self.model_version,
            code_set_versions=dict(self.code_set_versions),
            setting=kwargs.get("setting", "outpatient"),
            elapsed_ms=(time.perf_counter() - started) * 1000,
            note_length=len(text),
        )


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings with the database in ``tmp_path`` and no ``.env`` file read."""
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'service.sqlite3'}",
        "model_dir": tmp_path / "no-model",
        "kb_dir": tmp_path / "no-kb",
        "batch_sync_limit": 3,
        "job_chunk_size": 2,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def make_keys(database_url: str) -> dict[str, str]:
    """Create one key per role; returns role -> token."""
    db = Database(database_url)
    db.upgrade()
    tokens = {}
    with db.session() as session:
        for role in ROLES:
            _, tokens[role] = create_key(session, f"test {role}", role)
    db.dispose()
    return tokens


def auth(token: str) -> dict[str, str]:
    """The header carrying an API key."""
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Service:
    """A running in-process app with its client, keys, suggester and settings."""

    client: TestClient
    keys: dict[str, str]
    suggester: Any
    settings: Settings

    running: bool = True

    def stop(self) -> None:
        """Run the app's shutdown (once)."""
        if self.running:
            self.running = False
            self.client.__exit__(None, None, None)

    def headers(self, role: str = "admin", **extra: str) -> dict[str, str]:
        """Auth headers for a role, plus extra headers."""
        return {**auth(self.keys[role]), **extra}

    @property
    def db(self) -> Database:
        """The app's database."""
        db: Database = self.client.app.state.db  # type: ignore[attr-defined]
        return db


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's CODESUGGEST_* variables out of the tests."""
    for name in list(os.environ):
        if name.startswith("CODESUGGEST_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def migrated_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A freshly migrated SQLite file that tests copy instead of migrating their own."""
    path = tmp_path_factory.mktemp("template") / "migrated.sqlite3"
    db = Database(f"sqlite:///{path}")
    db.upgrade()
    with db.engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    db.dispose()
    return path


def _start(folder: Path, template: Path, suggester: FakeSuggester | None, overrides: dict[str, Any]) -> Service:
    settings = make_settings(folder, **overrides)
    target = Path(settings.database_url.removeprefix("sqlite:///"))
    if settings.database_url.startswith("sqlite:///") and not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(template, target)
    keys = make_keys(settings.database_url)
    fake = suggester or FakeSuggester()
    client = TestClient(create_app(settings, suggester=fake), raise_server_exceptions=False)
    client.__enter__()
    return Service(client, keys, fake, settings)


@pytest.fixture
def service_factory(tmp_path: Path, migrated_db: Path) -> Iterator[Callable[..., Service]]:
    """Start apps with a fake suggester; every app started is stopped after the test."""
    started: list[Service] = []

    def start(suggester: FakeSuggester | None = None, **overrides: Any) -> Service:
        started.append(_start(tmp_path, migrated_db, suggester, overrides))
        return started[-1]

    yield start
    for svc in reversed(started):
        svc.stop()


@pytest.fixture(scope="module")
def shared_service(tmp_path_factory: pytest.TempPathFactory, migrated_db: Path) -> Iterator[Service]:
    """One app for a whole module, for tests that only read (auth, roles, lookups)."""
    svc = _start(tmp_path_factory.mktemp("shared"), migrated_db, None, {})
    yield svc
    svc.stop()


@pytest.fixture
def service(service_factory: Callable[..., Service]) -> Service:
    """One app with default test settings."""
    return service_factory()


@pytest.fixture
def patient() -> Patient:
    """A patient record as the pipeline receives it."""
    return Patient(age=47, sex="female")


@pytest.fixture(scope="session")
def real_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """The app with the real default model and knowledge base, loaded once by its lifespan."""
    from pipeline.locations import default_kb_dir, default_model_dir

    folder = tmp_path_factory.mktemp("real-service")
    settings = make_settings(
        folder,
        model_dir=default_model_dir(),
        kb_dir=default_kb_dir(),
        batch_sync_limit=100,
        job_chunk_size=8,
    )
    keys = make_keys(settings.database_url)
    client = TestClient(create_app(settings), raise_server_exceptions=False)
    client.__enter__()  # runs the lifespan: Suggester.load(models/default, models/kb)
    svc = Service(client, keys, client.app.state.suggester, settings)  # type: ignore[attr-defined]
    yield svc
    svc.stop()
