"""The term table: every knowledge-base phrase that can signal a code, as sets of match keys.

Terms come from the ICD-10-CM Alphabetic Index (main term > subterms, the Neoplasm Table, the
Table of Drugs, the External Cause Index; "see" references followed), tabular titles and
inclusion terms, CPT starter phrases, HCPCS titles and supply phrases, and the curated clinical
lexicon (abbreviations and synonyms, ``resources/clinical_lexicon.json``). A term matches a
sentence when all its required keys occur close together in any order, so "Sprain > ankle"
meets "right ankle sprain", "sprain of the right ankle" and "sprained R ankle".
"""

from __future__ import annotations

import logging
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from pipeline.errors import MalformedCodeError
from pipeline.kb.model import CodeRecord, IndexEntry, normalize_code
from pipeline.kb.store import KnowledgeBase
from pipeline.nlp.components.rules import MentionKind
from pipeline.nlp.textnorm import Normalizer
from pipeline.rulefile import NonBlank, RuleFile, RuleModel, entry_error, load_rules, read_rule_text, schema_field

logger = logging.getLogger(__name__)

LEXICON_FILE = "clinical_lexicon.json"

# Sources, in the order a coder trusts them.
SOURCES = (
    "lexicon",
    "index",
    "inclusion",
    "title",
    "neoplasm",
    "drug",
    "external",
    "cpt",
    "hcpcs",
    "fuzzy",
)

# Clauses of tabular titles that notes never write and that must not be required.
_TITLE_DROP = re.compile(
    r"\([^)]*\)|\[[^\]]*\]"
    r"|,?\s*(except|excluding|not elsewhere classified|in diseases classified elsewhere)\b.*$",
    re.IGNORECASE,
)

# Neoplasm Table and Table of Drugs columns -> the words a note uses for them.
NEOPLASM_COLUMNS = {
    "malignant primary": "malignant",
    "malignant secondary": "metastasis",
    "ca in situ": "in situ",
    "benign": "benign",
    "uncertain behavior": "uncertain behavior",
    "unspecified behavior": "neoplasm",
}
DRUG_COLUMNS = {
    "poisoning accidental": "poisoning",
    "adverse effect": "adverse effect",
}


@dataclass(frozen=True, slots=True)
class Term:
    """One phrase that signals one code.

    Attributes:
        keys: required match keys, sorted.
        code: canonical code; may be a non-billable parent or an index code still incomplete.
        system: ``ICD10CM``, ``CPT`` or ``HCPCS``.
        source: one of :data:`SOURCES`.
        kind: diagnosis, symptom, procedure, supply, external or drug.
        text: the phrase as shown to a coder (index paths joined with " > ").
        incomplete: the index gave the code with a trailing dash.
        case_sensitive: the phrase is an abbreviation that only counts in capitals ("MS", "ALL").
        surface: for case-sensitive terms, the exact token text required.
    """

    keys: tuple[str, ...]
    code: str
    system: str
    source: str
    kind: str
    text: str
    incomplete: bool = False
    case_sensitive: bool = False
    surface: str = ""

    def to_list(self) -> list[Any]:
        """Compact serialisable form."""
        return [
            list(self.keys),
            self.code,
            self.system,
            self.source,
            self.kind,
            self.text,
            self.incomplete,
            self.case_sensitive,
            self.surface,
        ]

    @classmethod
    def from_list(cls, row: list[Any]) -> Term:
        """Inverse of :meth:`to_list`."""
        keys, code, system, source, kind, text, incomplete, case_sensitive, surface = row
        return cls(
            tuple(keys),
            code,
            system,
            source,
            kind,
            text,
            bool(incomplete),
            bool(case_sensitive),
            surface,
        )


@dataclass(frozen=True, slots=True)
class LexiconEntry:
    """A curated phrase: an abbreviation or synonym that maps to a code.

    Attributes:
        phrase: what the note says ("HTN", "T2DM", "heart attack").
        code: the code it signals.
        system: the code's system.
        kind: diagnosis, symptom, procedure, supply...
        case_sensitive: only count the phrase when written exactly so (abbreviations that are
            also ordinary words).
    """

    phrase: str
    code: str
    system: str
    kind: str
    case_sensitive: bool = False


