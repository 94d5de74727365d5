"""The CDS Hooks services, their request and feedback bodies, and a hook call's coded note.

Two services, one per hook:

* ``codesuggest-discharge-coding`` on ``encounter-discharge`` (the standard hook): when the
  clinician discharges, the EHR gets the encounter's suggested code set. The hook is "typically
  an inpatient encounter", so without a prefetched Encounter the inpatient rules apply.
* ``codesuggest-coding-review`` on the custom hook ``invalid.codesuggest.encounter-coding-review``
  (reverse-domain name, as the spec asks of organisation hooks; the project's reserved domain,
  see :mod:`service.fhir.terminology`): when a coder or CDI specialist opens an encounter for
  review, concurrently during a stay or after an ambulatory visit's note is signed. This fits
  coding better than ``encounter-start``, which fires at admission or check-in, before there is
  any note to code: its cards would always be empty. Its default setting is outpatient.

Both ask the EHR to prefetch the patient, the encounter and the encounter's current
DocumentReferences with the notes inline. codesuggest never calls the EHR's FHIR server (it
runs offline): a call without the ``documents`` prefetch gets 412 Precondition Failed, as the
spec prescribes; ``documents`` null (the EHR has none) gets an empty list of cards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from pipeline.errors import CodesuggestError
from service.fhir.outcome import FhirError, Issue
from service.fhir.reading import ClinicalNote, NoNoteError, read_encounter_documents

CODING_REVIEW_HOOK = "invalid.codesuggest.encounter-coding-review"

PREFETCH = {
    "patient": "Patient/{{context.patientId}}",
    "encounter": "Encounter/{{context.encounterId}}",
    "documents": "DocumentReference?patient={{context.patientId}}&encounter={{context.encounterId}}&status=current",
}

USAGE = (
    "Needs the 'documents' prefetch with each note inline (content.attachment: contentType text/plain, "
    "base64 data): codesuggest does not call the FHIR server. Authenticate with a JWT signed by a key "
    "of a configured issuer (ES384 or RS384)."
)


class PreconditionFailedError(CodesuggestError):
    """The EHR did not send the data the service needs and the service cannot fetch it (412)."""

    http_status = 412


@dataclass(frozen=True, slots=True)
class CdsService:
    """One CDS service.

    Attributes:
        id: the ``{id}`` of ``/cds-services/{id}``.
        hook: the hook it answers.
        title: its name.
        description: what it does.
        default_setting: the coding setting when the EHR sends no Encounter.
    """

    id: str
    hook: str
    title: str
    description: str
    default_setting: str

    def discovery(self) -> dict[str, Any]:
        """Its entry in the discovery answer."""
        return {
            "hook": self.hook,
            "title": self.title,
            "description": self.description,
            "id": self.id,
            "prefetch": dict(PREFETCH),
            "usageRequirements": USAGE,
        }


SERVICES: dict[str, CdsService] = {
    service.id: service
    for service in (
        CdsService(
            "codesuggest-discharge-coding",
            "encounter-discharge",
            "Suggested codes at discharge",
            "Codes the encounter's notes (ICD-10-CM diagnoses in sequence, CPT/HCPCS lines with modifiers) "
            "and offers each diagnosis as a Condition to add; flags diagnoses that need a physician query.",
            "inpatient",
        ),
        CdsService(
            "codesuggest-coding-review",
            CODING_REVIEW_HOOK,
            "Suggested codes for coding review",
            "For a coder or CDI specialist opening an encounter for review: the encounter's suggested code "
            "set, each diagnosis as a Condition to add, and the documentation questions for the physician.",
            "outpatient",
        ),
    )
}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HookContext(BaseModel):
    """The context of both hooks (hooks may add fields; they are ignored)."""

    model_config = ConfigDict(extra="allow")

    userId: str = Field(min_length=1, max_length=200)
    patientId: str = Field(min_length=1, max_length=200)
    encounterId: str = Field(min_length=1, max_length=200)


class HookRequest(_Body):
    """A CDS Hooks service call."""

    hook: str = Field(min_length=1, max_length=200)
    hookInstance: str = Field(min_length=1, max_length=100)
    fhirServer: str | None = None
    fhirAuthorization: dict[str, Any] | None = None
    context: HookContext
    prefetch: dict[str, Any] | None = None
    extension: dict[str, Any] | None = None


class FeedbackCoding(BaseModel):
    """A CDS Hooks Coding."""

    model_config = ConfigDict(extra="allow")

    code: str = Field(min_length=1, max_length=200)
    system: str = Field(min_length=1, max_length=500)
    display: str | None = Field(None, max_length=500)


class OverrideReason(_Body):
    """Why a card was overridden."""

    reason: FeedbackCoding | None = None
    userComment: str | None = Field(None, max_length=900)


class AcceptedSuggestion(_Body):
    """A suggestion the user accepted."""

    id: str = Field(min_length=1, max_length=64)


class FeedbackItem(_Body):
    """What the user did with one card."""

    card: str = Field(min_length=1, max_length=64)
    outcome: Literal["accepted", "overridden"]
    acceptedSuggestions: list[AcceptedSuggestion] | None = Field(None, min_length=1, max_length=500)
    overrideReason: OverrideReason | None = None
    outcomeTimestamp: AwareDatetime

    @model_validator(mode="after")
    def _accepted_names_suggestions(self) -> FeedbackItem:
        if self.outcome == "accepted" and not self.acceptedSuggestions:
            raise ValueError("an 'accepted' outcome needs acceptedSuggestions")
        if self.outcome == "overridden" and self.acceptedSuggestions:
            raise ValueError("an 'overridden' outcome has no acceptedSuggestions")
        return self


class FeedbackRequest(_Body):
    """A CDS Hooks feedback call."""

    feedback: list[FeedbackItem] = Field(min_length=1, max_length=500)


def _prefetched(prefetch: dict[str, Any] | None, key: str, kind: str) -> dict[str, Any] | None:
    """A single prefetched resource; None when absent or null; OperationOutcome: the EHR failed."""
    value = (prefetch or {}).get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise FhirError(400, [_issue(f"prefetch.{key} must be a FHIR resource or null", f"prefetch.{key}")])
    if value.get("resourceType") == "OperationOutcome":
        return None
    if value.get("resourceType") != kind:
        raise FhirError(400, [_issue(f"prefetch.{key} must be a {kind}, not {value.get('resourceType')!r}", key)])
    return value


def _issue(diagnostics: str, expression: str) -> Issue:
    return Issue("invalid", diagnostics, expression)


def documents_of(prefetch: dict[str, Any] | None) -> tuple[list[dict[str, Any]], list[str]] | None:
    """The prefetched DocumentReferences and where each sits.

    Args:
        prefetch: the call's ``prefetch``.

    Returns:
        ``(documents, paths)``; None when the EHR has no documents (``documents`` is null).

    Raises:
        PreconditionFailedError: ``documents`` is missing, or the EHR's search failed
            (an OperationOutcome instead of results).
        FhirError: 400 for a value that is not a Bundle or a DocumentReference.
    """
    if prefetch is None or "documents" not in prefetch:
        raise PreconditionFailedError(
            "the 'documents' prefetch is missing and codesuggest does not call the FHIR server: configure the "
            f"EHR to send prefetch 'documents' ({PREFETCH['documents']}) with the notes inline"
        )
    value = prefetch["documents"]
    if value is None:
        return None
    kind = value.get("resourceType") if isinstance(value, dict) else None
    if kind == "DocumentReference":
        return [value], ["prefetch.documents"]
    if kind == "OperationOutcome":
        raise PreconditionFailedError("the EHR could not prefetch 'documents' (it sent an OperationOutcome)")
    if kind != "Bundle":
        raise FhirError(400, [_issue("prefetch.documents must be a Bundle, a DocumentReference or null", "documents")])
    documents: list[dict[str, Any]] = []
    paths: list[str] = []
    failed = False
    for i, entry in enumerate(value.get("entry") or []):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            continue
        kind = resource.get("resourceType")
        if kind == "DocumentReference":
            documents.append(resource)
            paths.append(f"prefetch.documents.entry[{i}].resource")
        elif kind == "OperationOutcome":
            failed = True
    if not documents and failed:
        raise PreconditionFailedError(
            "the EHR could not prefetch 'documents' (its search returned an OperationOutcome)"
        )
    return (documents, paths) if documents else None


def read_hook_note(service: CdsService, request: HookRequest, max_chars: int) -> ClinicalNote | None:
    """The encounter's note from a hook call's prefetch.

    Args:
        service: the service called.
        request: the call.
        max_chars: the note limit.

    Returns:
        The note, with the patient and encounter of the call's context; None when the EHR has no
        documents for the encounter.

    Raises:
        PreconditionFailedError: no ``documents`` prefetch, or none of the documents holds an
            inline text note.
        FhirError: prefetched data that is not valid FHIR (400) or too large (413).
    """
    found = documents_of(request.prefetch)
    if found is None:
        return None
    patient = _prefetched(request.prefetch, "patient", "Patient")
    encounter = _prefetched(request.prefetch, "encounter", "Encounter")
    try:
        note = read_encounter_documents(
            found[0],
            max_chars,
            patient=patient,
            encounter=encounter,
            default_setting=service.default_setting,
            where=found[1],
        )
    except NoNoteError as exc:
        raise PreconditionFailedError(str(exc)) from None
    # The EHR's own ids: the Conditions the cards offer are created on its FHIR server.
    note.subject = {"reference": f"Patient/{request.context.patientId}"}
    note.encounter = {"reference": f"Encounter/{request.context.encounterId}"}
    note.note_id = f"Encounter/{request.context.encounterId}"
    return note
