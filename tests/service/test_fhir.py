"""The FHIR R4 endpoint against the in-test suggester: inputs, the output Bundle, errors, metadata."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from pipeline.types import CodeSetLine, Evidence, Suggestion, SuggestionResult
from service.fhir import terminology as t
from service.fhir.reading import narrative_text
from tests.service.conftest import FakeSuggester, Service

NOTE = "Assessment: right ankle sprain after a fall.\nHistory: type 2 diabetes, on metformin."
FHIR = {"Content-Type": "application/fhir+json"}
ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"


def b64(text: str, encoding: str = "utf-8") -> str:
    return base64.b64encode(text.encode(encoding)).decode("ascii")


def document(text: str = NOTE, doc_id: str | None = "note-1", **extra: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "status": "current",
        "content": [{"attachment": {"contentType": "text/plain; charset=utf-8", "data": b64(text)}}],
        **extra,
    }
    if doc_id:
        resource["id"] = doc_id
    return resource


def encounter(code: str = "AMB", start: str = "2026-11-02T09:30:00Z") -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "id": "enc-1",
        "status": "finished",
        "class": {"system": ACT, "code": code},
        "period": {"start": start},
    }


PATIENT = {"resourceType": "Patient", "id": "pat-1", "gender": "female", "birthDate": "1979-11-03"}


def post(svc: Service, body: Any, role: str = "integration", **headers: str) -> Any:
    return svc.client.post(
        "/fhir/r4/$suggest-codes", content=json.dumps(body), headers={**svc.headers(role), **FHIR, **headers}
    )


def resources(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def validate_each(bundle: dict[str, Any]) -> None:
    get_fhir_model_class("Bundle").model_validate(bundle)
    for entry in bundle["entry"]:
        resource = entry["resource"]
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        assert entry["fullUrl"] == f"urn:uuid:{resource['id']}"


def ext(holder: dict[str, Any], url: str) -> dict[str, Any]:
    found = [e for e in holder.get("extension", []) if e["url"] == url]
    assert len(found) == 1, (url, holder.get("extension"))
    return {e["url"]: next(v for k, v in e.items() if k.startswith("value")) for e in found[0]["extension"]}


def test_fhir_document_reference_gives_a_collection_of_valid_resources(service: Service) -> None:
    body = document(
        contained=[PATIENT, encounter("EMER")],
        subject={"reference": "#pat-1"},
        context={"encounter": [{"reference": "#enc-1"}]},
    )
    response = post(service, body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    bundle = response.json()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    validate_each(bundle)
    conditions = resources(bundle, "Condition")
    assert [c["code"]["coding"][0]["code"] for c in conditions] == ["S93.401A", "E11.9"]
    first = conditions[0]
    assert first["code"]["coding"][0]["system"] == t.ICD10CM == "http://hl7.org/fhir/sid/icd-10-cm"
    assert first["code"]["coding"][0]["version"] == "FY2026 test"
    assert first["verificationStatus"]["coding"][0]["code"] == "confirmed"
    assert first["category"][0]["coding"][0]["code"] == "encounter-diagnosis"
    detail = first["evidence"][0]["detail"][0]
    assert detail["reference"] == "DocumentReference/note-1"
    span = ext(detail, t.EXT_NOTE_SPAN)
    assert NOTE[span["start"] : span["end"]] == span["text"] and "ankle" in span["text"]
    assert ext(first, t.EXT_CODING_SUGGESTION)["role"] == "first-listed"
    # Contained resources have no identity outside the document: named, not referenced.
    assert "reference" not in first["subject"] and first["subject"]["type"] == "Patient"
    claim = resources(bundle, "Claim")[0]
    assert (claim["status"], claim["use"]) == ("draft", "claim")
    assert [(d["sequence"], d["diagnosisCodeableConcept"]["coding"][0]["code"]) for d in claim["diagnosis"]] == [
        (1, "S93.401A"),
        (2, "E11.9"),
    ]
    provenance = resources(bundle, "Provenance")[0]
    assert provenance["agent"][0]["who"]["display"] == "codesuggest model fake-model 0.0.1"
    named = {e["what"]["identifier"]["value"] for e in provenance["entity"] if e["role"] == "derivation"}
    assert named == {"FY2026 test", "2020 test", "test lexicon"}
    assert {"reference": "DocumentReference/note-1"} in [e["what"] for e in provenance["entity"]]
    assert ext({"extension": [{"url": "x", "extension": provenance["extension"]}]}, "x")[t.EXT_CODING_SETTING] == (
        "outpatient"
    )
    call = service.suggester.calls[-1]
    assert (call["setting"], call["patient"].age, call["patient"].sex) == ("outpatient", 46, "female")
    assert str(call["encounter_date"]) == "2026-11-02" and call["note_id"] == "note-1"


@pytest.mark.parametrize(
    ("code", "setting"),
    [
        ("IMP", "inpatient"),
        ("ACUTE", "inpatient"),
        ("AMB", "outpatient"),
        ("EMER", "outpatient"),
        ("OBSENC", "outpatient"),
    ],
)
def test_fhir_encounter_class_sets_the_coding_setting(service: Service, code: str, setting: str) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": document(subject={"reference": "Patient/pat-1"})},
            {"resource": PATIENT},
            {"resource": encounter(code)},
        ],
    }
    response = post(service, bundle)
    assert response.status_code == 200, response.text
    assert service.suggester.calls[-1]["setting"] == setting
    outcome = resources(response.json(), "OperationOutcome")[0]
    assert f"coded as {setting}, from Encounter.class {code}" in outcome["issue"][0]["diagnostics"]


def test_fhir_round_trip_gives_the_code_set_of_the_json_endpoint(service: Service) -> None:
    json_answer = service.client.post(
        "/v1/suggestions",
        json={"text": NOTE, "setting": "inpatient", "patient": {"age": 46, "sex": "female"}},
        headers=service.headers("integration"),
    ).json()
    expected = [(line["code"], line["system"]) for line in json_answer["code_set"]]
    inputs = [
        {
            "resourceType": "Parameters",
            "parameter": [
                {"name": "document", "resource": document()},
                {"name": "patient", "resource": PATIENT},
                {"name": "encounter", "resource": encounter("IMP", "2026-11-02")},
            ],
        },
        {
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [
                {"fullUrl": "http://ehr.test/fhir/Patient/pat-1", "resource": PATIENT},
                {"resource": encounter("IMP", "2026-11-02")},
                {"resource": document(subject={"reference": "http://ehr.test/fhir/Patient/pat-1"})},
            ],
        },
    ]
    for body in inputs:
        response = post(service, body)
        assert response.status_code == 200, response.text
        bundle = response.json()
        got = [(c["code"]["coding"][0]["code"], "ICD10CM") for c in resources(bundle, "Condition")]
        assert got == expected
        assert service.suggester.calls[-1]["patient"].age == 46


def test_fhir_composition_sections_are_coded_with_offsets_into_their_narrative(service: Service) -> None:
    assessment = '<div xmlns="http://www.w3.org/1999/xhtml"><p>Right <b>ankle</b> sprain &amp; swelling.</p></div>'
    history = '<div xmlns="http://www.w3.org/1999/xhtml"><ul><li>Type 2 diabetes</li><li>Hypertension</li></ul></div>'
    composition = {
        "resourceType": "Composition",
        "id": "comp-1",
        "status": "final",
        "type": {"text": "Discharge summary"},
        "subject": {"reference": "Patient/pat-1"},
        "encounter": {"reference": "Encounter/enc-1"},
        "date": "2026-11-03",
        "author": [{"display": "Dr Test"}],
        "title": "Discharge summary",
        "section": [
            {"title": "Assessment", "text": {"status": "generated", "div": assessment}},
            {"title": "History", "text": {"status": "generated", "div": history}},
        ],
    }
    bundle = {
        "resourceType": "Bundle",
        "type": "document",
        "identifier": {"system": "urn:ietf:rfc:3986", "value": "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0"},
        "timestamp": "2026-11-03T10:00:00Z",
        "entry": [
            {"fullUrl": "urn:uuid:c1", "resource": composition},
            {"fullUrl": "urn:uuid:p1", "resource": PATIENT},
            {"fullUrl": "urn:uuid:e1", "resource": encounter("IMP")},
        ],
    }
    response = post(service, bundle)
    assert response.status_code == 200, response.text
    coded = service.suggester.calls[-1]
    expected_text = "Assessment:\nRight ankle sprain & swelling.\n\nHistory:\nType 2 diabetes\nHypertension"
    assert coded["length"] == len(expected_text) and coded["setting"] == "inpatient"
    conditions = resources(response.json(), "Condition")
    detail = conditions[0]["evidence"][0]["detail"][0]
    assert detail["reference"] == "Composition/comp-1"
    span = ext(detail, t.EXT_NOTE_SPAN)
    assert span["section"] == "assessment" or span["section"] == "Assessment"
    assert narrative_text(assessment)[span["start"] : span["end"]] == span["text"]
    diabetes = ext(conditions[1]["evidence"][0]["detail"][0], t.EXT_NOTE_SPAN)
    assert narrative_text(history)[diabetes["start"] : diabetes["end"]] == diabetes["text"]


class ServiceLines(FakeSuggester):
    """The fake suggester plus an E/M line and an X-ray with a modifier, two units and pointers."""

    def _code(self, text: str, note_id: str | None, kwargs: dict[str, Any]) -> SuggestionResult:
        result = super()._code(text, note_id, kwargs)
        n = len(result.code_set)
        result.code_set += [
            CodeSetLine(n + 1, "99213", "CPT", "Office visit, established", "em", ["25"], ["S93.401A"]),
            CodeSetLine(n + 2, "73610", "CPT", "Ankle X-ray, three views", "procedure", ["RT"], ["S93.401A", "E11.9"]),
        ]
        at = text.find("ankle")
        result.suggestions.append(
            Suggestion(
                "73610",
                "CPT",
                "Ankle X-ray, three views",
                0.8,
                3,
                "suggested",
                [Evidence(at, at + 5, "ankle", None, {})],
            )
        )
        result.extra = {"units": {"73610": 2}}
        return result


def test_fhir_service_lines_become_procedures_and_claim_items(service_factory: Any) -> None:
    svc = service_factory(suggester=ServiceLines())
    response = post(
        svc, document(subject={"reference": "Patient/pat-1"}, context={"encounter": [{"reference": "Encounter/enc-1"}]})
    )
    assert response.status_code == 200, response.text
    bundle = response.json()
    validate_each(bundle)
    conditions = {c["code"]["coding"][0]["code"]: f"urn:uuid:{c['id']}" for c in resources(bundle, "Condition")}
    procedures = resources(bundle, "Procedure")
    assert [p["code"]["coding"][0]["system"] for p in procedures] == [t.CPT, t.CPT]
    xray = procedures[1]
    assert ext(
        {
            "extension": [
                {"url": "m", "extension": [e for e in xray["extension"] if e["url"] == t.EXT_PROCEDURE_MODIFIER]}
            ]
        },
        "m",
    )
    assert [e["valueCoding"]["code"] for e in xray["extension"] if e["url"] == t.EXT_PROCEDURE_MODIFIER] == ["RT"]
    assert [r["reference"] for r in xray["reasonReference"]] == [conditions["S93.401A"], conditions["E11.9"]]
    assert xray["subject"] == {"reference": "Patient/pat-1"} and xray["encounter"] == {"reference": "Encounter/enc-1"}
    span = next(e for e in xray["extension"] if e["url"] == t.EXT_NOTE_SPAN)
    assert span["extension"][0] == {"url": "document", "valueReference": {"reference": "DocumentReference/note-1"}}
    items = resources(bundle, "Claim")[0]["item"]
    assert [(i["sequence"], i["productOrService"]["coding"][0]["code"]) for i in items] == [(1, "99213"), (2, "73610")]
    assert items[0]["modifier"][0]["coding"][0] == {"system": t.CPT, "code": "25"}
    assert items[1]["modifier"][0]["coding"][0] == {"system": t.HCPCS, "code": "RT"}
    assert (items[0]["diagnosisSequence"], items[1]["diagnosisSequence"]) == ([1], [1, 2])
    assert (items[0]["quantity"]["value"], items[1]["quantity"]["value"]) == (1, 2)


def test_fhir_note_in_latin_1_is_decoded_by_its_charset(service: Service) -> None:
    text = "Assessment: café worker with right ankle sprain."
    body = document()
    body["content"][0]["attachment"] = {"contentType": "text/plain; charset=ISO-8859-1", "data": b64(text, "latin-1")}
    assert post(service, body).status_code == 200
    assert service.suggester.calls[-1]["length"] == len(text)


def _outcome(response: Any, status: int) -> list[dict[str, Any]]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    outcome = response.json()
    get_fhir_model_class("OperationOutcome").model_validate(outcome)
    assert outcome["resourceType"] == "OperationOutcome"
    return [i for i in outcome["issue"] if i["severity"] == "error"]


HUGE = "a" * 20 * 1024 * 1024


@pytest.mark.parametrize(
    ("body", "status", "code", "where"),
    [
        ({"resourceType": "Patient", "id": "x"}, 422, "not-supported", "resourceType"),
        (
            {"resourceType": "Observation", "status": "final", "code": {"text": "x"}},
            422,
            "not-supported",
            "resourceType",
        ),
        ({"id": "x"}, 400, "required", "resourceType"),
        ([{"resourceType": "DocumentReference"}], 400, "invalid", None),
        ({"resourceType": "DocumentReference", "status": "current"}, 400, "invalid", "DocumentReference.content"),
        (
            {
                "resourceType": "DocumentReference",
                "status": "current",
                "content": [{"attachment": {"url": "https://x/1"}}],
            },
            422,
            "not-supported",
            "DocumentReference.content",
        ),
        (
            {
                "resourceType": "DocumentReference",
                "status": "current",
                "content": [{"attachment": {"contentType": "text/plain", "url": "https://x/1"}}],
            },
            422,
            "not-supported",
            "DocumentReference.content",
        ),
        (
            {
                "resourceType": "DocumentReference",
                "status": "current",
                "content": [{"attachment": {"contentType": "application/pdf", "data": b64("%PDF")}}],
            },
            422,
            "not-supported",
            "DocumentReference.content",
        ),
        (
            {
                "resourceType": "DocumentReference",
                "status": "current",
                "content": [{"attachment": {"contentType": "text/plain", "data": "not base64 at all!"}}],
            },
            400,
            "invalid",
            "DocumentReference.content[0].attachment.data",
        ),
        (
            {
                "resourceType": "DocumentReference",
                "status": "current",
                "content": [{"attachment": {"contentType": "text/plain", "data": "QUJD="}}],
            },
            400,
            "invalid",
            "DocumentReference.content[0].attachment.data",
        ),
        (
            {
                "resourceType": "DocumentReference",
                "status": "current",
                "content": [{"attachment": {"contentType": "text/plain", "data": b64(HUGE)}}],
            },
            413,
            "too-long",
            "DocumentReference.content[0].attachment.data",
        ),
        (
            {
                "resourceType": "DocumentReference",
                "status": "current",
                "content": [
                    {"attachment": {"contentType": "text/plain", "data": base64.b64encode(b"\xff\xfe\xfa").decode()}}
                ],
            },
            422,
            "invalid",
            "DocumentReference.content[0].attachment.data",
        ),
        (
            {
                "resourceType": "DocumentReference",
                "status": "current",
                "content": [{"attachment": {"contentType": "text/plain", "data": b64("   \n ")}}],
            },
            422,
            "required",
            None,
        ),
        (
            document(colour="blue"),
            400,
            "invalid",
            "DocumentReference.colour",
        ),
        (
            {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": PATIENT}]},
            422,
            "required",
            "Bundle.entry",
        ),
        (
            {"resourceType": "Bundle", "type": "transaction", "entry": []},
            422,
            "not-supported",
            "Bundle.type",
        ),
        (
            {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": document()}, {"resource": encounter("XYZ")}],
            },
            422,
            "code-invalid",
            "Encounter.class.code",
        ),
        (
            {"resourceType": "Parameters", "parameter": [{"name": "note", "valueString": "ankle"}]},
            422,
            "not-supported",
            "Parameters.parameter[0].name",
        ),
        (
            {"resourceType": "Parameters", "parameter": [{"name": "document", "resource": PATIENT}]},
            422,
            "structure",
            "Parameters.parameter[0].resource",
        ),
        (
            {"resourceType": "Parameters", "parameter": [{"name": "setting", "valueCode": "inpatient"}]},
            422,
            "required",
            "Parameters.parameter",
        ),
        (
            {
                "resourceType": "Parameters",
                "parameter": [{"name": "document", "resource": document()}, {"name": "setting", "valueCode": "ward"}],
            },
            422,
            "value",
            "Parameters.parameter[1].value",
        ),
    ],
    ids=lambda v: None,
)
def test_fhir_bad_input_gets_an_operation_outcome_with_4xx(
    shared_service: Service, body: Any, status: int, code: str, where: str | None
) -> None:
    issues = _outcome(post(shared_service, body), status)
    assert issues and issues[0]["code"] == code, issues
    if where is not None:
        assert issues[0]["expression"] == [where], issues


def test_fhir_never_quotes_the_note_in_errors(shared_service: Service) -> None:
    body = document(text="SECRET-WORDS ankle")
    body["content"][0]["attachment"]["contentType"] = "text/plain; charset=nonsense"
    response = post(shared_service, body)
    assert response.status_code == 422 and "SECRET" not in response.text
    body = document()
    body["status"] = 42
    response = post(shared_service, body)
    assert response.status_code == 400 and b64(NOTE) not in response.text


@pytest.mark.parametrize(
    ("headers", "content", "status"),
    [
        ({"Content-Type": "text/plain"}, "ankle sprain", 415),
        ({}, "{not json", 400),
        ({}, '{"resourceType": "DocumentReference"', 400),
        ({}, b"\xff\xfe", 400),
    ],
)
def test_fhir_unreadable_bodies_get_an_operation_outcome(
    shared_service: Service, headers: dict[str, str], content: Any, status: int
) -> None:
    response = shared_service.client.post(
        "/fhir/r4/$suggest-codes", content=content, headers={**shared_service.headers(), **FHIR, **headers}
    )
    _outcome(response, status)


def test_fhir_needs_an_api_key_and_answers_401_as_operation_outcome(shared_service: Service) -> None:
    response = shared_service.client.post("/fhir/r4/$suggest-codes", content=json.dumps(document()), headers=FHIR)
    issues = _outcome(response, 401)
    assert issues[0]["code"] == "login" and "Bearer" in response.headers["WWW-Authenticate"]
    bad = {"Authorization": "Bearer csk_000000000000_" + "0" * 64, **FHIR}
    assert (
        shared_service.client.post("/fhir/r4/$suggest-codes", content=json.dumps(document()), headers=bad).status_code
        == 401
    )


def test_fhir_metadata_and_definitions_validate_and_need_no_key(shared_service: Service) -> None:
    client = shared_service.client
    statement = client.get("/fhir/r4/metadata").json()
    get_fhir_model_class("CapabilityStatement").model_validate(statement)
    assert statement["fhirVersion"] == "4.0.1"
    rest = statement["rest"][0]
    assert rest["operation"] == [{"name": "suggest-codes", "definition": t.OPERATION_URL}]
    definition = client.get("/fhir/r4/OperationDefinition/suggest-codes").json()
    get_fhir_model_class("OperationDefinition").model_validate(definition)
    assert definition["url"] == t.OPERATION_URL and definition["system"] is True
    assert {p["name"] for p in definition["parameter"]} == {
        "document",
        "bundle",
        "patient",
        "encounter",
        "setting",
        "return",
    }
    for name in ("note-span", "coding-suggestion", "procedure-modifier", "coding-setting"):
        sd = client.get(f"/fhir/r4/StructureDefinition/{name}").json()
        get_fhir_model_class("StructureDefinition").model_validate(sd)
        assert sd["url"] == f"{t.CANONICAL_BASE}/StructureDefinition/{name}"
    _outcome(client.get("/fhir/r4/StructureDefinition/nope"), 404)
    _outcome(client.get("/fhir/r4/OperationDefinition/nope"), 404)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/fhir/r4/Patient/1", 404), ("GET", "/fhir/r4/$suggest-codes", 405), ("POST", "/fhir/r4/metadata", 405)],
)
def test_fhir_other_interactions_get_an_operation_outcome(
    shared_service: Service, method: str, path: str, status: int
) -> None:
    _outcome(shared_service.client.request(method, path, headers=shared_service.headers()), status)


def test_fhir_calls_are_audited_without_note_text(service: Service) -> None:
    from sqlalchemy import select

    from service.models import AuditEntry

    post(service, document())
    with service.db.session() as session:
        row = session.scalars(select(AuditEntry).where(AuditEntry.route == "/fhir/r4/$suggest-codes")).one()
    assert (row.status, row.note_id, row.text_length) == (200, "note-1", len(NOTE))
