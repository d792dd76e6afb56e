"""Registered datasets load from the real published files with the right shapes and sums."""

from __future__ import annotations

import dataclasses
import gzip
from pathlib import Path

import numpy as np
import pytest

from aevb.data import DataError, Dataset, dataset_names, load_dataset
from aevb.data import registry as reg
from aevb.data.cache import cache_path
from aevb.data.digests import array_sha256


def test_registry_names_the_documented_datasets():
    assert set(dataset_names()) == {"binarized_mnist", "frey_face", "mnist_test", "mnist", "digits"}


def test_binarized_mnist_matches_published_shapes_and_checksums(shared_data):
    data = load_dataset("binarized_mnist")
    assert (data.train.shape, data.valid.shape, data.test.shape) == (
        (50000, 784),
        (10000, 784),
        (10000, 784),
    )
    assert data.train.dtype == np.float32 and data.train.flags.c_contiguous
    assert data.image_shape == (28, 28) and data.likelihood == "bernoulli"
    assert np.array_equal(np.unique(data.test), [0.0, 1.0])
    for split, source in reg.BINARIZED_MNIST_FILES.items():
        assert array_sha256(data.split(split).astype(np.uint8)) == source.sha256


def test_compact_cache_is_written_then_used_instead_of_the_text(shared_data, monkeypatch):
    first = load_dataset("binarized_mnist")
    for source in reg.BINARIZED_MNIST_FILES.values():
        assert cache_path(source).is_file()

    def must_not_parse(*args, **kwargs):
        raise AssertionError("parsed the .amat although the cache holds it")

    monkeypatch.setattr(reg, "read_amat", must_not_parse)
    second = load_dataset("binarized_mnist")
    assert np.array_equal(first.valid, second.valid)


def test_corrupt_cache_file_is_rebuilt(shared_data):
    source = reg.FREY_FACE_FILE
    load_dataset("frey_face")
    cache_path(source).write_bytes(b"not an npy file")
    data = load_dataset("frey_face")
    assert data.train.shape == (1565, 560)
    assert array_sha256(np.load(cache_path(source))) == source.sha256


def test_frey_face_split_is_the_documented_permutation(shared_data):
    data = load_dataset("frey_face")
    assert (data.train.shape, data.valid.shape, data.test.shape) == (
        (1565, 560),
        (200, 560),
        (200, 560),
    )
    assert data.image_shape == (28, 20) and data.likelihood == "gaussian"
    assert 0.0 <= data.train.min() and data.train.max() <= 1.0
    ff = np.load(cache_path(reg.FREY_FACE_FILE))  # (560, 1965) as published
    perm = np.random.default_rng(0).permutation(1965)
    np.testing.assert_array_equal(data.train[0], ff[:, perm[0]] / np.float32(255))
    np.testing.assert_array_equal(data.test[-1], ff[:, perm[-1]] / np.float32(255))


def test_mnist_test_has_labelled_test_split_only(shared_data):
    data = load_dataset("mnist_test")
    assert data.test.shape == (10000, 784) and data.train.shape == (0, 784)
    assert data.valid is None and data.splits == ["test"]
    assert data.labels["test"][:4].tolist() == [7, 2, 1, 0]
    assert data.labels["test"].dtype == np.int64
    assert 0.0 == data.test.min() and data.test.max() == 1.0
    with pytest.raises(
        DataError,
        match=r"^dataset 'mnist_test' has no 'train' split: expected "
        r"one of test$",
    ):
        data.split("train")


def test_digits_is_bundled_and_split_1497_150_150():
    data = load_dataset("digits", data_dir="/nonexistent")
    assert (data.train.shape, data.valid.shape, data.test.shape) == (
        (1497, 64),
        (150, 64),
        (150, 64),
    )
    assert data.image_shape == (8, 8) and data.likelihood == "bernoulli"
    assert data.train.min() == 0.0 and data.train.max() == 1.0
    assert {k: len(v) for k, v in data.labels.items()} == {"train": 1497, "valid": 150, "test": 150}
    again = load_dataset("digits")
    np.testing.assert_array_equal(data.valid, again.valid)


def _idx_gz(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes(), compresslevel=1))


def test_full_mnist_takes_last_10000_training_images_as_valid(tmp_path, shared_data, monkeypatch):
    folder = tmp_path / "mnist"
    folder.mkdir()
    images = np.zeros((60000, 28, 28), dtype=np.uint8)
    images[:, 0, 0] = np.arange(60000) // 256
    labels = np.arange(60000) % 10
    _idx_gz(folder / "train-images-idx3-ubyte.gz", images)
    _idx_gz(folder / "train-labels-idx1-ubyte.gz", labels)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (folder / name).write_bytes((shared_data / "mnist" / name).read_bytes())
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        unchecked = dataclasses.replace(reg.MNIST_FILES[name], md5=None)
        monkeypatch.setitem(reg.MNIST_FILES, name, unchecked)
    data = load_dataset("mnist", data_dir=tmp_path, download=False)
    assert (data.train.shape, data.valid.shape, data.test.shape) == (
        (50000, 784),
        (10000, 784),
        (10000, 784),
    )
    assert data.valid[0, 0] == np.float32(50000 // 256) / 255
    assert data.labels["valid"][:3].tolist() == [0, 1, 2]
    assert data.labels["test"][:4].tolist() == [7, 2, 1, 0]


def test_full_mnist_without_its_training_files_names_them(shared_data):
    with pytest.raises(DataError) as e:
        load_dataset("mnist", download=False)
    assert str(e.value).startswith("train-images-idx3-ubyte.gz: not found in ")
    url = "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz"
    assert f"fetch it from {url} and set AEVB_DATA_DIR" in str(e.value)


def test_unknown_name_lists_the_registered_ones():
    with pytest.raises(DataError, match=r"^unknown dataset 'mnsit': expected one of \['binarized"):
        load_dataset("mnsit")


def test_split_names_are_checked():
    data = Dataset(name="toy", train=np.zeros((3, 2)), test=np.ones((1, 2)))
    assert data.dim == 2 and data.train.dtype == np.float32
    with pytest.raises(DataError, match=r"^split 'training': expected one of train, valid, test$"):
        data.split("training")
    with pytest.raises(
        DataError,
        match=r"^dataset 'toy' has no 'valid' split: expected one of "
        r"train, test$",
    ):
        data.split("valid")


def test_dataset_rejects_inconsistent_shapes():
    with pytest.raises(DataError, match=r"^dataset 'toy': test has 3 columns, expected 2"):
        Dataset(name="toy", train=np.zeros((3, 2)), test=np.zeros((1, 3)))
    with pytest.raises(DataError, match=r"^dataset 'toy': image_shape \(2, 2\) has 4 pixels"):
        Dataset(name="toy", train=np.zeros((3, 2)), image_shape=(2, 2))
