"""Pictures of molecules: a PNG grid drawn by RDKit (invalid strings as empty cells)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from rdkit import Chem
from rdkit.Chem import Draw

from aevb.atomic import atomic_path
from aevb.molecules.chem import parse


def draw_grid(
    smiles: Sequence[str],
    path: str | os.PathLike,
    *,
    legends: Sequence[str] | None = None,
    per_row: int = 4,
    size: int = 250,
) -> Path:
    """Draw ``smiles`` in a grid, ``per_row`` to a row, each ``size`` pixels square, with
    ``legends`` under them (default: the SMILES); an invalid string is an empty cell
    labelled "invalid". Writes the PNG atomically and returns its path."""
    if not smiles:
        raise ValueError("draw_grid: no molecules to draw")
    parsed = [parse(s) for s in smiles]
    labels = list(legends) if legends is not None else list(smiles)
    labels = [
        label if mol is not None else f"{label} (invalid)"
        for mol, label in zip(parsed, labels, strict=True)
    ]
    mols = [mol or Chem.Mol() for mol in parsed]
    image = Draw.MolsToGridImage(
        mols, molsPerRow=min(per_row, len(mols)), subImgSize=(size, size), legends=labels
    )
    path = Path(path)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return path