class _LexiconEntry(RuleModel):
    phrase: NonBlank
    code: str
    system: Literal["ICD10CM", "CPT", "HCPCS"] = "ICD10CM"
    kind: MentionKind = "diagnosis"
    case_sensitive: bool = False
    note: str | None = None  # for people

    def entry(self) -> LexiconEntry:
        """The entry with its code normalised (raises MalformedCodeError)."""
        system, code = normalize_code(self.code, self.system)
        return LexiconEntry(self.phrase.strip(), code, system, self.kind, self.case_sensitive)


class LexiconFile(RuleFile):
    """``clinical_lexicon.json`` (schema ``codesuggest.clinical-lexicon/1``)."""

    schema_id: Literal["codesuggest.clinical-lexicon/1"] = schema_field()
    entries: tuple[_LexiconEntry, ...] = ()


def load_lexicon(text: str | None = None, source: str = "clinical_lexicon.json") -> list[LexiconEntry]:
    """Load and validate the clinical lexicon.

    Args:
        text: the JSON text; None reads the packaged ``resources/clinical_lexicon.json``.
        source: name used in error messages.

    Returns:
        The entries, in file order.

    Raises:
        RuleFileError: wrong schema, unknown keys or bad values (the message names the line and
            the entry).
    """
    if text is None:
        text, source = read_rule_text(LEXICON_FILE)
    f = load_rules(LexiconFile, text, source)
    entries = []
    for i, item in enumerate(f.entries):
        try:
            entries.append(item.entry())
        except MalformedCodeError as exc:
            raise entry_error(text, source, ("entries", i), str(exc)) from None
    return entries


def kind_of(system: str, code: str) -> str:
    """The mention kind a code's term signals."""
    if system == "CPT":
        return "procedure"
    if system == "HCPCS":
        return "drug" if code.startswith("J") else "supply" if code[0] in "AEKL" else "procedure"
    if code[0] == "R":
        return "symptom"
    if code[0] in "VWXY":
        return "external"
    if code[0] == "T" and code[:3] >= "T36" and code[:3] <= "T65":
        return "drug"
    return "diagnosis"


def clean_title(title: str) -> str:
    """Drop the clauses of a title that notes never write (parentheses, "except ...")."""
    return _TITLE_DROP.sub(" ", title)


class TermTable:
    """All terms plus an anchor index for fast matching.

    Args:
        terms: the terms.
    """

    def __init__(self, terms: list[Term]) -> None:
        self.terms = terms
        df: Counter[str] = Counter(k for t in terms for k in t.keys)
        # Keys as frozensets: the subset test against a sentence's keys runs in C.
        self.keysets = [frozenset(t.keys) for t in terms]
        self.anchors: dict[str, list[int]] = defaultdict(list)
        for i, term in enumerate(terms):
            # The rarest key is checked first: few terms share it.
            self.anchors[min(term.keys, key=lambda k: (df[k], k))].append(i)

    def __len__(self) -> int:
        return len(self.terms)

    def to_json(self) -> list[list[Any]]:
        """Serialisable form."""
        return [t.to_list() for t in self.terms]

    @classmethod
    def from_json(cls, rows: list[list[Any]]) -> TermTable:
        """Inverse of :meth:`to_json`."""
        return cls([Term.from_list(r) for r in rows])

    @classmethod
    def build(cls, kb: KnowledgeBase, normalizer: Normalizer, lexicon: list[LexiconEntry]) -> TermTable:
        """Build every term from the knowledge base and the lexicon.

        Args:
            kb: the loaded knowledge base.
            normalizer: the word normaliser shared with the matcher.
            lexicon: curated entries.

        Returns:
            The deduplicated term table.
        """
        seen: set[tuple[tuple[str, ...], str, str]] = set()
        terms: list[Term] = []
        for term in _iter_terms(kb, normalizer, lexicon):
            ident = (term.keys, term.code, term.surface)
            if not term.keys or ident in seen:
                continue
            seen.add(ident)
            terms.append(term)
        counts = Counter(t.source for t in terms)
        logger.info("term table: %d terms %s", len(terms), dict(counts))
        return cls(terms)


