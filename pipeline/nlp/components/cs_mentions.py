"""``cs_mentions``: finds clinical mentions by matching knowledge-base terms in each sentence.

A term matches when all its required keys (see :mod:`pipeline.nlp.textnorm`) occur in one sentence,
in any order, within a window a little wider than the term itself. Abbreviations defined in the
note ("chronic obstructive pulmonary disease (COPD)", found by scispaCy's AbbreviationDetector)
make the short form carry the long form's keys. Overlapping matches become overlapping spans in
``doc.spans["cs_mentions"]``; each span lists the terms it matched in ``span._.cs_matches``.
"""

import gzip
import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.util import ensure_path

from pipeline.kb.store import KnowledgeBase
from pipeline.nlp.extensions import MENTIONS, record_timing, register_extensions
from pipeline.nlp.fuzzy import FuzzyIndex
from pipeline.nlp.terms import SOURCES, Term, TermTable, kind_of, load_lexicon
from pipeline.nlp.textnorm import Normalizer, WordGroups

logger = logging.getLogger(__name__)

_SOURCE_RANK = {s: i for i, s in enumerate(SOURCES)}
# Phrases worth a fuzzy lookup: names of codes, not table rows ("Neoplasm > colon (benign)").
FUZZY_SOURCES = frozenset({"lexicon", "index", "inclusion", "title", "external", "cpt", "hcpcs"})


@dataclass(slots=True)
class TermMatch:
    """One term found in a sentence.

    Attributes:
        term: index of the term in the table.
        code: the term's code (may still need characters).
        system: the code's system.
        source: where the term comes from (index, title, lexicon...).
        kind: diagnosis, symptom, procedure, supply, external or drug.
        text: the term as a coder reads it.
        incomplete: the index printed the code with a dash.
        n_keys: how many words the term required (more is more specific).
        tokens: doc indices of the matched tokens.
        subsumed: another match in the sentence covers these tokens and more.
        similarity: 1.0 for a term match; the char-3-gram cosine for a fuzzy match.
    """

    term: int
    code: str
    system: str
    source: str
    kind: str
    text: str
    incomplete: bool
    n_keys: int
    tokens: tuple[int, ...]
    subsumed: bool = False
    similarity: float = 1.0

    @property
    def compactness(self) -> float:
        """Matched words over the span's width: 1.0 when the words are adjacent."""
        width = self.tokens[-1] - self.tokens[0] + 1
        return len(self.tokens) / width


@Language.factory(
    "cs_mentions",
    requires=["token.is_sent_start"],
    assigns=["doc.spans", "span._.cs_matches", "span._.cs_kind", "token._.cs_key"],
    default_config={
        "window_slack": 6,
        "max_terms_per_sentence": 400,
        "fuzzy": True,
        "fuzzy_threshold": 0.7,
        "fuzzy_k": 3,
        "max_chunks": 120,
    },
)
def make_mentions(
    nlp: Language,
    name: str,
    window_slack: int,
    max_terms_per_sentence: int,
    fuzzy: bool,
    fuzzy_threshold: float,
    fuzzy_k: int,
    max_chunks: int,
) -> "MentionMatcher":
    """Create the ``cs_mentions`` component (see :class:`MentionMatcher`)."""
    return MentionMatcher(
        nlp,
        name,
        window_slack=window_slack,
        max_terms_per_sentence=max_terms_per_sentence,
        fuzzy=fuzzy,
        fuzzy_threshold=fuzzy_threshold,
        fuzzy_k=fuzzy_k,
        max_chunks=max_chunks,
    )


