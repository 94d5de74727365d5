"""The one strict loader of the rule and lexicon files (``pipeline/resources/*.json``).

Every rule or lexicon file is one JSON object whose ``schema`` key names its format. Each format
is a pydantic model (a :class:`RuleFile`) that sits beside the code that uses it; nested entries
are :class:`RuleModel`\\ s. Both forbid unknown keys and coerce nothing (strict mode), so a typo
in a rule never silently disables it. :func:`load_rules` validates a file's text against its
model and turns the first problem into a :class:`~pipeline.errors.RuleFileError` that names the
file, the line of the JSON text and the entry (``integral_symptoms[3].symptoms[1]``).

The constrained types shared by the formats (:data:`Text`, :data:`Phrase`, :data:`PhraseList`,
:data:`Regex`...) live here too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from pipeline.errors import RuleFileError

PACKAGE = "pipeline.resources"

_STRICT = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True, arbitrary_types_allowed=True)


class RuleModel(BaseModel):
    """An entry of a rule file: unknown keys are errors, values are never coerced."""

    model_config = _STRICT


class RuleFile(RuleModel):
    """A whole rule file. Subclasses add ``schema_id: Literal["codesuggest.<name>/<n>"]``.

    Attributes:
        description: what the file holds (free text, not read by the code).
    """

    description: str | None = None


def schema_field() -> Any:
    """The ``schema`` key of a rule file (``schema`` itself is a name pydantic reserves)."""
    return Field(alias="schema")


# -- constrained values -----------------------------------------------------------------------------
def _text(value: str) -> str:
    if not value.strip() or value != value.strip():
        raise ValueError("expected a non-empty string without edge spaces")
    return value


def _non_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("expected a string with visible characters")
    return value


def _lower(value: str) -> str:
    if value != value.lower():
        raise ValueError(f"{value!r} must be lower case")
    return value


def _distinct(values: tuple[str, ...]) -> tuple[str, ...]:
    seen: set[str] = set()
    for i, value in enumerate(values):
        if value in seen:
            raise ValueError(f"[{i}] {value!r} is repeated")
        seen.add(value)
    return values


def _regex(value: Any) -> Any:
    if not isinstance(value, str):
        return value  # the type check reports it
    try:
        return re.compile(value, re.IGNORECASE)
    except re.error as exc:
        raise ValueError(f"bad regular expression {value!r}: {exc}") from None


# A non-empty string without leading or trailing space.
Text = Annotated[str, AfterValidator(_text)]
# A string with visible characters (edge spaces allowed: separators such as " - ").
NonBlank = Annotated[str, AfterValidator(_non_blank)]
# A lower-case phrase without edge spaces.
Phrase = Annotated[str, AfterValidator(_text), AfterValidator(_lower)]
# Distinct lower-case phrases, at least one.
PhraseList = Annotated[tuple[Phrase, ...], Field(min_length=1), AfterValidator(_distinct)]
# Distinct lower-case phrases, possibly none.
OptionalPhrases = Annotated[tuple[Phrase, ...], AfterValidator(_distinct)]
# Non-empty strings (case kept), at least one.
TextList = Annotated[tuple[Annotated[str, Field(min_length=1)], ...], Field(min_length=1)]
# A regular expression, compiled case-insensitively.
Regex = Annotated[re.Pattern[str], BeforeValidator(_regex)]
RegexList = Annotated[tuple[Regex, ...], Field(min_length=1)]
PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]


# -- reading ----------------------------------------------------------------------------------------
ModelT = TypeVar("ModelT", bound=BaseModel)


def read_rule_text(name: str, path: str | Path | None = None) -> tuple[str, str]:
    """The text of a rule file and its name for messages.

    Args:
        name: the file's name inside ``pipeline/resources``.
        path: read this file instead of the packaged one.

    Returns:
        ``(text, source)``.

    Raises:
        RuleFileError: the file cannot be read.
    """
    if path is None:
        source = f"pipeline/resources/{name}"
        try:
            return resources.files(PACKAGE).joinpath(name).read_text(encoding="utf-8"), source
        except (OSError, UnicodeDecodeError) as exc:
            raise RuleFileError(f"{source}: missing from the installed package: {exc}") from None
    try:
        return Path(path).read_text(encoding="utf-8"), str(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleFileError(f"{path}: cannot read the rule file: {exc}") from None


def load_rules(model: type[ModelT], text: str, source: str) -> ModelT:
    """Validate a rule file's text against its model.

    Args:
        model: the file's :class:`RuleFile` model.
        text: the JSON text.
        source: the file's name in messages.

    Returns:
        The validated model.

    Raises:
        RuleFileError: invalid JSON or a value the model refuses; the message names the file,
            the line and the entry.
    """
    try:
        return model.model_validate_json(text)
    except ValidationError as exc:
        raise rule_error(exc, text, source) from None


def read_rules(model: type[ModelT], name: str, path: str | Path | None = None) -> ModelT:
    """Read and validate a packaged rule file (or ``path`` instead of it).

    Raises:
        RuleFileError: the file cannot be read or is invalid.
    """
    text, source = read_rule_text(name, path)
    return load_rules(model, text, source)


def rule_error(exc: ValidationError, text: str, source: str) -> RuleFileError:
    """The first problem of a failed validation, with the file, line and entry it concerns."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    if first["type"] == "json_invalid":
        return RuleFileError(f"{source}: line {_json_error_line(text)}: not valid JSON: {first['msg']}")
    loc = tuple(first["loc"])
    if loc and loc[-1] == "[key]":  # a dict's key was refused: name the key's place
        loc = loc[:-1]
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "literal_error" and loc and loc[-1] == "schema":
        message = f"expected schema {message.removeprefix('Input should be ')}, found {first['input']!r}"
    elif first["type"] == "literal_error":
        name = "key" if first["loc"][-1] == "[key]" else next((p for p in reversed(loc) if isinstance(p, str)), "value")
        allowed = message.removeprefix("Input should be ").replace("'", "")
        message = f"unknown {name} {first['input']!r} (allowed: {allowed})"
    elif first["type"] == "missing":
        message = f"missing key {loc[-1]!r}"
        loc = loc[:-1]
    elif first["type"] == "extra_forbidden":
        message = f"unknown key {loc[-1]!r}"
        loc = loc[:-1]
    return entry_error(text, source, loc, message + more)


def entry_error(text: str, source: str, loc: Sequence[str | int], message: str) -> RuleFileError:
    """An error about one entry found after validation (a duplicate across entries...).

    Args:
        text: the file's JSON text.
        source: the file's name in messages.
        loc: the entry's path (``("section_rules", 12)``).
        message: what is wrong.

    Returns:
        The error, naming the file, the entry's line and the entry.
    """
    lines = value_lines(text)
    line = next((lines[tuple(loc[:n])] for n in range(len(loc), -1, -1) if tuple(loc[:n]) in lines), None)
    where = f"{source}: line {line}" if line is not None else source
    place = format_place(loc)
    return RuleFileError(f"{where}: {place + ': ' if place else ''}{message}")


def format_place(loc: Sequence[str | int]) -> str:
    """``integral_symptoms[3].symptoms`` for the path ``("integral_symptoms", 3, "symptoms")``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _json_error_line(text: str) -> int:
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return exc.lineno
    return 1


def value_lines(text: str) -> dict[tuple[str | int, ...], int]:
    """The 1-based line where every value of a JSON document starts, by its path (``()`` is the top)."""
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
    return lines
