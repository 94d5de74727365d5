"""Import notes and their codes from a CSV file into the corpus format.

One row is one note. The codes column holds several codes separated by ``;`` or ``|`` (or the
separator given), each either bare (``S93.401A``, read in the default system) or prefixed with
its system (``ICD10CM:S93.401A``, ``CPT:73610``, ``HCPCS:L4350``, ``ICD10PCS:0QS604Z``).
Rows are reported by the file line they start on (the header is line 1; a quoted cell that spans
several lines moves the following rows down). Every bad row is reported; nothing is imported from
a file with a bad row.
"""

from __future__ import annotations

import csv
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corpora.format import CORPUS_SYSTEMS, SETTINGS, CorpusCode, CorpusNote, normalize_corpus_code
from pipeline.errors import CorpusFormatError, InputError, MalformedCodeError

logger = logging.getLogger(__name__)

DEFAULT_SEPARATORS = ";|"


@dataclass
class CsvImportReport:
    """What a CSV import found.

    Attributes:
        path: the CSV file.
        notes: notes imported.
        codes_per_system: codes kept, per system.
        rows_without_codes: lines of rows with an empty codes cell (imported with no codes).
    """

    path: str
    notes: int = 0
    codes_per_system: dict[str, int] = field(default_factory=dict)
    rows_without_codes: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready form (``--json`` output)."""
        return {
            "path": self.path,
            "notes": self.notes,
            "codes_per_system": self.codes_per_system,
            "rows_without_codes": self.rows_without_codes,
        }


def parse_codes_cell(cell: str, system: str = "ICD10CM", separator: str | None = None) -> list[CorpusCode]:
    """Parse a codes cell such as ``"S93.401A; E11.9"`` or ``"ICD10CM:S93.401A|CPT:73610"``.

    Args:
        cell: the cell text.
        system: system of codes written without a ``SYSTEM:`` prefix.
        separator: the separator between codes; None splits on ``;`` and ``|``.

    Returns:
        The codes in order, without repeats.

    Raises:
        MalformedCodeError: an unknown system prefix or a code that cannot be of its system.
    """
    items = cell.split(separator) if separator else re.split(f"[{re.escape(DEFAULT_SEPARATORS)}]", cell)
    codes: list[CorpusCode] = []
    for item in items:
        item = item.strip()
        if not item:
            continue
        item_system = system
        if ":" in item:
            prefix, _, item = item.partition(":")
            item_system = prefix.strip().upper().replace("-", "")
            if item_system not in CORPUS_SYSTEMS:
                allowed = ", ".join(CORPUS_SYSTEMS)
                raise MalformedCodeError(f"unknown system prefix {prefix.strip()!r} (expected one of {allowed})")
        code = CorpusCode(system=item_system, code=normalize_corpus_code(item_system, item))
        if code not in codes:
            codes.append(code)
    return codes


def import_csv(
    path: Path,
    text_column: str,
    codes_column: str,
    id_column: str | None = None,
    system: str = "ICD10CM",
    separator: str | None = None,
    setting_column: str | None = None,
) -> tuple[list[CorpusNote], CsvImportReport]:
    """Read a CSV of notes and codes into corpus notes.

    Args:
        path: the CSV file (UTF-8, a header row; a BOM is allowed).
        text_column: column with the note text.
        codes_column: column with the codes (see :func:`parse_codes_cell`).
        id_column: column with the note id; when None, ids are ``<file stem>-<line number>``.
        system: system of codes without a prefix.
        separator: separator between codes; None splits on ``;`` and ``|``.
        setting_column: column with ``inpatient`` / ``outpatient`` (empty cells allowed).

    Returns:
        The notes in row order and the import report.

    Raises:
        InputError: the default system is not a corpus system.
        CorpusFormatError: a missing column, or bad rows (each listed with its row number:
            empty text, missing or repeated id, a bad code, an unknown setting...), each with the
            line its row starts on.
    """
    path = Path(path)
    if system not in CORPUS_SYSTEMS:
        raise InputError(f"unknown system {system!r} (expected one of {', '.join(CORPUS_SYSTEMS)})")
    if not path.is_file():
        raise CorpusFormatError(str(path), [(0, "no such file")])
    try:
        content = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CorpusFormatError(str(path), [(0, f"not UTF-8 ({exc.reason} at byte {exc.start})")]) from exc
    reader = csv.reader(content.splitlines(keepends=True))
    try:
        header = [h.strip() for h in next(reader, [])]
    except csv.Error as exc:
        raise CorpusFormatError(str(path), [(1, f"unreadable CSV header: {exc}")]) from exc
    wanted = [c for c in (text_column, codes_column, id_column, setting_column) if c is not None]
    missing = [c for c in wanted if c not in header]
    if missing:
        raise CorpusFormatError(str(path), [(1, f"no column(s) {missing} in the header {header}")])
    if len(set(header)) != len(header):
        raise CorpusFormatError(str(path), [(1, f"repeated column names in the header {header}")])

    notes: list[CorpusNote] = []
    problems: list[tuple[int, str]] = []
    report = CsvImportReport(path=str(path))
    per_system: Counter[str] = Counter()
    first_row: dict[str, int] = {}
    last_line = reader.line_num  # the header's last line
    try:
        for fields in reader:
            row_number, last_line = last_line + 1, reader.line_num
            if not fields or not any(f.strip() for f in fields):
                continue  # blank line
            row_problems: list[str] = []
            if len(fields) != len(header):
                row_problems.append(f"{len(fields)} field(s), the header has {len(header)}")
            row = dict(zip(header, fields, strict=False))
            text = row.get(text_column) or ""
            if not text.strip():
                row_problems.append(f"empty text in column {text_column!r}")
            if id_column is not None:
                note_id = (row.get(id_column) or "").strip()
                if not note_id:
                    row_problems.append(f"empty id in column {id_column!r}")
            else:
                note_id = f"{path.stem}-{row_number}"
            if note_id and note_id in first_row:
                row_problems.append(f"duplicate id {note_id!r} (first on line {first_row[note_id]})")
            first_row.setdefault(note_id, row_number)
            setting: str | None = None
            if setting_column is not None:
                raw_setting = (row.get(setting_column) or "").strip().lower()
                if raw_setting and raw_setting not in SETTINGS:
                    row_problems.append(f"unknown setting {raw_setting!r} (expected inpatient or outpatient)")
                setting = raw_setting or None
            codes: list[CorpusCode] = []
            try:
                codes = parse_codes_cell(row.get(codes_column) or "", system=system, separator=separator)
            except MalformedCodeError as exc:
                row_problems.append(f"column {codes_column!r}: {exc}")
            if row_problems:
                problems.extend((row_number, p) for p in row_problems)
                continue
            if not codes:
                report.rows_without_codes.append(row_number)
            per_system.update(c.system for c in codes)
            notes.append(
                CorpusNote(
                    id=note_id,
                    text=text,
                    codes=codes,
                    setting=setting,
                    meta={"source": "csv", "file": path.name, "line": row_number},
                )
            )
    except csv.Error as exc:
        problems.append((last_line + 1, f"unreadable CSV: {exc}"))
    if problems:
        raise CorpusFormatError(str(path), problems)
    report.notes = len(notes)
    report.codes_per_system = dict(sorted(per_system.items()))
    logger.info("imported %d notes from %s", len(notes), path.name)
    return notes, report
