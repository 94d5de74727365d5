"""The API contract: request and response bodies of every endpoint, with examples.

Names follow the API, not the pipeline's internals. Requests reject unknown fields (a misspelt
option is an error, not a silent default); responses mirror :mod:`pipeline.suggest`'s result
types and always carry ``model_version``, ``code_set_versions`` and ``request_id``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

CodeSystem = Literal["ICD10CM", "CPT", "HCPCS"]
CareSetting = Literal["outpatient", "inpatient"]
Decision = Literal["accepted", "rejected", "added", "modified"]
JobState = Literal["queued", "running", "succeeded", "failed"]
ResultsState = Literal["pending", "available", "delivered", "expired", "none"]

EXAMPLE_NOTE = (
    "Assessment: Right ankle sprain after a fall from a ladder at home. "
    "No fracture on X-ray. Plan: ankle brace, follow up in two weeks."
)
EXAMPLE_VERSIONS: dict[str, Any] = {
    "ICD10CM": "FY2026 (April 1, 2026)",
    "HCPCS": "2020",
    "CPT": "project lexicon",
}
EXAMPLE_REQUEST_ID = "5f0c6b1e9a7d4c1f8e2b3a4d5c6e7f80"


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("text is empty or whitespace only")
    return text


NoteText = Annotated[
    str,
    Field(
        min_length=1,
        description="The clinical note, plain text. Over the deployment's limit "
        "(CODESUGGEST_MAX_TEXT_CHARS, 100,000 by default): 413.",
        json_schema_extra={"pattern": r"\S"},
    ),
    AfterValidator(_not_blank),
]


def _written_date(value: Any) -> Any:
    # Pydantic would read a number as a Unix timestamp; the API takes dates as YYYY-MM-DD only.
    if not isinstance(value, str | dt.date):
        raise ValueError("a date is written YYYY-MM-DD")
    return value


EncounterDate = Annotated[
    dt.date,
    BeforeValidator(_written_date),
    Field(description="Date of service, YYYY-MM-DD."),
]
NoteId = Annotated[
    str,
    Field(min_length=1, max_length=200, description="The caller's id for the note (audited)."),
]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PatientIn(_Request):
    """What the request says about the patient (age/sex edits, new vs established)."""

    age: int | None = Field(None, ge=0, le=130, strict=True, description="Age in years.")
    sex: Literal["female", "male", "unknown"] = "unknown"


class SuggestOptions(_Request):
    """Options shared by single and batch requests."""

    code_systems: list[CodeSystem] | None = Field(
        None,
        min_length=1,
        max_length=3,
        description="Code systems to suggest from; all three when omitted.",
    )
    top_k: int | None = Field(
        None,
        ge=1,
        le=500,
        strict=True,
        description="At most this many suggestions (model default when omitted).",
    )
    min_score: float | None = Field(
        None, ge=0.0, le=1.0, strict=True, description="Leave out suggestions scoring below this."
    )


class SuggestionRequest(SuggestOptions):
    """One note to code."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "text": EXAMPLE_NOTE,
                    "setting": "outpatient",
                    "note_id": "enc-2026-000123",
                    "encounter_date": "2026-11-02",
                    "patient": {"age": 47, "sex": "female"},
                    "code_systems": ["ICD10CM", "CPT", "HCPCS"],
                    "top_k": 10,
                }
            ]
        },
    )

    text: NoteText
    setting: CareSetting = "outpatient"
    note_id: NoteId | None = None
    encounter_date: EncounterDate | None = None
    patient: PatientIn | None = None


class EvidenceOut(BaseModel):
    """A span of the note that supports a code."""

    start: int = Field(description="Character offset, 0-based.")
    end: int = Field(description="Character offset, exclusive.")
    text: str = Field(description="note[start:end]")
    section: str | None = Field(description="The note section the span is in.")
    assertions: dict[str, bool] = Field(description="negated, historical, family, hypothetical, uncertain.")


class RuleOut(BaseModel):
    """A coding rule applied to a suggestion."""

    id: str = Field(examples=["icd.7th.initial"])
    message: str