class MentionMatcher:
    """Matches knowledge-base terms in sentences and records them as mention spans.

    Args:
        nlp: the pipeline.
        name: component name.
        window_slack: how many extra non-stop words may sit between a term's words.
        max_terms_per_sentence: guard against pathological sentences (very long lists).
        fuzzy: also look up sentence chunks in the char-3-gram index of knowledge-base phrases.
        fuzzy_threshold: lowest cosine similarity kept.
        fuzzy_k: neighbours asked per chunk.
        max_chunks: chunks looked up per note at most (the first ones).
    """

    def __init__(
        self,
        nlp: Language,
        name: str = "cs_mentions",
        *,
        window_slack: int = 6,
        max_terms_per_sentence: int = 400,
        fuzzy: bool = True,
        fuzzy_threshold: float = 0.7,
        fuzzy_k: int = 3,
        max_chunks: int = 120,
    ) -> None:
        register_extensions()
        self.name = name
        self.window_slack = window_slack
        self.max_terms_per_sentence = max_terms_per_sentence
        self.fuzzy = fuzzy
        self.fuzzy_threshold = fuzzy_threshold
        self.fuzzy_k = fuzzy_k
        self.max_chunks = max_chunks
        self.word_groups: WordGroups | None = None
        self.normalizer: Normalizer | None = None
        self.table: TermTable | None = None
        self.fuzzy_index: FuzzyIndex | None = None

    # -- building ------------------------------------------------------------------------------
    def initialize(
        self,
        get_examples: Callable[[], Iterable[Any]] | None = None,
        *,
        nlp: Language | None = None,
        kb_path: str | None = None,
        lexicon_path: str | None = None,
        word_groups_path: str | None = None,
    ) -> None:
        """Build the term table from a knowledge-base artefact (build time only).

        Args:
            get_examples: unused (spaCy's signature).
            nlp: unused.
            kb_path: the knowledge-base artefact folder.
            lexicon_path: a clinical lexicon JSON; None uses the packaged one.
            word_groups_path: a word-groups JSON; None uses the packaged one.
        """
        if kb_path is None:
            raise ValueError("cs_mentions.initialize needs kb_path (the knowledge-base artefact folder)")
        kb = KnowledgeBase.load(Path(kb_path))
        self.word_groups = WordGroups.read(word_groups_path or None)
        self.normalizer = Normalizer(self.word_groups)
        lexicon = load_lexicon(Path(lexicon_path).read_text("utf-8"), lexicon_path) if lexicon_path else load_lexicon()
        self.table = TermTable.build(kb, self.normalizer, lexicon)
        if self.fuzzy:
            self.fuzzy_index = FuzzyIndex.build(
                (t.text, f"{t.system}|{t.code}") for t in self.table.terms if t.source in FUZZY_SOURCES
            )

    def set_table(self, table: TermTable, word_groups: WordGroups, fuzzy_index: FuzzyIndex | None = None) -> None:
        """Use an already built term table (tests, or a table shared between pipelines)."""
        self.table = table
        self.word_groups = word_groups
        self.normalizer = Normalizer(word_groups)
        self.fuzzy_index = fuzzy_index

    # -- annotating ----------------------------------------------------------------------------
    def __call__(self, doc: Doc) -> Doc:
        """Find mentions; sets ``doc.spans["cs_mentions"]``."""
        if self.table is None or self.normalizer is None:
            raise ValueError("cs_mentions has no term table: initialize the pipeline or load it from disk")
        started = time.perf_counter()
        keys = self._token_keys(doc)
        sentences = list(doc.sents) if doc.has_annotation("SENT_START") else [doc[:]]
        by_span: dict[tuple[int, int], list[TermMatch]] = defaultdict(list)
        chunks: list[tuple[int, int]] = []
        for sent in sentences:
            matches = self._match_sentence(doc, sent.start, sent.end, keys)
            _mark_subsumed(matches)
            for match in matches:
                by_span[(match.tokens[0], match.tokens[-1] + 1)].append(match)
            if self.fuzzy_index is not None and len(chunks) < self.max_chunks:
                # A chunk whose words an exact term of two or more words already covers adds
                # nothing but cost.
                covered = {i for m in matches if m.n_keys > 1 and not m.subsumed for i in m.tokens}
                for start, end in _chunks(doc, sent.start, sent.end, keys):
                    if any(keys[i] and i not in covered for i in range(start, end)):
                        chunks.append((start, end))
        if chunks:
            self._fuzzy(doc, chunks[: self.max_chunks], by_span)
        spans = []
        for (start, end), matches in sorted(by_span.items()):
            matches.sort(key=lambda m: (-m.n_keys, _SOURCE_RANK.get(m.source, 99), m.code))
            span = Span(doc, start, end, label=matches[0].kind.upper())
            span._.cs_matches = matches
            span._.cs_kind = matches[0].kind
            spans.append(span)
        doc.spans[MENTIONS] = spans
        record_timing(doc, self.name, started)
        return doc

    def _fuzzy(
        self,
        doc: Doc,
        chunks: list[tuple[int, int]],
        by_span: dict[tuple[int, int], list[TermMatch]],
    ) -> None:
        assert self.fuzzy_index is not None
        texts = [doc[s:e].text for s, e in chunks]
        for (start, end), hits in zip(
            chunks, self.fuzzy_index.query(texts, self.fuzzy_k, self.fuzzy_threshold), strict=True
        ):
            if not hits:
                continue
            known = {m.code for m in by_span.get((start, end), ())}
            tokens = tuple(i for i in range(start, end) if doc[i]._.cs_key)
            for concept, similarity, alias in hits:
                system, code = concept.split("|", 1)
                if code in known:
                    continue
                by_span[(start, end)].append(
                    TermMatch(
                        -1,
                        code,
                        system,
                        "fuzzy",
                        kind_of(system, code),
                        alias,
                        False,
                        len(tokens),
                        tokens or (start,),
                        similarity=similarity,
                    )
                )

    def _token_keys(self, doc: Doc) -> list[tuple[str, ...]]:
        assert self.normalizer is not None
        key = self.normalizer.key
        keys: list[tuple[str, ...]] = []
        for token in doc:
            k = key(token.text) if (token.is_alpha or token.is_digit or token.text.isalnum()) else None
            token._.cs_key = k
            keys.append((k,) if k else ())
        # Abbreviations defined in the note carry their long form's words.
        abbreviations = getattr(doc._, "abbreviations", None) if Doc.has_extension("abbreviations") else None
        for short in abbreviations or ():
            long_form = short._.long_form
            if long_form is None:
                continue
            long_keys = tuple(dict.fromkeys(self.normalizer.keys(long_form.text)))
            for i in range(short.start, short.end):
                keys[i] = tuple(dict.fromkeys(keys[i] + long_keys))
        return keys

    def _match_sentence(self, doc: Doc, start: int, end: int, keys: list[tuple[str, ...]]) -> list[TermMatch]:
        assert self.table is not None
        positions: dict[str, list[int]] = defaultdict(list)
        ordinal: dict[int, int] = {}  # doc index -> position among non-stop tokens
        n = 0
        for i in range(start, end):
            if keys[i]:
                ordinal[i] = n
                n += 1
                for k in keys[i]:
                    positions[k].append(i)
        if not positions:
            return []
        present = set(positions)
        terms, keysets = self.table.terms, self.table.keysets
        found: list[TermMatch] = []
        for anchor in list(present):
            for ti in self.table.anchors.get(anchor, ()):
                if not keysets[ti] <= present:
                    continue
                term = terms[ti]
                tokens = self._place(term, positions, ordinal)
                if tokens is None:
                    continue
                if term.case_sensitive and not any(doc[i].text == term.surface for i in tokens):
                    continue
                found.append(
                    TermMatch(
                        ti,
                        term.code,
                        term.system,
                        term.source,
                        term.kind,
                        term.text,
                        term.incomplete,
                        len(term.keys),
                        tokens,
                    )
                )
                if len(found) >= self.max_terms_per_sentence:
                    logger.debug("sentence at token %d hit the term limit", start)
                    return found
        return found

    def _place(self, term: Term, positions: dict[str, list[int]], ordinal: dict[int, int]) -> tuple[int, ...] | None:
        """Choose one occurrence per key, as close together as possible; None if too spread."""
        best: tuple[int, ...] | None = None
        best_width = 1 << 30
        anchor_positions = positions[term.keys[0]]
        for a in anchor_positions[:4]:
            chosen = {a}
            for k in term.keys[1:]:
                occ = positions[k]
                chosen.add(min(occ, key=lambda p: abs(p - a)) if len(occ) > 1 else occ[0])
            lo, hi = min(chosen), max(chosen)
            width = ordinal[hi] - ordinal[lo]
            if width < best_width:
                best_width, best = width, tuple(sorted(chosen))
        if best is None or best_width > len(term.keys) + self.window_slack - 1:
            return None
        return best

    # -- persistence ---------------------------------------------------------------------------
    def to_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> None:
        """Write the term table, word groups and settings into ``path``."""
        if self.table is None or self.word_groups is None:
            raise ValueError("cs_mentions has nothing to save: initialize it first")
        folder = ensure_path(path)
        folder.mkdir(parents=True, exist_ok=True)
        with gzip.open(folder / "terms.json.gz", "wt", encoding="utf-8", compresslevel=6) as handle:
            json.dump(
                {"schema": "codesuggest.terms/1", "terms": self.table.to_json()},
                handle,
                separators=(",", ":"),
            )
        (folder / "word_groups.json").write_text(json.dumps(self.word_groups.to_dict(), indent=1), "utf-8")
        cfg = {
            "window_slack": self.window_slack,
            "max_terms_per_sentence": self.max_terms_per_sentence,
            "fuzzy": self.fuzzy_index is not None,
            "fuzzy_threshold": self.fuzzy_threshold,
            "fuzzy_k": self.fuzzy_k,
            "max_chunks": self.max_chunks,
        }
        (folder / "cfg.json").write_text(json.dumps(cfg), "utf-8")
        if self.fuzzy_index is not None:
            self.fuzzy_index.to_disk(folder / "fuzzy")

    def from_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> "MentionMatcher":
        """Read what :meth:`to_disk` wrote."""
        folder = ensure_path(path)
        with gzip.open(folder / "terms.json.gz", "rt", encoding="utf-8") as handle:
            data = json.load(handle)
        if data.get("schema") != "codesuggest.terms/1":
            raise ValueError(f"{folder}/terms.json.gz: unexpected schema {data.get('schema')!r}")
        groups_file = folder / "word_groups.json"
        word_groups = WordGroups.read(groups_file)
        cfg = json.loads((folder / "cfg.json").read_text("utf-8"))
        self.window_slack = int(cfg["window_slack"])
        self.max_terms_per_sentence = int(cfg["max_terms_per_sentence"])
        self.fuzzy = bool(cfg["fuzzy"])
        self.fuzzy_threshold = float(cfg["fuzzy_threshold"])
        self.fuzzy_k = int(cfg["fuzzy_k"])
        self.max_chunks = int(cfg["max_chunks"])
        fuzzy_index = FuzzyIndex.from_disk(folder / "fuzzy") if self.fuzzy else None
        self.set_table(TermTable.from_json(data["terms"]), word_groups, fuzzy_index)
        return self


