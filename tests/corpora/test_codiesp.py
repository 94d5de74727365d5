"""Tests of the CodiEsp importer on a small fixture folder and on the real dev split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corpora.codiesp import CodeListChecker, find_tsvs, import_codiesp
from corpora.format import CorpusCode, read_corpus, write_corpus
from pipeline.cli import corpus
from pipeline.cli import main as cli
from pipeline.errors import ArtefactError, DataFileError

# Undotted code list in tabular order, as the packaged list holds it.
CODE_LIST = [
    "1",
    "A00-B99",
    "E11",
    "E119",
    "E1122",
    "N18",
    "N183",
    "N1830",
    "R52",
    "W19",
    "W19XXXA",
]


def _split(tmp_path: Path, name: str = "dev") -> Path:
    folder = tmp_path / name
    texts = folder / "text_files_en"
    texts.mkdir(parents=True)
    (texts / "doc-1.txt").write_bytes(b"Diabetic with pain.\r\nFell at home.\n")
    (texts / "doc-2.txt").write_bytes("Naïve patient — café worker.\n".encode())
    (texts / "doc-3.txt").write_bytes(b"A case with no codes.\n")
    (folder / f"{name}D.tsv").write_text(
        "doc-1\te11.9\ndoc-1\tr52\ndoc-1\tw19.xxx\ndoc-1\te11\ndoc-1\tr52\ndoc-2\tn18.30\ndoc-9\te11.9\n",
        encoding="utf-8",
    )
    (folder / f"{name}P.tsv").write_text("doc-1\tbt41zzz\ndoc-2\t0tcb\n", encoding="utf-8")
    return folder


def test_codiesp_imports_fixture_folder(tmp_path: Path) -> None:
    notes, report = import_codiesp(_split(tmp_path), checker=CodeListChecker(CODE_LIST))
    assert [n.id for n in notes] == ["doc-1", "doc-2", "doc-3"]
    doc1, doc2, doc3 = notes
    assert doc1.text == "Diabetic with pain.\r\nFell at home.\n"  # exact bytes, no newline translation
    assert doc2.text == "Naïve patient — café worker.\n"
    assert doc1.codes == [
        CorpusCode("ICD10CM", "E11.9"),
        CorpusCode("ICD10CM", "R52"),
        CorpusCode("ICD10CM", "W19.XXX"),
        CorpusCode("ICD10CM", "E11"),
        CorpusCode("ICD10PCS", "BT41ZZZ"),
    ]
    assert doc1.meta == {
        "source": "codiesp",
        "split": "dev",
        "language": "en",
        "unknown_codes": ["W19.XXX"],
        "nonbillable_codes": ["E11"],
    }
    assert doc2.codes == [CorpusCode("ICD10CM", "N18.30"), CorpusCode("ICD10PCS", "0TCB")]
    assert doc3.codes == []
    assert report.split == "dev"
    assert report.notes == 3
    assert report.codes_per_system == {"ICD10CM": 5, "ICD10PCS": 2}
    assert report.unknown_codes == {"W19.XXX": 1}
    assert report.nonbillable_codes == {"E11": 1}
    assert report.missing_text == ["doc-9"]
    assert report.without_codes == ["doc-3"]
    assert report.duplicate_rows == 1
    assert "code list" in report.checked_against


def test_codiesp_without_check_flags_nothing(tmp_path: Path) -> None:
    notes, report = import_codiesp(_split(tmp_path), checker=None)
    assert all("unknown_codes" not in n.meta for n in notes)
    assert report.checked_against == "not checked"
    assert report.unknown_codes == {}


def test_codiesp_round_trips_through_the_corpus_format(tmp_path: Path) -> None:
    notes, _ = import_codiesp(_split(tmp_path), checker=CodeListChecker(CODE_LIST))
    out = tmp_path / "out.jsonl"
    write_corpus(out, notes)
    assert read_corpus(out) == notes


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ("no_texts", "no text_files_en/"),
        ("no_tsv", "expected one *D.tsv"),
        ("two_tsv", "expected one *D.tsv"),
        ("bad_row", "line 2: expected 'docid<TAB>code'"),
        ("bad_code", "line 1:"),
        ("not_utf8", "not UTF-8"),
    ],
)
def test_codiesp_rejects_broken_folders(tmp_path: Path, layout: str, message: str) -> None:
    folder = _split(tmp_path)
    if layout == "no_texts":
        for path in (folder / "text_files_en").iterdir():
            path.unlink()
        (folder / "text_files_en").rmdir()
    elif layout == "no_tsv":
        (folder / "devD.tsv").unlink()
    elif layout == "two_tsv":
        (folder / "trainD.tsv").write_text("doc-1\te11.9\n", encoding="utf-8")
    elif layout == "bad_row":
        (folder / "devD.tsv").write_text("doc-1\te11.9\ndoc-1 e11.9\n", encoding="utf-8")
    elif layout == "bad_code":
        (folder / "devD.tsv").write_text("doc-1\t12345\n", encoding="utf-8")
    elif layout == "not_utf8":
        (folder / "text_files_en" / "doc-3.txt").write_bytes(b"caf\xe9\n")
    with pytest.raises(DataFileError) as info:
        import_codiesp(folder, checker=None)
    assert message in str(info.value)


def test_codiesp_find_tsvs_pairs_procedure_file(tmp_path: Path) -> None:
    folder = _split(tmp_path, "train")
    split, d_tsv, p_tsv = find_tsvs(folder)
    assert (split, d_tsv.name, p_tsv.name if p_tsv else None) == (
        "train",
        "trainD.tsv",
        "trainP.tsv",
    )
    (folder / "trainP.tsv").unlink()
    assert find_tsvs(folder)[2] is None


def test_codiesp_code_list_checker_statuses() -> None:
    checker = CodeListChecker(CODE_LIST)
    assert checker.status("E11.9") == "billable"
    assert checker.status("E11") == "nonbillable"
    assert checker.status("N18.3") == "nonbillable"
    assert checker.status("N18.30") == "billable"
    assert checker.status("W19.XXXA") == "billable"
    assert checker.status("W19.XXX") == "unknown"
    assert checker.status("Z99.99") == "unknown"


def test_codiesp_packaged_code_list_is_fy2026() -> None:
    checker = CodeListChecker()
    assert checker.status("S93.401A") == "billable"
    assert checker.status("S93.401") == "nonbillable"
    assert checker.status("W19.XXX") == "unknown"


def test_codiesp_explicit_kb_that_cannot_load_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ArtefactError):
        corpus.make_checker(tmp_path / "no-kb-here")
    assert corpus.make_checker(tmp_path / "no-kb-here", check=False) is None


@pytest.fixture
def corpus_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the real CLI entry point with only the corpus commands registered."""
    monkeypatch.setattr(cli, "BUILTIN_COMMANDS", (corpus.register,))


