"""Import a CodiEsp split (English text + gold TSVs) into the corpus format.

A CodiEsp split folder holds ``text_files_en/<docid>.txt`` (English machine translation, one
sentence a line), a ``<split>D.tsv`` of ``docid<TAB>icd10cm_code`` rows and optionally a
``<split>P.tsv`` of ICD-10-PCS rows (7 characters, or 4-character prefixes). Texts are decoded
as UTF-8 exactly as stored (no newline translation, no BOM stripping) so that character offsets
computed on the corpus text match the file.

Diagnosis codes are checked against ICD-10-CM FY2026: the project knowledge base when one is
given or built, else the code list packaged with ``simple-icd-10-cm`` (same April 2026
release). Codes that are not in it (about 1.5% of CodiEsp codes, e.g. ``W19.XXX`` without its
7th character) are KEPT, listed in the note's ``meta["unknown_codes"]`` and counted in the
report; codes that exist but are not billable (a category with children) are listed in
``meta["nonbillable_codes"]``. ICD-10-PCS codes are only checked for their shape: the reference
data holds the Medical and Surgical section only.
"""

from __future__ import annotations

import importlib.util
import logging
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from corpora.format import CorpusCode, CorpusNote, normalize_corpus_code
from pipeline.errors import ArtefactError, DataFileError, MalformedCodeError

logger = logging.getLogger(__name__)

TEXT_FOLDER = "text_files_en"
CODE_LIST_NAME = "code-list-April-2026.txt"
_TSV_RE = re.compile(r"^(?P<split>.+?)(?P<kind>[DP])\.tsv$")


class CodeChecker(Protocol):
    """Answers whether an ICD-10-CM code exists in FY2026 and whether it is billable."""

    source: str

    def status(self, code: str) -> str:
        """Return ``billable``, ``nonbillable`` or ``unknown`` for a canonical ICD-10-CM code."""
        ...


class CodeListChecker:
    """ICD-10-CM check from the April 2026 code list shipped inside ``simple-icd-10-cm``.

    The list has every chapter, block and code, undotted, in tabular order; a code is billable
    when it is a leaf (the next line does not extend it).

    Args:
        lines: the list's lines; read from the installed package when None.
    """

    source = "simple-icd-10-cm code list (ICD-10-CM April 2026)"

    def __init__(self, lines: list[str] | None = None) -> None:
        if lines is None:
            lines = _packaged_code_list().split()
        codes = [c for c in (line.strip().upper() for line in lines) if c and "-" not in c and not c.isdigit()]
        self._all = set(codes)
        self._leaves = {c for c, nxt in zip(codes, [*codes[1:], ""], strict=True) if not nxt.startswith(c)}

    def status(self, code: str) -> str:
        """Return ``billable``, ``nonbillable`` or ``unknown`` for a canonical ICD-10-CM code."""
        key = code.replace(".", "")
        if key in self._leaves:
            return "billable"
        return "nonbillable" if key in self._all else "unknown"


def _packaged_code_list() -> str:
    # find_spec locates the package without importing it: importing simple_icd_10_cm parses
    # the whole tabular XML (about 2 s), and only its code list is needed here.
    spec = importlib.util.find_spec("simple_icd_10_cm")
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        path = Path(folder) / "data" / CODE_LIST_NAME
        if path.is_file():
            return path.read_text(encoding="utf-8")
    raise ArtefactError(
        f"no ICD-10-CM code list to check codes against (simple-icd-10-cm's {CODE_LIST_NAME} "
        "not found); pass --kb DIR or --no-check"
    )


class KnowledgeBaseChecker:
    """ICD-10-CM check through the project knowledge base (``KnowledgeBase.get``).

    Args:
        kb: a loaded ``pipeline.kb.store.KnowledgeBase`` (anything with ``get(code, system)``
            returning a record with a ``billable`` attribute, or None).
        where: the folder it was loaded from, for the report.
    """

    def __init__(self, kb: Any, where: Path) -> None:
        self._kb = kb
        self.source = f"knowledge base {where}"

    def status(self, code: str) -> str:
        """Return ``billable``, ``nonbillable`` or ``unknown`` for a canonical ICD-10-CM code."""
        record = self._kb.get(code, "ICD10CM")
        if record is None:
            return "unknown"
        return "billable" if record.billable else "nonbillable"