def _iter_terms(kb: KnowledgeBase, norm: Normalizer, lexicon: list[LexiconEntry]) -> Iterator[Term]:
    for entry in lexicon:
        if entry.case_sensitive:
            keys = norm.keys(entry.phrase)
            yield Term(
                tuple(sorted(set(keys))),
                entry.code,
                entry.system,
                "lexicon",
                entry.kind,
                entry.phrase,
                case_sensitive=True,
                surface=entry.phrase,
            )
        else:
            yield _term(
                norm.keys(entry.phrase),
                entry.code,
                entry.system,
                "lexicon",
                entry.phrase,
                kind=entry.kind,
            )
    yield from _index_terms(kb, norm)
    for rec in kb.iter_codes("ICD10CM"):
        if rec.placeholder or (rec.seventh and rec.billable and len(rec.code) == 8):
            continue  # 7th-character expansions share their parent's words
        yield from _record_terms(rec, norm)
    for system in ("CPT", "HCPCS"):
        for rec in kb.iter_codes(system):  # type: ignore[arg-type]
            if rec.terminated:
                continue
            yield from _record_terms(rec, norm)


def _term(
    keys: Iterable[str],
    code: str,
    system: str,
    source: str,
    text: str,
    *,
    kind: str | None = None,
    incomplete: bool = False,
) -> Term:
    return Term(
        tuple(sorted(set(keys))),
        code,
        system,
        source,
        kind or kind_of(system, code),
        text,
        incomplete,
    )


def _record_terms(rec: CodeRecord, norm: Normalizer) -> Iterator[Term]:
    source = {"ICD10CM": "title", "CPT": "cpt", "HCPCS": "hcpcs"}[rec.system]
    yield _term(norm.required_keys(clean_title(rec.title)), rec.code, rec.system, source, rec.title)
    for inc in rec.inclusion_terms:
        yield _term(norm.required_keys(clean_title(inc)), rec.code, rec.system, "inclusion", inc)
    for phrase in rec.synonyms:
        yield _term(norm.required_keys(phrase), rec.code, rec.system, source, phrase)


def _path_keys(path: tuple[str, ...], norm: Normalizer) -> frozenset[str]:
    keys: set[str] = set()
    for i, part in enumerate(path):
        if i == 0:
            # "Fracture, traumatic" / "Diabetes, diabetic": the words after the comma qualify the
            # main term and are rarely written in a note.
            part = part.split(",")[0]
        keys |= norm.required_keys(clean_title(part))
    return frozenset(keys)


def _index_terms(kb: KnowledgeBase, norm: Normalizer) -> Iterator[Term]:
    by_path: dict[tuple[str, ...], IndexEntry] = {}
    for entry in kb.index_entries:
        if entry.source in ("index", "external") and entry.code:
            by_path.setdefault(entry.path, entry)
    for entry in kb.index_entries:
        code = entry.code
        incomplete = entry.incomplete
        if code is None and entry.see_path is not None and entry.see:
            target = by_path.get(entry.see_path)
            if target is None or target.code is None:
                continue
            code, incomplete = target.code, target.incomplete
        if code is None or code not in kb:
            continue
        text = " > ".join(entry.path)
        if entry.source == "neoplasm":
            word = NEOPLASM_COLUMNS.get((entry.column or "").lower())
            if word is None:
                continue
            keys = _path_keys(entry.path[1:], norm) | norm.required_keys(word)
            yield _term(keys, code, "ICD10CM", "neoplasm", f"{text} ({entry.column})", incomplete=incomplete)
        elif entry.source == "drug":
            word = DRUG_COLUMNS.get((entry.column or "").lower())
            if word is None:
                continue
            keys = _path_keys(entry.path, norm) | norm.required_keys(word)
            yield _term(
                keys,
                code,
                "ICD10CM",
                "drug",
                f"{text} ({entry.column})",
                kind="drug",
                incomplete=incomplete,
            )
        else:
            source = "external" if entry.source == "external" else "index"
            yield _term(_path_keys(entry.path, norm), code, "ICD10CM", source, text, incomplete=incomplete)
