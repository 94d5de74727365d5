"""Fixtures shared by every test package."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.locations import default_data_dir


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The reference data folder (always present in CI; nothing is skipped)."""
    return default_data_dir()