@dataclass
class CodiespReport:
    """What an import found.

    Attributes:
        directory: the split folder.
        split: split name from the TSV file name (``train``, ``dev``...).
        notes: notes written.
        codes_per_system: code rows kept, per system.
        unknown_codes: ICD-10-CM codes not in FY2026 -> number of rows (kept, flagged).
        nonbillable_codes: ICD-10-CM codes that exist but are not billable -> number of rows.
        missing_text: doc ids listed in a TSV without a text file (not imported).
        without_codes: doc ids with a text but no code rows (imported with no codes).
        duplicate_rows: repeated ``docid<TAB>code`` rows (counted once).
        checked_against: what codes were checked against, or ``"not checked"``.
    """

    directory: str
    split: str
    notes: int = 0
    codes_per_system: dict[str, int] = field(default_factory=dict)
    unknown_codes: dict[str, int] = field(default_factory=dict)
    nonbillable_codes: dict[str, int] = field(default_factory=dict)
    missing_text: list[str] = field(default_factory=list)
    without_codes: list[str] = field(default_factory=list)
    duplicate_rows: int = 0
    checked_against: str = "not checked"

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready form (``--json`` output)."""
        return {
            "directory": self.directory,
            "split": self.split,
            "notes": self.notes,
            "codes_per_system": self.codes_per_system,
            "unknown_codes": {
                "rows": sum(self.unknown_codes.values()),
                "distinct": len(self.unknown_codes),
                "codes": self.unknown_codes,
            },
            "nonbillable_codes": {
                "rows": sum(self.nonbillable_codes.values()),
                "distinct": len(self.nonbillable_codes),
                "codes": self.nonbillable_codes,
            },
            "missing_text": self.missing_text,
            "without_codes": self.without_codes,
            "duplicate_rows": self.duplicate_rows,
            "checked_against": self.checked_against,
        }


def find_tsvs(directory: Path) -> tuple[str, Path, Path | None]:
    """Find a split's diagnosis TSV (required) and procedure TSV (optional).

    Args:
        directory: the split folder.

    Returns:
        ``(split, diagnosis_tsv, procedure_tsv_or_None)``.

    Raises:
        DataFileError: no text folder, no ``*D.tsv``, or more than one.
    """
    directory = Path(directory)
    if not (directory / TEXT_FOLDER).is_dir():
        raise DataFileError(f"{directory}: no {TEXT_FOLDER}/ folder; not a CodiEsp split folder")
    found: dict[str, list[tuple[str, Path]]] = {"D": [], "P": []}
    for path in sorted(directory.glob("*.tsv")):
        m = _TSV_RE.match(path.name)
        if m:
            found[m["kind"]].append((m["split"], path))
    if len(found["D"]) != 1:
        names = [p.name for _, p in found["D"]]
        raise DataFileError(f"{directory}: expected one *D.tsv diagnosis file, found {names or 'none'}")
    split, d_tsv = found["D"][0]
    p_tsv = next((p for s, p in found["P"] if s == split), None)
    return split, d_tsv, p_tsv


def read_codiesp_tsv(path: Path, system: str) -> list[tuple[str, str]]:
    """Read a CodiEsp code TSV into ``(docid, canonical code)`` rows, in file order.

    Args:
        path: ``*D.tsv`` (``system="ICD10CM"``) or ``*P.tsv`` (``system="ICD10PCS"``).
        system: the system of its codes.

    Returns:
        The rows.

    Raises:
        DataFileError: a row without two tab-separated fields or with a malformed code; the
            message names the file and every bad line.
    """
    rows: list[tuple[str, str]] = []
    problems: list[str] = []
    try:
        data = Path(path).read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFileError(f"{path}: unreadable ({exc})") from exc
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not parts[0].strip():
            problems.append(f"line {number}: expected 'docid<TAB>code', got {len(parts)} field(s)")
            continue
        try:
            rows.append((parts[0].strip(), normalize_corpus_code(system, parts[1])))
        except MalformedCodeError as exc:
            problems.append(f"line {number}: {exc}")
    if problems:
        shown = "; ".join(problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise DataFileError(f"{path}: {len(problems)} bad row(s): {shown}{more}")
    return rows


def import_codiesp(
    directory: Path,
    checker: CodeChecker | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[CorpusNote], CodiespReport]:
    """Convert one CodiEsp split folder into corpus notes.

    Args:
        directory: folder with ``text_files_en/`` and ``<split>D.tsv`` (``<split>P.tsv`` optional).
        checker: how ICD-10-CM codes are checked (the CLI chooses one); None skips the check.
        progress: called as ``progress(done, total)`` after each note.

    Returns:
        The notes sorted by id, and the import report.

    Raises:
        DataFileError: the folder layout is wrong, a TSV row is malformed or a text is not UTF-8.
    """
    directory = Path(directory)
    split, d_tsv, p_tsv = find_tsvs(directory)
    report = CodiespReport(directory=str(directory), split=split)
    if checker is not None:
        report.checked_against = checker.source
    by_doc: dict[str, list[CorpusCode]] = {}
    seen: set[tuple[str, str, str]] = set()
    tsvs: list[tuple[Path, str]] = [(d_tsv, "ICD10CM")]
    if p_tsv is not None:
        tsvs.append((p_tsv, "ICD10PCS"))
    for tsv, system in tsvs:
        for doc, code in read_codiesp_tsv(tsv, system):
            if (doc, system, code) in seen:
                report.duplicate_rows += 1
                continue
            seen.add((doc, system, code))
            by_doc.setdefault(doc, []).append(CorpusCode(system=system, code=code))

    texts = {p.stem: p for p in (directory / TEXT_FOLDER).glob("*.txt")}
    report.missing_text = sorted(set(by_doc) - set(texts))
    report.without_codes = sorted(set(texts) - set(by_doc))
    status_cache: dict[str, str] = {}
    per_system: Counter[str] = Counter()
    unknown: Counter[str] = Counter()
    nonbillable: Counter[str] = Counter()
    notes: list[CorpusNote] = []
    ids = sorted(texts)
    for done, doc in enumerate(ids, start=1):
        path = texts[doc]
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataFileError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})") from exc
        if not text.strip():
            raise DataFileError(f"{path}: empty text")
        codes = by_doc.get(doc, [])
        meta: dict[str, Any] = {"source": "codiesp", "split": split, "language": "en"}
        note_unknown: list[str] = []
        note_nonbillable: list[str] = []
        for item in codes:
            per_system[item.system] += 1
            if checker is None or item.system != "ICD10CM":
                continue
            status = status_cache.get(item.code)
            if status is None:
                status = status_cache[item.code] = checker.status(item.code)
            if status == "unknown":
                unknown[item.code] += 1
                note_unknown.append(item.code)
            elif status == "nonbillable":
                nonbillable[item.code] += 1
                note_nonbillable.append(item.code)
        if note_unknown:
            meta["unknown_codes"] = note_unknown
        if note_nonbillable:
            meta["nonbillable_codes"] = note_nonbillable
        notes.append(CorpusNote(id=doc, text=text, codes=list(codes), meta=meta))
        if progress is not None:
            progress(done, len(ids))
    report.notes = len(notes)
    report.codes_per_system = dict(sorted(per_system.items()))
    report.unknown_codes = dict(unknown.most_common())
    report.nonbillable_codes = dict(nonbillable.most_common())
    if report.missing_text:
        logger.warning("%s: %d doc ids in the TSVs have no text file", directory, len(report.missing_text))
    logger.info(
        "imported %d CodiEsp %s notes (%d unknown ICD-10-CM code rows)",
        report.notes,
        split,
        sum(unknown.values()),
    )
    return notes, report
