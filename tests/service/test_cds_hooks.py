"""CDS Hooks: discovery, service calls with the EHR's JWT, cards, feedback into the feedback store."""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class
from sqlalchemy import select

from service.cds.services import CODING_REVIEW_HOOK
from service.models import CdsCard, FeedbackEntry
from tests.service.conftest import Service
from tests.service.ehr_keys import EhrKeys

NOTE = "Assessment: right ankle sprain after a fall.\nHistory: type 2 diabetes, on metformin."
BASE = "http://testserver/cds-services"
DISCHARGE = "codesuggest-discharge-coding"
REVIEW = "codesuggest-coding-review"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def hook_call(
    hook: str = "encounter-discharge", encounter_class: str | None = "IMP", **prefetch: Any
) -> dict[str, Any]:
    documents = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [
            {
                "fullUrl": "https://ehr.test.invalid/fhir/DocumentReference/doc-7",
                "resource": {
                    "resourceType": "DocumentReference",
                    "id": "doc-7",
                    "status": "current",
                    "subject": {"reference": "Patient/1288992"},
                    "context": {"encounter": [{"reference": "Encounter/89284"}]},
                    "content": [{"attachment": {"contentType": "text/plain", "data": b64(NOTE)}}],
                },
            }
        ],
    }
    body: dict[str, Any] = {
        "hook": hook,
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": {"userId": "PractitionerRole/A2340113", "patientId": "1288992", "encounterId": "89284"},
        "prefetch": {
            "patient": {"resourceType": "Patient", "id": "1288992", "gender": "male", "birthDate": "1951-04-02"},
            "documents": documents,
        },
    }
    if encounter_class:
        body["prefetch"]["encounter"] = {
            "resourceType": "Encounter",
            "id": "89284",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": encounter_class},
            "period": {"start": "2026-11-01T08:00:00Z", "end": "2026-11-04T12:00:00Z"},
        }
    body["prefetch"].update(prefetch)
    return body


@pytest.fixture(scope="module")
def ehr() -> EhrKeys:
    """The test EHR's key pairs, generated for this module."""
    return EhrKeys()


@pytest.fixture
def cds(service_factory: Callable[..., Service], ehr: EhrKeys, tmp_path: Path) -> Service:
    """An app that trusts the test EHR (JWK Set in a file)."""
    jwks = ehr.write_jwks(tmp_path / "ehr-jwks.json")
    return service_factory(cds_issuers=[{"iss": ehr.iss, "jwks_file": str(jwks)}])


def bearer(ehr: EhrKeys, path: str, **kwargs: Any) -> dict[str, str]:
    return {"Authorization": "Bearer " + ehr.token(f"{BASE}{path}", **kwargs)}


def call(svc: Service, ehr: EhrKeys, body: dict[str, Any], service_id: str = DISCHARGE, **kwargs: Any) -> Any:
    return svc.client.post(f"/cds-services/{service_id}", json=body, headers=bearer(ehr, f"/{service_id}", **kwargs))


def test_cds_discovery_lists_both_services_with_prefetch_templates(cds: Service) -> None:
    response = cds.client.get("/cds-services")
    assert response.status_code == 200
    services = {s["id"]: s for s in response.json()["services"]}
    assert services[DISCHARGE]["hook"] == "encounter-discharge"
    assert services[REVIEW]["hook"] == CODING_REVIEW_HOOK
    for service in services.values():
        assert service["description"] and service["title"]
        assert service["prefetch"]["documents"] == (
            "DocumentReference?patient={{context.patientId}}&encounter={{context.encounterId}}&status=current"
        )
        assert service["prefetch"]["encounter"] == "Encounter/{{context.encounterId}}"


def test_cds_discovery_checks_a_token_sent_anyway(cds: Service, ehr: EhrKeys) -> None:
    assert cds.client.get("/cds-services", headers=bearer(ehr, "")).status_code == 200
    assert cds.client.get("/cds-services", headers={"Authorization": "Bearer junk"}).status_code == 401


