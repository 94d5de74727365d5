"""What the strict loaders of the components' rule files share, and how components keep their rules.

The loaders themselves sit beside their components (:mod:`.section_rules`,
:mod:`.context_rules`, :mod:`.attribute_rules`). Each rule file is JSON with a top-level
``schema`` key naming its format. The loaders check every key and value and fail with a
:class:`~pipeline.errors.RuleFileError` that names the file, the line and the rule
(``section_rules[12]``), so a typo in a rule never silently disables it. A loaded rule set keeps
the validated JSON (``data``) so that components can write it into their folder on ``to_disk``
and read it back with the same loader on ``from_disk``.

The packaged files live in ``pipeline/resources`` and are read through ``importlib.resources``;
components receive another path only from their ``initialize`` settings.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from spacy.schemas import validate_token_pattern

from pipeline.errors import RuleFileError

MENTION_KINDS = ("diagnosis", "symptom", "procedure", "supply", "external", "drug", "finding")


# -- locating errors ---------------------------------------------------------------------------
def _locate(text: str) -> tuple[dict[str, int], dict[str, list[int]]]:
    """Line of every top-level key, and of every element of every top-level array."""
    key_lines: dict[str, int] = {}
    element_lines: dict[str, list[int]] = {}
    stack: list[str] = []
    line, i, n = 1, 0, len(text)
    key = ""
    expecting = False
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
            continue
        if c in " \t\r":
            i += 1
            continue
        in_top_array = len(stack) == 2 and stack[0] == "{" and stack[1] == "["
        if in_top_array and expecting and c not in ",]":
            element_lines.setdefault(key, []).append(line)
            expecting = False
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            if len(stack) == 1:
                k = j + 1
                while k < n and text[k] in " \t\r\n":
                    k += 1
                if k < n and text[k] == ":":
                    key = text[i + 1 : j]
                    key_lines.setdefault(key, line)
            line += text.count("\n", i, j)
            i = j + 1
            continue
        if c in "{[":
            stack.append(c)
            if len(stack) == 2 and c == "[":
                expecting = True
                element_lines[key] = []
        elif c in "}]":
            if stack:
                stack.pop()
        elif c == "," and in_top_array:
            expecting = True
        i += 1
    return key_lines, element_lines


class RuleChecker:
    """Builds error messages that name the file, the line and the rule."""

    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source
        self._located: tuple[dict[str, int], dict[str, list[int]]] | None = None

    def error(self, message: str, key: str | None = None, index: int | None = None) -> RuleFileError:
        if self._located is None:
            self._located = _locate(self.text)
        key_lines, element_lines = self._located
        line = None
        where = ""
        if key is not None:
            where = key if index is None else f"{key}[{index}]"
            lines = element_lines.get(key, [])
            has_line = index is not None and index < len(lines)
            line = lines[index] if has_line and index is not None else key_lines.get(key)
        prefix = f"{self.source}: line {line}: " if line is not None else f"{self.source}: "
        return RuleFileError(f"{prefix}{where + ': ' if where else ''}{message}")

    def exact_object(self, raw: Any, allowed: set[str], key: str) -> None:
        """Require ``raw`` to be an object with exactly the ``allowed`` keys."""
        if not isinstance(raw, dict):
            raise self.error(f"{key} must be an object", key)
        unknown = sorted(set(raw) - allowed)
        if unknown:
            raise self.error(f"unknown key(s) {unknown} (allowed: {sorted(allowed)})", key)
        missing = sorted(allowed - set(raw))
        if missing:
            raise self.error(f"missing key(s) {missing}", key)


def parse_rule_text(
    text: str, source: str, schema: str, keys: set[str], required: set[str]
) -> tuple[dict[str, Any], RuleChecker]:
    check = RuleChecker(text, source)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RuleFileError(f"{source}: line {exc.lineno}: not valid JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise RuleFileError(f"{source}: line 1: the top level must be a JSON object")
    if data.get("schema") != schema:
        raise check.error(f"expected schema {schema!r}, found {data.get('schema')!r}", "schema")
    allowed = keys | {"schema", "description"}
    for name in data:
        if name not in allowed:
            raise check.error(f"unknown key {name!r} (allowed: {sorted(allowed)})", name)
    for name in sorted(required):
        if name not in data:
            raise check.error(f"missing key {name!r}")
    if "description" in data and not isinstance(data["description"], str):
        raise check.error("description must be a string", "description")
    return data, check


def string_list(value: Any, what: str, check: RuleChecker, key: str, index: int | None = None) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise check.error(f"{what} must be a list of non-empty strings", key, index)
    return tuple(value)


def check_pattern(pattern: Any, check: RuleChecker, key: str, index: int) -> list[dict[str, Any]]:
    if not isinstance(pattern, list) or not pattern or not all(isinstance(p, dict) for p in pattern):
        raise check.error("pattern must be a non-empty list of token patterns (objects)", key, index)
    problems = validate_token_pattern(pattern)
    if problems:
        raise check.error(f"bad token pattern: {problems[0]}", key, index)
    return pattern


def check_keys(rule: Any, allowed: set[str], check: RuleChecker, key: str, index: int) -> dict[str, Any]:
    if not isinstance(rule, dict):
        raise check.error("must be a JSON object", key, index)
    unknown = sorted(set(rule) - allowed)
    if unknown:
        raise check.error(f"unknown key(s) {unknown} (allowed: {sorted(allowed)})", key, index)
    return rule


def mention_kinds(value: Any, what: str, check: RuleChecker, key: str, index: int) -> tuple[str, ...]:
    """A list of mention kinds (:data:`MENTION_KINDS`), lower-cased; an unknown kind is an error."""
    kinds = string_list(value, what, check, key, index)
    for kind in kinds:
        if kind.lower() not in MENTION_KINDS:
            raise check.error(
                f"{what}: unknown mention kind {kind!r} (allowed: {', '.join(MENTION_KINDS)})",
                key,
                index,
            )
    return tuple(k.lower() for k in kinds)


# -- patterns as phrases -----------------------------------------------------------------------
def expand_pattern(pattern: list[dict[str, Any]], limit: int = 512) -> list[tuple[str, ...]] | None:
    """Spell out a token pattern as the lower-case token sequences it matches, when it can be.

    spaCy's ``Matcher`` tries every token pattern at every token, which costs milliseconds a note
    with a hundred patterns; a ``PhraseMatcher`` looks phrases up by hash. A pattern whose tokens
    only test ``LOWER`` (a string or ``IN`` a list), or ``ORTH`` of a caseless string, each
    required or optional (``"OP": "?"``), is a finite set of phrases.

    Args:
        pattern: a validated spaCy token pattern.
        limit: give up (return None) above this many phrases.

    Returns:
        The phrases as token tuples (no empty one), or None when the pattern is not a finite
        phrase set (regular expressions, ``LIKE_NUM``, other operators...).
    """
    phrases: list[tuple[str, ...]] = [()]
    for token in pattern:
        op = token.get("OP")
        if op not in (None, "?") or not set(token) <= {"LOWER", "ORTH", "OP"} or len(token) - (op is not None) != 1:
            return None
        if "LOWER" in token:
            value = token["LOWER"]
            if isinstance(value, str):
                options = [value.lower()]
            elif isinstance(value, dict) and set(value) == {"IN"} and all(isinstance(v, str) for v in value["IN"]):
                options = sorted({v.lower() for v in value["IN"]})
            else:
                return None
        else:
            value = token["ORTH"]
            if not isinstance(value, str) or value != value.lower():
                return None
            options = [value]
        grown = [(*p, o) for p in phrases for o in options]
        phrases = grown + phrases if op == "?" else grown
        if len(phrases) > limit:
            return None
    return [p for p in dict.fromkeys(phrases) if p]


# -- reading -----------------------------------------------------------------------------------
def read_rule_text(path: str | Path | None, packaged: str) -> tuple[str, str]:
    """Return the text and the display name of a rule file.

    Args:
        path: a rule file given by the caller, or None for the packaged resource.
        packaged: the resource's file name in ``pipeline/resources``.

    Returns:
        ``(text, source)``.

    Raises:
        RuleFileError: the file cannot be read.
    """
    if path is None:
        ref = resources.files("pipeline.resources").joinpath(packaged)
        return ref.read_text(encoding="utf-8"), f"pipeline/resources/{packaged}"
    try:
        return Path(path).read_text(encoding="utf-8"), str(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleFileError(f"{path}: cannot read the rule file: {exc}") from None


def dump_rules(data: dict[str, Any]) -> str:
    """Serialise validated rule data the way the packaged files are written.

    Rules in a list go one to a line when short, so that an error's line number points at the
    rule; other values are indented JSON.

    Args:
        data: the validated JSON object.

    Returns:
        The file text.
    """
    out = ["{"]
    items = list(data.items())
    for n, (key, value) in enumerate(items):
        comma = "," if n < len(items) - 1 else ""
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            out.append(f" {json.dumps(key)}: [")
            for m, rule in enumerate(value):
                one_line = json.dumps(rule, ensure_ascii=False)
                if len(one_line) > 160:  # one key a line, each value compact
                    fields = [f"{json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in rule.items()]
                    one_line = "{\n   " + ",\n   ".join(fields) + "\n  }"
                out.append(f"  {one_line}{',' if m < len(value) - 1 else ''}")
            out.append(f" ]{comma}")
        else:
            text = json.dumps(value, ensure_ascii=False, indent=1).replace("\n", "\n ")
            out.append(f" {json.dumps(key)}: {text}{comma}")
    out.append("}")
    return "\n".join(out) + "\n"


class RuleFileComponent:
    """``to_disk`` / ``from_disk`` for a spaCy component whose data is one validated rule file.

    Subclasses set ``rules_file`` (the file name inside the component's folder), keep the parsed
    rules (an object with ``.data``) where :meth:`_saved_rules` finds them, and rebuild
    themselves from a rule file's text in :meth:`_restore`.
    """

    name: str
    rules_file: str

    def _saved_rules(self) -> Any:
        return getattr(self, "rules", None)

    def initialize(
        self,
        get_examples: Any = None,
        *,
        nlp: Any = None,
        rules_path: str | None = None,
    ) -> None:
        """Load the rules at build time (spaCy calls this from ``nlp.initialize()``).

        Args:
            get_examples: unused (spaCy's signature).
            nlp: the pipeline (unused here; a subclass may need its tokenizer).
            rules_path: a rule file; None uses the packaged one of the same name.

        Raises:
            RuleFileError: the rule file is invalid.
        """
        text, source = read_rule_text(rules_path, self.rules_file)
        self._restore(text, source)

    def _restore(self, text: str, source: str) -> None:
        raise NotImplementedError

    def to_disk(self, path: str | Path, *, exclude: Any = ()) -> None:
        """Write the rules into the component's folder.

        Args:
            path: the component folder (created if missing).
            exclude: unused (spaCy's signature).

        Raises:
            ValueError: the component was never initialised.
        """
        rules = self._saved_rules()
        if rules is None:
            raise ValueError(f"{self.name} has no rules to save: initialize it first")
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / self.rules_file).write_text(dump_rules(rules.data), encoding="utf-8")

    def from_disk(self, path: str | Path, *, exclude: Any = ()) -> Any:
        """Read back what :meth:`to_disk` wrote and rebuild the component.

        Args:
            path: the component folder.
            exclude: unused (spaCy's signature).

        Returns:
            self.

        Raises:
            RuleFileError: the saved rule file is missing or invalid.
        """
        text, source = read_rule_text(Path(path) / self.rules_file, self.rules_file)
        self._restore(text, source)
        return self
