"""POST /v1/encounters (single, batch), GET /v1/encounters/{id}: sealed at rest, roles, conflicts."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from service.encounters import EncounterVault, load_vault, note_text, purge_expired
from service.models import Encounter
from tests.service.ui.conftest import ENCOUNTER_KEY, NOTE, Workbench, db_path


def test_encounters_post_stores_the_text_sealed(workbench: Workbench) -> None:
    secret = "Zyxquokka Vandermeulen fell from a ladder and sprained the right ankle."
    response = workbench.post_encounter("enc-1", text=secret, setting="inpatient", expected_value=12.5)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["review_url"] == "/ui/encounters/enc-1" and body["status"] == "new"
    assert body["text_length"] == len(secret) and body["model_version"] == "fake-model 0.0.1"
    with workbench.svc.db.session() as session:
        row = session.scalars(select(Encounter)).one()
        assert row.text_sealed is not None and secret.encode() not in row.text_sealed
        assert note_text(EncounterVault(bytes.fromhex(ENCOUNTER_KEY)), row) == secret
        assert (row.purge_at - row.received_at).days == 90  # the default retention
    workbench.svc.db.engine.dispose()
    raw = b"".join(p.read_bytes() for p in db_path(workbench.svc).parent.glob("service.sqlite3*"))
    assert b"Zyxquokka" not in raw


def test_encounters_wrong_key_cannot_open_a_text(workbench: Workbench) -> None:
    assert workbench.post_encounter("enc-k").status_code == 201
    other = EncounterVault(bytes(32))
    with workbench.svc.db.session() as session:
        row = session.scalars(select(Encounter)).one()
        with pytest.raises(Exception, match="another encounter key"):
            note_text(other, row)


@pytest.mark.parametrize(("role", "status"), [("integration", 201), ("admin", 201), ("coder", 403)])
def test_encounters_post_roles(workbench: Workbench, role: str, status: int) -> None:
    body = {"encounter_id": f"enc-{role}", "text": NOTE}
    response = workbench.client.post("/v1/encounters", json=body, headers=workbench.svc.headers(role))
    assert response.status_code == status


def test_encounters_duplicate_id_is_409_and_batch_is_all_or_none(workbench: Workbench) -> None:
    assert workbench.post_encounter("enc-1").status_code == 201
    again = workbench.post_encounter("enc-1")
    assert again.status_code == 409 and "enc-1" in again.json()["error"]["message"]
    batch = {"encounters": [{"encounter_id": "enc-2", "text": NOTE}, {"encounter_id": "enc-1", "text": NOTE}]}
    refused = workbench.client.post("/v1/encounters/batch", json=batch, headers=workbench.svc.headers("integration"))
    assert refused.status_code == 409
    with workbench.svc.db.session() as session:
        assert session.scalars(select(Encounter.encounter_id)).all() == ["enc-1"]
    batch["encounters"][1]["encounter_id"] = "enc-3"
    ok = workbench.client.post("/v1/encounters/batch", json=batch, headers=workbench.svc.headers("integration"))
    assert ok.status_code == 201 and ok.json()["created"] == 2
    assert [e["encounter_id"] for e in ok.json()["encounters"]] == ["enc-2", "enc-3"]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"encounter_id": "has space"}, "encounter_id"),
        ({"text": "   "}, "text"),
        ({"retention_days": 0}, "retention_days"),
        ({"setting": "emergency"}, "setting"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_encounters_bad_input_is_422_naming_the_field(workbench: Workbench, fields: dict, field: str) -> None:
    body = {"encounter_id": "enc-1", "text": NOTE, **fields}
    response = workbench.client.post("/v1/encounters", json=body, headers=workbench.svc.headers("integration"))
    assert response.status_code == 422
    assert field in {f["field"] for f in response.json()["error"]["fields"]}


def test_encounters_get_reports_state_without_text(workbench: Workbench) -> None:
    workbench.post_encounter("enc-9", encounter_date="2026-10-01")
    response = workbench.client.get("/v1/encounters/enc-9", headers=workbench.svc.headers("coder"))
    assert response.status_code == 200
    data = response.json()
    assert data["status"] == "new" and data["encounter_date"] == "2026-10-01" and data["code_set"] == []
    assert data["text_available"] is True and "text" not in data
    assert workbench.client.get("/v1/encounters/nope", headers=workbench.svc.headers("coder")).status_code == 404


def test_encounters_purge_deletes_texts_after_retention(workbench: Workbench) -> None:
    workbench.post_encounter("enc-old", retention_days=1)
    workbench.post_encounter("enc-new", retention_days=30)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    assert purge_expired(workbench.svc.db, now=later) == 1
    with workbench.svc.db.session() as session:
        rows = {r.encounter_id: r for r in session.scalars(select(Encounter))}
        assert rows["enc-old"].text_sealed is None and rows["enc-old"].text_purged_at is not None
        assert rows["enc-new"].text_sealed is not None
    assert purge_expired(workbench.svc.db, now=later) == 0


def test_encounters_key_file_is_created_once_and_reused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.service.conftest import make_settings

    settings = make_settings(tmp_path, encounter_key_file=tmp_path / "keys" / "encounter.key")
    first = load_vault(settings)
    assert (tmp_path / "keys" / "encounter.key").stat().st_mode & 0o777 == 0o600
    assert load_vault(settings).fingerprint == first.fingerprint
    (tmp_path / "keys" / "encounter.key").write_text("not hex")
    with pytest.raises(Exception, match="64 hex digits"):
        load_vault(settings)
