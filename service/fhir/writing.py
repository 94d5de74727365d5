"""FHIR out: one note's code set as FHIR R4 resources in a ``collection`` Bundle.

For the ordered encounter code set of :class:`pipeline.types.SuggestionResult`:

* one ``Condition`` per diagnosis line (ICD-10-CM, category ``encounter-diagnosis``), its
  ``verificationStatus`` from the documentation (``confirmed``; ``provisional`` when every span
  behind it is uncertain, as inpatient rules code uncertain diagnoses at discharge;
  ``unconfirmed`` when the code needs a physician query), each supporting span of the note as
  ``evidence.detail``: a Reference to the document with the ``note-span`` extension (offsets
  within that document's text, the words, the section);
* one ``Procedure`` per CPT / HCPCS line (E/M, procedure or supply), modifiers in the
  ``procedure-modifier`` extension, ``reasonReference`` to the Conditions the line points to;
* a draft ``Claim`` (``use`` claim, ``status`` draft, type professional): ``diagnosis`` in code-set
  order, one ``item`` per service line with ``productOrService``, ``modifier``, ``quantity`` (the
  units the rules found, else 1) and ``diagnosisSequence`` pointers. The client did not tell us
  the coverage or the billing provider; the claim says so in ``insurance.coverage.display`` and
  ``provider.display`` (the encounter's ``serviceProvider`` when given);
* a ``Device`` for codesuggest and a ``Provenance`` that names the model version and every
  code-set version and points at the documents coded;
* an ``OperationOutcome`` with the setting used and why, and any warning about skipped input.

Every resource is checked with the ``fhir.resources`` models before it leaves
(:func:`service.fhir.models.check_output`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.types import CodeSetLine, Suggestion, SuggestionResult
from service.fhir import terminology as t
from service.fhir.models import check_output
from service.fhir.outcome import Issue, operation_outcome
from service.fhir.reading import ClinicalNote

DIAGNOSIS_ROLES = frozenset({"principal", "first-listed", "secondary", "external-cause"})


def _urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def _coding(system: str, code: str, display: str | None = None, version: str | None = None) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": system}
    if version:
        coding["version"] = version
    coding["code"] = code
    if display:
        coding["display"] = display
    return coding


def _concept(system: str, code: str, display: str | None = None, version: str | None = None) -> dict[str, Any]:
    return {"coding": [_coding(system, code, display, version)]}


def _instant(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds")


def suggestion_extension(line: CodeSetLine, suggestion: Suggestion | None) -> dict[str, Any]:
    """The ``coding-suggestion`` extension: the line's role and sequence, score, status, rationale.

    Args:
        line: the code-set line.
        suggestion: the ranked suggestion of the same code, when there is one.

    Returns:
        The extension.
    """
    parts: list[dict[str, Any]] = [
        {"url": "role", "valueCode": line.role},
        {"url": "sequence", "valuePositiveInt": int(line.sequence)},
    ]
    if suggestion is not None:
        parts.append({"url": "score", "valueDecimal": round(float(suggestion.score), 4)})
        parts.append({"url": "status", "valueCode": suggestion.status})
        if suggestion.rationale:
            parts.append({"url": "rationale", "valueString": suggestion.rationale})
    return {"url": t.EXT_CODING_SUGGESTION, "extension": parts}


def evidence_spans(suggestion: Suggestion | None, note: ClinicalNote) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """The spans behind a suggestion, each as (document Reference, ``note-span`` extension).

    Args:
        suggestion: the suggestion (None: no spans).
        note: the note, to map offsets back to the documents.

    Returns:
        One pair per span that lies in a document's text (spans in headings written by the reader
        have no place in any document and are left out).
    """
    spans = []
    for evidence in suggestion.evidence if suggestion is not None else []:
        located = note.locate(int(evidence.start), int(evidence.end))
        if located is None:
            continue
        source, start, end = located
        words = note.text[int(evidence.start) : int(evidence.start) + (end - start)]
        parts: list[dict[str, Any]] = [
            {"url": "start", "valueInteger": start},
            {"url": "end", "valueInteger": end},
            {"url": "text", "valueString": words},
        ]
        section = evidence.section or source.section
        if section:
            parts.append({"url": "section", "valueString": section})
        spans.append((dict(source.reference), {"url": t.EXT_NOTE_SPAN, "extension": parts}))
    return spans


def verification_status(suggestion: Suggestion | None) -> str:
    """``confirmed``, ``provisional`` or ``unconfirmed`` for a diagnosis (see the module docstring).

    Args:
        suggestion: the suggestion of the code, when there is one.

    Returns:
        A code of http://terminology.hl7.org/CodeSystem/condition-ver-status.
    """
    if suggestion is None:
        return "confirmed"
    if suggestion.status == "query":
        return "unconfirmed"
    if suggestion.evidence and all(e.assertions.get("uncertain") for e in suggestion.evidence):
        return "provisional"
    return "confirmed"


def condition_resource(
    line: CodeSetLine,
    suggestion: Suggestion | None,
    note: ClinicalNote,
    versions: dict[str, str],
) -> dict[str, Any]:
    """A ``Condition`` for one diagnosis line (no id: the caller gives one, or the EHR does).

    Args:
        line: the ICD-10-CM line.
        suggestion: its suggestion (evidence, score, status).
        note: the note and its patient and encounter references.
        versions: the code-set versions.

    Returns:
        The resource.
    """
    status = verification_status(suggestion)
    condition: dict[str, Any] = {
        "resourceType": "Condition",
        "extension": [suggestion_extension(line, suggestion)],
        "verificationStatus": _concept(t.CONDITION_VERIFICATION, status),
        "category": [_concept(t.CONDITION_CATEGORY, "encounter-diagnosis", "Encounter Diagnosis")],
        "code": {
            "coding": [_coding(t.ICD10CM, line.code, line.description, versions.get("ICD10CM"))],
            "text": line.description,
        },
        "subject": dict(note.subject),
    }
    if note.encounter is not None:
        condition["encounter"] = dict(note.encounter)
    evidence = []
    for reference, extension in evidence_spans(suggestion, note):
        evidence.append({"detail": [{**reference, "extension": [extension]}]})
    if evidence:
        condition["evidence"] = evidence
    return condition


def procedure_resource(
    line: CodeSetLine,
    suggestion: Suggestion | None,
    note: ClinicalNote,
    versions: dict[str, str],
    reasons: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """A ``Procedure`` for one CPT / HCPCS line, documented as done.

    Args:
        line: the service line.
        suggestion: its suggestion.
        note: the note and its references.
        versions: the code-set versions.
        reasons: References to the Conditions the line points to.

    Returns:
        The resource.
    """
    extensions = [
        {"url": t.EXT_PROCEDURE_MODIFIER, "valueCoding": _coding(t.modifier_system(m), m)} for m in line.modifiers
    ]
    extensions.append(suggestion_extension(line, suggestion))
    for reference, span in evidence_spans(suggestion, note):
        span = {"url": span["url"], "extension": [{"url": "document", "valueReference": reference}, *span["extension"]]}
        extensions.append(span)
    procedure: dict[str, Any] = {
        "resourceType": "Procedure",
        "extension": extensions,
        "status": "completed",
        "code": {
            "coding": [_coding(t.system_uri(line.system), line.code, line.description, versions.get(line.system))],
            "text": line.description,
        },
        "subject": dict(note.subject),
    }
    if note.encounter is not None:
        procedure["encounter"] = dict(note.encounter)
    if note.encounter_date is not None:
        procedure["performedDateTime"] = note.encounter_date.isoformat()
    if reasons:
        procedure["reasonReference"] = list(reasons)
    return procedure


@dataclass(slots=True)
class CodedEncounter:
    """The resources of one coded note, each with its ``fullUrl``.

    Attributes:
        conditions: ``(line, fullUrl, Condition)`` per diagnosis line.
        procedures: ``(line, fullUrl, Procedure)`` per service line.
        claim: ``(fullUrl, Claim)``.
        device: ``(fullUrl, Device)``.
        provenance: ``(fullUrl, Provenance)``.
        outcome: ``(fullUrl, OperationOutcome)``.
    """

    conditions: list[tuple[CodeSetLine, str, dict[str, Any]]]
    procedures: list[tuple[CodeSetLine, str, dict[str, Any]]]
    claim: tuple[str, dict[str, Any]]
    device: tuple[str, dict[str, Any]]
    provenance: tuple[str, dict[str, Any]]
    outcome: tuple[str, dict[str, Any]]

    def bundle(self, now: dt.datetime) -> dict[str, Any]:
        """The ``collection`` Bundle: Conditions, Procedures, Claim, Device, Provenance, OperationOutcome.

        Args:
            now: the Bundle's timestamp.

        Returns:
            The Bundle, checked with ``fhir.resources``.

        Raises:
            ValueError: a resource built here is not valid FHIR (a bug).
        """
        entries = [
            *((url, r) for _, url, r in self.conditions),
            *((url, r) for _, url, r in self.procedures),
            self.claim,
            self.device,
            self.provenance,
            self.outcome,
        ]
        bundle = {
            "resourceType": "Bundle",
            "id": str(uuid.uuid4()),
            "type": "collection",
            "timestamp": _instant(now),
            "entry": [{"fullUrl": url, "resource": resource} for url, resource in entries],
        }
        check_output(bundle)
        return bundle


def code_encounter(
    result: SuggestionResult, note: ClinicalNote, *, software_version: str, now: dt.datetime
) -> CodedEncounter:
    """Build the FHIR resources of a coded note.

    Args:
        result: what the suggester returned for ``note.text``.
        note: the note and its context.
        software_version: codesuggest's version (``pipeline.__version__``).
        now: the time to record.

    Returns:
        The resources.
    """
    versions = dict(result.code_set_versions)
    by_code = {(s.system, s.code): s for s in result.suggestions}
    conditions: list[tuple[CodeSetLine, str, dict[str, Any]]] = []
    for line in result.code_set:
        if line.system == "ICD10CM":
            url = _urn()
            resource = condition_resource(line, by_code.get((line.system, line.code)), note, versions)
            resource = {"resourceType": "Condition", "id": url.removeprefix("urn:uuid:"), **resource}
            conditions.append((line, url, resource))
    condition_urls = {line.code: url for line, url, _ in conditions}
    procedures: list[tuple[CodeSetLine, str, dict[str, Any]]] = []
    for line in result.code_set:
        if line.system in ("CPT", "HCPCS"):
            url = _urn()
            reasons = [{"reference": condition_urls[p]} for p in line.pointers if p in condition_urls]
            resource = procedure_resource(line, by_code.get((line.system, line.code)), note, versions, reasons)
            procedures.append(
                (line, url, {"resourceType": "Procedure", "id": url.removeprefix("urn:uuid:"), **resource})
            )
    claim = _claim(result, note, conditions, procedures, versions, now)
    device = _device(result, software_version)
    provenance = _provenance(result, note, [url for *_, url, _ in conditions + procedures] + [claim[0]], device, now)
    return CodedEncounter(conditions, procedures, claim, device, provenance, _outcome(result, note))


def _claim(
    result: SuggestionResult,
    note: ClinicalNote,
    conditions: list[tuple[CodeSetLine, str, dict[str, Any]]],
    procedures: list[tuple[CodeSetLine, str, dict[str, Any]]],
    versions: dict[str, str],
    now: dt.datetime,
) -> tuple[str, dict[str, Any]]:
    url = _urn()
    diagnosis = []
    sequence_of: dict[str, int] = {}
    for i, (line, _, _) in enumerate(conditions, start=1):
        sequence_of[line.code] = i
        entry: dict[str, Any] = {
            "sequence": i,
            "diagnosisCodeableConcept": _concept(t.ICD10CM, line.code, line.description, versions.get("ICD10CM")),
        }
        if line.role == "principal":
            entry["type"] = [_concept(t.DIAGNOSIS_TYPE, "principal", "Principal Diagnosis")]
        diagnosis.append(entry)
    units = (result.extra or {}).get("units", {})
    items = []
    for i, (line, _, _) in enumerate(procedures, start=1):
        item: dict[str, Any] = {"sequence": i}
        pointers = [sequence_of[p] for p in line.pointers if p in sequence_of]
        if pointers:
            item["diagnosisSequence"] = pointers
        item["productOrService"] = _concept(
            t.system_uri(line.system), line.code, line.description, versions.get(line.system)
        )
        if line.modifiers:
            item["modifier"] = [_concept(t.modifier_system(m), m) for m in line.modifiers]
        if note.encounter_date is not None:
            item["servicedDate"] = note.encounter_date.isoformat()
        item["quantity"] = {"value": units.get(line.code, 1)}
        if note.encounter is not None:
            item["encounter"] = [dict(note.encounter)]
        items.append(item)
    claim: dict[str, Any] = {
        "resourceType": "Claim",
        "id": url.removeprefix("urn:uuid:"),
        "status": "draft",
        "type": _concept(t.CLAIM_TYPE, "professional", "Professional"),
        "use": "claim",
        "patient": dict(note.subject),
        "created": _instant(now),
        "provider": dict(note.provider)
        if note.provider
        else {"display": "billing provider not given to codesuggest: complete before submission"},
        "priority": _concept(t.PROCESS_PRIORITY, "normal", "Normal"),
        "insurance": [
            {
                "sequence": 1,
                "focal": True,
                "coverage": {"display": "coverage not given to codesuggest: complete before submission"},
            }
        ],
    }
    if diagnosis:
        claim["diagnosis"] = diagnosis
    if items:
        claim["item"] = items
    return url, claim


def _device(result: SuggestionResult, software_version: str) -> tuple[str, dict[str, Any]]:
    url = _urn()
    versions = [
        {"type": {"text": "software"}, "value": f"codesuggest {software_version}"},
        {"type": {"text": "model"}, "value": result.model_version},
    ]
    versions += [
        {"type": {"text": f"code set {key}"}, "value": value} for key, value in result.code_set_versions.items()
    ]
    device = {
        "resourceType": "Device",
        "id": url.removeprefix("urn:uuid:"),
        "deviceName": [{"name": "codesuggest", "type": "user-friendly-name"}],
        "version": versions,
    }
    return url, device


def _provenance(
    result: SuggestionResult,
    note: ClinicalNote,
    targets: list[str],
    device: tuple[str, dict[str, Any]],
    now: dt.datetime,
) -> tuple[str, dict[str, Any]]:
    url = _urn()
    entities: list[dict[str, Any]] = [{"role": "source", "what": dict(source.reference)} for source in note.sources]
    for key, version in result.code_set_versions.items():
        system, label = t.CODE_SET_LABELS.get(key, (f"{t.CANONICAL_BASE}/code-set/{key}", key))
        entities.append(
            {
                "role": "derivation",
                "what": {"identifier": {"system": system, "value": version}, "display": f"{label} {version}"},
            }
        )
    provenance = {
        "resourceType": "Provenance",
        "id": url.removeprefix("urn:uuid:"),
        "extension": [{"url": t.EXT_CODING_SETTING, "valueCode": result.setting}],
        "target": [{"reference": target} for target in targets],
        "recorded": _instant(now),
        "activity": _concept(t.DATA_OPERATION, "CREATE", "create"),
        "agent": [
            {
                "type": _concept(t.PROVENANCE_AGENT_TYPE, "assembler", "Assembler"),
                "who": {"reference": device[0], "display": f"codesuggest model {result.model_version}"},
            }
        ],
        "entity": entities,
    }
    return url, provenance


def _outcome(result: SuggestionResult, note: ClinicalNote) -> tuple[str, dict[str, Any]]:
    url = _urn()
    about = [
        Issue("informational", f"coded as {result.setting}, from {note.setting_basis}", severity="information"),
        Issue(
            "informational",
            f"patient age {note.age if note.age is not None else 'unknown'}, sex {note.sex or 'unknown'}; "
            f"date of service {note.encounter_date.isoformat() if note.encounter_date else 'unknown'}",
            severity="information",
        ),
        Issue(
            "informational",
            "machine-suggested codes: a coder reviews them before the claim is submitted",
            severity="information",
        ),
    ]
    outcome = operation_outcome([*about, *note.issues])
    return url, {"resourceType": "OperationOutcome", "id": url.removeprefix("urn:uuid:"), "issue": outcome["issue"]}
