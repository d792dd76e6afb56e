"""RDKit in one place: SMILES parsed as MOSES parses them, canonical SMILES, quiet logs."""

from __future__ import annotations

from collections.abc import Iterable

from rdkit import Chem, rdBase


def quiet() -> rdBase.BlockLogs:
    """``with quiet(): ...`` keeps RDKit from printing a line per unparsable SMILES."""
    return rdBase.BlockLogs()


def parse(smiles: str) -> Chem.Mol | None:
    """The molecule of ``smiles``, or None when it is not a valid molecule.

    As MOSES' ``get_mol``: the empty string is not a molecule (RDKit would return an empty
    one), and the molecule must parse and sanitise (valences, aromaticity). Call it inside
    :func:`quiet` to keep RDKit's messages about invalid input off stderr.
    """
    if not smiles:
        return None
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
    with quiet():
        mol = parse(smiles)
    return None if mol is None else Chem.MolToSmiles(mol)


def parse_all(smiles: Iterable[str]) -> list[Chem.Mol | None]:
    """:func:`parse` of each string, RDKit kept quiet; None marks the invalid ones."""
    with quiet():
        return [parse(s) for s in smiles]