def test_cds_discharge_call_gives_a_code_set_card_whose_suggestions_create_conditions(
    cds: Service, ehr: EhrKeys
) -> None:
    response = call(cds, ehr, hook_call())
    assert response.status_code == 200, response.text
    cards = response.json()["cards"]
    assert len(cards) == 1
    card = cards[0]
    assert card["indicator"] == "info" and len(card["summary"]) < 140 and card["source"]["label"] == "codesuggest"
    assert "| 1 | S93.401A |" in card["detail"] and "inpatient, from Encounter.class IMP" in card["detail"]
    assert card["selectionBehavior"] == "any" and all(r["display"] for r in card["overrideReasons"])
    assert "links" not in card  # the workbench does not hold this encounter
    codes = []
    for suggestion in card["suggestions"]:
        (action,) = suggestion["actions"]
        assert action["type"] == "create" and action["description"]
        condition = action["resource"]
        get_fhir_model_class("Condition").model_validate(condition)
        assert condition["subject"] == {"reference": "Patient/1288992"}
        assert condition["encounter"] == {"reference": "Encounter/89284"}
        detail = condition["evidence"][0]["detail"][0]
        assert detail["reference"] == "DocumentReference/doc-7"
        codes.append(condition["code"]["coding"][0]["code"])
    assert codes == ["S93.401A", "E11.9"]
    coded = cds.suggester.calls[-1]
    assert (coded["setting"], coded["patient"].age, coded["patient"].sex) == ("inpatient", 75, "male")
    with cds.db.session() as session:
        stored = session.get(CdsCard, card["uuid"])
        assert stored is not None and stored.note_id == "Encounter/89284" and stored.service_id == DISCHARGE


def test_cds_coding_review_defaults_to_outpatient_without_an_encounter(cds: Service, ehr: EhrKeys) -> None:
    response = call(cds, ehr, hook_call(CODING_REVIEW_HOOK, encounter_class=None), REVIEW)
    assert response.status_code == 200, response.text
    assert cds.suggester.calls[-1]["setting"] == "outpatient"
    response = call(cds, ehr, hook_call(encounter_class=None))
    assert cds.suggester.calls[-1]["setting"] == "inpatient"  # encounter-discharge: typically inpatient


def test_cds_card_links_to_the_workbench_only_for_an_encounter_it_holds(cds: Service, ehr: EhrKeys) -> None:
    assert "links" not in call(cds, ehr, hook_call()).json()["cards"][0]
    stored = cds.client.post(
        "/v1/encounters",
        json={"encounter_id": "89284", "text": NOTE, "setting": "inpatient"},
        headers=cds.headers("integration"),
    )
    assert stored.status_code == 201, stored.text
    card = call(cds, ehr, hook_call()).json()["cards"][0]
    assert card["links"] == [
        {
            "label": "Review in the codesuggest workbench",
            "url": "http://testserver/ui/encounters/89284",
            "type": "absolute",
        }
    ]
    assert cds.client.get("/ui/encounters/89284").status_code != 404


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "needs 'Authorization: Bearer <JWT>'"),
        ({"Authorization": "Bearer not.a.jwt"}, "not a JWT"),
        ("api-key", "not a JWT"),
        ("wrong-aud", "aud is not this endpoint"),
        ("expired", "expired"),
        ("other-issuer", "not a configured CDS client"),
    ],
)
def test_cds_call_with_a_bad_or_missing_jwt_is_401(cds: Service, ehr: EhrKeys, headers: Any, reason: str) -> None:
    if headers == "api-key":
        headers = cds.headers("admin")
    elif headers == "wrong-aud":
        headers = bearer(ehr, f"/{REVIEW}")
    elif headers == "expired":
        headers = bearer(ehr, f"/{DISCHARGE}", lifetime=-300)
    elif headers == "other-issuer":
        headers = {"Authorization": "Bearer " + EhrKeys(iss="https://other.invalid").token(f"{BASE}/{DISCHARGE}")}
    response = cds.client.post(f"/cds-services/{DISCHARGE}", json=hook_call(), headers=headers)
    assert response.status_code == 401, response.text
    assert reason in response.json()["error"]["message"]
    assert "Bearer" in response.headers["WWW-Authenticate"]
    assert not cds.suggester.calls  # nothing was read or coded


