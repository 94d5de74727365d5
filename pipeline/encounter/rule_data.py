"""Strict readers of the encounter rule files (``pipeline/resources/encounter_*.json``).

The encounter rules keep their knowledge as data: which headings hold final diagnostic
statements, the cue phrases of assertions, the symptom-to-diagnosis relations of Guidelines
I.B.5, the personal and family history categories, the E/M cues, the service-line rules. Each
file is one JSON object with a ``schema`` key naming its format and a fixed set of sections.
Every value is checked when the file is read, and an error names the file, the line and the
place in the file (``integral[3].symptoms[1]``), so that a typo never silently disables a rule.

The building blocks shared by the files live here: :class:`CodeSet` (ICD-10-CM prefixes and
ranges such as ``"J18.-"`` or ``"C18-C21"``), :class:`Phrases` (cue phrases compiled into one
case-insensitive regular expression) and :class:`RuleReader` (the strict reader).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pipeline.errors import RuleFileError

# An ICD-10-CM code or prefix as written in the rule files: "J18", "J18.9", "S93.4", "Z79.4".
_ICD_PART = r"[A-Z][0-9A-Z]{2}(?:\.[0-9A-Z]{1,4})?"
_CODE_ITEM = re.compile(rf"^(?P<lo>{_ICD_PART})(?:\.-|-(?P<hi>{_ICD_PART}))?$")
_SERVICE_CODE = re.compile(r"^(?:[0-9]{4}[0-9FTUM]|[A-V][0-9]{4})$")


def flat(code: str) -> str:
    """The code without its dot (``S93.401A`` -> ``S93401A``)."""
    return code.replace(".", "")


@dataclass(frozen=True, slots=True)
class CodeSet:
    """A set of ICD-10-CM codes written as prefixes and ranges.

    ``"J18"`` and ``"J18.-"`` match every code starting with J18; ``"C18-C21"`` matches every
    code whose first characters fall between C18 and C21 inclusive (compared on as many
    characters as each bound has); ``"I10"`` also matches I10 itself.

    Attributes:
        items: the items as written.
    """

    items: tuple[str, ...]
    _bounds: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, value: Any, where: str) -> CodeSet:
        """Read a list of code items.

        Args:
            value: the JSON value (a list of strings).
            where: location for error messages.

        Returns:
            The set.

        Raises:
            RuleFileError: not a list of well-formed items.
        """
        if not isinstance(value, list) or not value:
            raise RuleFileError(f"{where}: expected a non-empty list of ICD-10-CM codes or ranges")
        bounds = []
        for i, item in enumerate(value):
            match = _CODE_ITEM.match(item) if isinstance(item, str) else None
            if match is None:
                raise RuleFileError(
                    f"{where}[{i}]: {item!r} is not an ICD-10-CM code, prefix ('J18.-') or range ('C18-C21')"
                )
            lo = flat(match.group("lo"))
            hi = flat(match.group("hi") or match.group("lo"))
            if hi < lo[: len(hi)]:
                raise RuleFileError(f"{where}[{i}]: range {item!r} ends before it starts")
            bounds.append((lo, hi))
        return cls(tuple(value), tuple(bounds))

    def __contains__(self, code: object) -> bool:
        if not isinstance(code, str):
            return False
        f = flat(code)
        return any(f[: len(lo)] >= lo and f[: len(hi)] <= hi for lo, hi in self._bounds)


class Phrases:
    """Cue phrases matched case-insensitively as whole words, any whitespace between words.

    Args:
        phrases: lower-case phrases.
    """

    def __init__(self, phrases: Iterable[str]) -> None:
        self.phrases = tuple(phrases)
        parts = sorted({p.lower() for p in self.phrases}, key=len, reverse=True)
        body = "|".join(re.escape(p).replace(r"\ ", r"\s+") for p in parts)
        self._regex = re.compile(rf"(?<![\w-])(?:{body})(?![\w-])", re.IGNORECASE) if parts else None

    def __bool__(self) -> bool:
        return self._regex is not None

    def finditer(self, text: str, start: int = 0, end: int | None = None) -> Iterator[re.Match[str]]:
        """Yield the matches in ``text[start:end]`` (positions refer to ``text``)."""
        if self._regex is None:
            return iter(())
        return self._regex.finditer(text, start, len(text) if end is None else end)

    def search(self, text: str, start: int = 0, end: int | None = None) -> re.Match[str] | None:
        """The first match in ``text[start:end]``, or None."""
        if self._regex is None:
            return None
        return self._regex.search(text, start, len(text) if end is None else end)


class LabeledPhrases(Phrases):
    """Several phrase lists in one regular expression; :meth:`label` names the list a match is from.

    Args:
        lists: label -> phrases.
    """

    def __init__(self, lists: Iterable[tuple[str, Iterable[str]]]) -> None:
        self._labels: dict[str, str] = {}
        for label, phrases in lists:
            for p in phrases:
                self._labels.setdefault(" ".join(p.lower().split()), label)
        super().__init__(self._labels)

    def label(self, match: re.Match[str]) -> str:
        """The label of the phrase a match found."""
        return self._labels[" ".join(match.group(0).lower().split())]


class RuleReader:
    """Reads one rule file strictly and names file, line and place on every error.

    Args:
        text: the file's text.
        source: its name in messages.
        schema: the expected ``schema`` value.
        sections: the top-level keys the file must have (besides ``schema`` and
            ``description``).

    Raises:
        RuleFileError: not JSON, wrong schema, a missing or unknown top-level key.
    """

    def __init__(self, text: str, source: str, schema: str, sections: Iterable[str]) -> None:
        self.source = source
        try:
            self.data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RuleFileError(f"{source}, line {exc.lineno}: not valid JSON: {exc.msg}") from exc
        if not isinstance(self.data, dict):
            raise RuleFileError(f"{source}: expected a JSON object at the top level")
        if self.data.get("schema") != schema:
            raise RuleFileError(f"{source}: expected schema {schema!r}, found {self.data.get('schema')!r}")
        wanted = set(sections)
        missing = sorted(wanted - set(self.data))
        if missing:
            raise RuleFileError(f"{source}: missing top-level keys {missing}")
        unknown = sorted(set(self.data) - wanted - {"schema", "description"})
        if unknown:
            raise RuleFileError(f"{source}: unknown top-level keys {unknown}")
        self._lines = _value_lines(text)

    @classmethod
    def open(cls, name: str, schema: str, sections: Iterable[str], path: Path | None = None) -> RuleReader:
        """Read a packaged resource (or ``path`` instead of it).

        Args:
            name: file name inside ``pipeline.resources``.
            schema: expected schema.
            sections: required top-level keys.
            path: another file to read.

        Returns:
            The reader.

        Raises:
            RuleFileError: the file cannot be read or is invalid.
        """
        if path is not None:
            source = str(path)
            try:
                text = Path(path).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise RuleFileError(f"{source}: cannot read: {exc}") from exc
        else:
            source = f"pipeline/resources/{name}"
            try:
                text = resources.files("pipeline.resources").joinpath(name).read_text(encoding="utf-8")
            except OSError as exc:
                raise RuleFileError(f"{source}: missing from the installed package: {exc}") from exc
        return cls(text, source, schema, sections)

    def where(self, *path: str | int) -> str:
        """``"file, line N, a[2].b"`` for the value at ``path``."""
        line = self._lines.get(tuple(path))
        place = "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else str(p)) for i, p in enumerate(path))
        return f"{self.source}, line {line}, {place}" if line else f"{self.source}, {place}"

    def section(self, key: str) -> Any:
        """The value of a top-level key."""
        return self.data[key]

    def section_object(self, key: str, required: Iterable[str], optional: Iterable[str] = ()) -> dict[str, Any]:
        """The object under a top-level key, checked as :meth:`keys` checks it.

        Raises:
            RuleFileError: not an object, a key missing or unknown.
        """
        return self.keys(self.data[key], (key,), required, optional)

    def entries(self, key: str) -> Iterator[tuple[str, dict[str, Any], tuple[str | int, ...]]]:
        """Yield ``(where, entry, path)`` for each object of the list under ``key``.

        Raises:
            RuleFileError: the value is not a list of objects.
        """
        items = self.data[key]
        if not isinstance(items, list):
            raise RuleFileError(f"{self.where(key)}: expected a list")
        for i, item in enumerate(items):
            where = self.where(key, i)
            if not isinstance(item, dict):
                raise RuleFileError(f"{where}: expected an object")
            yield where, item, (key, i)

    # -- value checks ----------------------------------------------------------------------------
    def keys(
        self, value: Any, path: tuple[str | int, ...], required: Iterable[str], optional: Iterable[str] = ()
    ) -> dict[str, Any]:
        """Check that ``value`` is an object with the required keys and no unknown ones.

        Raises:
            RuleFileError: not an object, a key missing or unknown.
        """
        where = self.where(*path)
        if not isinstance(value, dict):
            raise RuleFileError(f"{where}: expected an object")
        req = set(required)
        missing = sorted(req - set(value))
        if missing:
            raise RuleFileError(f"{where}: missing keys {missing}")
        unknown = sorted(set(value) - req - set(optional))
        if unknown:
            raise RuleFileError(f"{where}: unknown keys {unknown}")
        return value

    def text(self, value: Any, path: tuple[str | int, ...]) -> str:
        """A non-empty string without edge spaces.

        Raises:
            RuleFileError: anything else.
        """
        if not isinstance(value, str) or not value.strip() or value != value.strip():
            raise RuleFileError(f"{self.where(*path)}: expected a non-empty string without edge spaces")
        return value

    def choice(self, value: Any, path: tuple[str | int, ...], allowed: Iterable[str]) -> str:
        """One of ``allowed``.

        Raises:
            RuleFileError: anything else.
        """
        options = tuple(allowed)
        if value not in options:
            raise RuleFileError(f"{self.where(*path)}: {value!r} is not one of {list(options)}")
        return str(value)

    def number(
        self, value: Any, path: tuple[str | int, ...], *, integer: bool = False, minimum: float | None = None
    ) -> float:
        """A number (an integer when asked), at least ``minimum``.

        Raises:
            RuleFileError: anything else.
        """
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if ok and integer:
            ok = isinstance(value, int)
        if ok and minimum is not None:
            ok = value >= minimum
        if not ok:
            kind = "a whole number" if integer else "a number"
            bound = f" >= {minimum}" if minimum is not None else ""
            raise RuleFileError(f"{self.where(*path)}: expected {kind}{bound}, found {value!r}")
        return float(value)

    def phrases(self, value: Any, path: tuple[str | int, ...], allow_empty: bool = False) -> tuple[str, ...]:
        """Distinct lower-case phrases.

        Raises:
            RuleFileError: not a list of such strings, or empty when not allowed.
        """
        where = self.where(*path)
        if not isinstance(value, list) or (not value and not allow_empty):
            raise RuleFileError(f"{where}: expected a non-empty list of phrases")
        seen: set[str] = set()
        for i, phrase in enumerate(value):
            if not isinstance(phrase, str) or not phrase.strip() or phrase != phrase.strip():
                raise RuleFileError(f"{where}[{i}]: expected a phrase without edge spaces")
            if phrase != phrase.lower():
                raise RuleFileError(f"{where}[{i}]: {phrase!r} must be lower case")
            if phrase in seen:
                raise RuleFileError(f"{where}[{i}]: {phrase!r} is repeated")
            seen.add(phrase)
        return tuple(value)

    def patterns(self, value: Any, path: tuple[str | int, ...]) -> tuple[re.Pattern[str], ...]:
        """Regular expressions (compiled case-insensitively).

        Raises:
            RuleFileError: not a list of strings, or a pattern that does not compile.
        """
        where = self.where(*path)
        if not isinstance(value, list) or not value:
            raise RuleFileError(f"{where}: expected a non-empty list of regular expressions")
        out = []
        for i, pattern in enumerate(value):
            if not isinstance(pattern, str):
                raise RuleFileError(f"{where}[{i}]: expected a string")
            try:
                out.append(re.compile(pattern, re.IGNORECASE))
            except re.error as exc:
                raise RuleFileError(f"{where}[{i}]: bad regular expression: {exc}") from exc
        return tuple(out)

    def codes(self, value: Any, path: tuple[str | int, ...]) -> CodeSet:
        """An ICD-10-CM code set (see :class:`CodeSet`)."""
        return CodeSet.parse(value, self.where(*path))

    def icd_code(self, value: Any, path: tuple[str | int, ...]) -> str:
        """One ICD-10-CM code as written in the tabular list (with its dot).

        Raises:
            RuleFileError: not a code.
        """
        if not isinstance(value, str) or not re.fullmatch(_ICD_PART, value):
            raise RuleFileError(f"{self.where(*path)}: {value!r} is not an ICD-10-CM code")
        return value

    def service_codes(self, value: Any, path: tuple[str | int, ...]) -> tuple[str, ...]:
        """CPT or HCPCS Level II codes.

        Raises:
            RuleFileError: not a non-empty list of such codes.
        """
        where = self.where(*path)
        if not isinstance(value, list) or not value:
            raise RuleFileError(f"{where}: expected a non-empty list of CPT/HCPCS codes")
        for i, code in enumerate(value):
            if not isinstance(code, str) or not _SERVICE_CODE.match(code):
                raise RuleFileError(f"{where}[{i}]: {code!r} is not a CPT or HCPCS code")
        return tuple(value)

    def service_ranges(self, value: Any, path: tuple[str | int, ...]) -> tuple[tuple[str, str], ...]:
        """CPT/HCPCS codes or ranges (``"80000-89999"``).

        Raises:
            RuleFileError: a malformed item.
        """
        where = self.where(*path)
        if not isinstance(value, list) or not value:
            raise RuleFileError(f"{where}: expected a non-empty list of codes or ranges")
        out = []
        for i, item in enumerate(value):
            parts = item.split("-") if isinstance(item, str) else []
            if len(parts) not in (1, 2) or not all(_SERVICE_CODE.match(p) for p in parts):
                raise RuleFileError(f"{where}[{i}]: {item!r} is not a CPT/HCPCS code or range")
            out.append((parts[0], parts[-1]))
        return tuple(out)


def in_ranges(code: str, ranges: Iterable[tuple[str, str]]) -> bool:
    """True when a CPT/HCPCS code lies in one of the ``(low, high)`` ranges."""
    return any(len(code) == len(lo) and lo <= code <= hi for lo, hi in ranges)


def _value_lines(text: str) -> dict[tuple[str | int, ...], int]:
    """The 1-based line where every value of the JSON document starts, by its path."""
    decoder = json.JSONDecoder()
    lines: dict[tuple[str | int, ...], int] = {}

    def skip(pos: int) -> int:
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        return pos

    def walk(pos: int, path: tuple[str | int, ...]) -> int:
        pos = skip(pos)
        lines[path] = text.count("\n", 0, pos) + 1
        if text[pos] == "{":
            pos = skip(pos + 1)
            if text[pos] == "}":
                return pos + 1
            while True:
                key, pos = decoder.raw_decode(text, skip(pos))
                pos = skip(pos) + 1  # the colon
                pos = skip(walk(pos, (*path, key)))
                if text[pos] == ",":
                    pos += 1
                    continue
                return pos + 1  # the closing brace
        if text[pos] == "[":
            pos = skip(pos + 1)
            if text[pos] == "]":
                return pos + 1
            index = 0
            while True:
                pos = skip(walk(pos, (*path, index)))
                index += 1
                if text[pos] == ",":
                    pos += 1
                    continue
                return pos + 1
        _, end = decoder.raw_decode(text, pos)
        return end

    walk(0, ())
    lines.pop((), None)
    return lines
