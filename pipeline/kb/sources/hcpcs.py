"""HCPCS Level II: the CMS alpha-numeric fixed-width file and the project's synonym table.

The CMS annual file (``HCPC<year>_ANWEB*.txt`` inside ``<year>-Alpha-Numeric-HCPCS-File.zip``)
holds one record per code or modifier. A record is one *first line* followed by zero or more
*continuation lines* that carry the rest of the long description. Layout, 1-based columns as
CMS documents them (and as the file itself shows: first lines are 320 characters plus CR LF;
continuation lines stop after the description, column 91):

=========  ================================================================================
1-5        HCPCS code (modifiers: two characters right-aligned, columns 4-5)
6-10       sequence number: 00100 on the first line, 00200, 00300... on continuation lines
11         record identification code: 3 first line of a code, 4 its continuation,
           7 first line of a modifier, 8 its continuation
12-91      long description (continued on the continuation lines)
92-119     short description (28 characters)
120-127    pricing indicators (4 x 2); 128 multiple pricing indicator
129-146    coverage issues manual references (3 x 6); 147-170 carrier manual (3 x 8)
171-180    statute number; 181-204 lab certification codes (8 x 3)
205-229    cross-reference codes (5 x 5); 230 coverage code
231-232    ASC payment group; 233-240 its effective date
241-252    OPPS (MOG) payment group, policy indicator, effective date
253-256    processing note number; 257-259 BETOS; 260 filler
261-265    type of service codes (5 x 1); 266-268 anaesthesia base units
269-276    code added date (YYYYMMDD); 277-284 action effective date
285-292    termination date; 293 action code; 294-320 filler
=========  ================================================================================

CMS puts a short disclaimer above the first record; the reader skips those lines and nothing
else. Any other line that does not fit the layout is a :class:`~pipeline.errors.DataFileError`
naming the file (``zip!member`` for a zip) and the line.
"""

from __future__ import annotations

import datetime as _dt
import logging
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import Field

from pipeline.errors import DataFileError
from pipeline.kb.model import CodeRecord, Modifier
from pipeline.kb.sources.modifiers import TERMINATED_KIND
from pipeline.rulefile import (
    Phrase,
    PhraseList,
    RuleFile,
    RuleModel,
    entry_error,
    load_rules,
    read_rule_text,
    schema_field,
)

logger = logging.getLogger(__name__)

RECORD_LENGTH = 320
# The first line of a record must reach the action code (column 293).
_FIRST_LINE_MIN = 293
# CMS's disclaimer is a handful of lines; more text than this before a record is not our file.
_MAX_PREAMBLE_LINES = 40

_CODE = slice(0, 5)
_SEQUENCE = slice(5, 10)
_RECORD_ID = 10
_LONG = slice(11, 91)
_SHORT = slice(91, 119)
_CROSS_REFERENCE = slice(204, 229)
_COVERAGE = 229
_BETOS = slice(256, 259)
_TYPE_OF_SERVICE = slice(260, 265)
_ADD_DATE = slice(268, 276)
_ACTION_EFFECTIVE = slice(276, 284)
_TERMINATION = slice(284, 292)
_ACTION_CODE = 292

_CODE_FIRST, _CODE_CONT, _MOD_FIRST, _MOD_CONT = "3", "4", "7", "8"
_RECORD_IDS = (_CODE_FIRST, _CODE_CONT, _MOD_FIRST, _MOD_CONT)

_HCPCS_CODE_RE = re.compile(r"^[A-V][0-9]{4}$")
_MODIFIER_RE = re.compile(r"^[A-Z0-9]{2}$")
_YEAR_RE = re.compile(r"(?<![0-9])(20[0-9]{2})(?![0-9])")

# HCPCS Level II sections by first letter (the label goes into CodeRecord.chapter).
SECTIONS: dict[str, str] = {
    "A": "Transportation, medical and surgical supplies, miscellaneous (A)",
    "B": "Enteral and parenteral therapy (B)",
    "C": "Outpatient prospective payment system, temporary hospital codes (C)",
    "E": "Durable medical equipment (E)",
    "G": "Procedures and professional services, temporary (G)",
    "H": "Behavioral health and substance abuse treatment services (H)",
    "J": "Drugs administered other than orally, and chemotherapy drugs (J)",
    "K": "Temporary codes for durable medical equipment (K)",
    "L": "Orthotic and prosthetic procedures and devices (L)",
    "M": "Medical services (M)",
    "P": "Pathology and laboratory services (P)",
    "Q": "Temporary codes, including casting and splinting supplies (Q)",
    "R": "Diagnostic radiology services (R)",
    "S": "Temporary national codes, non-Medicare (S)",
    "T": "National codes established for state Medicaid agencies (T)",
    "U": "Laboratory tests, temporary (U)",
    "V": "Vision, hearing and speech-language services (V)",
}

