"""The model artefact: its settings schema is checked before anything is unpickled."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pipeline.cli.main import main
from pipeline.errors import ArtefactError
from pipeline.locations import default_model_dir
from pipeline.manifest import read_manifest, write_manifest
from pipeline.ranking.artefact import MODEL_SCHEMA, load_estimators, read_model_settings
from pipeline.ranking.estimators import CodeRanker, DocumentModel

OLD_SCHEMA = "codesuggest.model-settings/1"


def _old_model(tmp_path: Path) -> Path:
    """The committed model with a version-1 settings file (pickles naming pipeline.ranker)."""
    copy = tmp_path / "old-model"
    shutil.copytree(default_model_dir(), copy)
    settings = json.loads((copy / "model.json").read_text("utf-8"))
    settings["schema"] = OLD_SCHEMA
    (copy / "model.json").write_text(json.dumps(settings), "utf-8")
    (copy / "ranker.joblib").write_bytes(b"not read: the schema is checked first")
    write_manifest(copy, read_manifest(copy))
    return copy


def test_artefact_reads_the_committed_model() -> None:
    manifest, settings = read_model_settings(default_model_dir())
    assert settings["schema"] == MODEL_SCHEMA and manifest.kind == "model"
    _, document_model, ranker = load_estimators(default_model_dir())
    assert isinstance(document_model, DocumentModel) and isinstance(ranker, CodeRanker)


def test_artefact_with_a_changed_rule_file_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(default_model_dir(), copy)
    rules = copy / "encounter" / "encounter_em.json"
    rules.write_text(rules.read_text("utf-8").replace('"emergency department"', '"emergency dept"'), "utf-8")
    with pytest.raises(ArtefactError, match=r"encounter/encounter_em\.json"):
        read_model_settings(copy)


def test_artefact_of_an_old_schema_is_refused_with_the_rebuild_command(tmp_path: Path) -> None:
    with pytest.raises(ArtefactError, match=r"rebuild it with `make model`") as caught:
        read_model_settings(_old_model(tmp_path))
    message = str(caught.value)
    assert "\n" not in message and OLD_SCHEMA in message and MODEL_SCHEMA in message


def test_artefact_of_an_old_schema_makes_the_cli_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    note = tmp_path / "note.txt"
    note.write_text("Sprain of the right ankle.", "utf-8")
    assert main(["suggest", str(note), "--model", str(_old_model(tmp_path))]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("codesuggest: error:") and "make model" in err[0]
