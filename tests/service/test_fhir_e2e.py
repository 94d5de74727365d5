"""FHIR and CDS Hooks end to end with the real default model: the same code set as the JSON endpoint.

Each sample note goes in as FHIR (a DocumentReference with its Patient and Encounter in a Bundle,
and the same note in Parameters) and as JSON to ``/v1/suggestions`` with the same setting,
patient and date; the Conditions, Procedures and Claim must carry exactly the JSON answer's code
set, and every resource must validate with ``fhir.resources``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from pipeline.locations import PROJECT_ROOT
from service.cds.store import CdsState
from service.config import CdsIssuer
from service.fhir import terminology as t
from tests.service.conftest import Service
from tests.service.ehr_keys import EhrKeys

pytestmark = pytest.mark.slow

SAMPLES = PROJECT_ROOT / "corpora" / "samples"
CASES = [
    ("ankle_sprain.txt", "AMB", "outpatient", ("female", "1992-03-14", 34)),
    ("diabetes_follow_up.txt", "AMB", "outpatient", ("male", "1961-07-01", 65)),
    ("ed_chest_pain.txt", "EMER", "outpatient", ("male", "1968-01-20", 58)),
    ("inpatient_discharge_summary.txt", "IMP", "inpatient", ("female", "1944-09-09", 82)),
]
DATE = "2026-11-02"


def fhir_inputs(text: str, encounter_class: str, gender: str, birth_date: str) -> list[dict[str, Any]]:
    patient = {"resourceType": "Patient", "id": "pat-1", "gender": gender, "birthDate": birth_date}
    encounter = {
        "resourceType": "Encounter",
        "id": "enc-1",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": encounter_class},
        "subject": {"reference": "Patient/pat-1"},
        "period": {"start": f"{DATE}T08:00:00Z"},
    }
    document = {
        "resourceType": "DocumentReference",
        "id": "doc-1",
        "status": "current",
        "subject": {"reference": "Patient/pat-1"},
        "context": {"encounter": [{"reference": "Encounter/enc-1"}]},
        "content": [{"attachment": {"contentType": "text/plain", "data": base64.b64encode(text.encode()).decode()}}],
    }
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": document}, {"resource": patient}, {"resource": encounter}],
    }
    parameters = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "document", "resource": document},
            {"name": "patient", "resource": patient},
            {"name": "encounter", "resource": encounter},
        ],
    }
    return [bundle, parameters]


def code_set_of(bundle: dict[str, Any]) -> list[tuple[str, str, tuple[str, ...]]]:
    """The code set a FHIR answer carries: Conditions then Procedures, in code-set order."""
    systems = {t.ICD10CM: "ICD10CM", t.CPT: "CPT", t.HCPCS: "HCPCS"}
    lines = []
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] not in ("Condition", "Procedure"):
            continue
        coding = resource["code"]["coding"][0]
        modifiers = tuple(
            e["valueCoding"]["code"] for e in resource.get("extension", []) if e["url"] == t.EXT_PROCEDURE_MODIFIER
        )
        sequence = next(
            p["valuePositiveInt"]
            for e in resource["extension"]
            if e["url"] == t.EXT_CODING_SUGGESTION
            for p in e["extension"]
            if p["url"] == "sequence"
        )
        lines.append((sequence, coding["code"], systems[coding["system"]], modifiers))
    return [line[1:] for line in sorted(lines)]


@pytest.mark.parametrize(("name", "encounter_class", "setting", "patient"), CASES)
def test_fhir_e2e_round_trip_matches_the_json_endpoint(
    real_service: Service, name: str, encounter_class: str, setting: str, patient: tuple[str, str, int]
) -> None:
    text = (SAMPLES / name).read_text(encoding="utf-8")
    gender, birth_date, age = patient
    body = {"text": text, "setting": setting, "encounter_date": DATE, "patient": {"age": age, "sex": gender}}
    answer = real_service.client.post("/v1/suggestions", json=body, headers=real_service.headers("integration"))
    assert answer.status_code == 200, answer.text
    expected = [(line["code"], line["system"], tuple(line["modifiers"])) for line in answer.json()["code_set"]]
    assert expected, f"{name}: the JSON endpoint gave no code set"
    for fhir in fhir_inputs(text, encounter_class, gender, birth_date):
        response = real_service.client.post(
            "/fhir/r4/$suggest-codes",
            content=json.dumps(fhir),
            headers={**real_service.headers("integration"), "Content-Type": "application/fhir+json"},
        )
        assert response.status_code == 200, response.text
        bundle = response.json()
        get_fhir_model_class("Bundle").model_validate(bundle)
        for entry in bundle["entry"]:
            get_fhir_model_class(entry["resource"]["resourceType"]).model_validate(entry["resource"])
        assert code_set_of(bundle) == expected, name
        claim = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Claim")
        assert [d["diagnosisCodeableConcept"]["coding"][0]["code"] for d in claim.get("diagnosis", [])] == [
            code for code, system, _ in expected if system == "ICD10CM"
        ]
        assert [i["productOrService"]["coding"][0]["code"] for i in claim.get("item", [])] == [
            code for code, system, _ in expected if system != "ICD10CM"
        ]
        for entry in bundle["entry"]:
            for evidence in entry["resource"].get("evidence", []):
                for detail in evidence["detail"]:
                    span = {p["url"]: p for p in detail["extension"][0]["extension"]}
                    start, end = span["start"]["valueInteger"], span["end"]["valueInteger"]
                    assert text[start:end] == span["text"]["valueString"]


@pytest.fixture
def real_cds(real_service: Service, tmp_path: Path) -> Iterator[tuple[Service, EhrKeys]]:
    """The real app trusting a test EHR for the length of one test."""
    ehr = EhrKeys()
    app: Any = real_service.client.app
    saved = app.state.cds
    settings = real_service.settings.model_copy(
        update={"cds_issuers": [CdsIssuer(iss=ehr.iss, jwks_file=ehr.write_jwks(tmp_path / "jwks.json"))]}
    )
    app.state.cds = CdsState.create(settings, app.state.db)
    yield real_service, ehr
    app.state.cds = saved


def test_fhir_e2e_cds_discharge_card_offers_the_code_set(real_cds: tuple[Service, EhrKeys]) -> None:
    svc, ehr = real_cds
    text = (SAMPLES / "inpatient_discharge_summary.txt").read_text(encoding="utf-8")
    bundle, _ = fhir_inputs(text, "IMP", "female", "1944-09-09")
    document, patient, encounter = (e["resource"] for e in bundle["entry"])
    call = {
        "hook": "encounter-discharge",
        "hookInstance": "0f4d3b7e-8a0c-4f7e-9d62-2b1f3c4a5d6e",
        "context": {"userId": "Practitioner/1", "patientId": "pat-1", "encounterId": "enc-1"},
        "prefetch": {
            "patient": patient,
            "encounter": encounter,
            "documents": {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": document}]},
        },
    }
    token = ehr.token("http://testserver/cds-services/codesuggest-discharge-coding")
    response = svc.client.post(
        "/cds-services/codesuggest-discharge-coding", json=call, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    json_answer = svc.client.post(
        "/v1/suggestions",
        json={"text": text, "setting": "inpatient", "encounter_date": DATE, "patient": {"age": 82, "sex": "female"}},
        headers=svc.headers("integration"),
    ).json()
    expected = [line["code"] for line in json_answer["code_set"] if line["system"] == "ICD10CM"]
    card = response.json()["cards"][0]
    offered = [s["actions"][0]["resource"]["code"]["coding"][0]["code"] for s in card["suggestions"]]
    assert offered == expected
    for suggestion in card["suggestions"]:
        get_fhir_model_class("Condition").model_validate(suggestion["actions"][0]["resource"])
