"""The tutorial notebooks (docs/tutorials) run top to bottom, and are committed clean.

Each notebook is executed by nbclient in a fresh kernel, in a temporary working folder, with
``AEVB_FIGURES`` (where a notebook saves its figures) and ``TMPDIR`` (its run folders) inside
pytest's temporary folder, so a run leaves the working tree as it found it. Every figure a
notebook saves must be one of the committed ``docs/figures/tutorial-*.png``, which the
tutorials' README shows. The committed notebooks hold no outputs and no execution counts.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
TUTORIALS = REPO / "docs" / "tutorials"
FIGURES = REPO / "docs" / "figures"
NOTEBOOKS = sorted(TUTORIALS.glob("*.ipynb"))
CELL_TIMEOUT = 300
"""Seconds one cell may run: each notebook takes well under a minute on 2 CPU cores."""


def test_the_three_tutorials_are_found() -> None:
    assert [p.name for p in NOTEBOOKS] == [
        "01-elbo-from-scratch.ipynb",
        "02-latent-space.ipynb",
        "03-vaes-in-practice.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata.kernelspec.name == "python3"
    for i, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}, cell {i}: outputs committed"
            assert cell.execution_count is None, f"{path.name}, cell {i}: execution count"
        assert "execution" not in cell.metadata, f"{path.name}, cell {i}: execution timings"
    assert path.name in (TUTORIALS / "README.md").read_text(), "the README lists it"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    figures, work, temporary = tmp_path / "figures", tmp_path / "work", tmp_path / "tmp"
    work.mkdir()
    temporary.mkdir()
    monkeypatch.setenv("AEVB_FIGURES", str(figures))
    monkeypatch.setenv("TMPDIR", str(temporary))  # the kernel's run folders
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",  # ipykernel's own spec: the python running the tests
        resources={"metadata": {"path": str(work)}},
    )
    client.execute()  # a failing cell raises CellExecutionError, naming the cell
    saved = {p.name for p in figures.glob("*.png")}
    assert saved, f"{path.name} saved no figure"
    missing = saved - {p.name for p in FIGURES.glob("tutorial-*.png")}
    assert not missing, f"{path.name} saved figures that docs/figures lacks: {sorted(missing)}"
