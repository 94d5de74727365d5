"""Tests of the CSV importer and of the validate / stats commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corpora.csv_import import import_csv, parse_codes_cell
from corpora.format import CorpusCode, read_corpus, write_corpus
from pipeline.cli import corpus
from pipeline.cli import main as cli
from pipeline.errors import CorpusFormatError, InputError, MalformedCodeError


@pytest.mark.parametrize(
    ("cell", "system", "separator", "expected"),
    [
        ("S93.401A; E11.9", "ICD10CM", None, [("ICD10CM", "S93.401A"), ("ICD10CM", "E11.9")]),
        (
            "ICD10CM:S93.401A|CPT:73610",
            "ICD10CM",
            None,
            [("ICD10CM", "S93.401A"), ("CPT", "73610")],
        ),
        ("s93401a ; ; e11.9;", "ICD10CM", None, [("ICD10CM", "S93.401A"), ("ICD10CM", "E11.9")]),
        ("73610, 99213", "CPT", ",", [("CPT", "73610"), ("CPT", "99213")]),
        (
            "hcpcs:l4350|icd10pcs:0qs604z",
            "CPT",
            None,
            [("HCPCS", "L4350"), ("ICD10PCS", "0QS604Z")],
        ),
        ("E11.9;E11.9", "ICD10CM", None, [("ICD10CM", "E11.9")]),
        ("", "ICD10CM", None, []),
    ],
)
def test_csv_import_parses_codes_cell(
    cell: str, system: str, separator: str | None, expected: list[tuple[str, str]]
) -> None:
    assert [c.key for c in parse_codes_cell(cell, system, separator)] == expected


@pytest.mark.parametrize("cell", ["ICD9:250.00", "S93.40-", "CPT:L4350", "E11.9 E11.8"])
def test_csv_import_rejects_bad_codes_cell(cell: str) -> None:
    with pytest.raises(MalformedCodeError):
        parse_codes_cell(cell)


def _csv(tmp_path: Path, content: str, name: str = "notes.csv") -> Path:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return path


GOOD = (
    "note_id,text,codes,setting\n"
    'a1,"Right ankle sprain, brace fitted.",S93.401A; W01.0XXA,outpatient\n'
    'a2,"Line one\nline two of the same note",ICD10CM:E11.9|CPT:99213,Inpatient\n'
    "a3,Well visit only,,\n"
)


def test_csv_import_reads_rows(tmp_path: Path) -> None:
    notes, report = import_csv(
        _csv(tmp_path, GOOD),
        text_column="text",
        codes_column="codes",
        id_column="note_id",
        setting_column="setting",
    )
    assert [n.id for n in notes] == ["a1", "a2", "a3"]
    assert notes[0].codes == [CorpusCode("ICD10CM", "S93.401A"), CorpusCode("ICD10CM", "W01.0XXA")]
    assert notes[1].text == "Line one\nline two of the same note"
    assert notes[1].setting == "inpatient"
    assert notes[1].codes == [CorpusCode("ICD10CM", "E11.9"), CorpusCode("CPT", "99213")]
    assert notes[2].codes == [] and notes[2].setting is None
    # a3 starts on line 5: the quoted cell of a2 spans lines 3-4
    assert notes[2].meta == {"source": "csv", "file": "notes.csv", "line": 5}
    assert report.rows_without_codes == [5]
    assert report.codes_per_system == {"CPT": 1, "ICD10CM": 3}
    out = tmp_path / "out.jsonl"
    write_corpus(out, notes)
    assert read_corpus(out) == notes


def test_csv_import_ids_and_default_system(tmp_path: Path) -> None:
    notes, _ = import_csv(
        _csv(tmp_path, "\ufefftext,codes\nfirst,73610\n\nsecond,99213|HCPCS:L4350\n", "visits.csv"),
        text_column="text",
        codes_column="codes",
        system="CPT",
    )
    assert [n.id for n in notes] == ["visits-2", "visits-4"]
    assert [c.key for c in notes[1].codes] == [("CPT", "99213"), ("HCPCS", "L4350")]


BAD_ROWS = [
    ("empty text", "id,text,codes\nx1,,E11.9\n", 2, "empty text"),
    ("empty id", "id,text,codes\n,note,E11.9\n", 2, "empty id"),
    (
        "duplicate id",
        "id,text,codes\nx1,note,E11.9\nx1,other,E11.9\n",
        3,
        "duplicate id 'x1' (first on line 2)",
    ),
    ("bad code", "id,text,codes\nx1,note,E11.9\nx2,note,E11.9;E11.12345\n", 3, "column 'codes'"),
    ("bad prefix", "id,text,codes\nx1,note,ICD9:250.00\n", 2, "unknown system prefix"),
    ("extra field", "id,text,codes\nx1,note,E11.9,oops\n", 2, "4 field(s), the header has 3"),
    ("missing column", "id,body,codes\nx1,note,E11.9\n", 1, "no column(s) ['text']"),
]


@pytest.mark.parametrize(("case", "content", "line", "message"), BAD_ROWS, ids=[b[0] for b in BAD_ROWS])
def test_csv_import_reports_bad_rows(tmp_path: Path, case: str, content: str, line: int, message: str) -> None:
    with pytest.raises(CorpusFormatError) as info:
        import_csv(_csv(tmp_path, content), text_column="text", codes_column="codes", id_column="id")
    assert any(n == line and message in m for n, m in info.value.problems), (
        case,
        info.value.problems,
    )


def test_csv_import_reports_every_bad_row(tmp_path: Path) -> None:
    content = "id,text,codes,setting\nx1,,E11.9,\nx2,ok,E11.9,home\nx3,ok,E11.9,\nx4,ok,Q,\n"
    with pytest.raises(CorpusFormatError) as info:
        import_csv(
            _csv(tmp_path, content),
            text_column="text",
            codes_column="codes",
            id_column="id",
            setting_column="setting",
        )
    assert [n for n, _ in info.value.problems] == [2, 3, 5]


def test_csv_import_rejects_unknown_default_system(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        import_csv(_csv(tmp_path, GOOD), text_column="text", codes_column="codes", system="ICD9")


@pytest.fixture
def corpus_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the real CLI entry point with only the corpus commands registered."""
    monkeypatch.setattr(cli, "BUILTIN_COMMANDS", (corpus.register,))


