"""The MOSES metrics on cases with known answers, on small slices of the MOSES sets."""

from __future__ import annotations

import math

import numpy as np
import pytest
from rdkit import DataStructs
from rdkit.Chem import rdFingerprintGenerator

import aevb.molecules.references as refs_module
from aevb.data import DataError
from aevb.molecules import (
    Filters,
    References,
    canonical,
    canonical_set,
    fraction_unique,
    fraction_valid,
    internal_diversity,
    load_moses,
    moses_metrics,
    novelty,
    parse,
    statistics,
)
from aevb.molecules import metrics as metrics_module
from aevb.molecules.metrics import frechet_distance, snn
from aevb.molecules.references import Statistics, fingerprints

N_FCD = 500
"""Molecules in the one ChemNet pass of this file (the slowest step: a few seconds)."""


@pytest.fixture(scope="module")
def moses():
    return load_moses()


@pytest.fixture(scope="module")
def references(moses) -> References:
    """Test slice with ChemNet (cached, so the self-comparison reads it back), scaffold-test
    slice without, and a train slice."""
    return References(
        test=statistics(moses.test[:N_FCD]),
        test_scaffolds=statistics(moses.test_scaffolds[:N_FCD], chemnet=False),
        train=canonical_set(moses.train[:2000]),
    )


def test_the_test_set_against_itself(moses, references):
    table = moses_metrics(moses.test[:N_FCD], references, k=(100, 500), cache=True)
    assert list(table)[:3] == ["Valid", "Unique@100", "Unique@500"]
    assert table["Valid"] == 1.0 and table["Unique@100"] == 1.0 and table["Unique@500"] == 1.0
    assert abs(table["FCD/Test"]) < 1e-6
    assert table["SNN/Test"] == 1.0  # each molecule is its own nearest neighbour
    assert table["Frag/Test"] == pytest.approx(1.0, abs=1e-12)
    assert table["Scaf/Test"] == pytest.approx(1.0, abs=1e-12)
    assert math.isnan(table["FCD/TestSF"])  # that reference was described without ChemNet
    assert table["Scaf/TestSF"] == 0.0  # the scaffold test set's scaffolds are all unseen
    assert 0.3 < table["SNN/TestSF"] < 0.6 and 0.9 < table["Frag/TestSF"] < 1.0
    assert table["Filters"] == 1.0  # MOSES kept only molecules that pass
    assert table["Novelty"] == 1.0  # test molecules are not training molecules
    assert 0.8 < table["IntDiv2"] < table["IntDiv"] < 0.9


def test_statistics_are_cached_and_read_back(moses, references, monkeypatch):
    def must_not_compute(*args, **kwargs):
        raise AssertionError("computed again although cached")

    monkeypatch.setattr(refs_module, "_compute", must_not_compute)
    again = statistics(moses.test[:N_FCD])
    assert again.n == references.test.n == N_FCD
    np.testing.assert_array_equal(again.fingerprints, references.test.fingerprints)
    np.testing.assert_allclose(again.fcd_sigma, references.test.fcd_sigma)
    assert again.fragments == references.test.fragments


def test_a_damaged_cache_file_is_computed_again(moses):
    smiles = moses.test_scaffolds[:20]
    first = statistics(smiles, chemnet=False)
    key = refs_module._cache_key(smiles)
    path = refs_module.resolve_cache_dir() / "molecules" / f"statistics-nofcd-{key}.npz"
    path.write_bytes(path.read_bytes()[:100])
    again = statistics(smiles, chemnet=False)
    assert again.scaffolds == first.scaffolds and path.stat().st_size > 100


def test_statistics_file_round_trip(references, tmp_path):
    stats = references.test_scaffolds
    stats.save(tmp_path / "s.npz")
    again = Statistics.load(tmp_path / "s.npz")
    assert again.n == stats.n and again.scaffolds == stats.scaffolds
    assert np.isnan(again.fcd_mu).all()


def test_invalid_strings_lower_valid_exactly(moses):
    good = moses.test[:8]
    bad = ["", "C1CC", "xyz", "C(C", "c1cccc1", "C=C=C=C(C)(C)(C)C"]
    assert fraction_valid(good + bad) == 8 / 14
    assert [parse(s) is None for s in bad] == [True] * 6


def test_duplicates_are_unique_once():
    n = 40
    assert fraction_unique(["CCO"] * n) == 1 / n
    forms = ["OCC", "C(O)C", "CCO", "[CH3][CH2][OH]"]
    assert fraction_unique([canonical(s) for s in forms]) == 1 / 4
    with pytest.warns(UserWarning, match=r"^Unique@1000: only 40 valid molecules"):
        assert fraction_unique(["CCO"] * n, 1000) == 1 / n


def test_novelty_of_training_molecules_is_zero(moses, references):
    train = [canonical(s) for s in moses.train[:300]]
    assert novelty(train, references.train) == 0.0
    assert novelty(train + ["CCO"], references.train) == 1 / 301
    assert math.isnan(novelty([], references.train))


