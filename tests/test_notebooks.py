"""Every notebook runs top to bottom (a failing cell fails the test), is stored without outputs, and shows no
TensorFlow chatter (start-up notes, C++ log lines, retracing warnings)."""

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT = 600
CHATTER = re.compile(r"^[IWEF]\d{4} |absl::InitializeLog|oneDNN|cpu_feature_guard|retracing", re.M)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path):
    notebook = nbformat.read(path, as_version=4)
    assert all(not cell.get("outputs") and not cell.get("execution_count")
               for cell in notebook.cells if cell.cell_type == "code"), "strip the outputs before committing"
    NotebookClient(notebook, timeout=CELL_TIMEOUT, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    errors = [o for cell in notebook.cells for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    streams = "".join(o["text"] for cell in notebook.cells for o in cell.get("outputs", [])
                      if o.get("output_type") == "stream")
    assert not CHATTER.search(streams), CHATTER.search(streams).group(0)