class SuggestionOut(BaseModel):
    """One suggested code with its evidence."""

    code: str
    system: str = Field(description="ICD10CM, CPT or HCPCS.")
    description: str
    score: float = Field(description="Calibrated probability that a coder assigns the code.")
    rank: int = Field(description="1-based position in the ranked list.")
    status: Literal["suggested", "consider", "query"]
    evidence: list[EvidenceOut]
    rationale: str
    modifiers: list[str]
    rules: list[RuleOut]
    query: str | None = Field(description="For status 'query': the question for the physician.")
    pointers: list[str] = Field(description="For service lines: the diagnoses supporting them.")


class ExcludedOut(BaseModel):
    """A mention deliberately not coded, and why."""

    text: str
    start: int
    end: int
    reason: str = Field(examples=["negated", "family", "hypothetical"])
    codes: list[str] = Field(default_factory=list, description="Codes it would have supported.")


class CodeSetLineOut(BaseModel):
    """One line of the final, ordered encounter code set."""

    sequence: int
    code: str
    system: str
    description: str
    role: str = Field(description="principal / first-listed / secondary / external-cause, or procedure / supply / em.")
    modifiers: list[str]
    pointers: list[str]


class Versioned(BaseModel):
    """Fields every model-dependent answer carries."""

    model_version: str = Field(examples=["codesuggest-default 1.0.0"])
    code_set_versions: dict[str, str] = Field(examples=[EXAMPLE_VERSIONS])
    request_id: str = Field(examples=[EXAMPLE_REQUEST_ID])


class SuggestionResponse(Versioned):
    """Ranked suggestions, excluded mentions and the encounter code set for one note."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "note_id": "enc-2026-000123",
                    "setting": "outpatient",
                    "suggestions": [
                        {
                            "code": "S93.401A",
                            "system": "ICD10CM",
                            "description": "Sprain of unspecified ligament of right ankle, initial encounter",
                            "score": 0.91,
                            "rank": 1,
                            "status": "suggested",
                            "evidence": [
                                {
                                    "start": 12,
                                    "end": 30,
                                    "text": "Right ankle sprain",
                                    "section": "assessment",
                                    "assertions": {"negated": False},
                                }
                            ],
                            "rationale": "Right ankle sprain stated in the assessment; first visit for it.",
                            "modifiers": [],
                            "rules": [{"id": "icd.7th.initial", "message": "7th character A"}],
                            "query": None,
                            "pointers": [],
                        }
                    ],
                    "excluded": [
                        {
                            "text": "fracture",
                            "start": 73,
                            "end": 81,
                            "reason": "negated",
                            "codes": [],
                        }
                    ],
                    "code_set": [
                        {
                            "sequence": 1,
                            "code": "S93.401A",
                            "system": "ICD10CM",
                            "description": "Sprain of unspecified ligament of right ankle, initial encounter",
                            "role": "first-listed",
                            "modifiers": [],
                            "pointers": [],
                        }
                    ],
                    "encounter": {},
                    "model_version": "codesuggest-default 1.0.0",
                    "code_set_versions": EXAMPLE_VERSIONS,
                    "request_id": EXAMPLE_REQUEST_ID,
                    "elapsed_ms": 41.7,
                }
            ]
        }
    )

    note_id: str | None = None
    setting: str
    suggestions: list[SuggestionOut]
    excluded: list[ExcludedOut]
    code_set: list[CodeSetLineOut]
    encounter: dict[str, Any] = Field(
        default_factory=dict, description="Further encounter-level facts (E/M level basis...)."
    )
    elapsed_ms: float = Field(description="Time spent coding this note.")


class BatchNoteIn(_Request):
    """One note of a batch; ``setting`` falls back to the batch's."""

    text: NoteText
    note_id: NoteId | None = None
    setting: CareSetting | None = None
    encounter_date: EncounterDate | None = None
    patient: PatientIn | None = None


