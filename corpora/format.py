"""The corpus format: JSONL, one note a line, with its expected codes.

Every corpus the project reads or writes (CodiEsp, CSV imports, the synthetic encounter notes)
uses this one format, documented with an example in ``corpora/README.md``. A line is a JSON
object::

    {"id": "...", "text": "...", "codes": [{"system": "ICD10CM", "code": "S93.401A"}, ...],
     "setting": "outpatient", "spans": [{"start": 0, "end": 12, "code": "S93.401A"}],
     "meta": {...}}

``id``, ``text`` and ``codes`` are required (``codes`` may be empty for unlabelled notes);
``setting``, ``spans`` and ``meta`` are optional. Unknown keys are rejected at every level.
Codes are normalised on read (``s93.401a`` becomes ``S93.401A``), so two spellings of one code
compare equal.

Readers validate the whole file before returning anything: :func:`read_corpus` either returns
every note or raises :class:`~pipeline.errors.CorpusFormatError` listing every bad line by
number; it never returns part of a file.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from pipeline.errors import CorpusFormatError, MalformedCodeError
from pipeline.kb.model import normalize_code

logger = logging.getLogger(__name__)

CorpusSystem = Literal["ICD10CM", "ICD10PCS", "CPT", "HCPCS"]
CORPUS_SYSTEMS: tuple[str, ...] = ("ICD10CM", "ICD10PCS", "CPT", "HCPCS")
SETTINGS: tuple[str, ...] = ("inpatient", "outpatient")

# Roles of a code in a full encounter code set; the first group is for diagnoses only.
DIAGNOSIS_ROLES: tuple[str, ...] = ("principal", "first-listed", "secondary", "external-cause")
SERVICE_ROLES: tuple[str, ...] = ("procedure", "supply", "em")
ROLES: tuple[str, ...] = DIAGNOSIS_ROLES + SERVICE_ROLES

# A claim line (CMS-1500 box 24E) points to at most four diagnoses.
MAX_POINTERS = 4

NOTE_KEYS = frozenset({"id", "text", "codes", "setting", "spans", "meta"})
CODE_KEYS = frozenset({"system", "code", "modifiers", "pointers", "role"})
SPAN_KEYS = frozenset({"start", "end", "code", "label"})

# ICD-10-PCS uses digits and letters except I and O; CodiEsp allows 4-character prefixes.
_PCS_RE = re.compile(r"^[0-9A-HJ-NP-Z]{4}(?:[0-9A-HJ-NP-Z]{3})?$")
_MODIFIER_RE = re.compile(r"^[0-9A-Z]{2}$")


@dataclass(slots=True, frozen=True)
class CorpusCode:
    """One expected code of a note.

    Attributes:
        system: ``ICD10CM``, ``ICD10PCS``, ``CPT`` or ``HCPCS``.
        code: canonical form (``S93.401A``, ``0SRC0J9``, ``73610``, ``L4350``).
        modifiers: CPT/HCPCS modifiers in claim order (``("26", "RT")``).
        pointers: for service lines, the ICD-10-CM codes of the note that support the line.
        role: ``principal``, ``first-listed``, ``secondary``, ``external-cause`` (diagnoses) or
            ``procedure``, ``supply``, ``em`` (service lines); None when the corpus does not say.
    """

    system: str
    code: str
    modifiers: tuple[str, ...] = ()
    pointers: tuple[str, ...] = ()
    role: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form, leaving out empty optional fields."""
        out: dict[str, Any] = {"system": self.system, "code": self.code}
        if self.modifiers:
            out["modifiers"] = list(self.modifiers)
        if self.pointers:
            out["pointers"] = list(self.pointers)
        if self.role is not None:
            out["role"] = self.role
        return out

    @property
    def key(self) -> tuple[str, str]:
        """``(system, code)``, the identity used when comparing code sets."""
        return (self.system, self.code)


