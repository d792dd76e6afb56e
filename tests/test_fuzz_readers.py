"""Every file reader, fed damaged files: a correct array or one clean line, nothing else.

Property-based (hypothesis, derandomized so CI sees the same examples every run): each
reader gets (a) truncations of a small valid file of its format, (b) random bytes of every
length from 0, (c) a valid file with a few bytes overwritten, and (d) valid files of every
other format. It must either return a sensible array (a truncation may still be a valid
file: then it must agree with the original) or raise exactly DataError (CheckpointError
for model folders) with a one-line message that names the file. Any other exception, or
a crash of the process, fails.
"""

from __future__ import annotations

import functools
import gzip
import io
import json
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from aevb import io as aevb_io
from aevb.data.amat import read_amat
from aevb.data.csvfile import read_csv
from aevb.data.errors import DataError
from aevb.data.idx import read_idx
from aevb.data.images import read_image_folder
from aevb.data.matlab import read_mat_variable
from aevb.data.npyfile import read_npy, read_npz

from helpers import tiny_vae

FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

RNG = np.random.default_rng(0)
BITS = RNG.integers(0, 2, size=(3, 6), dtype=np.uint8)
PIXELS = RNG.integers(0, 256, size=(3, 4, 4), dtype=np.uint8)
FACES = RNG.integers(0, 256, size=(4, 3), dtype=np.uint8)
TABLE = np.array([[1, 2, 3], [4.5, 5, 6], [-7, 8e-3, 9]], dtype=np.float32)
POINTS = RNG.normal(size=(3, 4)).astype(np.float32)
GREY = RNG.integers(0, 256, size=(5, 5), dtype=np.uint8)
COLOUR = RNG.integers(0, 256, size=(5, 5, 3), dtype=np.uint8)


def _amat() -> bytes:
    return "".join(" ".join(map(str, row)) + "\n" for row in BITS).encode()


def _idx() -> bytes:
    return bytes([0, 0, 8, 3]) + struct.pack(">3I", *PIXELS.shape) + PIXELS.tobytes()


def _mat(**kw) -> bytes:
    buf = io.BytesIO()
    scipy.io.savemat(buf, {"ff": FACES, "note": "frey"}, **kw)
    return buf.getvalue()


def _npy() -> bytes:
    buf = io.BytesIO()
    np.save(buf, POINTS)
    return buf.getvalue()


def _npz(compressed: bool) -> bytes:
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, x=POINTS, y=np.arange(3))
    return buf.getvalue()


def _image(array: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, fmt)
    return buf.getvalue()


@functools.cache
def valid_files() -> dict[str, bytes]:
    """One small valid file of every format the readers know, by format name."""
    files = {
        "amat": _amat(),
        "idx": _idx(),
        "idx.gz": gzip.compress(_idx(), mtime=0),
        "mat": _mat(),
        "mat-compressed": _mat(do_compression=True),
        "mat-v4": _mat(format="4"),
        "csv": b"a,b,c\n1,2,3\n4.5,5,6\n-7,8e-3,9\n",
        "npy": _npy(),
        "npz": _npz(compressed=False),
        "npz-compressed": _npz(compressed=True),
        "png": _image(GREY, "PNG"),
        "jpeg": _image(COLOUR, "JPEG"),
    }
    folder = Path(__import__("tempfile").mkdtemp())
    try:
        aevb_io.save_model(tiny_vae(), folder)
        files["safetensors"] = (folder / aevb_io.WEIGHTS_FILE).read_bytes()
        files["json"] = (folder / aevb_io.CONFIG_FILE).read_bytes()
    finally:
        shutil.rmtree(folder)
    return files


def damaged(kind: str) -> st.SearchStrategy[tuple[str, bytes]]:
    """``(how, data)``: a truncation, random bytes, overwritten bytes or another format."""
    valid = valid_files()[kind]
    others = [data for name, data in valid_files().items() if name != kind]
    overwrite = st.lists(
        st.tuples(st.integers(0, len(valid) - 1), st.integers(0, 255)), min_size=1, max_size=4
    )
    return st.one_of(
        st.integers(0, len(valid)).map(lambda n: ("truncated", valid[:n])),
        st.binary(max_size=2 * len(valid)).map(lambda b: ("random", b)),
        overwrite.map(lambda edits: ("overwritten", _overwrite(valid, edits))),
        st.sampled_from(others).map(lambda b: ("other format", b)),
    )