def test_cds_missing_jwt_is_401_even_for_a_body_that_is_not_json(cds: Service) -> None:
    response = cds.client.post(
        f"/cds-services/{DISCHARGE}", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 401


def test_cds_replayed_jwt_is_401(cds: Service, ehr: EhrKeys) -> None:
    headers = bearer(ehr, f"/{DISCHARGE}")
    assert cds.client.post(f"/cds-services/{DISCHARGE}", json=hook_call(), headers=headers).status_code == 200
    again = cds.client.post(f"/cds-services/{DISCHARGE}", json=hook_call(), headers=headers)
    assert again.status_code == 401 and "replayed" in again.json()["error"]["message"]


def test_cds_without_configured_issuers_every_call_is_401(service: Service, ehr: EhrKeys) -> None:
    response = service.client.post(f"/cds-services/{DISCHARGE}", json=hook_call(), headers=bearer(ehr, f"/{DISCHARGE}"))
    assert response.status_code == 401 and "CODESUGGEST_CDS_ISSUERS" in response.text


def test_cds_audience_is_the_public_base_url_when_set(
    service_factory: Callable[..., Service], ehr: EhrKeys, tmp_path: Path
) -> None:
    jwks = ehr.write_jwks(tmp_path / "jwks.json")
    svc = service_factory(
        cds_issuers=[{"iss": ehr.iss, "jwks_file": str(jwks)}], public_base_url="https://coding.example.org/cs/"
    )
    path = f"/cds-services/{DISCHARGE}"
    assert svc.client.post(path, json=hook_call(), headers=bearer(ehr, f"/{DISCHARGE}")).status_code == 401
    token = ehr.token(f"https://coding.example.org/cs{path}")
    assert svc.client.post(path, json=hook_call(), headers={"Authorization": f"Bearer {token}"}).status_code == 200


def _without(body: dict[str, Any], key: str) -> dict[str, Any]:
    body = copy.deepcopy(body)
    del body["prefetch"][key]
    return body


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (_without(hook_call(), "documents"), 412),
        ({**hook_call(), "prefetch": None}, 412),
        (
            hook_call(
                documents={"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout"}]}
            ),
            412,
        ),
        (
            hook_call(
                documents={
                    "resourceType": "Bundle",
                    "type": "searchset",
                    "entry": [
                        {
                            "resource": {
                                "resourceType": "DocumentReference",
                                "status": "current",
                                "content": [{"attachment": {"contentType": "text/plain", "url": "Binary/1"}}],
                            }
                        }
                    ],
                }
            ),
            412,
        ),
        (hook_call(hook="order-sign"), 422),
        ({**hook_call(), "context": {"userId": "x"}}, 422),
        ({**hook_call(), "colour": "blue"}, 422),
        (hook_call(patient={"resourceType": "Encounter", "status": "finished", "class": {"code": "IMP"}}), 400),
        (hook_call(encounter_class="XYZ"), 422),
        (
            hook_call(
                documents={
                    "resourceType": "DocumentReference",
                    "status": "current",
                    "content": [{"attachment": {"contentType": "text/plain", "data": "@@@@"}}],
                }
            ),
            400,
        ),
    ],
)
def test_cds_unusable_calls_get_4xx_naming_the_problem(
    cds: Service, ehr: EhrKeys, body: dict[str, Any], status: int
) -> None:
    response = call(cds, ehr, body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["message"]


def test_cds_no_documents_means_no_cards(cds: Service, ehr: EhrKeys) -> None:
    response = call(cds, ehr, hook_call(documents=None))
    assert response.status_code == 200 and response.json() == {"cards": []}
    empty = {"resourceType": "Bundle", "type": "searchset", "total": 0}
    assert call(cds, ehr, hook_call(documents=empty)).json() == {"cards": []}


def test_cds_unknown_service_is_404(cds: Service, ehr: EhrKeys) -> None:
    response = cds.client.post("/cds-services/nope", json=hook_call(), headers=bearer(ehr, "/nope"))
    assert response.status_code == 404


def _feedback(svc: Service, ehr: EhrKeys, items: list[dict[str, Any]], service_id: str = DISCHARGE) -> Any:
    return svc.client.post(
        f"/cds-services/{service_id}/feedback",
        json={"feedback": items},
        headers=bearer(ehr, f"/{service_id}/feedback", kid="rsa-1"),
    )


def _decisions(svc: Service) -> list[tuple[str, str, str, str, str | None]]:
    with svc.db.session() as session:
        rows = session.scalars(select(FeedbackEntry).order_by(FeedbackEntry.id)).all()
        return [(r.note_id, r.user, r.code, r.decision, r.reason) for r in rows]


def test_cds_feedback_accepted_and_overridden_go_to_the_feedback_store(cds: Service, ehr: EhrKeys) -> None:
    first = call(cds, ehr, hook_call()).json()["cards"][0]
    second = call(cds, ehr, hook_call()).json()["cards"][0]
    accepted = {
        "card": first["uuid"],
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": first["suggestions"][1]["uuid"]}],
        "outcomeTimestamp": "2026-11-04T12:05:31Z",
    }
    overridden = {
        "card": second["uuid"],
        "outcome": "overridden",
        "overrideReason": {
            "reason": {
                "code": "not-documented",
                "system": first["overrideReasons"][0]["system"],
                "display": "Not supported",
            },
            "userComment": "sprain was ruled out",
        },
        "outcomeTimestamp": "2026-11-04T12:06:00Z",
    }
    response = _feedback(cds, ehr, [accepted, overridden])
    assert response.status_code == 200, response.text
    assert response.json() == {"stored": 3}
    user = "PractitionerRole/A2340113"
    rows = _decisions(cds)
    assert rows[0] == ("Encounter/89284", user, "E11.9", "accepted", None)
    assert [(r[2], r[3]) for r in rows[1:]] == [("S93.401A", "rejected"), ("E11.9", "rejected")]
    assert "sprain was ruled out" in (rows[1][4] or "") and "not-documented" in (rows[1][4] or "")


@pytest.mark.parametrize(
    "item",
    [
        {"card": "no-such-card", "outcome": "overridden", "outcomeTimestamp": "2026-11-04T12:06:00Z"},
        {
            "card": "CARD",
            "outcome": "accepted",
            "acceptedSuggestions": [{"id": "nope"}],
            "outcomeTimestamp": "2026-11-04T12:06:00Z",
        },
        {"card": "CARD", "outcome": "accepted", "outcomeTimestamp": "2026-11-04T12:06:00Z"},
        {"card": "CARD", "outcome": "maybe", "outcomeTimestamp": "2026-11-04T12:06:00Z"},
        {"card": "CARD", "outcome": "overridden", "outcomeTimestamp": "yesterday"},
        {"card": "CARD", "outcome": "overridden", "outcomeTimestamp": "2026-11-04T12:06:00"},
    ],
)
def test_cds_bad_feedback_is_422_and_stores_nothing(cds: Service, ehr: EhrKeys, item: dict[str, Any]) -> None:
    card = call(cds, ehr, hook_call()).json()["cards"][0]
    item = {**item, "card": card["uuid"] if item["card"] == "CARD" else item["card"]}
    response = _feedback(cds, ehr, [item])
    assert response.status_code == 422, response.text
    assert _decisions(cds) == []


def test_cds_feedback_is_only_for_the_service_and_client_that_got_the_card(
    cds: Service, ehr: EhrKeys, tmp_path: Path
) -> None:
    card = call(cds, ehr, hook_call()).json()["cards"][0]
    item = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-04T12:06:00Z"}
    assert _feedback(cds, ehr, [item], REVIEW).status_code == 422
    no_token = cds.client.post(f"/cds-services/{DISCHARGE}/feedback", json={"feedback": [item]})
    assert no_token.status_code == 401
    assert _decisions(cds) == []
