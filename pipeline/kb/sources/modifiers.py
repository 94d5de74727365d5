"""The project's modifier table (own wording) and the strict reader of the kb resource files.

``resources/modifiers.json`` describes the CPT (Level I) and HCPCS Level II modifiers a coder
needs most, each in the project's own words with a ``kind`` that the encounter rules use
(laterality and digits are ``anatomic``, 26/TC are ``professional-technical``...).
:func:`merge_modifiers` adds the rest of the HCPCS Level II modifiers from the CMS file.

:func:`read_json_resource` is the one strict reader of the kb's JSON data files (modifiers, CPT
starter lexicon, HCPCS synonyms, data sources): it checks the schema key and the top-level keys
and returns every entry of the main list with its line number, so that the loaders can name
file, line and entry index in their error messages.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pipeline.errors import RuleFileError
from pipeline.kb.model import Modifier

logger = logging.getLogger(__name__)

MODIFIERS_SCHEMA = "codesuggest.modifiers/1"
MODIFIERS_RESOURCE = "modifiers.json"

# What a modifier does, as the encounter rules use it.
MODIFIER_KINDS = (
    "anatomic",
    "professional-technical",
    "em",
    "distinct-procedure",
    "repeat",
    "telehealth",
    "payer",
    "other",
)
# Kind given to HCPCS modifiers whose termination date has passed (see pipeline.kb.sources.hcpcs).
TERMINATED_KIND = "terminated"

_MODIFIER_RE = re.compile(r"^[A-Z0-9]{2}$")
_ENTRY_KEYS = {"code", "kind", "description"}


@dataclass(frozen=True, slots=True)
class ResourceEntry:
    """One entry of a resource file's main list.

    Attributes:
        index: position in the list (0-based).
        line: line of the file where the entry starts (1-based).
        value: the parsed entry.
    """

    index: int
    line: int
    value: Any

    def where(self, source: str, list_key: str) -> str:
        """Return ``"file, line N, codes[3]"`` for error messages."""
        return f"{source}, line {self.line}, {list_key}[{self.index}]"


@dataclass(frozen=True, slots=True)
class JsonResource:
    """A parsed, schema-checked resource file.

    Attributes:
        source: the file's name as shown in messages.
        data: the top-level object.
        entries: the main list's entries with their line numbers.
    """

    source: str
    data: dict[str, Any]
    entries: tuple[ResourceEntry, ...]


def read_json_resource(
    name: str,
    schema: str,
    list_key: str,
    optional_keys: Iterable[str] = ("description", "version"),
    path: Path | None = None,
) -> JsonResource:
    """Read a JSON data file from ``pipeline/resources`` (or from ``path``) strictly.

    The file must be one JSON object with ``"schema": schema``, a list under ``list_key`` and
    no top-level keys other than those and ``optional_keys``.

    Args:
        name: file name inside the ``pipeline.resources`` package.
        schema: the expected value of the ``schema`` key.
        list_key: the key of the list of entries.
        optional_keys: other top-level keys that are allowed.
        path: read this file instead of the packaged resource (tests, user overrides).

    Returns:
        The parsed file with each entry's line number.

    Raises:
        RuleFileError: the file is missing, not JSON, has the wrong schema, unknown top-level
            keys, or no list under ``list_key``.
    """
    if path is not None:
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise RuleFileError(f"{source}: cannot read: {exc.strerror or exc}") from exc
        except UnicodeDecodeError as exc:
            raise RuleFileError(f"{source}: not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    else:
        source = f"pipeline/resources/{name}"
        try:
            text = resources.files("pipeline.resources").joinpath(name).read_text(encoding="utf-8")
        except (OSError, FileNotFoundError) as exc:
            raise RuleFileError(f"{source}: missing from the installed package: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RuleFileError(f"{source}, line {exc.lineno}: not valid JSON: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise RuleFileError(f"{source}: expected a JSON object at the top level")
    if data.get("schema") != schema:
        raise RuleFileError(f"{source}: expected schema {schema!r}, found {data.get('schema')!r}")
    unknown = sorted(set(data) - {"schema", list_key, *optional_keys})
    if unknown:
        raise RuleFileError(f"{source}: unknown top-level keys {unknown}")
    items = data.get(list_key)
    if not isinstance(items, list):
        raise RuleFileError(f"{source}: {list_key!r} must be a list")
    lines = _list_entry_lines(text, list_key)
    if len(lines) != len(items):  # cannot happen for valid JSON; guard the line lookup anyway
        lines = [0] * len(items)
    entries = tuple(ResourceEntry(i, line, item) for i, (line, item) in enumerate(zip(lines, items, strict=True)))
    return JsonResource(source=source, data=data, entries=entries)


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _list_entry_lines(text: str, list_key: str) -> list[int]:
    """Return the 1-based line of each element of the top-level list ``list_key``.

    ``text`` is already known to be valid JSON; this walks the top-level object with
    ``raw_decode`` so that positions come from the real parser, not from a regex.
    """
    decoder = json.JSONDecoder()
    pos = _skip_ws(text, 0)
    if pos >= len(text) or text[pos] != "{":
        return []
    pos += 1
    while True:
        pos = _skip_ws(text, pos)
        if pos >= len(text) or text[pos] == "}":
            return []
        key, pos = decoder.raw_decode(text, pos)
        pos = _skip_ws(text, pos) + 1  # the colon
        pos = _skip_ws(text, pos)
        if key == list_key and text[pos] == "[":
            lines: list[int] = []
            pos += 1
            while True:
                pos = _skip_ws(text, pos)
                if text[pos] == "]":
                    return lines
                lines.append(text.count("\n", 0, pos) + 1)
                _, pos = decoder.raw_decode(text, pos)
                pos = _skip_ws(text, pos)
                if text[pos] == ",":
                    pos += 1
        _, pos = decoder.raw_decode(text, pos)
        pos = _skip_ws(text, pos)
        if pos < len(text) and text[pos] == ",":
            pos += 1


def check_keys(entry: ResourceEntry, where: str, required: set[str], optional: Iterable[str] = ()) -> dict[str, Any]:
    """Check that an entry is an object with the required keys and nothing unknown.

    Args:
        entry: the entry.
        where: its location for messages (see :meth:`ResourceEntry.where`).
        required: keys that must be present.
        optional: keys that may be present.

    Returns:
        The entry as a dict.

    Raises:
        RuleFileError: not an object, a missing key or an unknown key.
    """
    value = entry.value
    if not isinstance(value, dict):
        raise RuleFileError(f"{where}: expected an object, found {type(value).__name__}")
    missing = sorted(required - set(value))
    if missing:
        raise RuleFileError(f"{where}: missing keys {missing}")
    unknown = sorted(set(value) - required - set(optional))
    if unknown:
        raise RuleFileError(f"{where}: unknown keys {unknown}")
    return value


def text_value(value: Any, where: str, key: str, allow_empty: bool = False) -> str:
    """Return ``value`` when it is a string with visible text (no edge spaces).

    Raises:
        RuleFileError: not a string, empty, or with leading/trailing space.
    """
    if not isinstance(value, str):
        raise RuleFileError(f"{where}: {key!r} must be a string, found {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise RuleFileError(f"{where}: {key!r} is empty")
    if value != value.strip():
        raise RuleFileError(f"{where}: {key!r} has leading or trailing space")
    return value


def phrase_list(value: Any, where: str, key: str, allow_empty: bool = True) -> tuple[str, ...]:
    """Return a tuple of distinct, lower-case, non-empty phrases.

    Raises:
        RuleFileError: not a list of strings, an empty or non-lower-case phrase, a duplicate.
    """
    if not isinstance(value, list):
        raise RuleFileError(f"{where}: {key!r} must be a list of strings")
    if not value and not allow_empty:
        raise RuleFileError(f"{where}: {key!r} must not be empty")
    seen: set[str] = set()
    for i, phrase in enumerate(value):
        text = text_value(phrase, where, f"{key}[{i}]")
        if text != text.lower():
            raise RuleFileError(f"{where}: {key}[{i}] {text!r} must be lower case")
        if text in seen:
            raise RuleFileError(f"{where}: {key}[{i}] {text!r} is repeated")
        seen.add(text)
    return tuple(value)


def load_modifiers(path: Path | None = None) -> dict[str, Modifier]:
    """Load the project's modifier table.

    Args:
        path: read this file instead of the packaged ``resources/modifiers.json``.

    Returns:
        Modifier code -> :class:`~pipeline.kb.model.Modifier` with ``source="project"``, in the
        file's order.

    Raises:
        RuleFileError: wrong schema, unknown keys, a bad code or kind, an empty description, or
            a modifier listed twice; the message names the file, line and entry.
    """
    doc = read_json_resource(MODIFIERS_RESOURCE, MODIFIERS_SCHEMA, "modifiers", path=path)
    table: dict[str, Modifier] = {}
    for entry in doc.entries:
        where = entry.where(doc.source, "modifiers")
        value = check_keys(entry, where, _ENTRY_KEYS)
        code = text_value(value["code"], where, "code")
        if not _MODIFIER_RE.match(code):
            raise RuleFileError(f"{where}: code {code!r} is not two upper-case letters or digits")
        kind = text_value(value["kind"], where, "kind")
        if kind not in MODIFIER_KINDS:
            raise RuleFileError(f"{where}: kind {kind!r} is not one of {list(MODIFIER_KINDS)}")
        description = text_value(value["description"], where, "description")
        if code in table:
            raise RuleFileError(f"{where}: modifier {code} is listed twice")
        table[code] = Modifier(code=code, description=description, kind=kind, source="project")
    logger.debug("loaded %d project modifiers", len(table))
    return table


def merge_modifiers(project: dict[str, Modifier], hcpcs: list[Modifier]) -> dict[str, Modifier]:
    """Combine the project's modifier table with the modifiers of the CMS HCPCS file.

    The project's entries win (our wording and ``kind``); HCPCS modifiers the project does not
    describe are added with the CMS description, except those the HCPCS reader marked
    terminated (kind ``"terminated"``), which are no longer reportable.

    Args:
        project: the table from :func:`load_modifiers`.
        hcpcs: ``HcpcsFile.modifiers`` from :func:`pipeline.kb.sources.hcpcs.read_hcpcs`.

    Returns:
        Modifier code -> modifier: the project's entries first, then the added HCPCS ones in
        file order.
    """
    merged = dict(project)
    for modifier in hcpcs:
        if modifier.code in merged or modifier.kind == TERMINATED_KIND:
            continue
        merged[modifier.code] = modifier
    return merged
