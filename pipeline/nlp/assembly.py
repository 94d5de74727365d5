"""Assembling, saving and loading the spaCy pipeline.

Order: tokenizer of ``spacy.blank("en")`` -> ``cs_sentences`` -> ``cs_sections`` ->
scispaCy ``abbreviation_detector`` -> ``cs_mentions`` -> ``cs_context`` -> ``cs_attributes`` ->
``cs_candidates``. No statistical model is needed (none can be downloaded here, see
../shared/FINDINGS.md); the knowledge base supplies the vocabulary.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import spacy
from spacy.language import Language

from pipeline.errors import ArtefactError
from pipeline.nlp.components import (  # noqa: F401  (importing a component module registers its factory)
    cs_attributes,
    cs_candidates,
    cs_context,
    cs_mentions,
    cs_sections,
    cs_sentences,
)

logger = logging.getLogger(__name__)

# (factory, component name, needs the knowledge base at initialize)
PIPELINE: tuple[tuple[str, str, bool], ...] = (
    ("cs_sentences", "cs_sentences", False),
    ("cs_sections", "cs_sections", False),
    ("abbreviation_detector", "abbreviations", False),
    ("cs_mentions", "cs_mentions", True),
    ("cs_context", "cs_context", False),
    ("cs_attributes", "cs_attributes", False),
    ("cs_candidates", "cs_candidates", True),
)


def build_pipeline(kb_dir: Path, *, config: dict[str, dict[str, Any]] | None = None) -> Language:
    """Create and initialise the pipeline from a knowledge-base artefact.

    Args:
        kb_dir: the knowledge-base artefact folder.
        config: per-component settings overriding the factories' defaults, e.g.
            ``{"cs_mentions": {"fuzzy": False}}``.

    Returns:
        The initialised pipeline.
    """
    import scispacy.abbreviation  # noqa: F401  (registers abbreviation_detector)

    started = time.perf_counter()
    config = config or {}
    nlp = spacy.blank("en")
    for factory, name, _ in PIPELINE:
        nlp.add_pipe(factory, name=name, config=config.get(name, {}))
    init_components = nlp.config["initialize"]["components"]
    for _, name, needs_kb in PIPELINE:
        if needs_kb:
            init_components[name] = {"kb_path": str(kb_dir)}
    nlp.initialize()
    # The build-time path is not part of the saved pipeline.
    for _, name, needs_kb in PIPELINE:
        if needs_kb:
            init_components.pop(name, None)
    logger.info("pipeline built in %.1f s", time.perf_counter() - started)
    return nlp


def save_pipeline(nlp: Language, folder: Path) -> None:
    """Write the pipeline with ``nlp.to_disk`` (every component persists its own data)."""
    nlp.to_disk(folder)


def load_pipeline(folder: Path) -> Language:
    """Load a pipeline saved by :func:`save_pipeline`.

    Raises:
        ArtefactError: the folder is not a saved pipeline.
    """
    import scispacy.abbreviation  # noqa: F401

    if not (Path(folder) / "config.cfg").is_file():
        raise ArtefactError(f"{folder}: not a saved spaCy pipeline (no config.cfg)")
    return spacy.load(folder)