class BatchRequest(SuggestOptions):
    """Several notes coded with the same options.

    Up to CODESUGGEST_BATCH_SYNC_LIMIT notes (100) are answered at once (200); more become an
    asynchronous job (202), up to CODESUGGEST_JOB_MAX_NOTES (10,000; more: 413).
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "notes": [
                        {"note_id": "enc-1", "text": EXAMPLE_NOTE},
                        {
                            "note_id": "enc-2",
                            "text": "Type 2 diabetes mellitus without complications. Continue metformin.",
                            "patient": {"age": 63, "sex": "male"},
                        },
                    ],
                    "setting": "outpatient",
                    "code_systems": ["ICD10CM"],
                }
            ]
        },
    )

    notes: list[BatchNoteIn] = Field(min_length=1)
    setting: CareSetting = "outpatient"


class BatchResponse(Versioned):
    """The answers of a synchronous batch, in the order of the notes."""

    n_notes: int
    results: list[SuggestionResponse]
    elapsed_ms: float


class JobAccepted(Versioned):
    """An asynchronous batch job was queued; poll ``status_url``."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "job_id": "job_3f2a9c0d1b7e4a55" + "0" * 32,
                    "status": "queued",
                    "status_url": "/v1/jobs/job_3f2a9c0d1b7e4a55" + "0" * 32,
                    "n_notes": 2500,
                    "model_version": "codesuggest-default 1.0.0",
                    "code_set_versions": EXAMPLE_VERSIONS,
                    "request_id": EXAMPLE_REQUEST_ID,
                }
            ]
        }
    )

    job_id: str = Field(description="Opaque job id; it also holds the key to the job's results, keep it private.")
    status: JobState
    status_url: str
    n_notes: int


class JobStatus(Versioned):
    """Where a job is; once it succeeded, the first read returns the results and deletes them."""

    job_id: str
    status: JobState
    n_notes: int
    n_done: int
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    error: str | None = Field(description="Why the job failed.")
    results_state: ResultsState = Field(
        description="pending (not finished), available (in this answer), delivered (returned "
        "earlier and deleted), expired (never fetched, deleted), none (the job failed)."
    )
    results: list[SuggestionResponse] | None = Field(
        description="The answers, in the order of the notes; only in the first read after success."
    )


class CodeOut(Versioned):
    """A code of the knowledge base with its notes."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "code": "S93.401A",
                    "system": "ICD10CM",
                    "description": "Sprain of unspecified ligament of right ankle, initial encounter",
                    "billable": True,
                    "parent": "S93.401",
                    "chapter": "19",
                    "block": "S90-S99",
                    "inclusion_terms": [],
                    "includes": [],
                    "excludes1": [],
                    "excludes2": ["strain of muscle and tendon of ankle and foot (S96.-)"],
                    "code_first": [],
                    "use_additional": [],
                    "code_also": [],
                    "seventh": {"A": "initial encounter", "D": "subsequent encounter"},
                    "placeholder": False,
                    "terminated": False,
                    "synonyms": [],
                    "model_version": "codesuggest-default 1.0.0",
                    "code_set_versions": EXAMPLE_VERSIONS,
                    "request_id": EXAMPLE_REQUEST_ID,
                }
            ]
        }
    )

    code: str
    system: str
    description: str
    billable: bool
    parent: str | None
    chapter: str | None
    block: str | None
    inclusion_terms: list[str]
    includes: list[str]
    excludes1: list[str]
    excludes2: list[str]
    code_first: list[str]
    use_additional: list[str]
    code_also: list[str]
    seventh: dict[str, str] | None
    placeholder: bool
    terminated: bool
    synonyms: list[str]


class CodeHitOut(BaseModel):
    """One code found by a text search."""

    code: str
    system: str
    description: str
    score: float
    matched: str = Field(description="The knowledge-base text that matched.")
    source: str = Field(description="index, title, inclusion or synonym.")
    billable: bool


class CodeSearchResponse(Versioned):
    """Codes matching a text, best first."""

    query: str
    system: str | None
    results: list[CodeHitOut]


class FeedbackDecisionIn(_Request):
    """A coder's decision on one code."""

    code: str = Field(min_length=1, max_length=16, description="The code as suggested or added.")
    system: CodeSystem | None = Field(None, description="Read from the code's form when omitted.")
    decision: Decision
    replaced_by: str | None = Field(
        None, min_length=1, max_length=16, description="For 'modified': the code used instead."
    )
    replaced_by_system: CodeSystem | None = None
    reason: str | None = Field(None, max_length=1000)

    @model_validator(mode="after")
    def _replacement_only_when_modified(self) -> FeedbackDecisionIn:
        if self.decision == "modified" and not self.replaced_by:
            raise ValueError("a 'modified' decision needs replaced_by (the code used instead)")
        if self.decision != "modified" and (self.replaced_by or self.replaced_by_system):
            raise ValueError("replaced_by is only allowed with decision 'modified'")
        return self


