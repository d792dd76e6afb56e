"""The MOSES metrics of generated molecules (Polykovskiy et al. 2020, "Molecular Sets
(MOSES): a benchmarking platform for molecular generation models"), computed with RDKit.

Each metric as the MOSES paper defines it and its code (``moses/metrics``) computes it;
G is the generated list, V its valid molecules (duplicates kept), C their canonical SMILES:

- Valid: |V| / |G|; a molecule is valid when RDKit parses and sanitises it (not empty).
- Unique@k: distinct strings among the first k of C, divided by k (by |C| when fewer,
  with a warning).
- Novelty: the fraction of the distinct C that are not in the training set (its canonical
  SMILES, made with the same RDKit).
- IntDiv_p: 1 - mean over x in V of (mean over y in V of T(x, y)^p)^(1/p), T the Tanimoto
  similarity of Morgan fingerprints (radius 2, 1024 bits). For p = 2 this is the MOSES
  code's form, which its published table uses; the paper's formula takes the power mean
  over all pairs at once, 1 - (mean over x, y of T^p)^(1/p), which is never larger.
- Filters: the fraction of V that passes :mod:`aevb.molecules.filters`.
- FCD/R: the Frechet distance between Gaussians fitted to ChemNet's penultimate
  activations of C and of the reference set R (Preuer et al. 2018).
- SNN/R: mean over x in V of the largest T(x, y) over y in R.
- Frag/R, Scaf/R: the cosine similarity of the BRICS fragment counts, or of the
  Bemis-Murcko scaffold counts (scaffolds of 2 or more rings), of V and of R.

R is the MOSES test set (``/Test``) or scaffold test set (``/TestSF``). Tanimoto
similarities are computed in tiles on ``device``: bit counts as exact integers in float32,
their ratio in float64.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from rdkit import Chem

from aevb.data.errors import DataError
from aevb.molecules.chem import parse
from aevb.molecules.data import load_moses
from aevb.molecules.filters import Filters
from aevb.molecules.references import Statistics, canonical_set, statistics

METRICS = (
    "Valid",
    "Unique@1k",
    "Unique@10k",
    "FCD/Test",
    "FCD/TestSF",
    "SNN/Test",
    "SNN/TestSF",
    "Frag/Test",
    "Frag/TestSF",
    "Scaf/Test",
    "Scaf/TestSF",
    "IntDiv",
    "IntDiv2",
    "Filters",
    "Novelty",
)
"""The columns of the MOSES results table, in its order."""

TILE = 4096
"""Fingerprints per side of one tile of Tanimoto similarities (64 MiB of float32)."""


@dataclass(frozen=True)
class References:
    """The sets generated molecules are compared with.

    Attributes:
        test: statistics of the test set (the ``/Test`` metrics).
        test_scaffolds: statistics of the scaffold test set (``/TestSF``), or None.
        train: canonical SMILES of the training set (Novelty), or None.
    """

    test: Statistics
    test_scaffolds: Statistics | None = None
    train: frozenset[str] | None = None

    @classmethod
    def from_smiles(
        cls,
        test: Sequence[str],
        test_scaffolds: Sequence[str] | None = None,
        train: Sequence[str] | None = None,
        *,
        cache: bool = True,
        chemnet: bool = True,
        device: str | None = None,
        quiet: bool = True,
    ) -> References:
        """References from SMILES lists; see :func:`aevb.molecules.references.statistics`
        for ``cache``, ``chemnet``, ``device`` and ``quiet``."""
        kw = {"cache": cache, "chemnet": chemnet, "device": device, "quiet": quiet}
        return cls(
            test=statistics(test, **kw),
            test_scaffolds=None if test_scaffolds is None else statistics(test_scaffolds, **kw),
            train=None if train is None else canonical_set(train, cache=cache),
        )


def moses_references(
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    *,
    cache: bool = True,
    chemnet: bool = True,
    device: str | None = None,
    quiet: bool = True,
) -> References:
    """The MOSES test, scaffold-test and training sets as :class:`References` (without
    their ChemNet statistics, and so without FCD, when not ``chemnet``).

    The first call computes the statistics of 2 x 176k reference molecules (mostly
    ChemNet: 8 to 25 minutes a set on a shared 2-core CPU) and canonicalises the 1.6M
    training SMILES (4 minutes); later calls read them from the cache dir in about a
    second.
    """
    data = load_moses(data_dir, download)
    return References.from_smiles(
        data.test,
        data.test_scaffolds,
        data.train,
        cache=cache,
        chemnet=chemnet,
        device=device,
        quiet=quiet,
    )


def moses_metrics(
    generated: Sequence[str],
    references: References,
    *,
    k: Sequence[int] = (1000, 10000),
    filters: Filters | None = None,
    chemnet: bool = True,
    device: str | None = None,
    cache: bool = False,
    quiet: bool = True,
) -> dict[str, float]:
    """The MOSES table of ``generated`` against ``references`` (see the module for each
    metric), keyed as :data:`METRICS` (``Unique@<k>`` for each k; the ``/TestSF`` columns
    when the references have a scaffold test set, Novelty when they have a training set).

    Args:
        generated: SMILES strings as sampled, invalid ones included (MOSES: 30,000).
        references: what to compare with, e.g. :func:`moses_references`.
        k: the sizes of Unique@k.
        filters: the structural alerts, default the MOSES files (:meth:`Filters.moses`).
        chemnet: compute FCD (ChemNet is the slow part on a CPU: 2.6 ms a molecule on
            2 cores); without it the table has no FCD columns.
        device: where ChemNet and the Tanimoto tiles run (default: CUDA when available).
        cache: also cache the generated set's statistics (for a set scored repeatedly).
        quiet: no progress lines.

    Metrics that need a valid molecule are NaN when there is none.
    """
    if len(generated) == 0:
        raise DataError("moses_metrics: no generated molecules")
    filters = filters or Filters.moses()
    canonical, passes = [], []
    for s in generated:  # one molecule at a time (see aevb.molecules.chem)
        mol = parse(s)
        if mol is not None:
            canonical.append(Chem.MolToSmiles(mol))
            passes.append(filters.passes(mol))
    table = {"Valid": len(canonical) / len(generated)}
    for size in k:
        table[unique_name(size)] = fraction_unique(canonical, size)
    kw = {"chemnet": chemnet, "device": device, "quiet": quiet}
    # the cache is keyed by the strings as given; otherwise the canonical ones are read again
    stats = statistics(generated if cache else canonical, cache=cache, **kw)
    for suffix, ref in (("Test", references.test), ("TestSF", references.test_scaffolds)):
        if ref is not None:
            if chemnet:
                table[f"FCD/{suffix}"] = fcd(stats, ref)
            table[f"SNN/{suffix}"] = snn(stats.fingerprints, ref.fingerprints, device=device)
            table[f"Frag/{suffix}"] = cosine_similarity(stats.fragments, ref.fragments)
            table[f"Scaf/{suffix}"] = cosine_similarity(stats.scaffolds, ref.scaffolds)
    diversity = internal_diversities(stats.fingerprints, (1, 2), device=device)
    table["IntDiv"], table["IntDiv2"] = diversity[1], diversity[2]
    table["Filters"] = float(np.mean(passes)) if passes else float("nan")
    if references.train is not None:
        table["Novelty"] = novelty(canonical, references.train)
    order = {name: i for i, name in enumerate(METRICS)}  # Unique@k: second, in k's order
    return dict(sorted(table.items(), key=lambda item: order.get(item[0], 1)))


def unique_name(k: int) -> str:
    """``Unique@1k`` for 1000, ``Unique@500`` for 500: the MOSES table's column names."""
    return f"Unique@{k // 1000}k" if k % 1000 == 0 else f"Unique@{k}"


