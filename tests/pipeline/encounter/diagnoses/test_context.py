"""Text helpers the diagnosis stages share: with/without polarity, the side a title names."""

from __future__ import annotations

import pytest

from pipeline.encounter.diagnoses.context import polarity_conflict, side_of_title


@pytest.mark.parametrize(
    ("term", "clause", "conflict"),
    [
        ("Acute cystitis with hematuria", "acute cystitis without hematuria", True),
        ("Acute cystitis without hematuria", "acute cystitis without hematuria", False),
        ("Unspecified dementia, with other behavioral disturbance", "dementia, without behavioral disturbance", True),
        ("Mild persistent asthma with (acute) exacerbation", "mild persistent asthma with acute exacerbation", False),
    ],
)
def test_context_polarity_conflict_with_and_without(term: str, clause: str, conflict: bool) -> None:
    assert polarity_conflict(term, clause) is conflict


@pytest.mark.parametrize(
    ("title", "side"),
    [
        ("Sprain of other ligament of right ankle", "right"),
        ("Bilateral primary osteoarthritis of knee", "bilateral"),
        ("Sprain of unspecified ligament of unspecified ankle", "unspecified"),
        ("Essential (primary) hypertension", None),
    ],
)
def test_context_side_of_title(title: str, side: str | None) -> None:
    assert side_of_title(title) == side
