"""Building the knowledge base from the reference data (the full build runs once, in conftest)."""

from __future__ import annotations

import logging

import pytest

from pipeline.kb.build import build_knowledge_base


@pytest.mark.slow
def test_build_without_data_uses_the_packaged_tabular(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="pipeline.kb.build"):
        kb = build_knowledge_base(None)
    assert "no data dir" in caplog.text
    stats = kb.stats()
    assert stats["ICD10CM"]["billable"] == 74_719
    assert stats["HCPCS"]["codes"] == 0 and "ICD10CM_INDEX" not in stats
    assert kb.index_entries == [] and kb.index_paths_for("E11.9") == []
    assert kb.lookup("S93.401A").billable