# Ranges inside a section (the range goes into CodeRecord.block, its title into meta).
BLOCKS: tuple[tuple[str, str, str], ...] = (
    ("A0000", "A0999", "Transportation services including ambulance"),
    ("A4000", "A8999", "Medical and surgical supplies"),
    ("A9000", "A9999", "Administrative, miscellaneous and investigational"),
    ("B4000", "B9999", "Enteral and parenteral therapy"),
    ("C1000", "C9999", "Temporary hospital outpatient codes"),
    ("E0100", "E9999", "Durable medical equipment"),
    ("G0000", "G9999", "Procedures and professional services"),
    ("H0001", "H9999", "Behavioral health and substance abuse treatment"),
    ("J0000", "J8999", "Drugs administered other than orally"),
    ("J9000", "J9999", "Chemotherapy drugs"),
    ("K0000", "K9999", "Temporary durable medical equipment codes"),
    ("L0000", "L4999", "Orthotic procedures and devices"),
    ("L5000", "L9999", "Prosthetic procedures and devices"),
    ("M0000", "M9999", "Medical services"),
    ("P0000", "P9999", "Pathology and laboratory services"),
    ("Q0000", "Q9999", "Temporary codes"),
    ("R0000", "R9999", "Diagnostic radiology services"),
    ("S0000", "S9999", "Temporary national codes (non-Medicare)"),
    ("T1000", "T9999", "State Medicaid agency codes"),
    ("U0000", "U9999", "Temporary laboratory test codes"),
    ("V0000", "V2999", "Vision services"),
    ("V5000", "V5999", "Hearing and speech-language services"),
)


@dataclass
class HcpcsFile:
    """The content of one CMS alpha-numeric HCPCS file.

    Attributes:
        codes: every Level II code in file order, terminated ones included (``terminated=True``,
            ``billable=False``).
        modifiers: every modifier in file order, ``source="HCPCS"``; those whose termination
            date has passed have ``kind="terminated"``.
        version: the file's year, e.g. ``"2020"``.
        source: where it was read from (``path`` or ``zip!member``).
        modifier_meta: modifier code -> the same dates and codes that ``CodeRecord.meta`` holds.
    """

    codes: list[CodeRecord]
    modifiers: list[Modifier]
    version: str
    source: str = ""
    modifier_meta: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def active_codes(self) -> list[CodeRecord]:
        """The codes that are not terminated."""
        return [record for record in self.codes if not record.terminated]


@dataclass
class _Pending:
    """A record being assembled from its first line and continuation lines."""

    code: str
    is_modifier: bool
    line: int
    sequence: int
    long_parts: list[str]
    short: str
    meta: dict[str, str]
    termination: _dt.date | None


def hcpcs_section(code: str) -> tuple[str | None, str | None, str | None]:
    """Return ``(chapter label, block range, block title)`` of a HCPCS Level II code.

    Args:
        code: a five-character HCPCS code such as ``"L1906"``.

    Returns:
        The section label by first letter, the range (``"L0000-L4999"``) and its title; each
        None when the code is outside every known section or range.
    """
    chapter = SECTIONS.get(code[:1])
    for start, end, title in BLOCKS:
        if start <= code <= end:
            return chapter, f"{start}-{end}", title
    return chapter, None, None


def find_hcpcs_file(data_dir: Path) -> Path:
    """Locate the CMS HCPCS file under ``data_dir/hcpcs``.

    A CMS zip (``*HCPCS*.zip``) is preferred over an extracted ``*ANWEB*.txt``; among several,
    the one whose name carries the latest year wins.

    Args:
        data_dir: the reference data folder (``--data-dir``).

    Returns:
        The path of the zip or text file.

    Raises:
        DataFileError: no ``hcpcs`` folder, or no HCPCS file in it.
    """
    folder = Path(data_dir) / "hcpcs"
    if not folder.is_dir():
        raise DataFileError(f"{folder}: no such folder; expected the CMS HCPCS file there (run `make data`)")
    zips = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".zip" and "hcpcs" in p.name.lower()]
    texts = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".txt" and "anweb" in p.name.lower()]
    for group in (zips, texts):
        if group:
            return max(group, key=lambda p: (_year_in(p.name) or "", p.name))
    raise DataFileError(
        f"{folder}: no CMS HCPCS file (expected <year>-Alpha-Numeric-HCPCS-File.zip or HCPC<year>_ANWEB*.txt)"
    )


