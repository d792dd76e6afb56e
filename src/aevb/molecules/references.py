"""What the MOSES metrics compare of a set of molecules, computed once and cached.

For the valid molecules of a set (:class:`Statistics`):

- Morgan fingerprints, radius 2, 1024 bits (SNN, IntDiv), packed 8 bits a byte;
- BRICS fragment counts (Frag): the molecule cut at its BRICS bonds
  (``FragmentOnBRICSBonds``), each piece's canonical SMILES counted;
- Bemis-Murcko scaffold counts (Scaf): the canonical SMILES of the scaffold, counted when
  it has at least 2 rings (MOSES' ``compute_scaffolds`` drops the others);
- the mean and covariance of ChemNet's penultimate activations (FCD), from the ``fcd``
  package, whose ChemNet weights ship inside it (nothing is downloaded); molecules enter
  as canonical SMILES, padded to 350 characters as that package does.

The reference sets (MOSES test, scaffold test: 176k molecules each) take minutes on a
CPU, mostly ChemNet, so :func:`statistics` keeps them in the cache dir
(``<cache>/molecules/statistics-<key>.npz``), keyed by the SMILES and the RDKit and
``fcd`` versions. The training set's canonical SMILES (Novelty) are cached the same way
(:func:`canonical_set`).
"""

from __future__ import annotations

import gzip
import hashlib
import warnings
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rdkit
import torch
from rdkit import Chem
from rdkit.Chem import rdFingerprintGenerator
from rdkit.Chem.Scaffolds import MurckoScaffold

from aevb.atomic import atomic_path
from aevb.data.locations import resolve_cache_dir
from aevb.molecules.chem import canonical, parse
from aevb.progress import Progress

FINGERPRINT_RADIUS, FINGERPRINT_BITS = 2, 1024
"""Morgan fingerprints of MOSES' SNN and IntDiv."""

MIN_SCAFFOLD_RINGS = 2
"""Scaffolds with fewer rings are not counted (MOSES ``compute_scaffolds``)."""

CHEMNET_DIM = 512
"""Width of ChemNet's penultimate layer, whose activations FCD compares."""

CHEMNET_BATCH = 512
"""Molecules per ChemNet forward pass."""

CACHE_VERSION = 1
"""Bumped when the cached statistics change meaning, so older files are not read."""


