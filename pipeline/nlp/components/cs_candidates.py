"""``cs_candidates``: turns each mention's matched terms into billable candidate codes.

For every term a mention matched, :class:`~pipeline.nlp.candidates.CodeTree` takes the term's code
down to billable codes using the sentence's words and the mention's laterality, episode of care
and fracture details. Per-mention candidates go to ``span._.cs_candidates``; the note-level view,
one entry per code with the mentions that support it, goes to ``doc._.cs_candidates``.
"""

import gzip
import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from spacy.language import Language
from spacy.tokens import Doc
from spacy.util import ensure_path

from pipeline.kb.store import KnowledgeBase
from pipeline.nlp.candidates import Candidate, CodeCandidate, CodeTree
from pipeline.nlp.extensions import MENTIONS, record_timing, register_extensions
from pipeline.nlp.textnorm import Normalizer, WordGroups


@Language.factory(
    "cs_candidates",
    requires=["doc.spans", "span._.cs_matches"],
    assigns=["span._.cs_candidates", "doc._.cs_candidates"],
    default_config={"alternatives": 2, "max_per_term": 4},
)
def make_candidates(nlp: Language, name: str, alternatives: int, max_per_term: int) -> "CandidateComponent":
    """Create the ``cs_candidates`` component (see :class:`CandidateComponent`)."""
    return CandidateComponent(nlp, name, alternatives=alternatives, max_per_term=max_per_term)


class CandidateComponent:
    """Completes matched codes to billable candidates.

    Args:
        nlp: the pipeline.
        name: component name.
        alternatives: close runner-up children kept at each level of the code tree.
        max_per_term: billable codes kept per matched term.
    """

    def __init__(
        self,
        nlp: Language,
        name: str = "cs_candidates",
        *,
        alternatives: int = 2,
        max_per_term: int = 4,
    ) -> None:
        register_extensions()
        self.name = name
        self.alternatives = alternatives
        self.max_per_term = max_per_term
        self.tree: CodeTree | None = None

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Any]] | None = None,
        *,
        nlp: Language | None = None,
        kb_path: str | None = None,
        word_groups_path: str | None = None,
    ) -> None:
        """Derive the code tree from a knowledge-base artefact (build time only).

        Args:
            get_examples: unused (spaCy's signature).
            nlp: unused.
            kb_path: the knowledge-base artefact folder.
            word_groups_path: a word-groups JSON; None uses the packaged one.
        """
        if kb_path is None:
            raise ValueError("cs_candidates.initialize needs kb_path (the knowledge-base artefact folder)")
        groups = WordGroups.read(word_groups_path or None)
        self.tree = CodeTree.build(KnowledgeBase.load(Path(kb_path)), Normalizer(groups))

    def __call__(self, doc: Doc) -> Doc:
        """Attach candidates to every mention and the code-level view to the doc."""
        if self.tree is None:
            raise ValueError("cs_candidates has no code tree: initialize the pipeline or load it from disk")
        started = time.perf_counter()
        by_code: dict[str, CodeCandidate] = {}
        context_of: dict[int, frozenset[str]] = {}
        mentions = doc.spans[MENTIONS]
        # Token keys read once (each ``token._`` access builds an accessor object; this loop
        # ran once per sentence token and mention).
        token_keys = [t._.cs_key for t in doc] if len(mentions) else []
        for index, span in enumerate(mentions):
            sent = span.sent if doc.has_annotation("SENT_START") else doc[:]
            if sent.start not in context_of:
                context_of[sent.start] = frozenset(k for k in token_keys[sent.start : sent.end] if k)
            context = context_of[sent.start]
            underscore = span._
            attributes = underscore.cs_attributes or {}
            laterality, episode = underscore.cs_laterality, underscore.cs_episode
            found: dict[str, Candidate] = {}
            for match in underscore.cs_matches or ():
                completions = self.tree.complete(
                    match.code,
                    context,
                    laterality=laterality,
                    episode=episode,
                    attributes=attributes,
                    alternatives=self.alternatives,
                    max_results=self.max_per_term,
                )
                for code, penalty, defaulted in completions:
                    cand = Candidate(
                        code=code,
                        system=match.system,
                        source=match.source,
                        term=match.text,
                        similarity=match.similarity,
                        completion=penalty,
                        n_keys=match.n_keys,
                        compactness=match.compactness,
                        subsumed=match.subsumed,
                        defaulted=defaulted,
                    )
                    previous = found.get(code)
                    if previous is None or _better(cand, previous):
                        found[code] = cand
            ranked = sorted(found.values(), key=_rank_key)
            underscore.cs_candidates = ranked
            for cand in ranked:
                entry = by_code.get(cand.code)
                if entry is None:
                    entry = by_code[cand.code] = CodeCandidate(cand.code, cand.system)
                entry.mentions.append(index)
                entry.candidates.append(cand)
        doc._.cs_candidates = by_code
        record_timing(doc, self.name, started)
        return doc

    def to_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> None:
        """Write the code tree and settings into ``path``."""
        if self.tree is None:
            raise ValueError("cs_candidates has nothing to save: initialize it first")
        folder = ensure_path(path)
        folder.mkdir(parents=True, exist_ok=True)
        with gzip.open(folder / "code_tree.json.gz", "wt", encoding="utf-8", compresslevel=6) as handle:
            json.dump(self.tree.to_json(), handle, separators=(",", ":"))
        cfg = {"alternatives": self.alternatives, "max_per_term": self.max_per_term}
        (folder / "cfg.json").write_text(json.dumps(cfg), "utf-8")

    def from_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> "CandidateComponent":
        """Read what :meth:`to_disk` wrote."""
        folder = ensure_path(path)
        with gzip.open(folder / "code_tree.json.gz", "rt", encoding="utf-8") as handle:
            self.tree = CodeTree.from_json(json.load(handle))
        cfg = json.loads((folder / "cfg.json").read_text("utf-8"))
        self.alternatives = int(cfg["alternatives"])
        self.max_per_term = int(cfg["max_per_term"])
        return self


def _rank_key(c: Candidate) -> tuple[float, ...]:
    return (c.completion - c.similarity - 0.1 * c.n_keys + (0.5 if c.subsumed else 0.0), c.code)  # type: ignore[return-value]


def _better(a: Candidate, b: Candidate) -> bool:
    return _rank_key(a) < _rank_key(b)
