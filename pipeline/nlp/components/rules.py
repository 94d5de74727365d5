"""What the components' rule files share, and how components keep their rules.

The rule models sit beside their components (:mod:`.section_rules`, :mod:`.context_rules`,
:mod:`.attribute_rules`) and are read by :func:`pipeline.rulefile.load_rules`, whose errors name
the file, the line and the rule (``section_rules[12]``). A loaded rule set keeps the validated
JSON (``data``) so that components can write it into their folder on ``to_disk`` and read it back
with the same loader on ``from_disk``. Shared here: the mention kinds, the token-pattern field
type, spelling patterns out as phrases, and :class:`RuleFileComponent` (persistence).

The packaged files live in ``pipeline/resources`` and are read through ``importlib.resources``;
components receive another path only from their ``initialize`` settings.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, Field
from spacy.schemas import validate_token_pattern

from pipeline.rulefile import read_rule_text

MentionKind = Literal["diagnosis", "symptom", "procedure", "supply", "external", "drug", "finding"]
MENTION_KINDS: tuple[str, ...] = get_args(MentionKind)


def _token_pattern(value: list[dict[str, Any]]) -> list[dict[str, Any]]:
    problems = validate_token_pattern(value)
    if problems:
        raise ValueError(f"bad token pattern: {problems[0]}")
    return value


# A spaCy token pattern (checked by spaCy's own validator).
TokenPattern = Annotated[list[dict[str, Any]], Field(min_length=1), AfterValidator(_token_pattern)]


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


# -- saving ------------------------------------------------------------------------------------
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
        text, source = read_rule_text(self.rules_file, rules_path)
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
        text, source = read_rule_text(self.rules_file, Path(path) / self.rules_file)
        self._restore(text, source)
        return self