@pytest.mark.usefixtures("corpus_cli")
def test_csv_import_cli_writes_corpus(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "c.jsonl"
    argv = ["corpus", "import-csv", str(_csv(tmp_path, GOOD)), "--out", str(out)]
    argv += ["--text-column", "text", "--codes-column", "codes", "--id-column", "note_id", "--json"]
    assert cli.main(argv) == 0
    assert json.loads(capsys.readouterr().out)["notes"] == 3
    assert [n.id for n in read_corpus(out)] == ["a1", "a2", "a3"]


@pytest.mark.usefixtures("corpus_cli")
def test_csv_import_cli_bad_rows_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "c.jsonl"
    path = _csv(tmp_path, BAD_ROWS[0][1])
    argv = [
        "corpus",
        "import-csv",
        str(path),
        "--out",
        str(out),
        "--text-column",
        "text",
        "--codes-column",
        "codes",
    ]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "line 2: empty text" in err and err.count("\n") == 1
    assert not out.exists()


@pytest.mark.usefixtures("corpus_cli")
def test_csv_import_cli_validate_and_stats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.jsonl"
    write_corpus(good, import_csv(_csv(tmp_path, GOOD), text_column="text", codes_column="codes")[0])
    assert cli.main(["corpus", "validate", str(good)]) == 0
    assert "valid" in capsys.readouterr().out
    bad = tmp_path / "bad.jsonl"
    bad.write_text(good.read_text(encoding="utf-8") + "{oops\n", encoding="utf-8")
    assert cli.main(["corpus", "validate", str(bad), "--json"]) == 2
    document = json.loads(capsys.readouterr().out)
    assert document["valid"] is False
    assert document["problems"][0]["line"] == 4
    assert cli.main(["corpus", "validate", str(bad)]) == 2
    assert f"{bad}:4: bad JSON" in capsys.readouterr().out
    assert cli.main(["corpus", "stats", str(good), "--json", "--top", "2"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["notes"] == 3 and len(stats["top_codes"]) == 2
    assert cli.main(["corpus", "stats", str(good)]) == 0
    assert "3 notes" in capsys.readouterr().out
    assert cli.main(["corpus", "stats", str(bad)]) == 2
    assert "bad line" in capsys.readouterr().err