def test_internal_diversity_matches_rdkit_tanimoto():
    a, b = "CC(=O)Nc1ccc(O)cc1", "CC(=O)Oc1ccccc1C(=O)O"
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=1024)
    t = DataStructs.TanimotoSimilarity(*(generator.GetFingerprint(parse(s)) for s in (a, b)))
    fps = fingerprints([parse(a), parse(b)])
    assert internal_diversity(fps, p=1) == pytest.approx((1 - t) / 2, abs=1e-12)
    assert internal_diversity(fps, p=2) == pytest.approx(1 - math.sqrt((1 + t**2) / 2), abs=1e-12)
    assert internal_diversity(fingerprints([parse(a)] * 5)) == 0.0


def test_snn_tiles_match_rdkit_bulk_tanimoto(moses, monkeypatch):
    monkeypatch.setattr(metrics_module, "TILE", 7)  # several tiles each way, ragged ends
    gen, ref = [parse(s) for s in moses.test[:20]], [parse(s) for s in moses.train[:30]]
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=1024)
    ref_fps = [generator.GetFingerprint(m) for m in ref]
    expected = np.mean(
        [max(DataStructs.BulkTanimotoSimilarity(generator.GetFingerprint(m), ref_fps)) for m in gen]
    )
    assert snn(fingerprints(gen), fingerprints(ref)) == pytest.approx(expected, abs=1e-12)


def test_filters_catch_pains_charges_big_rings_and_foreign_atoms(moses):
    filters = Filters.moses()
    rhodanine = parse("O=C1NC(=S)SC1=Cc1ccccc1")  # a PAINS alert
    assert filters.alerts(rhodanine) == ["<regId=ene_rhod_A(235)>"]
    for smiles in ("O=C1NC(=S)SC1=Cc1ccccc1", "CC[NH3+]", "C1CCCCCCC1", "CCP(C)C", "CC[Se]C"):
        assert not filters.passes(parse(smiles)), smiles
    assert filters.passes(parse("C1CCCCCC1")) and filters.passes(parse("CC(=O)Nc1ccc(O)cc1"))
    assert all(filters.passes(parse(s)) for s in moses.test[:100])
    with pytest.raises(DataError, match=r"^filter 'bad': SMARTS '\[C' does not parse$"):
        Filters.from_smarts([("bad", "[C")])


def test_frechet_distance_of_diagonal_gaussians_has_its_closed_form():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    s1, s2 = rng.uniform(0.1, 2.0, size=6), rng.uniform(0.1, 2.0, size=6)  # standard deviations
    expected = ((mu1 - mu2) ** 2).sum() + ((s1 - s2) ** 2).sum()
    got = frechet_distance(mu1, np.diag(s1**2), mu2, np.diag(s2**2))
    assert got == pytest.approx(expected, rel=1e-10)


def test_metrics_without_valid_molecules_are_nan(references):
    with pytest.warns(UserWarning, match=r"^Unique@10: only 0 valid molecules"):
        table = moses_metrics(["xx", ""], references, k=(10,), chemnet=False)
    assert table["Valid"] == 0.0 and "FCD/Test" not in table
    assert all(math.isnan(v) for name, v in table.items() if name != "Valid")
    with pytest.raises(DataError, match=r"^moses_metrics: no generated molecules$"):
        moses_metrics([], references)


def test_fingerprints_are_moses_bit_vectors(moses):
    """The bits of MOSES' own call, AllChem.GetMorganFingerprintAsBitVect(mol, 2, 1024)."""
    import warnings

    from rdkit.Chem import AllChem

    mols = [parse(s) for s in moses.test[:50]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # newer RDKit calls that function deprecated
        expected = [AllChem.GetMorganFingerprintAsBitVect(m, 2, nBits=1024) for m in mols]
    ours = np.unpackbits(fingerprints(mols), axis=1)
    assert ours.sum() > 0
    for row, fp in zip(ours, expected, strict=True):
        assert list(np.flatnonzero(row)) == list(fp.GetOnBits())


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # inside the fcd package
def test_fcd_equals_the_fcd_package(moses):
    """Our ChemNet moments (batched one-hot, padding, scaling) and Frechet distance give
    the `fcd` package's get_fcd on the same two sets."""
    import fcd as fcd_package

    from aevb.molecules.references import chemnet_moments

    a = [canonical(s) for s in moses.test[:100]]
    b = [canonical(s) for s in moses.test_scaffolds[:100]]
    ours = frechet_distance(*chemnet_moments(a), *chemnet_moments(b))
    theirs = fcd_package.get_fcd(a, b, device="cpu")
    assert ours > 1.0  # two different sets of 100: far from 0
    assert ours == pytest.approx(theirs, rel=1e-4)


def test_cosine_similarity_of_counts_by_hand():
    """Frag and Scaf are the cosine of two count vectors: by hand, and 1 for proportional
    counts (the same molecules, each twice)."""
    a, b = {"x": 1, "y": 2}, {"y": 2, "z": 2}
    assert metrics_module.cosine_similarity(a, b) == pytest.approx(4 / math.sqrt(5 * 8))
    assert metrics_module.cosine_similarity(a, {"x": 2, "y": 4}) == pytest.approx(1.0)
    assert metrics_module.cosine_similarity(a, {"z": 3}) == 0.0
    assert math.isnan(metrics_module.cosine_similarity(a, {}))