@dataclass(slots=True, frozen=True)
class CorpusSpan:
    """A character span of the note text, optionally tied to one of its codes.

    Attributes:
        start: 0-based offset of the first character.
        end: offset one past the last character (``start < end <= len(text)``).
        code: canonical code of the note this span is evidence for, or None.
        label: free label (``"diagnosis"``, ``"procedure"``...), or None.
    """

    start: int
    end: int
    code: str | None = None
    label: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form, leaving out empty optional fields."""
        out: dict[str, Any] = {"start": self.start, "end": self.end}
        if self.code is not None:
            out["code"] = self.code
        if self.label is not None:
            out["label"] = self.label
        return out


@dataclass(slots=True)
class CorpusNote:
    """One note of a corpus with its expected codes.

    Attributes:
        id: unique id within the corpus.
        text: the note text, exactly as read (offsets refer to it).
        codes: expected codes in order (for encounter sets: first-listed or principal first).
        setting: ``inpatient`` or ``outpatient``, or None when unknown.
        spans: evidence spans.
        meta: free-form information (source, split, expected rules...).
    """

    id: str
    text: str
    codes: list[CorpusCode] = field(default_factory=list)
    setting: str | None = None
    spans: list[CorpusSpan] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form of the note (one corpus line)."""
        out: dict[str, Any] = {
            "id": self.id,
            "text": self.text,
            "codes": [c.to_dict() for c in self.codes],
        }
        if self.setting is not None:
            out["setting"] = self.setting
        if self.spans:
            out["spans"] = [s.to_dict() for s in self.spans]
        if self.meta:
            out["meta"] = self.meta
        return out

    def codes_of(self, system: str) -> list[str]:
        """Return the note's codes of one system, in order.

        Args:
            system: ``ICD10CM``, ``ICD10PCS``, ``CPT`` or ``HCPCS``.

        Returns:
            The canonical codes of that system.
        """
        return [c.code for c in self.codes if c.system == system]


def normalize_corpus_code(system: str, code: str) -> str:
    """Return the canonical form of a code of a corpus system.

    ICD-10-CM, CPT and HCPCS follow :func:`pipeline.kb.model.normalize_code` (``s93.401a`` ->
    ``S93.401A``); ICD-10-PCS codes are upper-cased and must have 7 characters, or 4 as CodiEsp
    allows for procedure prefixes.

    Args:
        system: one of :data:`CORPUS_SYSTEMS`.
        code: the code as written.

    Returns:
        The canonical code.

    Raises:
        MalformedCodeError: the system is unknown or the code cannot be a code of it.
    """
    if system not in CORPUS_SYSTEMS:
        raise MalformedCodeError(f"unknown system {system!r} (expected one of {', '.join(CORPUS_SYSTEMS)})")
    raw = code.strip()
    if not raw:
        raise MalformedCodeError(f"empty {system} code")
    if raw.endswith("-"):
        # A trailing dash marks an incomplete index code, never a reportable one.
        raise MalformedCodeError(f"{raw!r} is incomplete (trailing '-'), not a {system} code")
    if system == "ICD10PCS":
        pcs = raw.upper().replace(" ", "")
        if not _PCS_RE.match(pcs):
            raise MalformedCodeError(f"{raw!r} is not an ICD10PCS code (7 characters, or a 4-character prefix)")
        return pcs
    return normalize_code(raw, cast(Any, system))[1]


def _code_lookup_key(code: str) -> str:
    return code.upper().replace(".", "").strip()


