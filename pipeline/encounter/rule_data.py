"""What the encounter rule files (``pipeline/resources/encounter_*.json``) are made of.

The encounter rules keep their knowledge as data: which headings hold final diagnostic
statements, the cue phrases of assertions, the symptom-to-diagnosis relations of Guidelines
I.B.5, the personal and family history categories, the E/M cues, the service-line rules. Each
file is one pydantic model beside the code that uses it, read by :func:`pipeline.rulefile.load_rules`
(unknown keys refused, errors naming the file, the line and the entry).

The building blocks shared by the files live here: :class:`CodeSet` (ICD-10-CM prefixes and
ranges such as ``"J18.-"`` or ``"C18-C21"``) and its field type :data:`IcdCodes`, the code
field types (:data:`IcdCode`, :data:`ServiceCode`, :data:`ServiceRanges`) and :class:`Phrases`
(cue phrases compiled into one case-insensitive regular expression).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, Field, PlainValidator

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
    def parse(cls, value: Any, where: str = "") -> CodeSet:
        """Read a list of code items.

        Args:
            value: the JSON value (a list of strings).
            where: what the list is, for the error message (a rule file's loader names the
                file, line and entry itself).

        Returns:
            The set.

        Raises:
            ValueError: not a non-empty list of well-formed items (pydantic reports it with the
                file, line and entry).
        """
        if isinstance(value, CodeSet):
            return value
        prefix = f"{where}: " if where else ""
        if not isinstance(value, list | tuple) or not value:
            raise ValueError(f"{prefix}expected a non-empty list of ICD-10-CM codes or ranges")
        bounds = []
        for i, item in enumerate(value):
            match = _CODE_ITEM.match(item) if isinstance(item, str) else None
            if match is None:
                raise ValueError(
                    f"{prefix}[{i}] {item!r} is not an ICD-10-CM code, prefix ('J18.-') or range ('C18-C21')"
                )
            lo = flat(match.group("lo"))
            hi = flat(match.group("hi") or match.group("lo"))
            if hi < lo[: len(hi)]:
                raise ValueError(f"{prefix}[{i}] range {item!r} ends before it starts")
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


def _icd_code(value: str) -> str:
    if not re.fullmatch(_ICD_PART, value):
        raise ValueError(f"{value!r} is not an ICD-10-CM code")
    return value


def _service_code(value: str) -> str:
    if not _SERVICE_CODE.match(value):
        raise ValueError(f"{value!r} is not a CPT or HCPCS code")
    return value


def _service_ranges(value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, list | tuple) or not value:
        raise ValueError("expected a non-empty list of CPT/HCPCS codes or ranges")
    out = []
    for i, item in enumerate(value):
        parts = item.split("-") if isinstance(item, str) else []
        if len(parts) not in (1, 2) or not all(_SERVICE_CODE.match(p) for p in parts):
            raise ValueError(f"[{i}] {item!r} is not a CPT/HCPCS code or range")
        out.append((parts[0], parts[-1]))
    return tuple(out)


# Field types of the rule files' pydantic models.
IcdCodes = Annotated[CodeSet, PlainValidator(lambda value: CodeSet.parse(value))]
IcdCode = Annotated[str, AfterValidator(_icd_code)]
ServiceCode = Annotated[str, AfterValidator(_service_code)]
ServiceCodes = Annotated[tuple[ServiceCode, ...], Field(min_length=1)]
# CPT/HCPCS codes or ranges ("80000-89999"), as (low, high) pairs.
ServiceRanges = Annotated[tuple[tuple[str, str], ...], PlainValidator(_service_ranges)]


def in_ranges(code: str, ranges: Iterable[tuple[str, str]]) -> bool:
    """True when a CPT/HCPCS code lies in one of the ``(low, high)`` ranges."""
    return any(len(code) == len(lo) and lo <= code <= hi for lo, hi in ranges)
