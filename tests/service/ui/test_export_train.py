"""Feedback closes the loop: reviewed encounters -> export-feedback -> codesuggest train."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from corpora.format import read_corpus
from pipeline.cli.main import main
from pipeline.locations import default_model_dir
from tests.service.conftest import FakeSuggester, Service
from tests.service.ui.conftest import ENCOUNTER_KEY, csrf_of, sign_in
from tests.service.ui.test_review import rows_of


def review(client: TestClient, encounter_id: str, add: list[str]) -> list[str]:
    """Reject every suggestion, add the given codes (skipping those that cannot be billed), submit."""
    base = f"/ui/encounters/{encounter_id}"
    page = client.get(base).text
    for line, _ in rows_of(page).values():
        page = client.post(
            f"{base}/lines/{line}/decision",
            data={"csrf_token": csrf_of(page), "decision": "rejected", "reason": "not documented"},
        ).text
    added = []
    for code in add:
        response = client.post(f"{base}/codes", data={"csrf_token": csrf_of(page), "code": code})
        if response.status_code == 200:
            added.append(code)
            page = response.text
    if added:
        assert client.post(f"{base}/submit", data={"csrf_token": csrf_of(page)}).status_code == 200
    return added


@pytest.mark.slow
def test_export_feedback_of_reviewed_encounters_trains_a_model(
    tmp_path: Path,
    data_dir: Path,
    suggester: Any,
    service_factory: Callable[..., Service],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from corpora.codiesp import import_codiesp

    notes, _ = import_codiesp(data_dir / "codiesp" / "train")
    notes = notes[:40]
    svc = service_factory(FakeSuggester(kb=suggester.kb), encounter_key=ENCOUNTER_KEY)
    batch = {"encounters": [{"encounter_id": f"cs-{n.id}", "text": n.text} for n in notes]}
    assert svc.client.post("/v1/encounters/batch", json=batch, headers=svc.headers("integration")).status_code == 201
    sign_in(svc.client, svc.keys["coder"])
    gold = {}
    for note in notes:
        added = review(svc.client, f"cs-{note.id}", [c for c in note.codes_of("ICD10CM")][:8])
        if added:
            gold[f"cs-{note.id}"] = [suggester.kb.lookup(c).code for c in added]
    assert len(gold) >= 30

    monkeypatch.setenv("CODESUGGEST_ENCOUNTER_KEY", ENCOUNTER_KEY)
    corpus = tmp_path / "reviewed.jsonl"
    assert main(["corpus", "export-feedback", "--out", str(corpus), "--db", svc.settings.database_url, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["written"] == len(gold) and report["skipped"]["no_text"] == 0
    exported = {n.id: n for n in read_corpus(corpus)}
    assert {k: [c.code for c in n.codes] for k, n in exported.items()} == gold
    assert exported[next(iter(gold))].meta["source"] == "codesuggest-workbench"
    assert exported[f"cs-{notes[0].id}"].text == notes[0].text

    out = tmp_path / "models" / "from-review"
    argv = ["train", "--corpus", str(corpus), "--out", str(out), "--version", "0.0.1"]
    assert main([*argv, "--pipeline-from", str(default_model_dir()), "--no-progress"]) == 0
    assert f"{len(gold)} training notes" in capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    assert manifest["name"] == "from-review" and manifest["training_data"][0]["notes"] == len(gold)
    note_file = tmp_path / "note.txt"
    note_file.write_text(notes[0].text, encoding="utf-8")
    assert main(["suggest", "--model", str(out), "--json", str(note_file)]) == 0
    assert json.loads(capsys.readouterr().out)["model_version"] == "from-review 0.0.1"


def test_export_feedback_without_the_encounter_key_is_one_line(
    tmp_path: Path,
    service_factory: Callable[..., Service],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.service.ui.conftest import NOTE, WorkbenchKB

    svc = service_factory(FakeSuggester(kb=WorkbenchKB()), encounter_key=ENCOUNTER_KEY)
    body = {"encounter_id": "enc-1", "text": NOTE}
    assert svc.client.post("/v1/encounters", json=body, headers=svc.headers("integration")).status_code == 201
    monkeypatch.chdir(tmp_path)
    argv = ["corpus", "export-feedback", "--out", str(tmp_path / "x.jsonl"), "--db", svc.settings.database_url]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "encounter key" in err and err.count("\n") == 1


def test_encounters_import_cli_queues_a_corpus(
    tmp_path: Path,
    service_factory: Callable[..., Service],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from corpora.format import CorpusNote, write_corpus
    from tests.service.ui.conftest import NOTE

    svc = service_factory(encounter_key=ENCOUNTER_KEY)
    corpus = tmp_path / "in.jsonl"
    write_corpus(
        corpus,
        [
            CorpusNote("a-1", NOTE, setting="inpatient", meta={"encounter_date": "2026-10-01", "expected_value": 3.5}),
            CorpusNote("a-2", NOTE),
        ],
    )
    monkeypatch.setenv("CODESUGGEST_ENCOUNTER_KEY", ENCOUNTER_KEY)
    db = svc.settings.database_url
    assert main(["encounters", "import", str(corpus), "--db", db, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"imported": 2, "encounters": ["a-1", "a-2"]}
    assert main(["encounters", "import", str(corpus), "--db", db]) == 2
    assert "already stored: a-1, a-2" in capsys.readouterr().err
    state = svc.client.get("/v1/encounters/a-1", headers=svc.headers("coder")).json()
    assert (state["setting"], state["encounter_date"], state["expected_value"]) == ("inpatient", "2026-10-01", 3.5)
    assert main(["encounters", "purge", "--db", db]) == 0
