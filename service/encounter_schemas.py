"""The API contract of ``/v1/encounters``: notes sent for a coder's review in the workbench.

Kept beside :mod:`service.schemas` (whose shared types it reuses) so that the workbench's
contract reads in one place; the same rules hold: requests reject unknown fields, responses carry
``model_version``, ``code_set_versions`` and ``request_id``, and no response quotes the note.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from service.schemas import (
    EXAMPLE_NOTE,
    CareSetting,
    CodeSystem,
    EncounterDate,
    NoteText,
    PatientIn,
    Versioned,
    _Request,
)

EncounterStatus = Literal["new", "in_review", "on_hold", "submitted"]
ENCOUNTER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"

EncounterId = Field(
    min_length=1,
    max_length=128,
    pattern=ENCOUNTER_ID_PATTERN,
    description="The caller's id for the encounter (letters, digits, '.', '_', ':', '-'); the review "
    "screen is /ui/encounters/{encounter_id}.",
)

EXAMPLE_ENCOUNTER: dict[str, Any] = {
    "encounter_id": "enc-2026-000123",
    "text": EXAMPLE_NOTE,
    "setting": "outpatient",
    "encounter_date": "2026-11-02",
    "patient": {"age": 47, "sex": "female"},
    "expected_value": 182.5,
    "retention_days": 30,
}


class EncounterIn(_Request):
    """One encounter to store for review: the note (sealed at rest) and what orders the worklist."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE_ENCOUNTER]})

    encounter_id: str = EncounterId
    text: NoteText
    setting: CareSetting = Field(
        "outpatient", description="Inpatient discharges come before outpatient visits on the worklist."
    )
    encounter_date: EncounterDate | None = Field(
        None,
        description="Date of service (for an inpatient stay: the discharge date); the worklist puts "
        "older encounters first. Today when omitted.",
    )
    patient: PatientIn | None = None
    expected_value: float | None = Field(
        None,
        ge=0,
        le=1e9,
        description="What the encounter is expected to be worth (charge, DRG weight: any one scale per "
        "deployment); orders encounters of the same setting and date, higher first.",
    )
    retention_days: int | None = Field(
        None,
        ge=1,
        le=3650,
        strict=True,
        description="Days the note text is kept after it arrives (CODESUGGEST_ENCOUNTER_RETENTION_DAYS "
        "when omitted); codes and decisions are kept.",
    )


class EncounterBatchIn(_Request):
    """Several encounters stored together: all or none."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"encounters": [EXAMPLE_ENCOUNTER]}]})

    encounters: list[EncounterIn] = Field(min_length=1, max_length=1000)


class EncounterCreated(Versioned):
    """An encounter stored for review."""

    encounter_id: str
    status: EncounterStatus
    review_url: str = Field(description="The workbench's review screen for this encounter.")
    text_length: int
    purge_at: dt.datetime = Field(description="When the note text will be deleted.")


class EncounterBatchCreated(Versioned):
    """What a batch stored, in request order."""

    created: int
    encounters: list[EncounterCreated]


class ReviewedCodeOut(BaseModel):
    """One line of the submitted code set, in claim order."""

    sequence: int
    code: str
    system: CodeSystem
    description: str
    modifiers: list[str]
    units: int
    pointers: list[str]


class EncounterOut(Versioned):
    """An encounter's review state (never its text)."""

    encounter_id: str
    status: EncounterStatus
    setting: CareSetting
    encounter_date: dt.date
    expected_value: float | None
    assigned_to: str | None
    received_at: dt.datetime
    submitted_at: dt.datetime | None
    submitted_by: str | None
    open_queries: int
    text_available: bool = Field(description="False once the note text has been purged.")
    review_url: str
    code_set: list[ReviewedCodeOut] = Field(
        description="The submitted code set in claim order; empty until the review is submitted."
    )