def _parse_code(obj: Any, where: str, problems: list[str]) -> CorpusCode | None:
    if not isinstance(obj, dict):
        problems.append(f"{where}: must be an object with 'system' and 'code', got {type(obj).__name__}")
        return None
    bad = False
    unknown = sorted(set(obj) - CODE_KEYS)
    if unknown:
        problems.append(f"{where}: unknown key(s) {unknown}")
        bad = True
    system = obj.get("system")
    code = obj.get("code")
    canonical: str | None = None
    if not isinstance(system, str) or system not in CORPUS_SYSTEMS:
        problems.append(f"{where}: unknown system {system!r} (expected one of {', '.join(CORPUS_SYSTEMS)})")
        bad = True
    elif not isinstance(code, str):
        problems.append(f"{where}: 'code' must be a string, got {code!r}")
        bad = True
    else:
        try:
            canonical = normalize_corpus_code(system, code)
        except MalformedCodeError as exc:
            problems.append(f"{where}: malformed code: {exc}")
            bad = True
    modifiers: list[str] = []
    raw_mods = obj.get("modifiers", [])
    if not isinstance(raw_mods, list):
        problems.append(f"{where}: 'modifiers' must be a list of 2-character strings")
        bad = True
    else:
        for mod in raw_mods:
            if not isinstance(mod, str) or not _MODIFIER_RE.match(mod.strip().upper()):
                problems.append(f"{where}: bad modifier {mod!r} (2 letters or digits)")
                bad = True
            else:
                modifiers.append(mod.strip().upper())
        if len(set(modifiers)) != len(modifiers):
            problems.append(f"{where}: repeated modifier in {modifiers}")
            bad = True
    pointers: list[str] = []
    raw_ptrs = obj.get("pointers", [])
    if not isinstance(raw_ptrs, list):
        problems.append(f"{where}: 'pointers' must be a list of ICD-10-CM codes")
        bad = True
    else:
        for ptr in raw_ptrs:
            try:
                if not isinstance(ptr, str):
                    raise MalformedCodeError(f"{ptr!r} is not a string")
                pointers.append(normalize_corpus_code("ICD10CM", ptr))
            except MalformedCodeError as exc:
                problems.append(f"{where}: bad pointer: {exc}")
                bad = True
        if len(pointers) > MAX_POINTERS:
            problems.append(f"{where}: {len(pointers)} pointers, a claim line allows at most {MAX_POINTERS}")
            bad = True
    role = obj.get("role")
    if role is not None and role not in ROLES:
        problems.append(f"{where}: unknown role {role!r} (expected one of {', '.join(ROLES)})")
        bad = True
    if isinstance(system, str) and system in CORPUS_SYSTEMS:
        is_dx = system == "ICD10CM"
        if is_dx and (modifiers or pointers):
            problems.append(f"{where}: an ICD10CM diagnosis takes no modifiers or pointers")
            bad = True
        if role in DIAGNOSIS_ROLES and not is_dx:
            problems.append(f"{where}: role {role!r} is for ICD10CM diagnoses, not {system}")
            bad = True
        if role in SERVICE_ROLES and is_dx:
            problems.append(f"{where}: role {role!r} is for service lines, not ICD10CM diagnoses")
            bad = True
    if bad or canonical is None:
        return None
    return CorpusCode(
        system=cast(str, system),
        code=canonical,
        modifiers=tuple(modifiers),
        pointers=tuple(pointers),
        role=role,
    )


def _parse_span(
    obj: Any, where: str, text_len: int, code_keys: dict[str, str], problems: list[str]
) -> CorpusSpan | None:
    if not isinstance(obj, dict):
        problems.append(f"{where}: must be an object with 'start' and 'end'")
        return None
    before = len(problems)
    unknown = sorted(set(obj) - SPAN_KEYS)
    if unknown:
        problems.append(f"{where}: unknown key(s) {unknown}")
    start, end = obj.get("start"), obj.get("end")
    # bool is a subclass of int; true/false are not offsets.
    if not isinstance(start, int) or not isinstance(end, int) or isinstance(start, bool) or isinstance(end, bool):
        problems.append(f"{where}: 'start' and 'end' must be integers, got {start!r}, {end!r}")
    elif not 0 <= start < end <= text_len:
        problems.append(f"{where}: bad offsets {start}..{end} (need 0 <= start < end <= {text_len})")
    code = obj.get("code")
    canonical: str | None = None
    if code is not None:
        if not isinstance(code, str):
            problems.append(f"{where}: 'code' must be a string")
        else:
            canonical = code_keys.get(_code_lookup_key(code))
            if canonical is None:
                problems.append(f"{where}: code {code!r} is not one of the note's codes")
    label = obj.get("label")
    if label is not None and not isinstance(label, str):
        problems.append(f"{where}: 'label' must be a string")
    if len(problems) > before:
        return None
    return CorpusSpan(start=cast(int, start), end=cast(int, end), code=canonical, label=label)


