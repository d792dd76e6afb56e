"""Tokenisers and the vocabulary: round trips on MOSES molecules, JSON, and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from aevb.data import DataError
from aevb.molecules import Vocabulary, canonical, load_moses, tokenize
from aevb.molecules.tokens import SPECIALS, detokenize


@pytest.fixture(scope="module")
def moses_test() -> list[str]:
    """The first 2,000 MOSES test molecules (the data dir is set for the whole session)."""
    return load_moses(splits=("test",)).test[:2000]


def test_regex_tokens_join_to_the_smiles(moses_test):
    for smiles in moses_test:
        assert "".join(tokenize(smiles, "smiles")) == smiles


def test_regex_keeps_atoms_whole():
    tokens = tokenize("Clc1ccc2[nH]c(Br)c%10cc[C@@H]2%10.[Na+]", "smiles")
    assert tokens == [
        "Cl", "c", "1", "c", "c", "c", "2", "[nH]", "c", "(", "Br", ")", "c", "%10", "c", "c",
        "[C@@H]", "2", "%10", ".", "[Na+]",
    ]  # fmt: skip
    assert tokenize("CCl", "chars") == ["C", "C", "l"]


def test_a_character_outside_smiles_is_named():
    with pytest.raises(
        DataError, match=r"^SMILES 'CC X': ' ' at position 2 starts no SMILES token$"
    ):
        tokenize("CC X", "smiles")


@pytest.mark.parametrize("kind", ["smiles", "chars"])
def test_smiles_vocabularies_decode_what_they_encode(moses_test, kind):
    vocab = Vocabulary.build(moses_test, kind)
    ids = vocab.encode(moses_test)
    assert ids.dtype == np.int64 and ids.shape == (len(moses_test), vocab.max_length)
    assert vocab.tokens[:3] == SPECIALS and (ids[:, 0] == 1).all()
    longest = max(len(tokenize(s, kind)) for s in moses_test)
    assert vocab.max_length == longest + 2 and (ids == 2).sum(1).tolist() == [1] * len(ids)
    assert vocab.decode(ids) == moses_test


def test_selfies_decode_to_the_same_molecule(moses_test):
    subset = moses_test[:300]
    vocab = Vocabulary.build(subset, "selfies")
    assert all(t.startswith("[") for t in vocab.tokens[3:])
    decoded = vocab.decode(vocab.encode(subset))
    assert [canonical(s) for s in decoded] == [canonical(s) for s in subset]
    assert detokenize(tokenize("C1=CC=CC=C1", "selfies"), "selfies") == "C1=CC=CC=C1"


def test_decode_stops_at_eos_or_pad_and_skips_bos():
    vocab = Vocabulary.build(["CCO", "CN"], "smiles")
    c, o, n = (vocab.tokens.index(t) for t in "CON")
    assert vocab.decode([[1, c, c, o, 2, c, 0], [c, 1, n, 0, c, c, c]]) == ["CCO", "CN"]
    with pytest.raises(DataError, match=r"^decode: ids must lie in \[0, 6\), found 0\.\.9$"):
        vocab.decode([[0, 9]])


def test_vocabulary_json_round_trip(moses_test, tmp_path):
    vocab = Vocabulary.build(moses_test[:500], "smiles", max_length=80)
    vocab.save(tmp_path / "vocabulary.json")
    again = Vocabulary.load(tmp_path / "vocabulary.json")
    assert again == vocab and again.max_length == 80
    np.testing.assert_array_equal(again.encode(moses_test[:50]), vocab.encode(moses_test[:50]))
    assert json.loads((tmp_path / "vocabulary.json").read_text())["tokens"][:3] == list(SPECIALS)


def test_tokens_outside_the_vocabulary_are_named():
    vocab = Vocabulary.build(["CCO", "c1ccccc1"], "smiles")
    with pytest.raises(
        DataError,
        match=r"^molecule 1 \('CC\[Se\]C'\): token '\[Se\]' is not in the vocabulary "
        r"\(smiles, 7 tokens\); build the vocabulary from a corpus that contains it$",
    ):
        vocab.encode(["CO", "CC[Se]C"])
    with pytest.raises(DataError, match=r"^molecule 0 \('CCCCCCO'\): 7 tokens, more than the 3 "):
        vocab.encode(["CCCCCCO"], max_length=5)


def test_bad_vocabulary_arguments_and_files(tmp_path):
    with pytest.raises(
        DataError, match=r"^kind='bpe': expected one of \['smiles', 'chars', 'selfies'\]$"
    ):
        Vocabulary.build(["C"], "bpe")
    with pytest.raises(DataError, match=r"^vocabulary: the corpus is empty$"):
        Vocabulary.build([])
    with pytest.raises(DataError, match=r"^max_length=4: the corpus' longest molecule needs 5 "):
        Vocabulary.build(["CCO"], max_length=4)
    (tmp_path / "v.json").write_text("{")
    with pytest.raises(DataError, match=r"^v\.json: not JSON"):
        Vocabulary.load(tmp_path / "v.json")
    (tmp_path / "v.json").write_text('{"tokens": []}')
    with pytest.raises(DataError, match=r"^v\.json: not an aevb vocabulary"):
        Vocabulary.load(tmp_path / "v.json")
    d = Vocabulary.build(["CO"]).to_dict()
    d["tokens"] = d["tokens"][1:]
    (tmp_path / "v.json").write_text(json.dumps(d))
    with pytest.raises(DataError, match=r"^v\.json: vocabulary: tokens must start with"):
        Vocabulary.load(tmp_path / "v.json")
