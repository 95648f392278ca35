"""The teaching notebooks in ``notebooks/`` run from top to bottom without an error.

Each notebook checks its own claims with asserts (against a closed form or the
vectorized backprop reference), so executing it is its test. The kernel starts in the
repository root with the root first on ``PYTHONPATH``, so that it imports this
checkout's ``neurosim``, and with matplotlib's non-interactive ``Agg`` backend. The
committed notebooks carry no outputs: they are the sources, not a record of a run.
"""

import importlib.util
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT_S = 300  # a cold numba cache compiles the kernels inside the first cell that runs them

_missing = [name for name in ("nbclient", "nbformat", "ipykernel") if importlib.util.find_spec(name) is None]
needs_jupyter = pytest.mark.skipif(
    bool(_missing), reason=f"notebook tooling not installed ({', '.join(_missing)}); pip install '.[test]'"
)

# prepended to every notebook run: the kernel must use this checkout's package
IMPORT_CHECK = f"""
import pathlib
import neurosim
assert pathlib.Path(neurosim.__file__).resolve().parent == pathlib.Path({str(ROOT / "neurosim")!r}), neurosim.__file__
"""


def test_the_notebooks_are_found():
    # an empty glob would leave the parametrized tests below with nothing to run
    names = {p.name for p in NOTEBOOKS}
    assert {"01_single_neuron_relaxation.ipynb", "02_zil_error_wave.ipynb", "03_fazil_phi_detector.ipynb",
            "04_lstm_pc_vs_backprop.ipynb"} <= names


@needs_jupyter
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path):
    import nbformat

    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: strip the outputs"


@needs_jupyter
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(IMPORT_CHECK))
    client = NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT)}})
    client.execute()  # raises CellExecutionError, naming the cell, on any error or failed assert
