"""Fixtures shared by every test package."""

from __future__ import annotations

from pathlib import Path

import pytest
from spacy.language import Language

from pipeline.kb.build import build_knowledge_base
from pipeline.kb.store import KnowledgeBase
from pipeline.locations import default_data_dir
from pipeline.suggest import Suggester


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The reference data folder (always present in CI; nothing is skipped)."""
    return default_data_dir()


@pytest.fixture(scope="session")
def kb_dir(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A knowledge base built from the reference data and saved, once per test session (~10 s)."""
    folder = tmp_path_factory.mktemp("kb")
    build_knowledge_base(data_dir).save(folder)
    return folder


@pytest.fixture(scope="session")
def kb(kb_dir: Path) -> KnowledgeBase:
    """The session's knowledge base, read back from :func:`kb_dir` (so every test covers load)."""
    return KnowledgeBase.load(kb_dir)


@pytest.fixture(scope="session")
def suggester() -> Suggester:
    """The committed default model with the committed knowledge base, loaded once."""
    return Suggester.load()


@pytest.fixture(scope="session")
def nlp(suggester: Suggester) -> Language:
    """The default model's spaCy pipeline."""
    return suggester.nlp
