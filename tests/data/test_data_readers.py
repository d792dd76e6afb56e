"""Readers of the published formats: exact decoding and a one-line error for each bad file."""

from __future__ import annotations

import dataclasses
import gzip
import struct

import numpy as np
import pytest
import scipy.io

from aevb.data import DataError, load_dataset
from aevb.data import registry as reg
from aevb.data.amat import read_amat
from aevb.data.idx import read_idx
from aevb.data.matlab import read_mat_variable


def _amat_text(x: np.ndarray, newline: str = "\n") -> str:
    return "".join(" ".join(str(v) for v in row) + newline for row in x)


@pytest.fixture
def bits() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 2, size=(5, 784), dtype=np.uint8)


def test_amat_canonical_and_general_layouts_decode_alike(tmp_path, bits):
    (tmp_path / "a.amat").write_text(_amat_text(bits))
    (tmp_path / "b.amat").write_bytes(_amat_text(bits, "\r\n").replace(" ", "  ").encode())
    for name in ("a.amat", "b.amat"):
        x = read_amat(tmp_path / name, rows=5)
        assert x.dtype == np.uint8 and x.flags.c_contiguous
        np.testing.assert_array_equal(x, bits)


def test_amat_short_line_is_reported_with_its_number(tmp_path, bits):
    lines = _amat_text(bits).splitlines(keepends=True)
    lines[2] = lines[2][:-3] + "\n"  # drop the last value
    (tmp_path / "binarized_mnist_test.amat").write_text("".join(lines))
    with pytest.raises(DataError) as e:
        read_amat(tmp_path / "binarized_mnist_test.amat")
    assert str(e.value) == (
        "binarized_mnist_test.amat: expected 784 values of 0 or 1 per line, line 3 has 783"
    )


def test_amat_truncated_file_has_too_few_lines(tmp_path, bits):
    (tmp_path / "t.amat").write_text(_amat_text(bits[:4]))
    with pytest.raises(DataError, match=r"^t\.amat: expected 5 lines of 784 values, found 4$"):
        read_amat(tmp_path / "t.amat", rows=5)


def test_amat_value_other_than_0_or_1(tmp_path, bits):
    text = _amat_text(bits)
    pos = len(text) // 5 + 8  # line 2, value 5
    (tmp_path / "v.amat").write_text(text[:pos] + "2" + text[pos + 1 :])
    with pytest.raises(
        DataError,
        match=r"^v\.amat: expected 784 values of 0 or 1 per line, "
        r"line 2 value 5 is '2'$",
    ):
        read_amat(tmp_path / "v.amat")


def test_amat_empty_file(tmp_path):
    (tmp_path / "e.amat").write_bytes(b"")
    with pytest.raises(DataError, match=r"^e\.amat: empty file"):
        read_amat(tmp_path / "e.amat")


def test_registered_amat_with_wrong_line_count_names_the_file(tmp_path, bits):
    folder = tmp_path / "binarized_mnist"
    folder.mkdir()
    for split in ("train", "valid", "test"):
        (folder / f"binarized_mnist_{split}.amat").write_text(_amat_text(bits))
    with pytest.raises(DataError, match=r"^binarized_mnist_train\.amat: expected 50000 lines"):
        load_dataset("binarized_mnist", data_dir=tmp_path, download=False)


def test_decoded_checksum_mismatch_names_both_digests(shared_data, monkeypatch):
    source = dataclasses.replace(reg.FREY_FACE_FILE, sha256="0" * 64)
    monkeypatch.setattr(reg, "FREY_FACE_FILE", source)
    with pytest.raises(DataError) as e:
        load_dataset("frey_face")
    assert str(e.value) == (
        "frey_rawface.mat: sha256 of the decoded uint8 array (560, 1965) mismatch: expected "
        + "0" * 64
        + ", found fbd70c2c992104024a20f4d253da1a1132eb6bf8ed142dccbe7d2b1743b705c4"
    )