def parse_note(obj: Any) -> tuple[CorpusNote | None, list[str]]:
    """Check one parsed corpus line and build its note.

    Args:
        obj: the decoded JSON value of the line.

    Returns:
        ``(note, [])`` when the line is valid, else ``(None, problems)`` with every problem found
        in the line (not only the first).
    """
    problems: list[str] = []
    if not isinstance(obj, dict):
        return None, [f"a line must be a JSON object, got {type(obj).__name__}"]
    unknown = sorted(set(obj) - NOTE_KEYS)
    if unknown:
        problems.append(f"unknown key(s) {unknown} (allowed: {', '.join(sorted(NOTE_KEYS))})")
    note_id = obj.get("id")
    if "id" not in obj:
        problems.append("missing 'id'")
    elif not isinstance(note_id, str) or not note_id.strip():
        problems.append(f"'id' must be a non-empty string, got {note_id!r}")
    text = obj.get("text")
    if "text" not in obj:
        problems.append("missing 'text'")
    elif not isinstance(text, str):
        problems.append(f"'text' must be a string, got {type(text).__name__}")
    elif not text.strip():
        problems.append("empty 'text'")
    codes: list[CorpusCode] = []
    raw_codes = obj.get("codes")
    if "codes" not in obj:
        problems.append("missing 'codes' (use [] for a note without expected codes)")
    elif not isinstance(raw_codes, list):
        problems.append("'codes' must be a list")
    else:
        seen: set[tuple[str, str, tuple[str, ...]]] = set()
        for i, raw in enumerate(raw_codes):
            code = _parse_code(raw, f"codes[{i}]", problems)
            if code is None:
                continue
            ident = (code.system, code.code, code.modifiers)
            if ident in seen:
                problems.append(f"codes[{i}]: duplicate code {code.system} {code.code}")
            seen.add(ident)
            codes.append(code)
        dx = {c.code for c in codes if c.system == "ICD10CM"}
        for i, code in enumerate(codes):
            for ptr in code.pointers:
                if ptr not in dx:
                    problems.append(f"codes[{i}]: pointer {ptr} is not one of the note's ICD10CM codes")
    setting = obj.get("setting")
    if setting is not None and setting not in SETTINGS:
        problems.append(f"unknown setting {setting!r} (expected inpatient or outpatient)")
    spans: list[CorpusSpan] = []
    raw_spans = obj.get("spans", [])
    if not isinstance(raw_spans, list):
        problems.append("'spans' must be a list")
    else:
        text_len = len(text) if isinstance(text, str) else 0
        keys = {_code_lookup_key(c.code): c.code for c in codes}
        for i, raw in enumerate(raw_spans):
            span = _parse_span(raw, f"spans[{i}]", text_len, keys, problems)
            if span is not None:
                spans.append(span)
    meta = obj.get("meta", {})
    if not isinstance(meta, dict):
        problems.append("'meta' must be an object")
    if problems:
        return None, problems
    return (
        CorpusNote(
            id=cast(str, note_id),
            text=cast(str, text),
            codes=codes,
            setting=setting,
            spans=spans,
            meta=cast(dict[str, Any], meta),
        ),
        [],
    )


def _scan(path: Path) -> tuple[list[CorpusNote], list[tuple[int, str]]]:
    """Parse a whole corpus file, collecting notes and every problem with its line number."""
    path = Path(path)
    if not path.is_file():
        raise CorpusFormatError(str(path), [(0, "no such file")])
    notes: list[CorpusNote] = []
    problems: list[tuple[int, str]] = []
    first_line: dict[str, int] = {}
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                problems.append((number, f"not UTF-8 ({exc.reason} at byte {exc.start})"))
                continue
            if not line.strip():
                continue  # blank lines (a trailing newline, a separator) carry nothing
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                problems.append((number, f"bad JSON: {exc.msg} at column {exc.colno}"))
                continue
            note, line_problems = parse_note(obj)
            problems.extend((number, p) for p in line_problems)
            if note is None:
                continue
            if note.id in first_line:
                problems.append((number, f"duplicate id {note.id!r} (first on line {first_line[note.id]})"))
                continue
            first_line[note.id] = number
            notes.append(note)
    return notes, problems


def validate_corpus(path: Path) -> list[tuple[int, str]]:
    """List every problem of a corpus file.

    Args:
        path: a JSONL corpus file.

    Returns:
        ``(line_number, message)`` for every problem, in file order; empty when the file is valid.
        A missing file is reported as line 0.
    """
    try:
        return _scan(Path(path))[1]
    except CorpusFormatError as exc:
        return exc.problems