def _chunks(doc: Doc, start: int, end: int, keys: list[tuple[str, ...]]) -> list[tuple[int, int]]:
    """Split a sentence into short phrases at punctuation and clause words, for fuzzy lookup."""
    out = []
    chunk_start = start
    for i in range(start, end + 1):
        boundary = i == end or doc[i].is_punct or doc[i].lower_ in _CHUNK_BREAKS
        if boundary:
            content = [j for j in range(chunk_start, i) if keys[j]]
            if content and 1 <= len(content) <= 8 and sum(len(doc[j]) for j in content) >= 5:
                out.append((content[0], content[-1] + 1))
            chunk_start = i + 1
    return out


# Clause words, and negation and uncertainty words (a chunk must not swallow its own ConText
# trigger).
_CHUNK_BREAKS = frozenset(
    {
        *("and", "or", "but", "with", "without", "was", "were", "is", "are", "has", "had", "have"),
        *("who", "which", "that", "showed", "revealed", "presented", "presenting", "after", "because"),
        *("since", "no", "not", "denies", "denied", "deny", "negative", "nor", "neither", "possible"),
        *("probable", "suspected"),
    }
)


def _mark_subsumed(matches: list[TermMatch]) -> None:
    """Flag matches whose tokens are a strict subset of another match's tokens."""
    if len(matches) < 2:
        return
    token_sets = [frozenset(m.tokens) for m in matches]
    for i, mi in enumerate(matches):
        ti = token_sets[i]
        for j, tj in enumerate(token_sets):
            if i != j and len(tj) > len(ti) and ti < tj:
                mi.subsumed = True
                break
