"""Fixtures of the workbench tests: a knowledge base with hierarchy and 7th characters, an app
with an encounter key, signing in, and encounters sent for review."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pipeline.errors import InvalidSeventhCharacterError, UnknownCodeError
from pipeline.kb.model import CodeRecord, normalize_code
from tests.service.conftest import _RECORDS, FakeKB, FakeSuggester, Service

ENCOUNTER_KEY = "11" * 32
NOTE = (
    "Assessment: right ankle sprain after a fall from a ladder. Type 2 diabetes, stable on metformin.\n"
    "There is no fracture on X-ray. Family history of heart disease.\n"
    "Plan: ankle brace, follow up in two weeks."
)

_MORE = {
    "S93.401": CodeRecord(
        "S93.401",
        "ICD10CM",
        "Sprain of unspecified ligament of right ankle",
        False,
        parent="S93.40",
        seventh={"A": "initial encounter", "D": "subsequent encounter", "S": "sequela"},
    ),
    "S93.40": CodeRecord("S93.40", "ICD10CM", "Sprain of unspecified ligament of ankle", False),
    "S93.401D": CodeRecord("S93.401D", "ICD10CM", "Sprain of right ankle, subsequent encounter", True),
    "I10": CodeRecord("I10", "ICD10CM", "Essential (primary) hypertension", True),
    "Z82.49": CodeRecord("Z82.49", "ICD10CM", "Family history of ischemic heart disease", True),
    "29540": CodeRecord("29540", "CPT", "Strapping of ankle and foot", True),
}
_ALL = {**_RECORDS, **_MORE}


@dataclass
class Modifier:
    """A modifier of the fake table."""

    code: str
    description: str


class WorkbenchKB(FakeKB):
    """The fake knowledge base with hierarchy, 7th characters and modifiers."""

    modifiers = {"RT": Modifier("RT", "right side"), "LT": Modifier("LT", "left side"), "25": Modifier("25", "")}

    def lookup(self, code: str, system: Any = None) -> CodeRecord:
        """The record of a code in any spelling."""
        _, canonical = normalize_code(code, system)
        if canonical not in _ALL:
            raise UnknownCodeError(f"{canonical} is not a code of the knowledge base")
        return _ALL[canonical]

    def get(self, code: str, system: Any = None) -> CodeRecord | None:
        """The record, or None."""
        try:
            return self.lookup(code, system)
        except Exception:
            return None

    def children(self, code: str) -> list[CodeRecord]:
        """Direct children."""
        parent = self.lookup(code).code
        return [r for r in _ALL.values() if r.parent == parent]

    def billable_descendants(self, code: str) -> list[CodeRecord]:
        """Billable codes below (or the code itself)."""
        record = self.lookup(code)
        if record.billable:
            return [record]
        prefix = record.code
        return [r for r in _ALL.values() if r.billable and r.code.startswith(prefix) and r.code != prefix]

    def complete(self, code: str, seventh: str) -> str:
        """Add a 7th character."""
        record = self.lookup(code, "ICD10CM")
        if record.seventh is None or seventh.upper() not in record.seventh:
            raise InvalidSeventhCharacterError(f"{seventh!r} is not a 7th character of {record.code}")
        return record.code + seventh.upper()

    def search(self, text: str, system: str | None = None, limit: int = 10) -> list[Any]:
        """Title words, as the base fake, over every record."""
        from pipeline.kb.model import SearchHit

        words = {w for w in re.findall(r"[a-z]{3,}", text.lower())}
        hits = [
            SearchHit(r.code, r.system, r.title, float(len(words & set(r.title.lower().split()))), r.title, "title")
            for r in _ALL.values()
            if r.billable and (system is None or r.system == system) and words & set(r.title.lower().split())
        ]
        return sorted(hits, key=lambda h: -h.score)[:limit]


@dataclass
class Workbench:
    """A running app with keys, a fake suggester and helpers to act as a coder."""

    svc: Service
    sessions: dict[str, TestClient] = field(default_factory=dict)

    @property
    def client(self) -> TestClient:
        """The app's client (API calls)."""
        return self.svc.client

    def post_encounter(self, encounter_id: str, text: str = NOTE, **fields: Any) -> Any:
        """Send an encounter for review with the integration key."""
        body = {"encounter_id": encounter_id, "text": text, **fields}
        return self.client.post("/v1/encounters", json=body, headers=self.svc.headers("integration"))


def csrf_of(html: str) -> str:
    """The CSRF token of a page's forms."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def sign_in(client: TestClient, token: str) -> Any:
    """Sign a client in through the form (the double-submit token included)."""
    page = client.get("/ui/login")
    login_token = re.search(r'name="login_token" value="([^"]+)"', page.text)
    assert login_token
    return client.post(
        "/ui/login", data={"api_key": token, "login_token": login_token.group(1), "next": "/ui/worklist"}
    )


@pytest.fixture
def workbench(service_factory: Callable[..., Service]) -> Iterator[Workbench]:
    """An app with the workbench's fake knowledge base and a fixed encounter key."""
    svc = service_factory(FakeSuggester(kb=WorkbenchKB()), encounter_key=ENCOUNTER_KEY)
    yield Workbench(svc)


@pytest.fixture
def coder(workbench: Workbench) -> TestClient:
    """The app's client, signed in as the coder."""
    response = sign_in(workbench.client, workbench.svc.keys["coder"])
    assert response.status_code == 200, response.text
    return workbench.client


def db_path(svc: Service) -> Path:
    """The SQLite file of an app."""
    return Path(svc.settings.database_url.removeprefix("sqlite:///"))
