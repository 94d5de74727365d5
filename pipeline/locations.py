"""Default locations of the committed artefacts and of the reference data.

Only the CLI and the build scripts use these defaults; every one can be overridden by a flag
(``--kb``, ``--model``, ``--data-dir``) or, in the service, by a ``CODESUGGEST_*`` setting.
spaCy components never read paths themselves.
"""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = PROJECT_ROOT / "models"


def default_kb_dir() -> Path:
    """The committed code knowledge base artefact."""
    return MODELS_DIR / "kb"


def default_model_dir() -> Path:
    """The committed default suggestion model."""
    return MODELS_DIR / "default"


def default_data_dir() -> Path:
    """Where the reference data is read from: ``./data`` when ``make data`` filled it, else ``../shared/data``."""
    local = PROJECT_ROOT / "data"
    if (local / "README.md").is_file() or (local / "icd10cm").is_dir():
        return local
    return PROJECT_ROOT.parent / "shared" / "data"
