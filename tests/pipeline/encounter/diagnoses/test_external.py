"""The External Cause Index read against a sentence (I.C.20), on the default knowledge base."""

from __future__ import annotations

import pytest

from pipeline.suggest import Suggester


@pytest.mark.parametrize(
    ("sentence", "code"),
    [
        ("He lost his footing stepping off a sidewalk curb and fell.", "W10.1"),
        ("He fell about 8 feet from a ladder.", "W11"),
        ("She cut her hand with a kitchen knife.", "W26.0"),
        ("She slipped on ice and fell.", "W00.0"),
        ("No new injury.", None),
    ],
)
def test_external_cause_index_finds_the_mechanism(suggester: Suggester, sentence: str, code: str | None) -> None:
    found = suggester.encounter.diagnoses.external.find(sentence)
    assert (found[2] if found else None) == code