def fraction_valid(smiles: Sequence[str]) -> float:
    """The fraction of ``smiles`` that RDKit parses and sanitises (the empty string is
    invalid)."""
    if len(smiles) == 0:
        raise DataError("fraction_valid: no molecules")
    return sum(parse(s) is not None for s in smiles) / len(smiles)


def fraction_unique(canonical: Sequence[str], k: int | None = None) -> float:
    """Distinct strings among the first ``k`` of ``canonical`` (valid molecules' canonical
    SMILES, in generation order), divided by how many were looked at; NaN when empty.
    Fewer than ``k`` molecules: all of them, with a warning (as MOSES)."""
    if k is not None:
        if len(canonical) < k:
            warnings.warn(
                f"Unique@{k}: only {len(canonical)} valid molecules, so computed on those",
                stacklevel=2,
            )
        canonical = canonical[:k]
    return len(set(canonical)) / len(canonical) if len(canonical) else float("nan")


def novelty(canonical: Sequence[str], train: Collection[str]) -> float:
    """The fraction of the distinct ``canonical`` SMILES that are not in ``train`` (the
    training set's canonical SMILES); NaN when there are none."""
    distinct = set(canonical)
    return len(distinct - set(train)) / len(distinct) if distinct else float("nan")


def cosine_similarity(a: Mapping[str, int], b: Mapping[str, int]) -> float:
    """Cosine of two count vectors given as ``{key: count}`` (absent keys count 0); NaN
    when either is empty (as MOSES)."""
    if not a or not b:
        return float("nan")
    dot = sum(count * b.get(key, 0) for key, count in a.items())
    norm_a = np.sqrt(sum(c * c for c in a.values()))
    norm_b = np.sqrt(sum(c * c for c in b.values()))
    return float(dot / (norm_a * norm_b))