@dataclass(frozen=True)
class Statistics:
    """What the MOSES metrics compare, of the n valid molecules of a set.

    Attributes:
        n: valid molecules (duplicates counted).
        fcd_mu: float64 ``(512,)``, mean of ChemNet's penultimate activations.
        fcd_sigma: float64 ``(512, 512)``, their covariance (n - 1 in the denominator);
            NaN when n < 2.
        fingerprints: uint8 ``(n, 128)``, Morgan bits (radius 2, 1024 bits) packed by
            ``np.packbits``.
        fragments: BRICS fragment SMILES -> count.
        scaffolds: Bemis-Murcko scaffold SMILES (>= 2 rings) -> count.
    """

    n: int
    fcd_mu: np.ndarray = field(repr=False)
    fcd_sigma: np.ndarray = field(repr=False)
    fingerprints: np.ndarray = field(repr=False)
    fragments: dict[str, int] = field(repr=False)
    scaffolds: dict[str, int] = field(repr=False)

    def save(self, path: str | Path) -> None:
        """Write the statistics to an ``.npz`` file (atomically; no pickles)."""
        with atomic_path(path) as tmp:
            np.savez(
                tmp,
                n=self.n,
                fcd_mu=self.fcd_mu,
                fcd_sigma=self.fcd_sigma,
                fingerprints=self.fingerprints,
                **_counts("fragments", self.fragments),
                **_counts("scaffolds", self.scaffolds),
            )

    @classmethod
    def load(cls, path: str | Path) -> Statistics:
        """Read statistics written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as f:
            return cls(
                n=int(f["n"]),
                fcd_mu=f["fcd_mu"],
                fcd_sigma=f["fcd_sigma"],
                fingerprints=f["fingerprints"],
                fragments=dict(
                    zip(f["fragments_keys"].tolist(), f["fragments_counts"].tolist(), strict=True)
                ),
                scaffolds=dict(
                    zip(f["scaffolds_keys"].tolist(), f["scaffolds_counts"].tolist(), strict=True)
                ),
            )


def statistics(
    smiles: Iterable[str],
    *,
    cache: bool = True,
    chemnet: bool = True,
    device: str | None = None,
    quiet: bool = True,
) -> Statistics:
    """The :class:`Statistics` of the valid molecules among ``smiles``, read one at a time.

    Args:
        smiles: the set, e.g. the MOSES test SMILES.
        cache: read them from the cache dir when computed before, else write them there.
        chemnet: compute the ChemNet moments (the slow part on a CPU); without them FCD
            is NaN.
        device: where ChemNet runs; default ``"cuda"`` when available, else ``"cpu"``.
        quiet: no progress lines for the ChemNet pass.
    """
    smiles = list(smiles)
    return _cached(
        smiles if cache else None,
        "statistics" if chemnet else "statistics-nofcd",
        ".npz",
        lambda: _compute(smiles, chemnet, device, quiet),
        Statistics.save,
        Statistics.load,
    )


def canonical_set(smiles: Sequence[str], *, cache: bool = True) -> frozenset[str]:
    """The canonical SMILES of the valid molecules among ``smiles`` (e.g. the training set,
    for Novelty); cached like :func:`statistics` (the 1.6M MOSES train set takes minutes)."""

    def compute() -> list[str]:
        return [c for c in map(canonical, smiles) if c is not None]

    def save(lines: list[str], path: Path) -> None:
        with atomic_path(path) as tmp:
            tmp.write_bytes(gzip.compress("\n".join(lines).encode(), compresslevel=1))

    def load(path: Path) -> list[str]:
        return gzip.decompress(path.read_bytes()).decode().split("\n")

    return frozenset(
        _cached(smiles if cache else None, "canonical", ".txt.gz", compute, save, load)
    )


def morgan() -> rdFingerprintGenerator.FingerprintGenerator64:
    """The generator of MOSES' fingerprints: Morgan, radius 2, 1024 bits."""
    return rdFingerprintGenerator.GetMorganGenerator(
        radius=FINGERPRINT_RADIUS, fpSize=FINGERPRINT_BITS
    )


