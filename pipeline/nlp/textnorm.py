"""Word normalisation shared by the knowledge-base term table and the note matcher.

Both sides of a match go through the same :class:`Normalizer`, so a code's index path
"Sprain > ankle" and a note's "sprained R ankle" meet on the same keys (``sprain``, ``ankl``,
``right``). A key is the Snowball stem of the word after accent folding and British-to-US
spelling, mapped through equivalence groups (``renal`` and ``kidney`` share one key) that are
kept as data in ``resources/word_groups.json``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from nltk.stem.snowball import EnglishStemmer
from pydantic import Field

from pipeline.rulefile import RuleFile, load_rules, read_rule_text, schema_field

WORD_RE = re.compile(r"[A-Za-z0-9]+")

# British spellings common in translated case reports -> US spelling used by ICD-10-CM.
_SPELLING = (
    (re.compile(r"^oesophag"), "esophag"),
    (re.compile(r"^oedem"), "edem"),
    (re.compile(r"^oestr"), "estr"),
    (
        re.compile(r"^(an|leuk|isch|septic|bacter|vir|tox|glyc|lip|ur|hyperlip|hypogly|hypergly)?aem"),
        r"\1em",
    ),
    (re.compile(r"haem"), "hem"),
    (re.compile(r"paed"), "ped"),
    (re.compile(r"orthopaed"), "orthoped"),
    (re.compile(r"^faec"), "fec"),
    (re.compile(r"oea$"), "ea"),
    (re.compile(r"^(tum|col|behavi|hum|lab|odo)our"), r"\1or"),
    (re.compile(r"^foet"), "fet"),
    (re.compile(r"^coeli"), "celi"),
    (re.compile(r"^caes"), "ces"),
    (re.compile(r"^gynaec"), "gynec"),
)

WORD_GROUPS_SCHEMA = "codesuggest.word-groups/1"
WORD_GROUPS_FILE = "word_groups.json"


class WordGroupsFile(RuleFile):
    """``word_groups.json`` (schema ``codesuggest.word-groups/1``)."""

    schema_id: Literal["codesuggest.word-groups/1"] = schema_field()
    groups: tuple[Annotated[tuple[Annotated[str, Field(min_length=1)], ...], Field(min_length=2)], ...] = ()
    stopwords: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()


@dataclass
class WordGroups:
    """Equivalence groups of words and the stop list, loaded from a data file.

    Attributes:
        groups: each group's words; all map to the key of the group's first word.
        stopwords: words that never take part in a match.
        optional: words that are dropped from a knowledge-base term's required keys
            ("unspecified", "other"...): notes rarely write them.
    """

    groups: list[list[str]] = field(default_factory=list)
    stopwords: frozenset[str] = frozenset()
    optional: frozenset[str] = frozenset()

    @classmethod
    def load(cls, text: str, source: str) -> WordGroups:
        """Validate and build from a word-groups file's text.

        Raises:
            RuleFileError: invalid JSON, wrong schema, unknown keys or bad values; the message
                names ``source``, the line and the entry.
        """
        f = load_rules(WordGroupsFile, text, source)
        return cls(
            groups=[list(g) for g in f.groups],
            stopwords=frozenset(w.lower() for w in f.stopwords),
            optional=frozenset(w.lower() for w in f.optional),
        )

    @classmethod
    def read(cls, path: str | Path | None = None) -> WordGroups:
        """Load ``path``, or the packaged ``resources/word_groups.json`` when None.

        Raises:
            RuleFileError: the file cannot be read or is invalid.
        """
        return cls.load(*read_rule_text(WORD_GROUPS_FILE, path))

    @classmethod
    def default(cls) -> WordGroups:
        """Load the packaged ``resources/word_groups.json``."""
        return cls.read()

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form (the same schema the loader reads)."""
        return {
            "schema": WORD_GROUPS_SCHEMA,
            "groups": self.groups,
            "stopwords": sorted(self.stopwords),
            "optional": sorted(self.optional),
        }


class Normalizer:
    """Turns words into match keys.

    Args:
        word_groups: equivalence groups and stop words.
    """

    def __init__(self, word_groups: WordGroups) -> None:
        self.word_groups = word_groups
        self._stemmer = EnglishStemmer()
        self._canon: dict[str, str] = {}
        for group in word_groups.groups:
            head = self._stem(group[0].lower())
            for word in group:
                self._canon[self._stem(word.lower())] = head
        self.stop_keys = frozenset(self._stem(w) for w in word_groups.stopwords) | word_groups.stopwords
        self.key = lru_cache(maxsize=200_000)(self._key)  # type: ignore[method-assign]
        self.optional_keys = frozenset(self.key(w) or w for w in word_groups.optional)

    def _stem(self, word: str) -> str:
        for pattern, repl in _SPELLING:
            word = pattern.sub(repl, word)
        if word.isdigit() or len(word) <= 2:
            return word
        return self._stemmer.stem(word)

    def _key(self, word: str) -> str | None:
        """Return the match key of one word, or None for a stop word."""
        lower = fold(word).lower()
        if lower in self.word_groups.stopwords:
            return None
        stem = self._stem(lower)
        if stem in self.stop_keys:
            return None
        return self._canon.get(stem, stem)

    def keys(self, text: str) -> list[str]:
        """Return the keys of every non-stop word of ``text`` in order."""
        out = []
        for match in WORD_RE.finditer(fold(text)):
            key = self.key(match.group())
            if key is not None:
                out.append(key)
        return out

    def required_keys(self, text: str) -> frozenset[str]:
        """Keys a note must contain to match a knowledge-base term (optional words dropped)."""
        return frozenset(k for k in self.keys(text) if k not in self.optional_keys)


def fold(text: str) -> str:
    """Fold accents (``é`` -> ``e``) keeping string length when the text is already ASCII."""
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def iter_words(text: str) -> Iterable[tuple[int, int, str]]:
    """Yield ``(start, end, word)`` for each alphanumeric run of ``text``."""
    for match in WORD_RE.finditer(text):
        yield match.start(), match.end(), match.group()
