"""Tests of the corpus format: round trip, normalisation, every kind of bad line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from corpora.format import (
    CorpusCode,
    CorpusNote,
    CorpusSpan,
    corpus_stats,
    iter_corpus,
    normalize_corpus_code,
    read_corpus,
    validate_corpus,
    write_corpus,
)
from pipeline.errors import CorpusFormatError, MalformedCodeError

TEXT = "Right ankle sprain after a fall.\nX-ray: no fracture."


def _good(note_id: str = "n1", **extra: Any) -> dict[str, Any]:
    line: dict[str, Any] = {
        "id": note_id,
        "text": TEXT,
        "codes": [
            {"system": "ICD10CM", "code": "S93.401A", "role": "first-listed"},
            {
                "system": "CPT",
                "code": "73610",
                "modifiers": ["RT"],
                "pointers": ["S93.401A"],
                "role": "procedure",
            },
        ],
    }
    line.update(extra)
    return line


def _write_lines(path: Path, lines: list[Any]) -> Path:
    with open(path, "w", encoding="utf-8") as handle:
        for line in lines:
            handle.write((line if isinstance(line, str) else json.dumps(line)) + "\n")
    return path


def test_format_round_trip(tmp_path: Path) -> None:
    notes = [
        CorpusNote(
            id="a",
            text=TEXT,
            codes=[
                CorpusCode("ICD10CM", "S93.401A", role="first-listed"),
                CorpusCode("ICD10CM", "W01.0XXA", role="external-cause"),
                CorpusCode("CPT", "73610", modifiers=("RT",), pointers=("S93.401A",), role="procedure"),
                CorpusCode("HCPCS", "L4350", modifiers=("RT",), pointers=("S93.401A",), role="supply"),
            ],
            setting="outpatient",
            spans=[CorpusSpan(0, 18, code="S93.401A", label="diagnosis")],
            meta={"title": "ankle", "rules": ["icd.7th"], "nested": {"k": [1, 2]}},
        ),
        CorpusNote(id="b", text="Unicode: café, naïve → résumé\r\nsecond line", codes=[]),
        CorpusNote(id="c", text="PCS note", codes=[CorpusCode("ICD10PCS", "0QS604Z")]),
    ]
    path = tmp_path / "sub" / "corpus.jsonl"
    assert write_corpus(path, notes) == 3
    assert read_corpus(path) == notes
    assert list(iter_corpus(path)) == notes
    assert validate_corpus(path) == []
    # the temporary file is gone
    assert sorted(p.name for p in path.parent.iterdir()) == ["corpus.jsonl"]


@pytest.mark.parametrize(
    ("system", "raw", "expected"),
    [
        ("ICD10CM", "s22.49xa", "S22.49XA"),
        ("ICD10CM", "S93401A", "S93.401A"),
        ("ICD10CM", " e11.9 ", "E11.9"),
        ("ICD10CM", "n23", "N23"),
        ("ICD10PCS", "bt41zzz", "BT41ZZZ"),
        ("ICD10PCS", "0tcb", "0TCB"),
        ("CPT", "73610", "73610"),
        ("HCPCS", "l4350", "L4350"),
    ],
)
def test_format_normalises_codes(system: str, raw: str, expected: str) -> None:
    assert normalize_corpus_code(system, raw) == expected


@pytest.mark.parametrize(
    ("system", "raw"),
    [
        ("ICD10CM", "S93.40-"),
        ("ICD10CM", "12345"),
        ("ICD10PCS", "0QS"),
        ("ICD10PCS", "0IS604Z"),  # PCS has no letter I
        ("CPT", "L4350"),
        ("HCPCS", "99213"),
        ("ICD9", "250.00"),
        ("CPT", ""),
    ],
)
def test_format_rejects_malformed_codes(system: str, raw: str) -> None:
    with pytest.raises(MalformedCodeError):
        normalize_corpus_code(system, raw)


def test_format_reads_lowercase_codes_into_canonical_form(tmp_path: Path) -> None:
    line = _good()
    line["codes"][0]["code"] = "s93401a"
    line["codes"][1]["modifiers"] = ["rt"]
    line["codes"][1]["pointers"] = ["s93.401a"]
    line["spans"] = [{"start": 0, "end": 5, "code": "s93.401a"}]
    (note,) = read_corpus(_write_lines(tmp_path / "c.jsonl", [line]))
    assert note.codes[0].code == "S93.401A"
    assert note.codes[1].modifiers == ("RT",)
    assert note.codes[1].pointers == ("S93.401A",)
    assert note.spans[0].code == "S93.401A"


def _bad(change: dict[str, Any], drop: tuple[str, ...] = ()) -> dict[str, Any]:
    line = _good("bad")
    line.update(change)
    for key in drop:
        line.pop(key)
    return line


BAD_LINES: list[tuple[str, Any, str]] = [
    ("bad json", '{"id": "x", "text": ', "bad JSON"),
    ("not an object", "[1, 2]", "must be a JSON object"),
    ("missing id", _bad({}, drop=("id",)), "missing 'id'"),
    ("empty id", _bad({"id": "  "}), "'id' must be a non-empty string"),
    ("missing text", _bad({}, drop=("text",)), "missing 'text'"),
    ("empty text", _bad({"text": " \n "}), "empty 'text'"),
    ("text not str", _bad({"text": 5}), "'text' must be a string"),
    ("missing codes", _bad({}, drop=("codes",)), "missing 'codes'"),
    ("codes not list", _bad({"codes": "S93.401A"}), "'codes' must be a list"),
    ("unknown note key", _bad({"labels": []}), "unknown key(s) ['labels']"),
    ("unknown system", _bad({"codes": [{"system": "ICD9", "code": "250.00"}]}), "unknown system"),
    ("malformed code", _bad({"codes": [{"system": "CPT", "code": "7361"}]}), "malformed code"),
    (
        "code not str",
        _bad({"codes": [{"system": "CPT", "code": 73610}]}),
        "'code' must be a string",
    ),
    ("code not object", _bad({"codes": ["S93.401A"]}), "must be an object"),
    (
        "unknown code key",
        _bad({"codes": [{"system": "CPT", "code": "73610", "units": 1}]}),
        "unknown key(s) ['units']",
    ),
    (
        "bad modifier",
        _bad({"codes": [{"system": "CPT", "code": "73610", "modifiers": ["RTX"]}]}),
        "bad modifier",
    ),
    (
        "modifier on diagnosis",
        _bad({"codes": [{"system": "ICD10CM", "code": "S93.401A", "modifiers": ["RT"]}]}),
        "takes no modifiers",
    ),
    (
        "unknown role",
        _bad({"codes": [{"system": "ICD10CM", "code": "S93.401A", "role": "main"}]}),
        "unknown role",
    ),
    (
        "service role on diagnosis",
        _bad({"codes": [{"system": "ICD10CM", "code": "S93.401A", "role": "procedure"}]}),
        "is for service lines",
    ),
    (
        "diagnosis role on service",
        _bad({"codes": [{"system": "CPT", "code": "73610", "role": "principal"}]}),
        "is for ICD10CM diagnoses",
    ),
    (
        "pointer not in note",
        _bad({"codes": [{"system": "CPT", "code": "73610", "pointers": ["S93.401A"]}]}),
        "pointer S93.401A is not one of the note's ICD10CM codes",
    ),
    (
        "too many pointers",
        _bad(
            {
                "codes": [
                    *({"system": "ICD10CM", "code": c} for c in ("A00.0", "A00.1", "A00.9", "A01.00", "A01.01")),
                    {
                        "system": "CPT",
                        "code": "99213",
                        "pointers": ["A00.0", "A00.1", "A00.9", "A01.00", "A01.01"],
                    },
                ]
            }
        ),
        "at most 4",
    ),
    (
        "duplicate code",
        _bad(
            {
                "codes": [
                    {"system": "ICD10CM", "code": "E11.9"},
                    {"system": "ICD10CM", "code": "e119"},
                ]
            }
        ),
        "duplicate code ICD10CM E11.9",
    ),
    ("bad setting", _bad({"setting": "ambulatory"}), "unknown setting"),
    ("span past end", _bad({"spans": [{"start": 0, "end": len(TEXT) + 1}]}), "bad offsets"),
    ("span reversed", _bad({"spans": [{"start": 5, "end": 5}]}), "bad offsets"),
    ("span negative", _bad({"spans": [{"start": -1, "end": 3}]}), "bad offsets"),
    ("span not int", _bad({"spans": [{"start": "0", "end": 3}]}), "must be integers"),
    ("span bool", _bad({"spans": [{"start": False, "end": 3}]}), "must be integers"),
    (
        "span unknown code",
        _bad({"spans": [{"start": 0, "end": 3, "code": "E11.9"}]}),
        "not one of the note's codes",
    ),
    (
        "span unknown key",
        _bad({"spans": [{"start": 0, "end": 3, "text": "Rig"}]}),
        "unknown key(s) ['text']",
    ),
    ("meta not object", _bad({"meta": ["x"]}), "'meta' must be an object"),
]


@pytest.mark.parametrize(("case", "line", "message"), BAD_LINES, ids=[c[0] for c in BAD_LINES])
def test_format_reports_bad_line_with_number_and_loads_nothing(
    tmp_path: Path, case: str, line: Any, message: str
) -> None:
    path = _write_lines(tmp_path / "c.jsonl", [_good("ok1"), line, _good("ok2")])
    problems = validate_corpus(path)
    assert problems, case
    assert {n for n, _ in problems} == {2}
    assert any(message in m for _, m in problems), problems
    with pytest.raises(CorpusFormatError) as info:
        read_corpus(path)
    assert info.value.problems == problems
    with pytest.raises(CorpusFormatError):
        next(iter_corpus(path))


def test_format_reports_every_bad_line_not_only_the_first(tmp_path: Path) -> None:
    lines = [
        _good("a"),
        "not json",
        _good("b"),
        _bad({}, drop=("text",)),
        _good("a"),  # duplicate id
        "",  # a blank line is allowed
        _bad({"codes": [{"system": "XX", "code": "1"}]}),
    ]
    path = _write_lines(tmp_path / "c.jsonl", lines)
    problems = validate_corpus(path)
    assert [n for n, _ in problems] == [2, 4, 5, 7]
    assert "duplicate id 'a' (first on line 1)" in problems[2][1]
    with pytest.raises(CorpusFormatError) as info:
        read_corpus(path)
    assert "4 bad line(s)" in str(info.value)


def test_format_reports_all_problems_of_one_line(tmp_path: Path) -> None:
    line = {"text": "", "codes": [{"system": "CPT", "code": "x"}], "setting": "home"}
    problems = validate_corpus(_write_lines(tmp_path / "c.jsonl", [line]))
    messages = " | ".join(m for _, m in problems)
    assert len(problems) == 4
    for part in ("missing 'id'", "empty 'text'", "malformed code", "unknown setting"):
        assert part in messages


def test_format_reports_non_utf8_line(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_bytes(json.dumps(_good("a")).encode() + b"\n" + b'{"id": "\xff"}\n')
    assert [n for n, _ in validate_corpus(path)] == [2]


def test_format_missing_file_is_a_corpus_error(tmp_path: Path) -> None:
    with pytest.raises(CorpusFormatError):
        read_corpus(tmp_path / "absent.jsonl")
    assert validate_corpus(tmp_path / "absent.jsonl") == [(0, "no such file")]


def test_format_write_refuses_invalid_notes_and_keeps_old_file(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    good = [CorpusNote(id="a", text="fine", codes=[CorpusCode("ICD10CM", "E11.9")])]
    write_corpus(path, good)
    before = path.read_bytes()
    bad = [
        *good,
        CorpusNote(id="b", text="  ", codes=[]),
        CorpusNote(id="a", text="again", codes=[CorpusCode("CPT", "73610", pointers=("Z00.00",))]),
    ]
    with pytest.raises(CorpusFormatError) as info:
        write_corpus(path, bad)
    assert [n for n, _ in info.value.problems] == [2, 3, 3]
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.jsonl"]


def test_format_text_is_kept_exactly(tmp_path: Path) -> None:
    text = "line one\r\nline two\u2028same record\ttab  "
    path = tmp_path / "c.jsonl"
    write_corpus(path, [CorpusNote(id="a", text=text, codes=[])])
    assert read_corpus(path)[0].text == text
    assert path.read_bytes().count(b"\n") == 1


def test_format_stats_counts() -> None:
    notes = [
        CorpusNote(id="a", text="t", codes=[CorpusCode("ICD10CM", "E11.9"), CorpusCode("CPT", "99213")]),
        CorpusNote(id="b", text="t", codes=[CorpusCode("ICD10CM", "E11.9")], setting="inpatient"),
        CorpusNote(id="c", text="t", codes=[]),
    ]
    stats = corpus_stats(notes, top=1)
    assert stats["notes"] == 3
    assert stats["codes"] == 3
    assert stats["codes_per_note"] == {"mean": 1.0, "median": 1.0, "min": 0, "max": 2}
    assert stats["notes_without_codes"] == 1
    assert stats["systems"]["ICD10CM"] == {"codes": 2, "distinct": 1, "notes": 2}
    assert stats["settings"] == {"inpatient": 1, "unspecified": 2}
    assert stats["top_codes"] == [{"system": "ICD10CM", "code": "E11.9", "notes": 2}]