def test_file_md5_mismatch_names_both_digests(shared_data, monkeypatch):
    name = "t10k-labels-idx1-ubyte.gz"
    wrong = dataclasses.replace(reg.MNIST_FILES[name], md5="f" * 32)
    monkeypatch.setitem(reg.MNIST_FILES, name, wrong)
    with pytest.raises(
        DataError,
        match=rf"^{name}: md5 mismatch: expected f{{32}}, found "
        r"ec29112dd5afa0611ce80d1b7f02629c \(",
    ):
        load_dataset("mnist_test")


def _idx_bytes(array: np.ndarray) -> bytes:
    return (
        bytes([0, 0, 0x08, array.ndim])
        + struct.pack(f">{array.ndim}I", *array.shape)
        + (array.astype(np.uint8).tobytes())
    )


def test_idx_roundtrip_plain_and_gzip(tmp_path):
    x = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a-idx3-ubyte").write_bytes(_idx_bytes(x))
    (tmp_path / "a-idx3-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(x)))
    np.testing.assert_array_equal(read_idx(tmp_path / "a-idx3-ubyte"), x)
    np.testing.assert_array_equal(read_idx(tmp_path / "a-idx3-ubyte.gz"), x)


def test_idx_corrupt_gzip(tmp_path):
    good = gzip.compress(_idx_bytes(np.zeros((4, 28, 28))))
    (tmp_path / "c.gz").write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match=r"^c\.gz: corrupt gzip data \(.+\)$"):
        read_idx(tmp_path / "c.gz")
    (tmp_path / "d.gz").write_bytes(b"plain bytes, not gzip")
    with pytest.raises(DataError, match=r"^d\.gz: corrupt gzip data"):
        read_idx(tmp_path / "d.gz")


def test_idx_wrong_magic(tmp_path):
    (tmp_path / "m.gz").write_bytes(gzip.compress(b"\x12\x34\x08\x03" + bytes(100)))
    with pytest.raises(
        DataError,
        match=r"^m\.gz: not an IDX file: expected magic bytes "
        r"00 00 <type> <ndim>, found 12 34 08 03$",
    ):
        read_idx(tmp_path / "m.gz")


def test_idx_header_disagrees_with_data_size(tmp_path):
    data = _idx_bytes(np.zeros((10, 28, 28)))[:-28]
    (tmp_path / "h.gz").write_bytes(gzip.compress(data))
    with pytest.raises(
        DataError,
        match=r"^h\.gz: IDX header gives shape \(10, 28, 28\) "
        r"\(7840 bytes of data\), found 7812 bytes$",
    ):
        read_idx(tmp_path / "h.gz")


def test_mat_without_the_variable_lists_what_it_has(tmp_path):
    scipy.io.savemat(tmp_path / "f.mat", {"faces": np.zeros((2, 2), np.uint8)})
    with pytest.raises(DataError, match=r"^f\.mat: expected a variable 'ff', found \['faces'\]$"):
        read_mat_variable(tmp_path / "f.mat", "ff")


def test_registered_mat_of_wrong_shape(tmp_path):
    (tmp_path / "frey_face").mkdir()
    ff = np.zeros((560, 10), np.uint8)
    scipy.io.savemat(tmp_path / "frey_face" / "frey_rawface.mat", {"ff": ff})
    with pytest.raises(
        DataError,
        match=r"^frey_rawface\.mat: expected 'ff' of shape "
        r"\(560, 1965\), found \(560, 10\)$",
    ):
        load_dataset("frey_face", data_dir=tmp_path, download=False)


def test_mat_that_is_not_a_mat_file(tmp_path):
    (tmp_path / "x.mat").write_bytes(b"\x00" * 10)
    with pytest.raises(DataError, match=r"^x\.mat: not a readable MATLAB \.mat file \(.+\)$"):
        read_mat_variable(tmp_path / "x.mat", "ff")
