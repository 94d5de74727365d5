"""Text search over the knowledge base: titles, inclusion terms, index paths, synonyms.

Every searchable string of the knowledge base is one short *document* tied to one code: an
ICD-10-CM title or inclusion term, an Alphabetic Index path (``Sprain > ankle``, Neoplasm and Drug
table rows with their column), a HCPCS title or synonym, a CPT title or signal phrase. Words are
lightly normalised (case, accents, a plural ``s``, a few clinical abbreviations such as ``rt`` ->
``right``, stop words), documents are scored with BM25, and a code takes the score of its best
document, raised when that document covers every query word and when the code is billable.

A code that still needs its 7th character (``S93.401``) is offered completed (``S93.401A``): the
7th character whose meaning shares the most words with the query (``subsequent encounter`` ->
``D``), else the first one listed (``A``, initial encounter), next to the incomplete code itself.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from array import array
from collections.abc import Callable, Iterable

import numpy as np

from pipeline.kb.model import SYSTEMS, CodeRecord, IndexEntry, SearchHit, System
from pipeline.kb.sources.icd10cm import place_seventh

logger = logging.getLogger(__name__)

STOP_WORDS = frozenset(
    {
        "of",
        "the",
        "with",
        "and",
        "a",
        "an",
        "in",
        "on",
        "to",
        "for",
        "or",
        "by",
        "at",
        "as",
        "nos",
        "nec",
    }
)
# Abbreviations a coder types for the words the code sets print. Ambiguous ones stay out ("b" as
# in hepatitis B, "ed" for emergency department or erectile dysfunction, "pt" patient or therapy).
ABBREVIATIONS: dict[str, tuple[str, ...]] = {
    "rt": ("right",),
    "r": ("right",),
    "lt": ("left",),
    "l": ("left",),
    "bilat": ("bilateral",),
    "ii": ("2",),
    "iii": ("3",),
    "dm": ("diabetes", "mellitus"),
    "t1dm": ("type", "1", "diabetes", "mellitus"),
    "t2dm": ("type", "2", "diabetes", "mellitus"),
    "htn": ("hypertension",),
    "fx": ("fracture",),
    "hx": ("history",),
    "uti": ("urinary", "tract", "infection"),
    "copd": ("chronic", "obstructive", "pulmonary", "disease"),
    "chf": ("congestive", "heart", "failure"),
    "mi": ("myocardial", "infarction"),
    "cad": ("coronary", "artery", "disease"),
    "afib": ("atrial", "fibrillation"),
    "ckd": ("chronic", "kidney", "disease"),
    "gerd": ("gastro", "esophageal", "reflux", "disease"),
    "est": ("established",),
    "ov": ("office", "visit"),
    "w": (),
    "wo": ("without",),
    "sprained": ("sprain",),
    "fractured": ("fracture",),
    "broken": ("fracture",),
}
K1 = 1.2
B = 0.75
BILLABLE_BOOST = 1.25
FULL_COVERAGE_BOOST = 1.5
_WORD = re.compile(r"[a-z0-9]+")
# Where a matched string comes from (SearchHit.source).
SOURCES = ("title", "inclusion", "index", "neoplasm", "drug", "external", "synonym")


def normalize_words(text: str) -> list[str]:
    """Turn text into search keys: lower case, no accents, abbreviations expanded, stop words out,
    a plural ``s`` removed.

    Args:
        text: any text.

    Returns:
        The keys in order (repeats kept).
    """
    if not text.isascii():
        text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    out: list[str] = []
    for word in _WORD.findall(text.lower()):
        keys = _WORD_KEYS.get(word)
        if keys is None:
            keys = _word_keys(word)
            if len(_WORD_KEYS) < _WORD_CACHE_SIZE:  # bounded: queries bring new words forever
                _WORD_KEYS[word] = keys
        out.extend(keys)
    return out


_WORD_KEYS: dict[str, tuple[str, ...]] = {}
_WORD_CACHE_SIZE = 200_000


def _word_keys(word: str) -> tuple[str, ...]:
    return tuple(_singular(t) for t in ABBREVIATIONS.get(word, (word,)) if t not in STOP_WORDS)


def _singular(word: str) -> str:
    if len(word) <= 3 or not word.endswith("s") or word.endswith(("ss", "us", "is")):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    return word[:-1]


class SearchIndex:
    """BM25 index over the knowledge base's strings (see the module docstring).

    Documents are kept as parallel arrays (code position, source, text) rather than one object
    each: there are about 190,000 of them.

    Args:
        records: the codes, by position.
        doc_code: document -> position of its code in ``records``.
        doc_source: document -> index into ``SOURCES``.
        doc_text: document -> the string as printed.
        postings: key -> (document ids, BM25 weights).
        sevenths: position of a code that still needs a 7th character -> (char, meaning words).
        get_code: finds the record of a typed code (``KnowledgeBase.get``), so that a query that
            is a code puts that code first.
    """

    def __init__(
        self,
        records: list[CodeRecord],
        doc_code: np.ndarray,
        doc_source: np.ndarray,
        doc_text: list[str],
        postings: dict[str, tuple[np.ndarray, np.ndarray]],
        sevenths: dict[int, list[tuple[str, frozenset[str]]]],
        get_code: Callable[[str, System | None], CodeRecord | None] | None = None,
    ) -> None:
        self.records = records
        self.doc_code = doc_code
        self.doc_source = doc_source
        self.doc_text = doc_text
        self.postings = postings
        self.sevenths = sevenths
        self.get_code = get_code
        system_ids = {s: i for i, s in enumerate(SYSTEMS)}
        code_system = np.fromiter((system_ids[r.system] for r in records), dtype=np.int8, count=len(records))
        self._doc_system = code_system[doc_code]
        self._system_ids = system_ids

    @classmethod
    def build(
        cls,
        codes: Iterable[CodeRecord],
        index_entries: Iterable[IndexEntry],
        get_code: Callable[[str, System | None], CodeRecord | None] | None = None,
    ) -> SearchIndex:
        """Collect and index every searchable string of the code sets.

        Args:
            codes: every code record, in tabular order (a 7th-character code right after its
                parent), as ``KnowledgeBase.iter_codes()`` gives them.
            index_entries: the Alphabetic Index entries.
            get_code: finds the record of a typed code (``KnowledgeBase.get``).

        Returns:
            The index.
        """
        records: list[CodeRecord] = []
        position: dict[str, int] = {}
        sevenths: dict[int, list[tuple[str, frozenset[str]]]] = {}
        doc_code = array("i")
        doc_source = array("b")
        doc_text: list[str] = []
        lengths = array("i")
        token_ids = array("i")
        vocab: dict[str, int] = {}
        texts_of: dict[int, set[str]] = {}

        def add(pos: int, source: int, text: str) -> None:
            seen = texts_of.setdefault(pos, set())
            if text in seen:
                return
            seen.add(text)
            tokens = normalize_words(text)
            if tokens:
                doc_code.append(pos)
                doc_source.append(source)
                doc_text.append(text)
                lengths.append(len(tokens))
                token_ids.extend([vocab.setdefault(t, len(vocab)) for t in tokens])

        title, inclusion, synonym = (SOURCES.index(n) for n in ("title", "inclusion", "synonym"))
        meanings: dict[str, frozenset[str]] = {}
        for rec in codes:
            if rec.system == "ICD10CM" and rec.billable and rec.seventh is not None:
                # A 7th-character code (listed right after its parent): offered through the parent.
                parent = position.get(rec.parent or "")
                if parent is not None and parent not in sevenths:
                    sevenths[parent] = [
                        (k, meanings.setdefault(v, frozenset(normalize_words(v)))) for k, v in rec.seventh.items()
                    ]
                continue
            pos = position[rec.code] = len(records)
            records.append(rec)
            add(pos, title, rec.title)
            for term in rec.inclusion_terms:
                add(pos, inclusion, term)
            for phrase in rec.synonyms:
                add(pos, synonym, phrase)
        for entry in index_entries:
            if entry.code is None or entry.code not in position:
                continue
            text = " > ".join(entry.path)
            if entry.column and entry.source in ("neoplasm", "drug"):
                text = f"{text} ({entry.column})"
            source = SOURCES.index(entry.source) if entry.source in SOURCES else 2
            add(position[entry.code], source, text)
        texts_of.clear()
        postings = _postings(np.frombuffer(token_ids, dtype=np.int32), np.frombuffer(lengths, dtype=np.int32), vocab)
        logger.debug("search index: %d codes, %d documents, %d keys", len(records), len(doc_text), len(vocab))
        return cls(
            records,
            np.frombuffer(doc_code, dtype=np.int32).copy(),
            np.frombuffer(doc_source, dtype=np.int8).copy(),
            doc_text,
            postings,
            sevenths,
            get_code=get_code,
        )

    def search(self, text: str, system: System | None = None, limit: int = 20) -> list[SearchHit]:
        """Return the best codes for a query (see the module docstring).

        Args:
            text: the query.
            system: restrict to one system.
            limit: maximum number of hits.

        Returns:
            Hits, best first; an exact code typed as the query comes first.
        """
        if limit <= 0:
            return []
        hits: list[SearchHit] = []
        code_hit = self._code_query(text, system)
        if code_hit is not None:
            hits.append(code_hit)
        words = list(dict.fromkeys(normalize_words(text)))
        if not words:
            return hits[:limit]
        scores = np.zeros(len(self.doc_text), dtype=np.float32)
        matched = np.zeros(len(self.doc_text), dtype=np.int16)
        for word in words:
            posting = self.postings.get(word)
            if posting is None:
                continue
            ids, weights = posting
            scores[ids] += weights
            matched[ids] += 1
        candidates = np.nonzero(matched)[0]
        if system is not None:
            candidates = candidates[self._doc_system[candidates] == self._system_ids[system]]
        if candidates.size == 0:
            return hits[:limit]
        coverage = matched[candidates].astype(np.float32) / len(words)
        final = scores[candidates] * (0.5 + 0.5 * coverage)
        final = np.where(coverage >= 1.0, final * FULL_COVERAGE_BOOST, final)
        # Best document per code: look at enough documents to fill the page after merging.
        keep = min(candidates.size, max(limit * 20, 200))
        top = np.argpartition(-final, keep - 1)[:keep] if keep < candidates.size else np.arange(candidates.size)
        best: dict[int, tuple[float, int]] = {}
        for i in top[np.argsort(-final[top], kind="stable")]:
            doc_id = int(candidates[i])
            pos = int(self.doc_code[doc_id])
            if pos not in best:
                best[pos] = (float(final[i]), doc_id)
        query = set(words)
        ranked: list[tuple[float, int, SearchHit]] = []
        for pos, (score, doc_id) in best.items():
            rec = self.records[pos]
            matched_text = self.doc_text[doc_id]
            source = SOURCES[self.doc_source[doc_id]]
            boost = BILLABLE_BOOST if rec.billable else 1.0
            ranked.append(
                (
                    score * boost,
                    pos,
                    SearchHit(
                        rec.code,
                        rec.system,
                        rec.title,
                        score * boost,
                        matched_text,
                        source,
                        rec.billable,
                    ),
                )
            )
            if pos in self.sevenths:
                char, meaning, overlap = self._pick_seventh(pos, query)
                full = place_seventh(rec.code, char)
                value = score * BILLABLE_BOOST * (1.0 + 0.1 * overlap)
                title = f"{rec.title}, {meaning}"
                # Rank the completed code just before its parent when scores tie.
                ranked.append(
                    (
                        value,
                        pos,
                        SearchHit(full, rec.system, title, value, matched_text, source, True),
                    )
                )
        ranked.sort(key=lambda item: (-item[0], item[1], not item[2].billable))
        known = {h.code for h in hits}
        for _, _, hit in ranked:
            if hit.code not in known:
                hits.append(hit)
                known.add(hit.code)
            if len(hits) >= limit:
                break
        for hit in hits:
            hit.score = round(hit.score, 4)
        return hits

    def _pick_seventh(self, pos: int, query: set[str]) -> tuple[str, str, int]:
        options = self.sevenths[pos]
        char, words = max(options, key=lambda item: len(item[1] & query))
        overlap = len(words & query)
        if overlap == 0:
            char, words = options[0]
        seventh = self.records[pos].seventh or {}
        return char, seventh.get(char, ""), overlap

    def _code_query(self, text: str, system: System | None) -> SearchHit | None:
        stripped = text.strip()
        if self.get_code is None or not stripped or " " in stripped or not any(c.isdigit() for c in stripped):
            return None
        rec = self.get_code(stripped, system)
        if rec is None:
            return None
        return SearchHit(rec.code, rec.system, rec.title, 1000.0, rec.code, "code", rec.billable)


def _postings(
    token_ids: np.ndarray, lengths: np.ndarray, vocab: dict[str, int]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """BM25 weight of every (key, document) pair, grouped by key.

    Args:
        token_ids: the key ids of every document, documents one after the other.
        lengths: the number of keys of each document.
        vocab: key -> id.

    Returns:
        key -> (document ids, weights), document ids ascending.
    """
    n_docs = len(lengths)
    doc_ids = np.repeat(np.arange(n_docs, dtype=np.int64), lengths)
    pairs = token_ids.astype(np.int64) * n_docs + doc_ids
    unique, tf = np.unique(pairs, return_counts=True)  # sorted by key, then document
    token_of = unique // n_docs
    doc_of = (unique % n_docs).astype(np.int32)
    average = float(lengths.mean()) if n_docs else 1.0
    norm = K1 * (1.0 - B + B * lengths.astype(np.float32) / average)
    df = np.bincount(token_of, minlength=len(vocab))
    idf = np.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))
    tf32 = tf.astype(np.float32)
    weights = (idf[token_of] * tf32 * (K1 + 1.0) / (tf32 + norm[doc_of])).astype(np.float32)
    bounds = np.searchsorted(token_of, np.arange(len(vocab) + 1))
    return {
        token: (doc_of[bounds[tid] : bounds[tid + 1]], weights[bounds[tid] : bounds[tid + 1]])
        for token, tid in vocab.items()
    }