def fingerprints(mols: Iterable[Chem.Mol]) -> np.ndarray:
    """Morgan fingerprints (radius 2, 1024 bits), packed: uint8 ``(N, 128)``."""
    generator = morgan()
    rows = [np.packbits(generator.GetFingerprintAsNumPy(m)) for m in mols]
    return np.stack(rows) if rows else np.zeros((0, FINGERPRINT_BITS // 8), dtype=np.uint8)


def fragments(mol: Chem.Mol) -> list[str]:
    """The BRICS fragments of ``mol`` (``FragmentOnBRICSBonds``), as canonical SMILES with
    their ``[n*]`` attachment points."""
    return Chem.MolToSmiles(Chem.FragmentOnBRICSBonds(mol)).split(".")


def scaffold(mol: Chem.Mol) -> str | None:
    """The Bemis-Murcko scaffold's canonical SMILES, or None when it has fewer than
    :data:`MIN_SCAFFOLD_RINGS` rings (or RDKit cannot build it)."""
    try:
        if mol.GetRingInfo().NumRings() < MIN_SCAFFOLD_RINGS:
            # the scaffold keeps every ring, so it has too few as well; and RDKit takes
            # minutes over the long chains of hostile input
            return None
        core = MurckoScaffold.GetScaffoldForMol(mol)
    except (ValueError, RuntimeError):
        return None
    smiles = Chem.MolToSmiles(core)
    if not smiles or core.GetRingInfo().NumRings() < MIN_SCAFFOLD_RINGS:
        return None
    return smiles


def chemnet_moments(
    smiles: Sequence[str], *, device: str | None = None, quiet: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(512,)`` and covariance ``(512, 512)`` (float64) of ChemNet's penultimate
    activations for ``smiles``, accumulated batch by batch; the covariance is NaN for
    fewer than 2 molecules."""
    from fcd import load_ref_model  # imports torch's DataLoader machinery: load on use
    from fcd.utils import get_one_hot

    n = len(smiles)
    total, outer = np.zeros(CHEMNET_DIM), np.zeros((CHEMNET_DIM, CHEMNET_DIM))
    if n == 0:
        return total * np.nan, outer * np.nan
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    pad = max(350, max(len(s) for s in smiles) + 1)  # as fcd's SmilesDataset pads
    model = load_ref_model().to(device)
    progress = Progress(n, desc="ChemNet", unit="mol", quiet=quiet)
    with torch.no_grad():
        for start in range(0, n, CHEMNET_BATCH):
            batch = smiles[start : start + CHEMNET_BATCH]
            onehot = np.stack([get_one_hot(s, pad_len=pad) for s in batch])
            onehot /= onehot.shape[2]  # as fcd's SmilesDataset: divided by its 35 symbols
            x = torch.as_tensor(onehot, dtype=torch.float32, device=device).transpose(1, 2)
            act = model(x).double().cpu().numpy()
            total += act.sum(0)
            outer += act.T @ act
            progress.update(len(batch))
    progress.close()
    mu = total / n
    if n < 2:
        return mu, np.full_like(outer, np.nan)
    return mu, (outer - n * np.outer(mu, mu)) / (n - 1)


def _compute(smiles: Iterable[str], chemnet: bool, device: str | None, quiet: bool) -> Statistics:
    generator = morgan()
    canonicals: list[str] = []
    packed: list[np.ndarray] = []
    fragment_counts: Counter[str] = Counter()
    scaffold_counts: Counter[str] = Counter()
    for s in smiles:  # one molecule at a time: only its features are kept
        mol = parse(s)
        if mol is None:
            continue
        canonicals.append(Chem.MolToSmiles(mol))
        packed.append(np.packbits(generator.GetFingerprintAsNumPy(mol)))
        fragment_counts.update(fragments(mol))
        core = scaffold(mol)
        if core is not None:
            scaffold_counts[core] += 1
    if chemnet:
        mu, sigma = chemnet_moments(canonicals, device=device, quiet=quiet)
    else:
        mu, sigma = np.full(CHEMNET_DIM, np.nan), np.full((CHEMNET_DIM, CHEMNET_DIM), np.nan)
    return Statistics(
        n=len(canonicals),
        fcd_mu=mu,
        fcd_sigma=sigma,
        fingerprints=np.stack(packed) if packed else fingerprints([]),
        fragments=dict(fragment_counts),
        scaffolds=dict(scaffold_counts),
    )


def _counts(name: str, counts: dict[str, int]) -> dict[str, np.ndarray]:
    keys = np.array(list(counts), dtype=str) if counts else np.zeros(0, dtype="<U1")
    return {f"{name}_keys": keys, f"{name}_counts": np.array(list(counts.values()), dtype=np.int64)}


def _cache_key(smiles: Sequence[str]) -> str:
    """Hex digest of the SMILES and of what computes their statistics."""
    import fcd

    digest = hashlib.sha256(
        f"{CACHE_VERSION} rdkit {rdkit.__version__} fcd {fcd.__version__}\n".encode()
    )
    for s in smiles:
        digest.update(s.encode())
        digest.update(b"\n")
    return digest.hexdigest()[:24]


def _cached(smiles, kind: str, suffix: str, compute: Callable, save: Callable, load: Callable):
    """``compute()``, or the cached result for ``smiles`` (None: no cache). A cache file
    that cannot be read is computed again; one that cannot be written is warned about."""
    if smiles is None:
        return compute()
    path = resolve_cache_dir() / "molecules" / f"{kind}-{_cache_key(smiles)}{suffix}"
    if path.is_file():
        try:
            return load(path)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            pass  # a damaged or older cache file: computed again and replaced
    result = compute()
    try:
        save(result, path)
    except OSError as e:
        warnings.warn(f"could not cache the molecule {kind} in {path}: {e}", stacklevel=3)
    return result