def _overwrite(data: bytes, edits: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for pos, value in edits:
        out[pos] = value
    return bytes(out)


def read_or_refuse(read: Callable[[], object], error: type[Exception], *names: str):
    """``read()``'s result, or None when it raised exactly ``error`` in one line naming a file.

    Any other exception propagates and fails the test.
    """
    try:
        return read()
    except error as e:
        message = str(e)
        assert type(e) is error, f"{type(e).__name__} is a subclass, expected {error.__name__}"
        assert "\n" not in message and message.strip() == message, message
        assert any(name in message for name in names), f"{names} not in {message!r}"
        return None


@FUZZ
@given(case=damaged("amat"))
def test_amat_reader(tmp_path, case):
    how, data = case
    path = tmp_path / "binarized_mnist_valid.amat"
    path.write_bytes(data)
    x = read_or_refuse(lambda: read_amat(path, cols=6), DataError, path.name)
    if x is not None:
        assert x.dtype == np.uint8 and x.ndim == 2 and x.shape[1] == 6
        assert set(np.unique(x)) <= {0, 1}
        if how == "truncated":  # only whole lines can survive a cut
            np.testing.assert_array_equal(x, BITS[: len(x)])


@FUZZ
@given(case=damaged("idx"), gz=st.booleans())
def test_idx_reader_plain_and_gzip(tmp_path, case, gz):
    how, data = case
    path = tmp_path / ("train-images-idx3-ubyte" + (".gz" if gz else ""))
    path.write_bytes(gzip.compress(data, mtime=0) if gz and how != "other format" else data)
    x = read_or_refuse(lambda: read_idx(path), DataError, path.name)
    if x is not None:
        assert isinstance(x, np.ndarray) and x.dtype.isnative
        if how == "truncated":  # the header fixes the size: only the whole file parses
            np.testing.assert_array_equal(x, PIXELS)


@FUZZ
@given(case=damaged("idx.gz"))
def test_idx_reader_damaged_gzip(tmp_path, case):
    how, data = case
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(data)
    x = read_or_refuse(lambda: read_idx(path), DataError, path.name)
    if x is not None and how == "truncated":
        np.testing.assert_array_equal(x, PIXELS)


@FUZZ
@given(kind=st.sampled_from(["mat", "mat-compressed", "mat-v4"]), data=st.data())
def test_mat_reader(tmp_path, kind, data):
    how, raw = data.draw(damaged(kind))
    path = tmp_path / "frey_rawface.mat"
    path.write_bytes(raw)
    x = read_or_refuse(lambda: read_mat_variable(path, "ff"), DataError, path.name)
    if x is not None:
        assert isinstance(x, np.ndarray)
        if how == "truncated":
            np.testing.assert_array_equal(x, FACES)


@FUZZ
@given(case=damaged("csv"))
def test_csv_reader(tmp_path, case):
    how, data = case
    path = tmp_path / "points.csv"
    path.write_bytes(data)
    x = read_or_refuse(lambda: read_csv(path), DataError, path.name)
    if x is not None:
        assert x.dtype == np.float32 and x.ndim == 2 and len(x) >= 1
        if how == "truncated":  # whole rows agree; the last row may be cut short
            n, width = x.shape
            assert width == 3 or n == 1
            np.testing.assert_array_equal(x[:-1], TABLE[: n - 1, :width])
            np.testing.assert_array_equal(x[-1, :-1], TABLE[n - 1, : width - 1])


@FUZZ
@given(case=damaged("npy"))
def test_npy_reader(tmp_path, case):
    how, data = case
    path = tmp_path / "points.npy"
    path.write_bytes(data)
    x = read_or_refuse(lambda: read_npy(path), DataError, path.name)
    if x is not None:
        assert isinstance(x, np.ndarray) and not x.dtype.hasobject
        if how == "truncated":
            np.testing.assert_array_equal(x, POINTS)


@FUZZ
@given(kind=st.sampled_from(["npz", "npz-compressed"]), data=st.data())
def test_npz_reader(tmp_path, kind, data):
    how, raw = data.draw(damaged(kind))
    path = tmp_path / "points.npz"
    path.write_bytes(raw)
    result = read_or_refuse(lambda: read_npz(path), DataError, path.name)
    if result is not None:
        x, _ = result
        assert isinstance(x, np.ndarray) and not x.dtype.hasobject
        if how == "truncated":
            np.testing.assert_array_equal(x, POINTS)


@FUZZ
@given(kind=st.sampled_from(["png", "jpeg"]), data=st.data())
def test_image_folder_reader(tmp_path, kind, data):
    how, raw = data.draw(damaged(kind))
    folder = tmp_path / "faces"  # tmp_path is shared by the examples: start afresh
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    (folder / "a.png").write_bytes(valid_files()["png"])
    damaged_file = folder / ("b.png" if kind == "png" else "b.jpg")
    damaged_file.write_bytes(raw)
    x = read_or_refuse(lambda: read_image_folder(folder), DataError, damaged_file.name)
    if x is not None:
        assert x.dtype == np.uint8 and x.shape[:3] == (2, 5, 5)
        if x.ndim == 3:  # both greyscale: the intact image comes back unchanged
            np.testing.assert_array_equal(x[0], GREY)


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("fuzz") / "model"
    aevb_io.save_model(tiny_vae(), folder)
    return folder


def _load_damaged(model_folder: Path, tmp_path: Path, file: str, data: bytes):
    """Load a copy of ``model_folder`` whose ``file`` holds ``data``; the model, or None."""
    folder = tmp_path / "m"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(model_folder, folder)
    (folder / file).write_bytes(data)
    names = (aevb_io.CONFIG_FILE, aevb_io.WEIGHTS_FILE)
    return read_or_refuse(lambda: aevb_io.load_model(folder), aevb_io.CheckpointError, *names)


def _same_model(model: torch.nn.Module) -> None:
    """A model that loaded from a damaged folder must be the one that was saved, value for
    value (the weights' checksum refuses a byte overwritten inside a tensor)."""
    original = tiny_vae()
    assert model.config == original.config
    for (k, v), (k2, v2) in zip(
        original.state_dict().items(), model.state_dict().items(), strict=True
    ):
        assert k == k2 and v.shape == v2.shape and v.dtype == v2.dtype
        assert torch.equal(v, v2)


@FUZZ
@given(case=damaged("safetensors"))
def test_model_folder_with_damaged_weights(model_folder, tmp_path, case):
    how, data = case
    model = _load_damaged(model_folder, tmp_path, aevb_io.WEIGHTS_FILE, data)
    if model is not None:
        _same_model(model)


@FUZZ
@given(case=damaged("json"))
def test_model_folder_with_damaged_config_bytes(model_folder, tmp_path, case):
    _, data = case
    model = _load_damaged(model_folder, tmp_path, aevb_io.CONFIG_FILE, data)
    if model is not None:
        _same_model(model)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.sampled_from([0, -1, 1, 7, 10**12, 2**70])
    | st.floats(allow_nan=False, allow_infinity=False, width=32)
    | st.sampled_from(["", "tanh", "bernoulli", "gaussian", "vamp", "VAE"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=4,
)


@st.composite
def wrong_shaped_configs(draw) -> dict | list | str | int | None:
    """The saved config.json with keys removed, retyped or resized, or not an object."""
    meta = json.loads(valid_files()["json"])
    config = meta["config"]
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(["top", "config"]))
        target = meta if where == "top" or not isinstance(meta.get("config"), dict) else config
        key = draw(st.sampled_from(sorted(target) + ["extra"]))
        if draw(st.booleans()) and key in target:
            del target[key]
        else:
            target[key] = draw(JSON_VALUES)
    return draw(st.sampled_from([meta, meta, meta, [meta], "config", 1, None]))


@FUZZ
@given(meta=wrong_shaped_configs())
def test_model_folder_with_wrong_shaped_config(model_folder, tmp_path, meta):
    text = json.dumps(meta).encode()
    model = _load_damaged(model_folder, tmp_path, aevb_io.CONFIG_FILE, text)
    if model is not None:  # only keys that loading ignores (e.g. "kl") may have changed
        _same_model(model)


# Regression cases the fuzzing found, with their messages.


def test_mat_element_of_unknown_type_is_refused_before_scipy_reads_it(tmp_path):
    """scipy's C reader indexes a table with the type code: a bad one crashed the process."""
    data = bytearray(_mat())
    name_element = data.index(b"\x01\x00\x02\x00ff\x00\x00")  # small element: 'ff'
    data[name_element + 9] = 0xAB  # the type code of the values' tag: 2 -> 0xAB02
    (tmp_path / "frey_rawface.mat").write_bytes(bytes(data))
    with pytest.raises(DataError) as e:
        read_mat_variable(tmp_path / "frey_rawface.mat", "ff")
    assert str(e.value) == (
        f"frey_rawface.mat: truncated or corrupt MATLAB .mat file: unknown element type "
        f"{0xAB02} at byte {name_element + 8}"
    )


def test_npy_header_claiming_a_huge_array_is_refused_without_allocating(tmp_path):
    buf = io.BytesIO()
    header = {"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6)}
    np.lib.format.write_array_header_1_0(buf, header)
    (tmp_path / "big.npy").write_bytes(buf.getvalue() + bytes(16))
    with pytest.raises(DataError) as e:
        read_npy(tmp_path / "big.npy")
    assert str(e.value) == (
        "big.npy: truncated or corrupt .npy array: header gives shape (1000000, 1000000) of "
        "float64 (8000000000000 bytes), found 16 bytes"
    )


def test_npy_and_npz_given_each_other(tmp_path):
    (tmp_path / "a.npy").write_bytes(_npz(compressed=False))
    with pytest.raises(DataError, match=r"^a\.npy: not a readable \.npy array \(.*magic"):
        read_npy(tmp_path / "a.npy")
    (tmp_path / "b.npz").write_bytes(_npy())
    with pytest.raises(DataError, match=r"^b\.npz: not a readable \.npz file \(File is not a zip"):
        read_npz(tmp_path / "b.npz")


def test_idx_header_claiming_a_trillion_values_is_refused(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">3I", 10**4, 10**4, 10**4) + bytes(8))
    with pytest.raises(DataError) as e:
        read_idx(path)
    assert str(e.value) == (
        "train-images-idx3-ubyte: IDX header gives shape (10000, 10000, 10000) "
        "(1000000000000 bytes of data), found 8 bytes"
    )


def test_png_with_a_broken_chunk_is_a_data_error(tmp_path):
    png = bytearray(valid_files()["png"])
    png[png.index(b"IDAT") - 1] = 11  # the data chunk's length: the next "chunk" is mid-data
    (tmp_path / "a.png").write_bytes(bytes(png))
    with pytest.raises(DataError, match=r"a\.png: not a readable image \(broken PNG file"):
        read_image_folder(tmp_path)


def test_config_of_absurd_sizes_is_refused_without_building_the_model(model_folder, tmp_path):
    meta = json.loads(valid_files()["json"])
    meta["config"]["hidden"] = [10**12]
    model = _load_damaged(model_folder, tmp_path, aevb_io.CONFIG_FILE, json.dumps(meta).encode())
    assert model is None


def test_mat_dimensions_larger_than_the_data_are_refused(tmp_path):
    """A corrupt dimension once made scipy build a struct array of 10^9 elements (6 GB)."""
    data = bytearray(_mat())
    matrix_bytes = struct.unpack_from("<I", data, 132)[0]  # the first variable: 'ff'
    struct.pack_into("<i", data, 160, 10**9)  # its first dimension: 4 -> 10^9
    (tmp_path / "frey_rawface.mat").write_bytes(bytes(data))
    with pytest.raises(DataError) as e:
        read_mat_variable(tmp_path / "frey_rawface.mat", "ff")
    assert str(e.value) == (
        f"frey_rawface.mat: truncated or corrupt MATLAB .mat file: dimensions "
        f"[1000000000, 3] at byte 160 do not fit the {matrix_bytes} bytes of the matrix"
    )


def test_csv_number_beyond_float32_is_refused_not_made_inf(tmp_path):
    (tmp_path / "wide.csv").write_text("a,b\n1,2\n3,-1e39\n4,inf\n")
    with pytest.raises(DataError) as e:
        read_csv(tmp_path / "wide.csv")
    assert str(e.value) == (
        "wide.csv: row 3, column 2: expected a number within float32's range (about 3.4e38), "
        "found '-1e39'"
    )
