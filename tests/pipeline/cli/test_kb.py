"""Tests of ``codesuggest codes ...`` and ``codesuggest kb build`` through ``pipeline.cli.main.main``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.cli import kb as kb_cli
from pipeline.cli.main import main
from pipeline.kb.store import KnowledgeBase
from pipeline.manifest import read_manifest


@pytest.fixture(autouse=True)
def _session_kb(monkeypatch: pytest.MonkeyPatch, kb: KnowledgeBase, kb_dir: Path) -> None:
    """Serve ``--kb <kb_dir>`` from the session's loaded KB.

    Each command would load it again (about a second) and build its search index again (a few
    seconds). Other folders load for real.
    """
    real = kb_cli.load_kb

    def load(folder: Path | None) -> KnowledgeBase:
        return kb if folder is not None and Path(folder) == kb_dir else real(folder)

    monkeypatch.setattr(kb_cli, "load_kb", load)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("typed", "code", "system", "billable"),
    [
        ("S93.401A", "S93.401A", "ICD10CM", True),
        ("s93401a", "S93.401A", "ICD10CM", True),
        ("L1906", "L1906", "HCPCS", True),
        ("99213", "99213", "CPT", True),
        ("S93.40", "S93.40", "ICD10CM", False),
    ],
)
def test_cli_lookup_json(
    capsys: pytest.CaptureFixture[str],
    kb_dir: Path,
    typed: str,
    code: str,
    system: str,
    billable: bool,
) -> None:
    rc, out, err = _run(capsys, "codes", "lookup", typed, "--json", "--kb", str(kb_dir))
    assert (rc, err) == (0, "")
    doc = json.loads(out)
    assert (doc["code"], doc["system"], doc["billable"]) == (code, system, billable)
    assert doc["title"] and doc["version"]


def test_cli_lookup_icd_details(capsys: pytest.CaptureFixture[str], kb_dir: Path) -> None:
    rc, out, _ = _run(capsys, "codes", "lookup", "S93.401A", "--json", "--kb", str(kb_dir))
    assert rc == 0
    doc = json.loads(out)
    assert [p["code"] for p in doc["parents"]] == ["S93.401", "S93.40", "S93.4", "S93"]
    assert doc["chapter"] == {
        "number": "19",
        "title": "Injury, poisoning and certain other consequences of external causes",
    }
    assert doc["block"]["range"] == "S90-S99"
    assert {"from": "S93", "note": "strain of muscle and tendon of ankle and foot (S96.-)"} in doc["notes"]["excludes2"]
    assert doc["seventh"] == {"A": "initial encounter", "D": "subsequent encounter", "S": "sequela"}
    assert {"path": ["Sprain", "ankle"], "code": "S93.40", "incomplete": True, "source": "index",
            "column": None} in doc["index_paths"]  # fmt: skip
    rc, out, _ = _run(capsys, "codes", "lookup", "E11", "--json", "--kb", str(kb_dir))
    doc = json.loads(out)
    assert "E11.9" in doc["children"]
    assert "type 1 diabetes mellitus (E10.-)" in [n["note"] for n in doc["notes"]["excludes1"]]
    assert doc["inclusion_terms"] == []


def test_cli_lookup_text(capsys: pytest.CaptureFixture[str], kb_dir: Path) -> None:
    rc, out, _ = _run(capsys, "codes", "lookup", "E11.9", "--kb", str(kb_dir))
    assert rc == 0
    assert out.startswith("E11.9  [ICD10CM FY2026")
    assert "Excludes1 (E11): type 1 diabetes mellitus (E10.-)" in out
    assert "index (index): Diabetes, diabetic > type 2 -> E11.9" in out
    rc, out, _ = _run(capsys, "codes", "lookup", "L1906", "--kb", str(kb_dir))
    assert rc == 0 and "ankle brace" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["codes", "lookup", "E11.99"], "E11.99 is not an ICD-10-CM code"),
        (["codes", "lookup", "A00-A09"], "not a valid code"),
        (["codes", "lookup", "99999"], "not a CPT code"),
        (["codes", "complete", "S52.5", "--seventh", "A"], "not a leaf"),
        (["codes", "complete", "E11.9", "--seventh", "A"], "takes no 7th character"),
        (["codes", "complete", "S93.401", "--seventh", "Z"], "allowed: A (initial encounter)"),
        (["codes", "search", "   "], "search text is empty"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], kb_dir: Path, argv: list[str], message: str
) -> None:
    rc, out, err = _run(capsys, *argv, "--kb", str(kb_dir))
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("codesuggest: error: ")
    assert message in err


def test_cli_missing_kb(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rc, _, err = _run(capsys, "codes", "lookup", "I10", "--kb", str(tmp_path / "absent"))
    assert rc == 2
    assert "make kb" in err and "codesuggest kb build" in err and err.count("\n") == 1


def test_cli_search(capsys: pytest.CaptureFixture[str], kb_dir: Path) -> None:
    rc, out, _ = _run(capsys, "codes", "search", "sprain of right ankle", "--json", "--kb", str(kb_dir))
    assert rc == 0
    doc = json.loads(out)
    assert doc["query"] == "sprain of right ankle" and len(doc["hits"]) == 20
    assert doc["hits"][0]["code"] == "S93.401A"
    assert set(doc["hits"][0]) == {
        "code",
        "system",
        "title",
        "score",
        "matched",
        "source",
        "billable",
    }
    rc, out, _ = _run(
        capsys, "codes", "search", "ankle brace", "--system", "hcpcs", "--limit", "3", "--json",
        "--kb", str(kb_dir),
    )  # fmt: skip
    hits = json.loads(out)["hits"]
    assert rc == 0 and len(hits) == 3 and {h["system"] for h in hits} == {"HCPCS"}
    rc, out, _ = _run(capsys, "codes", "search", "type 2 diabetes", "--limit", "2", "--kb", str(kb_dir))
    assert rc == 0 and out.startswith("E11.9") and "results" in out


def test_cli_search_bad_limit(capsys: pytest.CaptureFixture[str], kb_dir: Path) -> None:
    with pytest.raises(SystemExit) as info:
        main(["codes", "search", "ankle", "--limit", "0", "--kb", str(kb_dir)])
    assert info.value.code == 2
    assert "must be 1 or more" in capsys.readouterr().err


def test_cli_stats(capsys: pytest.CaptureFixture[str], kb_dir: Path) -> None:
    rc, out, _ = _run(capsys, "codes", "stats", "--json", "--kb", str(kb_dir))
    assert rc == 0
    doc = json.loads(out)
    assert doc["ICD10CM"]["billable"] == 74_719
    assert doc["ICD10CM"]["version"] == "FY2026 (April 1, 2026 update)"
    assert {"codes", "billable", "version"} <= set(doc["HCPCS"]) and doc["HCPCS"]["codes"] == 6_710
    assert doc["CPT"]["codes"] > 0
    rc, out, _ = _run(capsys, "codes", "stats", "--kb", str(kb_dir))
    assert rc == 0 and "74,719 billable" in out


@pytest.mark.parametrize(
    ("code", "seventh", "completed"),
    [("T14.90", "A", "T14.90XA"), ("S93.401", "a", "S93.401A"), ("T07", "D", "T07.XXXD")],
)
def test_cli_complete(
    capsys: pytest.CaptureFixture[str], kb_dir: Path, code: str, seventh: str, completed: str
) -> None:
    rc, out, _ = _run(capsys, "codes", "complete", code, "--seventh", seventh, "--json", "--kb", str(kb_dir))
    assert rc == 0
    doc = json.loads(out)
    assert doc["completed"] == completed and doc["billable"] is True
    rc, out, _ = _run(capsys, "codes", "complete", code, "--seventh", seventh, "--kb", str(kb_dir))
    assert rc == 0 and out.startswith(completed + "  ")


@pytest.mark.slow
def test_cli_kb_build_without_data(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_dir = tmp_path / "kb"
    # A "licensed" CPT file with made-up codes and words (no AMA text in the repository).
    cpt_file = tmp_path / "cpt-licensed.txt"
    cpt_file.write_text("code\tdescriptor\n99990\tMade-up visit\n0999T\tMade-up tracking code\n")
    rc, out, _ = _run(
        capsys, "kb", "build", "--no-data", "--cpt-file", str(cpt_file), "--out", str(out_dir),
        "--no-progress",
    )  # fmt: skip
    assert rc == 0
    assert out.startswith(f"built {out_dir}: ICD-10-CM FY2026") and "74,719 billable" in out
    manifest = read_manifest(out_dir)
    assert manifest.kind == "kb" and manifest.params == {"cpt_source": "licensed"}
    assert manifest.code_sets["CPT"] == "licensed file cpt-licensed.txt"
    assert [ref["path"] for ref in manifest.training_data][-1] == "cpt-licensed.txt"
    rc, out, _ = _run(capsys, "codes", "lookup", "T14.90XA", "--json", "--kb", str(out_dir))
    assert rc == 0 and json.loads(out)["index_paths"] == []
    rc, out, _ = _run(capsys, "codes", "lookup", "0999T", "--json", "--kb", str(out_dir))
    assert rc == 0 and json.loads(out)["title"] == "Made-up tracking code"
    rc, _, err = _run(capsys, "codes", "lookup", "99213", "--kb", str(out_dir))
    assert rc == 2 and "not a CPT code (licensed file cpt-licensed.txt)" in err


def test_cli_kb_build_bad_options(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rc, _, err = _run(capsys, "kb", "build", "--no-data", "--data-dir", str(tmp_path), "--out", str(tmp_path))
    assert rc == 2 and "exclude each other" in err
    rc, _, err = _run(capsys, "kb", "build", "--data-dir", str(tmp_path / "absent"), "--out", str(tmp_path))
    assert rc == 2 and "no such data folder" in err