@pytest.mark.usefixtures("corpus_cli")
def test_codiesp_cli_import_json_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "dev.jsonl"
    assert cli.main(["corpus", "import-codiesp", str(_split(tmp_path)), "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["notes"] == 3
    assert summary["codes_per_system"] == {"ICD10CM": 5, "ICD10PCS": 2}
    assert summary["unknown_codes"]["codes"] == {"W19.XXX": 1}
    assert summary["missing_text"] == ["doc-9"]
    assert summary["without_codes"] == ["doc-3"]
    assert len(read_corpus(out)) == 3


@pytest.mark.usefixtures("corpus_cli")
def test_codiesp_cli_bad_folder_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(
        [
            "corpus",
            "import-codiesp",
            str(tmp_path),
            "--out",
            str(tmp_path / "x.jsonl"),
            "--no-check",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("codesuggest: error:") and err.count("\n") == 1
    assert not (tmp_path / "x.jsonl").exists()


def _tsv_counts(tsv: Path) -> tuple[int, set[str]]:
    rows = [line.split("\t") for line in tsv.read_text(encoding="utf-8").splitlines() if line.strip()]
    return len(rows), {r[0] for r in rows}


def test_codiesp_real_dev_split_matches_tsv(data_dir: Path, tmp_path: Path) -> None:
    folder = data_dir / "codiesp" / "dev"
    notes, report = import_codiesp(folder, checker=CodeListChecker())
    d_rows, d_docs = _tsv_counts(folder / "devD.tsv")
    p_rows, p_docs = _tsv_counts(folder / "devP.tsv")
    assert report.notes == len(notes) == 250
    assert report.codes_per_system == {"ICD10CM": d_rows, "ICD10PCS": p_rows}
    assert {n.id for n in notes} == d_docs
    assert sum(1 for n in notes if n.codes_of("ICD10PCS")) == len(p_docs)
    assert report.missing_text == [] and report.without_codes == []
    # Unknown codes are a small share (about 1.5%), kept in the notes and flagged on them.
    unknown_rows = sum(report.unknown_codes.values())
    assert 0 < unknown_rows < 0.03 * d_rows
    flagged = sum(len(n.meta.get("unknown_codes", [])) for n in notes)
    assert flagged == unknown_rows
    assert all(set(n.meta.get("unknown_codes", [])) <= set(n.codes_of("ICD10CM")) for n in notes)
    # Texts are the files' exact UTF-8 content.
    sample = notes[0]
    assert sample.text == (folder / "text_files_en" / f"{sample.id}.txt").read_bytes().decode("utf-8")
    out = tmp_path / "dev.jsonl"
    write_corpus(out, notes)
    assert read_corpus(out) == notes
