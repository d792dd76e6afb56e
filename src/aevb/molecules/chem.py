"""RDKit in one place: SMILES parsed as MOSES parses them, canonical SMILES, quiet logs.

Callers parse one molecule at a time and keep only what they need of it (a canonical
SMILES, a fingerprint): an RDKit molecule takes about 10 kB, so a list of the 1.6M MOSES
training molecules would not fit in memory.
"""

from __future__ import annotations

from rdkit import Chem, rdBase

MAX_SMILES_LENGTH = 1000
"""The longest SMILES (in characters) taken for a molecule. RDKit's SMILES writer recurses
once per atom along a chain and overflows the stack (a crash, not an error): at some
16,000 atoms on an 8 MiB main-thread stack, at 2,000 on the 512 KiB of a small thread
stack (macOS's secondary threads). Drug-like molecules have under 100 heavy atoms (MOSES: at most 57
characters), and molecules of a few hundred heavy atoms stay well under the limit."""


def quiet() -> rdBase.BlockLogs:
    """``with quiet(): ...`` keeps RDKit from printing a line per invalid input."""
    return rdBase.BlockLogs()


def parse(smiles: str) -> Chem.Mol | None:
    """The molecule of ``smiles``, or None when it is not a valid molecule.

    As MOSES' ``get_mol``: the empty string is not a molecule (RDKit would return an empty
    one), and the molecule must parse and sanitise (valences, aromaticity). A string
    longer than :data:`MAX_SMILES_LENGTH` is not taken either. RDKit's messages about
    invalid input are kept off stderr (about 1 µs a call).
    """
    if not smiles or len(smiles) > MAX_SMILES_LENGTH:
        return None
    with quiet():
        mol = Chem.MolFromSmiles(smiles)
        if mol is None:
            return None
        try:
            Chem.SanitizeMol(mol)
        except ValueError:  # RDKit's MolSanitizeException
            return None
    return mol


def canonical(smiles: str) -> str | None:
    """RDKit's canonical SMILES of ``smiles`` (stereochemistry kept), or None when invalid."""
    mol = parse(smiles)
    return None if mol is None else Chem.MolToSmiles(mol)
