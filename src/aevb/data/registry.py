"""Named datasets: where their files are published, their checksums, parser and splits.

- ``binarized_mnist``: MNIST statically binarized by Larochelle & Murray (2011), the standard
  VAE log-likelihood benchmark. Files ``binarized_mnist/binarized_mnist_{train,valid,test}.amat``;
  50000 / 10000 / 10000 images of 28x28; no labels. Checked by the sha256 of the decoded
  uint8 arrays, since mirrors re-serialise the text.
- ``frey_face``: Brendan Frey's 1965 face images of 28x20, ``frey_face/frey_rawface.mat``
  (variable ``ff``, uint8 560 x 1965, one image per column, row-major within the image),
  scaled to [0, 1]. There is no published split; ours is fixed: the permutation
  ``np.random.default_rng(0).permutation(1965)`` cut into 1565 train, 200 valid, 200 test.
- ``mnist_test``: the 10000 labelled MNIST test digits (IDX, gzip), scaled to [0, 1]; only
  a ``test`` split (``train`` has zero rows).
- ``mnist``: all of MNIST (IDX, gzip), scaled to [0, 1]: train = the first 50000 training
  images, valid = the last 10000, test = the 10000 test images; labels for every split.
- ``digits``: the UCI 8x8 handwritten digits bundled with scikit-learn (no download),
  values 0..16 scaled to [0, 1]; the permutation ``np.random.default_rng(0).permutation(1797)``
  cut into 1497 train, 150 valid, 150 test; labels.

Every dataset's arrays are float32, one flattened image per row.

Molecule datasets are strings, not rows of numbers, so they are registered apart
(:data:`MOLECULE_DATASETS`): their files are here, their reader is
:func:`aevb.molecules.load_moses`, and ``load_dataset`` names it.

- ``moses``: the MOSES benchmark (Polykovskiy et al. 2020), the files its project publishes
  in ``molecularsets/moses`` (``moses/dataset/data/``, stored with Git LFS, and
  ``moses/metrics/``): ``moses/{train,test,test_scaffolds}.csv.gz`` (gzip CSV, header
  ``SMILES``; 1,584,663 / 176,074 / 176,225 molecules) and the structural filters of its
  ``Filters`` metric, ``moses/mcf.csv`` and ``moses/wehi_pains.csv``. Published bytes are
  canonical, so a file is checked by the sha256 of its bytes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aevb.data.amat import read_amat
from aevb.data.cache import load_source
from aevb.data.dataset import Dataset
from aevb.data.errors import DataError, read_bytes
from aevb.data.idx import read_idx
from aevb.data.locations import resolve_data_dir
from aevb.data.matlab import read_mat_variable
from aevb.data.sources import SourceFile, locate, verify
from aevb.data.splits import split_indices

DEFAULT_DATASET = "digits"
"""The dataset ``aevb train`` uses without ``--data``: bundled, so nothing is downloaded."""

Fetch = Callable[[SourceFile], np.ndarray]
"""Returns the decoded, verified array of a source file."""


@dataclass(frozen=True)
class Entry:
    """A named dataset: the files it is built from and how.

    Attributes:
        name: the registered name.
        summary: one line for listings.
        files: the published files, in the order ``build`` reads them.
        build: ``build(fetch) -> Dataset``, where ``fetch(file)`` gives a decoded array.
    """

    name: str
    summary: str
    files: tuple[SourceFile, ...]
    build: Callable[[Fetch], Dataset]


# ---- binarized MNIST ---------------------------------------------------------------------

_BMNIST_URL = "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/"
_BMNIST_SPLITS = {
    "train": (50000, "43490d4d6ac9002727af4426d8748609fdb7e4094fa65ad8d681ea60082a7a5a"),
    "valid": (10000, "069b4f0beb389b776478c3e872b4df71c95ac4be64d7cbe6d32e24ebac8e6d5e"),
    "test": (10000, "ca0294c3b8d984c7a1dc891015a8eea6f37bae59a34e35ea0fc8c47110a8dd86"),
}


def _amat_decoder(rows: int) -> Callable[[Path, str], np.ndarray]:
    def decode(path: Path, name: str) -> np.ndarray:
        return read_amat(path, cols=784, rows=rows, name=name)

    return decode


BINARIZED_MNIST_FILES = {
    split: SourceFile(
        folder="binarized_mnist",
        name=f"binarized_mnist_{split}.amat",
        urls=(f"{_BMNIST_URL}binarized_mnist_{split}.amat",),
        decode=_amat_decoder(rows),
        sha256=sha,
    )
    for split, (rows, sha) in _BMNIST_SPLITS.items()
}


def _build_binarized_mnist(fetch: Fetch) -> Dataset:
    x = {split: fetch(f) for split, f in BINARIZED_MNIST_FILES.items()}
    return Dataset(
        name="binarized_mnist",
        train=x["train"],
        valid=x["valid"],
        test=x["test"],
        image_shape=(28, 28),
        likelihood="bernoulli",
    )


# ---- Frey Face ---------------------------------------------------------------------------


def _decode_frey(path: Path, name: str) -> np.ndarray:
    return read_mat_variable(path, "ff", shape=(560, 1965), dtype=np.uint8, name=name)


FREY_FACE_FILE = SourceFile(
    folder="frey_face",
    name="frey_rawface.mat",
    urls=("https://cs.nyu.edu/~roweis/data/frey_rawface.mat",),
    decode=_decode_frey,
    sha256="fbd70c2c992104024a20f4d253da1a1132eb6bf8ed142dccbe7d2b1743b705c4",
)


def _build_frey_face(fetch: Fetch) -> Dataset:
    x = fetch(FREY_FACE_FILE).T.astype(np.float32) / 255.0  # (1965, 560): one image per row
    train, valid, test = split_indices(len(x), 1565, 200, seed=0)
    return Dataset(
        name="frey_face",
        train=x[train],
        valid=x[valid],
        test=x[test],
        image_shape=(28, 20),
        likelihood="gaussian",
        scaling="uint8 0..255 divided by 255",
        divisor=255.0,
    )


# ---- MNIST (IDX) -------------------------------------------------------------------------

_MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaceb8d51a37b6270d2d1d",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}


def _decode_idx(path: Path, name: str) -> np.ndarray:
    return read_idx(path, name=name)


MNIST_FILES = {
    name: SourceFile(
        folder="mnist",
        name=name,
        urls=(
            f"https://ossci-datasets.s3.amazonaws.com/mnist/{name}",
            f"http://yann.lecun.com/exdb/mnist/{name}",
        ),
        decode=_decode_idx,
        md5=md5,
    )
    for name, md5 in _MNIST_MD5.items()
}


def _mnist_part(fetch: Fetch, part: str) -> tuple[np.ndarray, np.ndarray]:
    """Images float32 ``(N, 784)`` in [0, 1] and int64 labels ``(N,)`` of ``train`` or ``t10k``."""
    images_name, labels_name = f"{part}-images-idx3-ubyte.gz", f"{part}-labels-idx1-ubyte.gz"
    images, labels = fetch(MNIST_FILES[images_name]), fetch(MNIST_FILES[labels_name])
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
        raise DataError(
            f"{images_name}: expected uint8 images of shape (N, 28, 28), "
            f"found {images.dtype} {images.shape}"
        )
    if labels.shape != (len(images),):
        raise DataError(
            f"{labels_name}: expected {len(images)} labels (one per image), found shape "
            f"{labels.shape}"
        )
    x = images.reshape(len(images), 784).astype(np.float32) / 255.0
    return x, labels.astype(np.int64)


def _build_mnist_test(fetch: Fetch) -> Dataset:
    x, y = _mnist_part(fetch, "t10k")
    return Dataset(
        name="mnist_test",
        train=np.empty((0, 784), dtype=np.float32),
        test=x,
        image_shape=(28, 28),
        likelihood="bernoulli",
        labels={"test": y},
        scaling="uint8 0..255 divided by 255",
        divisor=255.0,
    )


def _build_mnist(fetch: Fetch) -> Dataset:
    x, y = _mnist_part(fetch, "train")
    x_test, y_test = _mnist_part(fetch, "t10k")
    return Dataset(
        name="mnist",
        train=x[:50000],
        valid=x[50000:],
        test=x_test,
        image_shape=(28, 28),
        likelihood="bernoulli",
        labels={"train": y[:50000], "valid": y[50000:], "test": y_test},
        scaling="uint8 0..255 divided by 255",
        divisor=255.0,
    )


# ---- scikit-learn digits -----------------------------------------------------------------


def _build_digits(fetch: Fetch) -> Dataset:
    from sklearn.datasets import load_digits  # slow to import; bundled data, no download

    bunch = load_digits()
    x = bunch.data.astype(np.float32) / 16.0
    y = bunch.target.astype(np.int64)
    train, valid, test = split_indices(len(x), 1497, 150, seed=0)
    return Dataset(
        name="digits",
        train=x[train],
        valid=x[valid],
        test=x[test],
        image_shape=(8, 8),
        likelihood="bernoulli",
        labels={"train": y[train], "valid": y[valid], "test": y[test]},
        scaling="integers 0..16 divided by 16",
        divisor=16.0,
    )


# ---- MOSES (molecules) -------------------------------------------------------------------

_MOSES_SHA256 = {
    "train.csv.gz": "786f0313aa6b9ba5514df685f885742a70ea8d86f1a4fa48115f7f80a634265c",
    "test.csv.gz": "f896fbf3764f88d94670b9959e5872c600c12152a18233823e820761b7a791b2",
    "test_scaffolds.csv.gz": "adffb2192c1bfe31ab0e13154d4af19a37dc18bdbf3cd7b4491e04405128adde",
    "mcf.csv": "f4a2bfacb4cb8877295eb2a4b4e61ec9770a26388f1331e5dc9c193d22dd5f89",
    "wehi_pains.csv": "d762e5420ec70f06d7e41d336cae6f67e2feb0eddf05c6171192a332726d296f",
}


def _moses_urls(name: str) -> tuple[str, ...]:
    """The data files are Git LFS objects, served by media.githubusercontent.com (the raw
    URL gives the LFS pointer); the filter tables are ordinary files."""
    if name.endswith(".gz"):
        path = f"molecularsets/moses/master/moses/dataset/data/{name}"
        return (
            f"https://media.githubusercontent.com/media/{path}",
            f"https://github.com/molecularsets/moses/raw/master/moses/dataset/data/{name}",
        )
    return (f"https://raw.githubusercontent.com/molecularsets/moses/master/moses/metrics/{name}",)


def _file_bytes(path: Path, name: str) -> np.ndarray:
    """The file's bytes as a uint8 array, so that its sha256 is the file's."""
    return np.frombuffer(read_bytes(path, name), dtype=np.uint8)


MOSES_FILES = {
    name: SourceFile(
        folder="moses", name=name, urls=_moses_urls(name), decode=_file_bytes, sha256=sha
    )
    for name, sha in _MOSES_SHA256.items()
}


def moses_file(
    name: str, data_dir: str | os.PathLike | None = None, download: bool = True
) -> bytes:
    """The bytes of the MOSES file ``name`` (a key of :data:`MOSES_FILES`), found in the data
    dir (or downloaded) and checked against its sha256.

    Raises:
        DataError: the file is missing (and not downloadable) or its sha256 differs.
    """
    source = MOSES_FILES[name]
    x = verify(source, locate(source, resolve_data_dir(data_dir), download=download))
    assert x is not None  # a sha256 is set, so the file was read
    return x.tobytes()


MOLECULE_DATASETS = {"moses": "aevb.molecules.load_moses()"}
"""Molecule datasets by name, with the function that loads them (strings, not a Dataset)."""


# ---- the registry ------------------------------------------------------------------------

REGISTRY: dict[str, Entry] = {
    e.name: e
    for e in (
        Entry(
            "binarized_mnist",
            "MNIST statically binarized (Larochelle & Murray), 50000/10000/10000 of 28x28",
            tuple(BINARIZED_MNIST_FILES.values()),
            _build_binarized_mnist,
        ),
        Entry(
            "frey_face",
            "Frey Face, 1965 greyscale faces of 28x20 in [0, 1], split 1565/200/200",
            (FREY_FACE_FILE,),
            _build_frey_face,
        ),
        Entry(
            "mnist_test",
            "MNIST test digits with labels, 10000 of 28x28 in [0, 1] (test split only)",
            (MNIST_FILES["t10k-images-idx3-ubyte.gz"], MNIST_FILES["t10k-labels-idx1-ubyte.gz"]),
            _build_mnist_test,
        ),
        Entry(
            "mnist",
            "MNIST with labels, 50000/10000/10000 of 28x28 in [0, 1]",
            tuple(MNIST_FILES.values()),
            _build_mnist,
        ),
        Entry(
            "digits",
            "scikit-learn 8x8 digits with labels in [0, 1], split 1497/150/150 (bundled)",
            (),
            _build_digits,
        ),
    )
}


def dataset_names() -> list[str]:
    """The registered dataset names."""
    return list(REGISTRY)


def load_dataset(
    name: str, data_dir: str | os.PathLike | None = None, download: bool = True
) -> Dataset:
    """Load a registered dataset.

    Args:
        name: one of :func:`dataset_names`.
        data_dir: folder holding ``<folder>/<file>`` as published; default
            ``$AEVB_DATA_DIR``, else the user cache dir (see :mod:`aevb.data.locations`).
        download: fetch missing files from their public URLs.

    Raises:
        DataError: unknown name; a file missing (and not downloadable), truncated,
            corrupt or failing its checksum; a molecule dataset (its loader is named).
    """
    if name in MOLECULE_DATASETS:
        raise DataError(
            f"{name}: a molecule dataset (SMILES strings, not rows of numbers); load it with "
            f"{MOLECULE_DATASETS[name]}"
        )
    if name not in REGISTRY:
        raise DataError(f"unknown dataset {name!r}: expected one of {dataset_names()}")
    root = resolve_data_dir(data_dir)
    return REGISTRY[name].build(lambda source: load_source(source, root, download=download))
