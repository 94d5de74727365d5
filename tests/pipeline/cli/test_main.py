"""The note-level commands: annotate, suggest, train, evaluate."""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import sys
from pathlib import Path

import pytest

from corpora.format import CorpusCode, CorpusNote, write_corpus
from pipeline.cli.main import main
from pipeline.locations import default_model_dir

NOTE = "ASSESSMENT: Sprain of the right ankle, initial encounter. Denies chest pain.\n"


@pytest.fixture
def note_file(tmp_path: Path) -> Path:
    path = tmp_path / "note.txt"
    path.write_text(NOTE, encoding="utf-8")
    return path


def test_cli_suggest_json(note_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["suggest", str(note_file), "--json", "--top-k", "5"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["suggestions"]) <= 5
    assert {"suggestions", "excluded", "code_set", "model_version", "code_set_versions"} <= set(doc)


def test_cli_suggest_text_output(note_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["suggest", str(note_file)]) == 0
    assert "S93.4" in capsys.readouterr().out


def test_cli_annotate_json_offsets(note_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["annotate", str(note_file), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    chest = [m for m in doc["mentions"] if m["text"] == "chest pain"]
    assert chest and chest[0]["assertions"]["negated"] is True
    for m in doc["mentions"]:
        assert NOTE[m["start"] : m["end"]] == m["text"]


@pytest.mark.parametrize("command", ["suggest", "annotate"])
def test_cli_empty_stdin_is_a_one_line_error(
    command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"   \n")))
    assert main([command, "-"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "empty" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["suggest", "no/such/file.txt"], "no such file"),
        (["suggest", "{note}", "--model", "{tmp}"], "manifest"),
        (["evaluate", "--corpus", "no/such.jsonl"], "no/such.jsonl"),
    ],
)
def test_cli_bad_input_exits_2(
    args: list[str], message: str, note_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [a.format(note=note_file, tmp=tmp_path) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_cli_suggest_rejects_non_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes("fièvre".encode("latin-1"))
    assert main(["suggest", str(path)]) == 2
    assert "UTF-8" in capsys.readouterr().err


def _corpus(tmp_path: Path, data_dir: Path, split: str, n: int, add: str = "") -> Path:
    from corpora.codiesp import import_codiesp

    notes, _ = import_codiesp(data_dir / "codiesp" / split)
    path = tmp_path / f"{split}.jsonl"
    write_corpus(path, [dataclasses.replace(note, text=note.text + add) for note in notes[:n]])
    return path


def test_cli_evaluate_json_report(tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = _corpus(tmp_path, data_dir, "dev", 12)
    errors = tmp_path / "errors.csv"
    assert main(["evaluate", "--corpus", str(corpus), "--json", "--errors", str(errors), "--no-progress"]) == 0
    report = json.loads(capsys.readouterr().out)
    for key in ("map", "micro_precision", "micro_recall", "micro_f1", "macro_f1", "p_at_5", "r_at_10", "r_at_15"):
        assert 0.0 <= report[key] <= 1.0
        assert 0.0 <= report["category"][key] <= 1.0
    assert report["notes"] == 12
    assert set(report["recall_by_frequency"]) == {"frequent", "rare", "unseen"}
    assert errors.read_text("utf-8").startswith("note_id,code,error")


def test_cli_evaluate_encounter_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tmp_path / "enc.jsonl"
    write_corpus(corpus, [CorpusNote("e1", NOTE, [CorpusCode("ICD10CM", "S93.401A")], setting="outpatient")])
    assert main(["evaluate", "--corpus", str(corpus), "--encounter", "--json", "--no-progress"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"exact_set_accuracy", "code_precision", "code_recall", "modifier_accuracy"} <= set(report)


@pytest.mark.slow
def test_cli_train_small_model_round_trip(tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # a made-up name in every note: it must not reach the artefact
    train = _corpus(tmp_path, data_dir, "train", 60, add="\nSeen by Dr. Zyxquokka Vandermeulen.")
    dev = _corpus(tmp_path, data_dir, "dev", 20, add="\nSeen by Dr. Zyxquokka Vandermeulen.")
    out = tmp_path / "models" / "tiny"
    argv = [
        "train",
        "--corpus",
        str(train),
        "--dev",
        str(dev),
        "--out",
        str(out),
        "--version",
        "0.0.1",
        "--pipeline-from",
        str(default_model_dir()),
        "--no-progress",
    ]
    assert main(argv) == 0
    assert "dev MAP" in capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    assert manifest["name"] == "tiny" and manifest["version"] == "0.0.1" and manifest["kind"] == "model"
    refs = {Path(t["path"]).name: (t["role"], t["notes"]) for t in manifest["training_data"]}
    assert refs == {"train.jsonl": ("train", 60), "dev.jsonl": ("dev", 20)}
    assert "map" in manifest["metrics"]["dev"]
    assert (out / "MODEL_CARD.md").read_text("utf-8").startswith("# Model card")
    for file in (out / "nlp").rglob("*"):
        if file.is_file():
            data = gzip.decompress(file.read_bytes()) if file.suffix == ".gz" else file.read_bytes()
            assert b"zyxquokka" not in data.lower(), file
    assert main(["suggest", "--model", str(out), "--json", str(train.parent / "train.jsonl")]) == 0