def snn(fingerprints: np.ndarray, reference: np.ndarray, *, device: str | None = None) -> float:
    """Mean over the packed fingerprints ``(N, 128)`` of their largest Tanimoto similarity
    to the ``reference`` ones ``(M, 128)``; NaN when either is empty."""
    if len(fingerprints) == 0 or len(reference) == 0:
        return float("nan")
    best = np.zeros(len(fingerprints))
    for start, t in tanimoto_tiles(fingerprints, reference, device=device):
        rows = slice(start, start + len(t))
        best[rows] = np.maximum(best[rows], t.max(1).values.cpu().numpy())
    return float(best.mean())


def internal_diversity(fingerprints: np.ndarray, p: int = 1, *, device: str | None = None) -> float:
    """IntDiv_p of a set of packed fingerprints ``(N, 128)`` (module docstring); NaN when
    empty."""
    return internal_diversities(fingerprints, (p,), device=device)[p]


def internal_diversities(
    fingerprints: np.ndarray, powers: Sequence[int] = (1, 2), *, device: str | None = None
) -> dict[int, float]:
    """IntDiv_p for each p in ``powers``, from one pass over the N x N similarities."""
    if len(fingerprints) == 0:
        return {p: float("nan") for p in powers}
    sums = np.zeros((len(powers), len(fingerprints)))
    for start, t in tanimoto_tiles(fingerprints, fingerprints, device=device):
        for k, p in enumerate(powers):
            sums[k, start : start + len(t)] += (t if p == 1 else t**p).sum(1).cpu().numpy()
    means = sums / len(fingerprints)  # mean over y of T(x, y)^p, per x
    return {p: float(1.0 - (means[k] ** (1.0 / p)).mean()) for k, p in enumerate(powers)}


def tanimoto_tiles(
    query: np.ndarray, reference: np.ndarray, *, device: str | None = None
) -> Iterator[tuple[int, torch.Tensor]]:
    """Tanimoto similarities of packed fingerprints, uint8 ``(N, 128)`` and ``(M, 128)``,
    in tiles of at most :data:`TILE` x :data:`TILE`: ``(first query row, T)``, T float64
    ``(n, m)`` on ``device``, every reference tile of a block of query rows in turn.

    T is ``|a & b| / |a | b|``, and 1 for two empty fingerprints (as MOSES); the bit
    counts are exact integers in float32 (a GEMM), their ratio float64.
    """
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    for i in range(0, len(query), TILE):
        q = _bits(query[i : i + TILE], device)
        q_count = q.sum(1, keepdim=True)
        for j in range(0, len(reference), TILE):
            r = _bits(reference[j : j + TILE], device)
            both = q @ r.T
            either = (q_count + r.sum(1) - both).double()
            yield i, torch.where(either > 0, both.double() / either.clamp(min=1), 1.0)


def fcd(generated: Statistics, reference: Statistics) -> float:
    """The Frechet ChemNet Distance between two sets' ChemNet moments; NaN when either
    set has fewer than 2 valid molecules or was described without ChemNet."""
    moments = (generated.fcd_mu, generated.fcd_sigma, reference.fcd_mu, reference.fcd_sigma)
    if generated.n < 2 or reference.n < 2 or not all(np.isfinite(m).all() for m in moments):
        return float("nan")
    return frechet_distance(
        generated.fcd_mu, generated.fcd_sigma, reference.fcd_mu, reference.fcd_sigma
    )


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2):
    ``|mu1 - mu2|^2 + tr(sigma1) + tr(sigma2) - 2 tr((sigma1 sigma2)^(1/2))``.

    The trace of the matrix square root is taken as the sum of the square roots of the
    eigenvalues of ``A sigma2 A``, ``A = sigma1^(1/2)`` (a symmetric matrix similar to
    ``sigma1 sigma2``): real and stable where ``scipy.linalg.sqrtm`` of a singular
    product (fewer molecules than 512 dimensions) is not.
    """
    diff = np.asarray(mu1, dtype=np.float64) - np.asarray(mu2, dtype=np.float64)
    root1 = _psd_sqrt(np.asarray(sigma1, dtype=np.float64))
    middle = root1 @ np.asarray(sigma2, dtype=np.float64) @ root1
    eigen = np.linalg.eigvalsh((middle + middle.T) / 2)
    trace_root = np.sqrt(np.clip(eigen, 0.0, None)).sum()
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_root)


def _psd_sqrt(sigma: np.ndarray) -> np.ndarray:
    """Symmetric square root of a covariance matrix (negative round-off eigenvalues -> 0)."""
    values, vectors = np.linalg.eigh((sigma + sigma.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def _bits(packed: np.ndarray, device: str) -> torch.Tensor:
    """Packed fingerprints ``(n, 128)`` as float32 bits ``(n, 1024)`` on ``device``."""
    return torch.from_numpy(np.unpackbits(packed, axis=1)).to(device=device, dtype=torch.float32)