def _year_in(name: str) -> str | None:
    match = _YEAR_RE.search(name)
    return match.group(1) if match else None


def _pick_member(archive: zipfile.ZipFile, path: Path) -> str:
    names = [n for n in archive.namelist() if not n.endswith("/")]
    anweb = [n for n in names if n.lower().endswith(".txt") and "anweb" in Path(n).name.lower()]
    if len(anweb) == 1:
        return anweb[0]
    if not anweb:
        raise DataFileError(f"{path}: no HCPC<year>_ANWEB*.txt fixed-width file inside the zip (members: {names})")
    raise DataFileError(f"{path}: several fixed-width files inside the zip: {anweb}")


def read_hcpcs(path: Path) -> HcpcsFile:
    """Read the CMS alpha-numeric HCPCS file (the zip as CMS ships it, or the extracted TXT).

    The zip's fixed-width member is read in memory; nothing is extracted to disk.

    Args:
        path: ``<year>-Alpha-Numeric-HCPCS-File.zip`` or ``HCPC<year>_ANWEB*.txt``.

    Returns:
        The codes, modifiers and version of the file. A code is ``terminated`` (and not
        billable) when its termination date falls in or before the file's year.

    Raises:
        DataFileError: the file is missing or unreadable, has no records, or has a line that
            does not follow the record layout; the message names the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: no such file")
    member: str | None = None
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                member = _pick_member(archive, path)
                raw = archive.read(member)
            source = f"{path}!{member}"
        else:
            raw = path.read_bytes()
            source = str(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise DataFileError(f"{path}: cannot read: {exc}") from exc
    try:
        text = raw.decode("cp1252")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # never fails; CMS files are single-byte text
    version = _year_in(Path(member).name if member else "") or _year_in(path.name)
    hcpcs = _parse(text, source, version)
    logger.info(
        "read HCPCS %s: %d codes (%d active), %d modifiers",
        hcpcs.version,
        len(hcpcs.codes),
        len(hcpcs.active_codes),
        len(hcpcs.modifiers),
    )
    return hcpcs


def _looks_like_record(line: str) -> bool:
    return len(line) > _RECORD_ID and line[_SEQUENCE].isdigit() and line[_RECORD_ID] in _RECORD_IDS


def _parse(text: str, source: str, version: str | None) -> HcpcsFile:
    pending: list[_Pending] = []
    seen: dict[tuple[bool, str], int] = {}
    current: _Pending | None = None
    started = False
    for lineno, raw_line in enumerate(text.split("\n"), start=1):
        line = raw_line.rstrip("\r")
        if not line.strip():
            continue
        if not started:
            if not _looks_like_record(line):
                if lineno > _MAX_PREAMBLE_LINES:
                    raise DataFileError(
                        f"{source}: no HCPCS record in the first {_MAX_PREAMBLE_LINES} lines; "
                        "not a CMS alpha-numeric fixed-width file"
                    )
                continue  # CMS's disclaimer above the records
            started = True
        where = f"{source}, line {lineno}"
        if len(line) > RECORD_LENGTH:
            raise DataFileError(f"{where}: {len(line)} characters; records are at most {RECORD_LENGTH}")
        if len(line) <= _RECORD_ID:
            raise DataFileError(f"{where}: too short for a record ({len(line)} characters)")
        sequence_text, record_id = line[_SEQUENCE], line[_RECORD_ID]
        if not sequence_text.isdigit():
            raise DataFileError(f"{where}: sequence number {sequence_text!r} (columns 6-10) is not numeric")
        if record_id not in _RECORD_IDS:
            raise DataFileError(f"{where}: record identification code {record_id!r} (column 11) is not 3, 4, 7 or 8")
        sequence = int(sequence_text)
        if record_id in (_CODE_FIRST, _MOD_FIRST):
            current = _first_line(line, where, record_id == _MOD_FIRST, lineno, sequence)
            key = (current.is_modifier, current.code)
            if key in seen:
                kind = "modifier" if current.is_modifier else "code"
                raise DataFileError(f"{where}: {kind} {current.code} already defined on line {seen[key]}")
            seen[key] = lineno
            pending.append(current)
            continue
        is_modifier = record_id == _MOD_CONT
        code = _code_field(line, where, is_modifier)
        if current is None or current.code != code or current.is_modifier != is_modifier:
            raise DataFileError(f"{where}: continuation line of {code} does not follow its first line")
        if sequence <= current.sequence:
            raise DataFileError(
                f"{where}: sequence number {sequence_text} of {code} does not increase "
                f"(previous {current.sequence:05d})"
            )
        current.sequence = sequence
        part = line[_LONG].strip()
        if part:
            current.long_parts.append(part)
    if not pending:
        raise DataFileError(f"{source}: no HCPCS records found")
    if version is None:
        years = [p.meta["effective_date"][:4] for p in pending if "effective_date" in p.meta]
        if not years:
            raise DataFileError(f"{source}: cannot tell the file's year from its name or its dates")
        version = max(years)
    return _build(pending, source, version)


def _code_field(line: str, where: str, is_modifier: bool) -> str:
    field_text = line[_CODE]
    if is_modifier:
        code = field_text.strip()
        if field_text[:3].strip() or not _MODIFIER_RE.match(code):
            raise DataFileError(f"{where}: {field_text!r} is not a modifier (two characters in columns 4-5)")
        return code
    if not _HCPCS_CODE_RE.match(field_text):
        raise DataFileError(f"{where}: {field_text!r} is not a HCPCS Level II code (letter A-V and four digits)")
    return field_text


def _date_field(line: str, part: slice, where: str, label: str) -> _dt.date | None:
    value = line[part].strip()
    if not value:
        return None
    try:
        if len(value) != 8 or not value.isdigit():
            raise ValueError(value)
        return _dt.date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError as exc:
        raise DataFileError(
            f"{where}: {label} {value!r} (columns {part.start + 1}-{part.stop}) is not a YYYYMMDD date"
        ) from exc


def _first_line(line: str, where: str, is_modifier: bool, lineno: int, sequence: int) -> _Pending:
    code = _code_field(line, where, is_modifier)
    if len(line) < _FIRST_LINE_MIN:
        raise DataFileError(
            f"{where}: first line of {code} has {len(line)} characters; the record layout needs {_FIRST_LINE_MIN}"
        )
    long_text = line[_LONG].strip()
    if not long_text:
        raise DataFileError(f"{where}: {code} has no long description (columns 12-91)")
    action = line[_ACTION_CODE].strip()
    if action and not ("A" <= action <= "Z"):
        raise DataFileError(f"{where}: action code {action!r} (column 293) is not a letter")
    added = _date_field(line, _ADD_DATE, where, "code added date")
    effective = _date_field(line, _ACTION_EFFECTIVE, where, "action effective date")
    termination = _date_field(line, _TERMINATION, where, "termination date")
    meta: dict[str, str] = {"short_title": line[_SHORT].strip()}
    betos = line[_BETOS].strip()
    if betos:
        meta["betos"] = betos
    if added:
        meta["add_date"] = added.isoformat()
    if effective:
        meta["effective_date"] = effective.isoformat()
    if termination:
        meta["termination_date"] = termination.isoformat()
    if action:
        meta["action_code"] = action
    coverage = line[_COVERAGE].strip()
    if coverage:
        meta["coverage_code"] = coverage
    service_types = line[_TYPE_OF_SERVICE].replace(" ", "")
    if service_types:
        meta["type_of_service"] = service_types
    cross = " ".join(line[_CROSS_REFERENCE].split())
    if cross:
        meta["cross_reference"] = cross
    return _Pending(code, is_modifier, lineno, sequence, [long_text], meta["short_title"], meta, termination)


def _build(pending: list[_Pending], source: str, version: str) -> HcpcsFile:
    year = int(version)
    codes: list[CodeRecord] = []
    modifiers: list[Modifier] = []
    modifier_meta: dict[str, dict[str, str]] = {}
    for item in pending:
        title = " ".join(item.long_parts)
        terminated = item.termination is not None and item.termination.year <= year
        if item.is_modifier:
            kind = TERMINATED_KIND if terminated else "other"
            modifiers.append(Modifier(code=item.code, description=title, kind=kind, source="HCPCS"))
            modifier_meta[item.code] = item.meta
            continue
        chapter, block, block_title = hcpcs_section(item.code)
        meta = dict(item.meta)
        if block_title:
            meta["block_title"] = block_title
        codes.append(
            CodeRecord(
                code=item.code,
                system="HCPCS",
                title=title,
                billable=not terminated,
                chapter=chapter,
                block=block,
                terminated=terminated,
                meta=meta,
            )
        )
    return HcpcsFile(
        codes=codes,
        modifiers=modifiers,
        version=version,
        source=source,
        modifier_meta=modifier_meta,
    )


# ---------------------------------------------------------------------------------------------
# Curated synonyms: plain-language phrases that signal a HCPCS item in a note.

HCPCS_SYNONYMS_RESOURCE = "hcpcs_synonyms.json"

SynonymCategory = Literal[
    "orthosis",
    "mobility",
    "respiratory",
    "diabetic",
    "oxygen",
    "compression",
    "casting",
    "supply",
    "drug",
    "service",
    "transport",
]
SYNONYM_CATEGORIES: tuple[str, ...] = get_args(SynonymCategory)
# Features a matcher can compare with what the note describes. Values are lower-case words.
SynonymFeature = Literal[
    "body_part",  # ankle, knee, wrist-hand, cervical, lumbar, lumbar-sacral, shoulder...
    "item",  # what the thing is: brace, walking boot, collar, crutches, stocking, strip...
    "fabrication",  # prefabricated | custom
    "fit",  # off-the-shelf | custom-fitted (prefabricated items fitted by an expert)
    "design",  # stirrup, gauntlet, hinged, immobilizer, cock-up, figure-of-eight, quad...
    "support",  # rigid | semi-rigid | flexible | elastic
    "mechanism",  # pneumatic | non-pneumatic | wheeled | folding | portable | stationary
    "material",  # fiberglass | plaster | wood | aluminum | foam
    "patient",  # adult | pediatric
    "length",  # below-knee | thigh-length | full-length | short-arm | long-leg...
    "pressure",  # compression range, e.g. 20-30 mmhg
    "drug",  # generic drug name
    "dose",  # billing unit, e.g. 15 mg
    "route",  # intramuscular | intravenous | subcutaneous | injection | inhalation
    "service",  # screening, vaccine administration...
    "level",  # ambulance level: bls | als1 ...
    "urgency",  # emergency | non-emergency
    "unit",  # per mile, per 50 strips, pair, each...
]
SYNONYM_FEATURES: tuple[str, ...] = get_args(SynonymFeature)


@dataclass(frozen=True, slots=True)
class HcpcsSynonym:
    """Plain-language phrases and distinguishing features of one HCPCS code.

    Attributes:
        code: the HCPCS Level II code.
        category: the kind of item or service (see ``SYNONYM_CATEGORIES``).
        phrases: lower-case phrases that signal the item in a note.
        features: feature -> value (see ``SYNONYM_FEATURES``); codes that share phrases differ
            in at least one feature (off-the-shelf vs custom-fitted, pneumatic vs not...).
    """

    code: str
    category: str
    phrases: tuple[str, ...]
    features: dict[str, str]


class _Synonym(RuleModel):
    code: Annotated[str, Field(pattern=r"^[A-V][0-9]{4}$")]
    category: SynonymCategory
    phrases: PhraseList
    features: dict[SynonymFeature, Phrase]


class HcpcsSynonymsFile(RuleFile):
    """``hcpcs_synonyms.json`` (schema ``codesuggest.hcpcs-synonyms/1``)."""

    schema_id: Literal["codesuggest.hcpcs-synonyms/1"] = schema_field()
    version: str | None = None
    entries: tuple[_Synonym, ...]


def load_hcpcs_synonyms(path: Path | None = None) -> list[HcpcsSynonym]:
    """Load the curated HCPCS synonym table.

    Args:
        path: read this file instead of the packaged ``resources/hcpcs_synonyms.json``.

    Returns:
        One entry per code, in file order.

    Raises:
        RuleFileError: wrong schema, unknown keys, a malformed code, an unknown category or
            feature, a non-lower-case or repeated phrase, or a code listed twice; the message
            names the file, line and entry.
    """
    text, source = read_rule_text(HCPCS_SYNONYMS_RESOURCE, path)
    result: list[HcpcsSynonym] = []
    seen: set[str] = set()
    for i, entry in enumerate(load_rules(HcpcsSynonymsFile, text, source).entries):
        if entry.code in seen:
            raise entry_error(text, source, ("entries", i), f"{entry.code} is listed twice")
        seen.add(entry.code)
        result.append(
            HcpcsSynonym(entry.code, entry.category, entry.phrases, {str(k): v for k, v in entry.features.items()})
        )
    logger.debug("loaded %d HCPCS synonym entries", len(result))
    return result