class FeedbackRequest(_Request):
    """A coder's decisions on the codes of one note."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "note_id": "enc-2026-000123",
                    "user": "coder-17",
                    "suggestion_request_id": EXAMPLE_REQUEST_ID,
                    "setting": "outpatient",
                    "decisions": [
                        {"code": "S93.401A", "decision": "accepted"},
                        {"code": "W11.XXXA", "decision": "added", "reason": "fall from ladder"},
                        {
                            "code": "S93.409A",
                            "decision": "modified",
                            "replaced_by": "S93.401A",
                            "reason": "laterality documented",
                        },
                        {"code": "M25.571", "decision": "rejected"},
                    ],
                }
            ]
        },
    )

    note_id: NoteId
    user: str = Field(min_length=1, max_length=200, description="The coder's user id.")
    suggestion_request_id: str | None = Field(
        None, max_length=64, description="request_id of the suggestion answer being reviewed."
    )
    setting: CareSetting | None = None
    text: str | None = Field(
        None,
        description="The note text; stored only when the deployment enables "
        "CODESUGGEST_FEEDBACK_STORE_TEXT (it is PHI), ignored otherwise.",
    )
    decisions: list[FeedbackDecisionIn] = Field(min_length=1, max_length=500)


class FeedbackResponse(Versioned):
    """What was stored."""

    note_id: str
    stored: int = Field(description="Decisions stored.")
    text_stored: bool = Field(description="Whether the note text was stored.")


class ModelInfoResponse(Versioned):
    """The loaded model: version, training data, held-out metrics, code-set versions.

    Further facts the model reports (decision threshold, git commit...) are passed through.
    """

    model_config = ConfigDict(extra="allow")

    name: str
    version: str
    created_at: str | None = None
    training_data: Any = Field(None, description="References to the training data and hashes.")
    metrics: dict[str, Any] = Field(default_factory=dict)


class LiveResponse(BaseModel):
    """The process is up."""

    status: Literal["ok"] = "ok"


class ReadyResponse(BaseModel):
    """Whether the model and the database are ready."""

    status: Literal["ready", "not_ready"]
    model: bool
    database: bool
    model_version: str | None
    code_set_versions: dict[str, str]


class FieldError(BaseModel):
    """A field of the request that was wrong."""

    field: str = Field(examples=["notes[3].text"])
    message: str


class ErrorInfo(BaseModel):
    """What went wrong."""

    type: str = Field(examples=["empty_note", "validation_error", "unknown_code"])
    message: str
    request_id: str | None
    fields: list[FieldError] | None = None


class ErrorResponse(BaseModel):
    """The body of every error answer."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": {
                        "type": "validation_error",
                        "message": "invalid request: text: text is empty or whitespace only",
                        "request_id": EXAMPLE_REQUEST_ID,
                        "fields": [{"field": "text", "message": "text is empty or whitespace only"}],
                    }
                }
            ]
        }
    )

    error: ErrorInfo


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the given error statuses.

    Args:
        *statuses: HTTP statuses the endpoint may answer with.

    Returns:
        A mapping for the route decorator's ``responses`` argument.
    """
    descriptions = {
        401: "No API key, or an invalid or revoked one.",
        403: "The key's role may not call this endpoint.",
        404: "Not found.",
        409: "A request with this Idempotency-Key is still being processed.",
        413: "Text, batch or body over the configured limits.",
        422: "Invalid input; 'fields' names each bad field.",
        429: "Too many jobs in progress.",
        503: "Not ready.",
    }
    return {status: {"model": ErrorResponse, "description": descriptions.get(status, "Error.")} for status in statuses}
