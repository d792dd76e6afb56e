"""The MOSES ``Filters`` metric: does a molecule pass the rules that built the dataset?

A molecule passes (MOSES ``mol_passes_filters``) when it has no ring of 8 or more atoms, no
charged atom, only the atoms C, N, S, O, F, Cl, Br, H, matches none of the structural
alerts (the medicinal-chemistry filters of ``mcf.csv`` and the PAINS of
``wehi_pains.csv``, matched with explicit hydrogens, since some alerts name them), and its
SMILES without stereochemistry parses again.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from rdkit import Chem

from aevb.data.errors import DataError
from aevb.molecules.chem import quiet
from aevb.molecules.data import load_filters

ALLOWED_ATOMS = frozenset({"C", "N", "S", "O", "F", "Cl", "Br", "H"})
"""The elements of the MOSES dataset."""

MAX_RING = 7
"""The largest ring allowed, in atoms (MOSES refuses rings of 8 or more)."""


@dataclass(frozen=True)
class Filters:
    """Compiled structural alerts.

    Attributes:
        names: the alerts' names, in file order (MCF then PAINS).
        patterns: the compiled SMARTS, one per name.
    """

    names: tuple[str, ...]
    patterns: tuple[Chem.Mol, ...] = field(repr=False)

    @classmethod
    def from_smarts(cls, alerts: Sequence[tuple[str, str]]) -> Filters:
        """Compile ``(name, SMARTS)`` pairs; a :class:`DataError` names one that does not parse."""
        patterns = []
        for name, smarts in alerts:
            with quiet():
                pattern = Chem.MolFromSmarts(smarts)
            if pattern is None:
                raise DataError(f"filter {name!r}: SMARTS {smarts[:60]!r} does not parse")
            patterns.append(pattern)
        return cls(tuple(name for name, _ in alerts), tuple(patterns))

    @classmethod
    def moses(cls, data_dir: str | os.PathLike | None = None, download: bool = True) -> Filters:
        """The 22 MCF and 480 PAINS alerts of MOSES, from its files in the data dir."""
        return cls.from_smarts(load_filters(data_dir, download))

    def alerts(self, mol: Chem.Mol) -> list[str]:
        """The names of the alerts that ``mol`` matches (hydrogens made explicit)."""
        with_h = Chem.AddHs(mol)
        return [
            n for n, p in zip(self.names, self.patterns, strict=True) if with_h.HasSubstructMatch(p)
        ]

    def passes(self, mol: Chem.Mol) -> bool:
        """Whether the valid molecule ``mol`` passes every MOSES filter (see the module)."""
        rings = mol.GetRingInfo().AtomRings()
        if any(len(ring) > MAX_RING for ring in rings):
            return False
        atoms = mol.GetAtoms()
        if any(a.GetFormalCharge() != 0 for a in atoms):
            return False
        if any(a.GetSymbol() not in ALLOWED_ATOMS for a in atoms):
            return False
        with_h = Chem.AddHs(mol)
        if any(with_h.HasSubstructMatch(p) for p in self.patterns):
            return False
        smiles = Chem.MolToSmiles(mol, isomericSmiles=False)
        with quiet():
            return bool(smiles) and Chem.MolFromSmiles(smiles) is not None
