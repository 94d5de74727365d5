"""Excludes notes: a failing lookup is an error, never a silently skipped guideline rule."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.encounter.coder import EncounterCoder
from pipeline.kb.store import KnowledgeBase
from pipeline.suggest import Suggester

NOTE = "OFFICE VISIT - ESTABLISHED PATIENT\nASSESSMENT:\n1. Type 2 diabetes mellitus.\n2. Essential hypertension.\n"


class _BrokenExcludes:
    """The knowledge base with an Excludes lookup that fails, as a bug in it would."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self._kb = kb

    def __getattr__(self, name: str) -> Any:
        return getattr(self._kb, name)

    def excludes1_source(self, a: str, b: str) -> tuple[str, str] | None:
        raise RuntimeError(f"excludes lookup failed for {a} and {b}")


def test_excludes_lookup_failure_propagates(suggester: Suggester) -> None:
    working = EncounterCoder(suggester.kb).code(suggester.nlp(NOTE), [], threshold=0.5, setting="outpatient")
    assert len([line for line in working.code_set if line.system == "ICD10CM"]) >= 2  # a pair to check
    broken = EncounterCoder(_BrokenExcludes(suggester.kb))  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="excludes lookup failed"):
        broken.code(suggester.nlp(NOTE), [], threshold=0.5, setting="outpatient")
