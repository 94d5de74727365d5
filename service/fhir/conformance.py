"""What the FHIR endpoint supports, as FHIR: CapabilityStatement, OperationDefinition, extensions.

``GET /fhir/r4/metadata`` answers :func:`capability_statement`; the ``$suggest-codes`` operation
is defined by :func:`operation_definition`; each extension the output uses has a
``StructureDefinition`` (:data:`EXTENSIONS`), served at ``/fhir/r4/StructureDefinition/{id}``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from service.fhir import terminology as t

OPERATION_ID = "suggest-codes"


@dataclass(frozen=True, slots=True)
class Part:
    """A sub-extension of a complex extension: name, value type, cardinality, what it holds."""

    name: str
    type: str
    min: int
    max: str
    short: str


@dataclass(frozen=True, slots=True)
class ExtensionSpec:
    """An extension of this project: id, title, where it goes, and its value or parts."""

    id: str
    title: str
    description: str
    contexts: tuple[str, ...]
    value_type: str | None = None
    parts: tuple[Part, ...] = ()

    @property
    def url(self) -> str:
        """Its canonical URL."""
        return f"{t.CANONICAL_BASE}/StructureDefinition/{self.id}"


EXTENSIONS: dict[str, ExtensionSpec] = {
    spec.id: spec
    for spec in (
        ExtensionSpec(
            "note-span",
            "Note span",
            "A span of a clinical note that supports a suggested code: character offsets (0-based, end "
            "exclusive, counted in Unicode code points) within the text of the document it came from "
            "(the decoded text/plain attachment of a DocumentReference; for a Composition section, the "
            "section narrative as plain text: tags removed, one line per block element, table cells "
            "separated by a tab), the words themselves and the note section. On a Reference "
            "(Condition.evidence.detail) it describes the referenced document; on a Procedure, "
            "'document' names the document.",
            ("Reference", "Procedure"),
            parts=(
                Part("document", "Reference", 0, "1", "The document the span is in (on a Procedure)"),
                Part("start", "integer", 1, "1", "First character of the span in the document's text"),
                Part("end", "integer", 1, "1", "One past the last character of the span"),
                Part("text", "string", 0, "1", "The words of the span"),
                Part("section", "string", 0, "1", "The note section the span is in (assessment, hpi...)"),
            ),
        ),
        ExtensionSpec(
            "coding-suggestion",
            "Coding suggestion",
            "How codesuggest suggested this code: its line in the encounter code set (role principal, "
            "first-listed, secondary or external-cause for diagnoses; em, procedure or supply for "
            "service lines, and the 1-based sequence), the calibrated probability that a coder assigns "
            "it, its status (suggested, consider, or query: a physician query is needed) and a "
            "one-sentence rationale.",
            ("Condition", "Procedure"),
            parts=(
                Part("role", "code", 1, "1", "Role of the line in the code set"),
                Part("sequence", "positiveInt", 1, "1", "Position of the line in the code set"),
                Part("score", "decimal", 0, "1", "Calibrated probability that a coder assigns the code"),
                Part("status", "code", 0, "1", "suggested | consider | query"),
                Part("rationale", "string", 0, "1", "Why the code was suggested"),
            ),
        ),
        ExtensionSpec(
            "procedure-modifier",
            "Procedure modifier",
            "A CPT (two digits) or HCPCS Level II modifier of the service line this Procedure codes; "
            "the draft Claim carries the same modifiers in item.modifier.",
            ("Procedure",),
            value_type="Coding",
        ),
        ExtensionSpec(
            "coding-setting",
            "Coding setting",
            "The ICD-10-CM Official Guidelines setting the codes follow: inpatient (Section II and III) "
            "or outpatient (Section IV), from the encounter class.",
            ("Provenance",),
            value_type="code",
        ),
    )
}


def structure_definition(spec: ExtensionSpec, version: str) -> dict[str, Any]:
    """The ``StructureDefinition`` of one extension (differential only).

    Args:
        spec: the extension.
        version: codesuggest's version.

    Returns:
        The resource.
    """
    elements: list[dict[str, Any]] = [
        {"id": "Extension", "path": "Extension", "short": spec.title, "definition": spec.description},
    ]
    if spec.parts:
        elements.append({"id": "Extension.extension", "path": "Extension.extension", "min": 1})
        for part in spec.parts:
            base = f"Extension.extension:{part.name}"
            elements += [
                {
                    "id": base,
                    "path": "Extension.extension",
                    "sliceName": part.name,
                    "short": part.short,
                    "definition": part.short,
                    "min": part.min,
                    "max": part.max,
                },
                {"id": f"{base}.url", "path": "Extension.extension.url", "fixedUri": part.name},
                {"id": f"{base}.value[x]", "path": "Extension.extension.value[x]", "type": [{"code": part.type}]},
            ]
        elements.append({"id": "Extension.url", "path": "Extension.url", "fixedUri": spec.url})
        elements.append({"id": "Extension.value[x]", "path": "Extension.value[x]", "max": "0"})
    else:
        assert spec.value_type is not None
        elements.append({"id": "Extension.extension", "path": "Extension.extension", "max": "0"})
        elements.append({"id": "Extension.url", "path": "Extension.url", "fixedUri": spec.url})
        elements.append(
            {"id": "Extension.value[x]", "path": "Extension.value[x]", "min": 1, "type": [{"code": spec.value_type}]}
        )
    return {
        "resourceType": "StructureDefinition",
        "id": spec.id,
        "url": spec.url,
        "version": version,
        "name": "".join(w.capitalize() for w in spec.id.split("-")),
        "title": spec.title,
        "status": "active",
        "publisher": "codesuggest",
        "description": spec.description,
        "fhirVersion": t.FHIR_VERSION,
        "kind": "complex-type",
        "abstract": False,
        "context": [{"type": "element", "expression": c} for c in spec.contexts],
        "type": "Extension",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Extension",
        "derivation": "constraint",
        "differential": {"element": elements},
    }


def operation_definition(version: str) -> dict[str, Any]:
    """The ``OperationDefinition`` of ``$suggest-codes``.

    Args:
        version: codesuggest's version.

    Returns:
        The resource.
    """

    def parameter(name: str, use: str, min_: int, max_: str, type_: str, documentation: str) -> dict[str, Any]:
        return {"name": name, "use": use, "min": min_, "max": max_, "documentation": documentation, "type": type_}

    return {
        "resourceType": "OperationDefinition",
        "id": OPERATION_ID,
        "url": t.OPERATION_URL,
        "version": version,
        "name": "SuggestCodes",
        "title": "Suggest ICD-10-CM, CPT and HCPCS codes for an encounter's clinical notes",
        "status": "active",
        "kind": "operation",
        "publisher": "codesuggest",
        "description": (
            "Codes one encounter's clinical notes offline and returns the ordered code set as FHIR: a "
            "Condition per diagnosis with the note spans behind it, a Procedure per CPT/HCPCS line, a "
            "draft Claim, and the Provenance naming the model and code-set versions. POST the "
            "DocumentReference or the Bundle itself, or a Parameters resource with the parameters "
            "below. The encounter class sets the coding setting (IMP, ACUTE, NONAC: inpatient; AMB, "
            "EMER, OBSENC, SS, PRENC, HH, VR, FLD: outpatient); the Patient gives age and sex."
        ),
        "affectsState": False,
        "code": OPERATION_ID,
        "system": True,
        "type": False,
        "instance": False,
        "parameter": [
            parameter(
                "document",
                "in",
                0,
                "*",
                "DocumentReference",
                "A note: content.attachment with contentType text/plain and the text base64-encoded in "
                "data. Several are one encounter's notes, coded together. Give document or bundle.",
            ),
            parameter(
                "bundle",
                "in",
                0,
                "1",
                "Bundle",
                "A document, collection or searchset Bundle: a Composition (its sections' narratives "
                "and the DocumentReferences they list) or DocumentReference entries, with the Patient "
                "and Encounter.",
            ),
            parameter("patient", "in", 0, "1", "Patient", "The patient (birthDate and gender give age and sex)."),
            parameter("encounter", "in", 0, "1", "Encounter", "The encounter (class sets the coding setting)."),
            parameter("setting", "in", 0, "1", "code", "outpatient | inpatient: wins over the encounter class."),
            parameter(
                "return",
                "out",
                1,
                "1",
                "Bundle",
                "A collection Bundle: Condition per diagnosis, Procedure per service line, a draft "
                "Claim, the Device and Provenance naming model and code-set versions, and an "
                "OperationOutcome saying which setting was used and why.",
            ),
        ],
    }


def capability_statement(version: str, base_url: str, now: dt.datetime) -> dict[str, Any]:
    """The ``CapabilityStatement`` of this server.

    Args:
        version: codesuggest's version.
        base_url: the FHIR base the client called (``https://host/fhir/r4``).
        now: the statement's date.

    Returns:
        The resource.
    """
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": now.astimezone(dt.UTC).isoformat(timespec="seconds"),
        "publisher": "codesuggest",
        "kind": "instance",
        "software": {"name": "codesuggest", "version": version},
        "implementation": {
            "description": "codesuggest: offline computer-assisted coding (ICD-10-CM, CPT, HCPCS) from clinical notes",
            "url": base_url,
        },
        "fhirVersion": t.FHIR_VERSION,
        "format": [t.FHIR_JSON, "json"],
        "rest": [
            {
                "mode": "server",
                "documentation": (
                    "One system-level operation, $suggest-codes; the definitions it uses can be read. "
                    "No resource is stored: nothing can be searched, created or updated."
                ),
                "security": {
                    "cors": False,
                    "description": (
                        "Send an API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>' "
                        "(codesuggest keys create); this statement and the definitions need none."
                    ),
                },
                "resource": [
                    {
                        "type": "OperationDefinition",
                        "interaction": [{"code": "read"}],
                    },
                    {
                        "type": "StructureDefinition",
                        "interaction": [{"code": "read"}],
                    },
                ],
                "operation": [{"name": OPERATION_ID, "definition": t.OPERATION_URL}],
            }
        ],
    }
