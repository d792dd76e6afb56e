"""Molecules: the MOSES data, SMILES/SELFIES tokens and the MOSES metrics.

Typical use::

    from aevb.molecules import load_moses, Vocabulary, moses_metrics, moses_references
    data = load_moses()                                  # train / test / test_scaffolds SMILES
    vocab = Vocabulary.build(data.train[:10000], kind="smiles")
    ids = vocab.encode(data.test[:5])                    # int64 (5, vocab.max_length)
    vocab.decode(ids) == data.test[:5]                   # True
    table = moses_metrics(generated, moses_references()) # {"Valid": ..., "FCD/Test": ...}

Needs the ``molecules`` extra (RDKit, SELFIES, fcd): ``pip install 'aevb[molecules]'``.
"""

from __future__ import annotations

try:
    import fcd  # noqa: F401
    import rdkit  # noqa: F401
    import selfies  # noqa: F401
except ImportError as e:  # pragma: no cover - the extra is installed in development
    raise ImportError(
        f"aevb.molecules needs the molecules extra ({e.name} is missing): "
        "pip install 'aevb[molecules]'"
    ) from e

from aevb.molecules.chem import canonical, parse
from aevb.molecules.data import (
    SPLITS,
    MoleculeData,
    SmilesFile,
    load_filters,
    load_moses,
    read_smiles,
)
from aevb.molecules.filters import Filters
from aevb.molecules.metrics import (
    METRICS,
    References,
    fraction_unique,
    fraction_valid,
    internal_diversity,
    moses_metrics,
    moses_references,
    novelty,
)
from aevb.molecules.references import Statistics, canonical_set, statistics
from aevb.molecules.tokens import KINDS, Vocabulary, detokenize, tokenize

__all__ = [
    "KINDS",
    "METRICS",
    "SPLITS",
    "Filters",
    "MoleculeData",
    "References",
    "SmilesFile",
    "Statistics",
    "Vocabulary",
    "canonical",
    "canonical_set",
    "detokenize",
    "fraction_unique",
    "fraction_valid",
    "internal_diversity",
    "load_filters",
    "load_moses",
    "moses_metrics",
    "moses_references",
    "novelty",
    "parse",
    "read_smiles",
    "statistics",
    "tokenize",
]
