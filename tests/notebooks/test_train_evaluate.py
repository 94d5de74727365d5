"""The notebooks run end to end on the public API (small settings to keep the suite fast)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["train_evaluate.ipynb"])
def test_notebooks_execute(name: str, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODESUGGEST_NOTEBOOK_DATA", str(data_dir))
    monkeypatch.setenv("CODESUGGEST_NOTEBOOK_TRAIN", "60")
    monkeypatch.setenv("CODESUGGEST_NOTEBOOK_DEV", "20")
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("micro_f1" in str(o.get("data", {})) for o in outputs)