def read_corpus(path: Path) -> list[CorpusNote]:
    """Read a whole corpus file, all or nothing.

    Args:
        path: a JSONL corpus file.

    Returns:
        Every note, in file order.

    Raises:
        CorpusFormatError: the file is missing or has bad lines; ``problems`` lists every one.
    """
    notes, problems = _scan(Path(path))
    if problems:
        raise CorpusFormatError(str(path), problems)
    logger.debug("read %d notes from %s", len(notes), path)
    return notes


def iter_corpus(path: Path) -> Iterator[CorpusNote]:
    """Yield the notes of a corpus file one at a time, after checking the whole file.

    The file is validated completely before the first note is yielded, so a consumer never
    processes the start of a file whose end is broken.

    Args:
        path: a JSONL corpus file.

    Yields:
        Each note, in file order.

    Raises:
        CorpusFormatError: the file is missing or has bad lines (raised before anything is yielded).
    """
    problems = validate_corpus(path)
    if problems:
        raise CorpusFormatError(str(path), problems)
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            line = raw.decode("utf-8")
            if not line.strip():
                continue
            note, _ = parse_note(json.loads(line))
            if note is not None:
                yield note


def note_line(note: CorpusNote) -> str:
    """Serialise one note as a corpus line (no trailing newline)."""
    return json.dumps(note.to_dict(), ensure_ascii=False, separators=(",", ":"))


def write_corpus(path: Path, notes: Iterable[CorpusNote]) -> int:
    """Write notes as a corpus file atomically (temporary file in the same folder, then rename).

    Every note is checked with the same rules as the reader first; nothing is written when one
    fails, and an existing file at ``path`` is left untouched.

    Args:
        path: the destination JSONL file; its folder is created if missing.
        notes: the notes, in order.

    Returns:
        The number of notes written.

    Raises:
        CorpusFormatError: a note is invalid or two share an id (line numbers are the lines the
            notes would have had).
    """
    path = Path(path)
    lines: list[str] = []
    problems: list[tuple[int, str]] = []
    first_line: dict[str, int] = {}
    for number, note in enumerate(notes, start=1):
        line = note_line(note)
        _, line_problems = parse_note(json.loads(line))
        problems.extend((number, p) for p in line_problems)
        if note.id in first_line:
            problems.append((number, f"duplicate id {note.id!r} (first on line {first_line[note.id]})"))
        first_line.setdefault(note.id, number)
        lines.append(line)
    if problems:
        raise CorpusFormatError(str(path), problems)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            for line in lines:
                handle.write(line + "\n")
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    logger.info("wrote %d notes to %s", len(lines), path)
    return len(lines)


def corpus_stats(notes: list[CorpusNote], top: int = 20) -> dict[str, Any]:
    """Summarise a corpus: sizes, codes per note, systems, settings, most frequent codes.

    Args:
        notes: the notes.
        top: how many of the most frequent codes to list.

    Returns:
        A JSON-ready summary.
    """
    per_note = sorted(len(n.codes) for n in notes)
    systems: Counter[str] = Counter()
    frequency: Counter[tuple[str, str]] = Counter()
    notes_with: Counter[str] = Counter()
    for note in notes:
        systems.update(c.system for c in note.codes)
        frequency.update({c.key for c in note.codes})
        notes_with.update({c.system for c in note.codes})
    n = len(notes)
    middle = n // 2
    median = 0.0
    if n:
        median = float(per_note[middle]) if n % 2 else (per_note[middle - 1] + per_note[middle]) / 2
    settings = Counter(note.setting or "unspecified" for note in notes)
    return {
        "notes": n,
        "codes": sum(per_note),
        "distinct_codes": len(frequency),
        "codes_per_note": {
            "mean": round(sum(per_note) / n, 3) if n else 0.0,
            "median": median,
            "min": per_note[0] if n else 0,
            "max": per_note[-1] if n else 0,
        },
        "notes_without_codes": sum(1 for k in per_note if k == 0),
        "systems": {
            s: {
                "codes": systems[s],
                "distinct": sum(1 for k in frequency if k[0] == s),
                "notes": notes_with[s],
            }
            for s in sorted(systems)
        },
        "settings": dict(sorted(settings.items())),
        "text_chars": {
            "mean": round(sum(len(note.text) for note in notes) / n, 1) if n else 0.0,
            "max": max((len(note.text) for note in notes), default=0),
        },
        "top_codes": [
            {"system": system, "code": code, "notes": count}
            for (system, code), count in sorted(frequency.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
        ],
    }
