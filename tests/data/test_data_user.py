"""The user's own data: .npy, .npz, .csv and image folders; splits; one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from aevb.data import DataError, load, load_user_data, validate_for_likelihood


def test_npy_rows_are_split_by_seeded_permutation(tmp_path):
    x = np.arange(200, dtype=np.float64).reshape(100, 2)
    np.save(tmp_path / "points.npy", x)
    data = load_user_data(tmp_path / "points.npy", valid_fraction=0.2, test_fraction=0.1, seed=3)
    assert data.name == "points" and data.image_shape is None and data.likelihood == "gaussian"
    assert (data.train.shape, data.valid.shape, data.test.shape) == ((70, 2), (20, 2), (10, 2))
    assert data.train.dtype == np.float32
    rows = np.concatenate([data.train, data.valid, data.test])
    np.testing.assert_array_equal(np.sort(rows[:, 0]), x[:, 0])
    again = load_user_data(tmp_path / "points.npy", valid_fraction=0.2, test_fraction=0.1, seed=3)
    np.testing.assert_array_equal(data.valid, again.valid)


def test_npy_uint8_images_are_flattened_and_scaled(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, size=(20, 4, 3), dtype=np.uint8)
    np.save(tmp_path / "imgs.npy", images)
    data = load_user_data(tmp_path / "imgs.npy", valid_fraction=0, test_fraction=0)
    assert data.image_shape == (4, 3) and data.dim == 12 and data.valid is None
    assert data.likelihood == "bernoulli" and data.train.max() <= 1.0
    rgb = np.zeros((10, 4, 3, 3), dtype=np.float32)
    np.save(tmp_path / "rgb.npy", rgb)
    assert load_user_data(tmp_path / "rgb.npy").image_shape == (4, 3, 3)


def test_npz_single_array_x_with_labels_and_bad_keys(tmp_path):
    np.savez(tmp_path / "one.npz", anything=np.ones((10, 3)))
    assert load_user_data(tmp_path / "one.npz").dim == 3
    np.savez(tmp_path / "xy.npz", x=np.ones((10, 3)), y=np.arange(10))
    data = load_user_data(tmp_path / "xy.npz", valid_fraction=0.2, test_fraction=0.0)
    assert sorted(data.labels) == ["train", "valid"] and len(data.labels["valid"]) == 2
    np.savez(tmp_path / "ab.npz", a=np.ones((2, 2)), b=np.ones((2, 2)))
    with pytest.raises(
        DataError,
        match=r"^ab\.npz: expected a single array or one named 'x', "
        r"found keys \['a', 'b'\]$",
    ):
        load_user_data(tmp_path / "ab.npz")


def test_csv_with_and_without_header(tmp_path):
    (tmp_path / "h.csv").write_text("a,b,c\n1,2,3\n4,5,6\n\n7,8,9.5\n")
    data = load_user_data(tmp_path / "h.csv", valid_fraction=0, test_fraction=0)
    assert data.train.shape == (3, 3) and data.likelihood == "gaussian"
    assert 9.5 in data.train
    (tmp_path / "n.csv").write_text("0,1\n1,0.5\n")
    assert load_user_data(tmp_path / "n.csv", valid_fraction=0, test_fraction=0).likelihood == (
        "bernoulli"
    )


def test_csv_non_numeric_cell_names_row_and_column(tmp_path):
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n3,oops\n")
    with pytest.raises(
        DataError,
        match=r"^bad\.csv: row 3, column 2: expected a number, "
        r"found 'oops'$",
    ):
        load_user_data(tmp_path / "bad.csv")


def test_csv_ragged_rows(tmp_path):
    (tmp_path / "r.csv").write_text("1,2,3\n4,5\n")
    with pytest.raises(
        DataError,
        match=r"^r\.csv: expected 3 columns in every row "
        r"\(as in row 1\), row 2 has 2$",
    ):
        load_user_data(tmp_path / "r.csv")


def _png(path, size_hw, mode="L", value=128):
    h, w = size_hw
    shape = (h, w) if mode == "L" else (h, w, 3)
    Image.fromarray(np.full(shape, value, dtype=np.uint8), mode=mode).save(path)


def test_image_folder_greyscale_and_rgb(tmp_path):
    grey, colour = tmp_path / "grey", tmp_path / "colour"
    grey.mkdir()
    colour.mkdir()
    for i in range(10):
        _png(grey / f"{i}.png", (6, 5), value=255)
        _png(colour / f"{i}.png", (6, 5), mode="RGB" if i % 2 else "L")
    (grey / "notes.txt").write_text("ignored")
    g = load_user_data(grey)
    assert g.name == "grey" and g.image_shape == (6, 5) and g.train.shape == (8, 30)
    assert g.train.max() == 1.0 and g.likelihood == "bernoulli"
    assert load_user_data(colour).image_shape == (6, 5, 3)


def test_image_folder_of_mixed_sizes(tmp_path):
    for i, size in enumerate([(6, 5), (6, 5), (7, 5)]):
        _png(tmp_path / f"im{i}.png", size)
    with pytest.raises(DataError) as e:
        load_user_data(tmp_path)
    assert str(e.value) == (
        f"{tmp_path / 'im2.png'}: expected every image to be 6x5 (HxW) like im0.png, found 7x5; "
        "pass image_size=(H, W) to resize"
    )
    data = load_user_data(tmp_path, image_size=(4, 4), valid_fraction=0, test_fraction=0)
    assert data.image_shape == (4, 4) and data.train.shape == (3, 16)


def test_unreadable_image(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"broken\.png: not a readable image \(.+\)$"):
        load_user_data(tmp_path)


def test_missing_path(tmp_path):
    with pytest.raises(DataError, match=r"nope\.npy: no such file or folder$"):
        load_user_data(tmp_path / "nope.npy")


def test_folder_without_images(tmp_path):
    with pytest.raises(DataError, match=r"expected PNG or JPEG images in the folder, found none$"):
        load_user_data(tmp_path)


def test_empty_file_and_empty_array(tmp_path):
    (tmp_path / "e.npy").write_bytes(b"")
    with pytest.raises(DataError, match=r"^e\.npy: empty file, expected a NumPy \.npy array$"):
        load_user_data(tmp_path / "e.npy")
    np.save(tmp_path / "z.npy", np.zeros((0, 4)))
    with pytest.raises(DataError, match=r"^z\.npy: empty array of shape \(0, 4\)"):
        load_user_data(tmp_path / "z.npy")
    (tmp_path / "e.csv").write_text("a,b\n")
    with pytest.raises(DataError, match=r"^e\.csv: empty file"):
        load_user_data(tmp_path / "e.csv")


def test_nan_in_npy_names_count_and_first_position(tmp_path):
    x = np.zeros((10, 3))
    x[4, 1] = np.nan
    x[7, 0] = np.inf
    np.save(tmp_path / "nan.npy", x)
    with pytest.raises(
        DataError,
        match=r"^nan\.npy: expected finite values, found 2 NaN/inf "
        r"\(first at index \(4, 1\)\)$",
    ):
        load_user_data(tmp_path / "nan.npy")


def test_wrong_rank_and_type(tmp_path):
    np.save(tmp_path / "v.npy", np.zeros(5))
    with pytest.raises(
        DataError,
        match=r"^v\.npy: expected a 2-D \(N, D\) array or N images .* "
        r"found shape \(5,\)$",
    ):
        load_user_data(tmp_path / "v.npy")
    np.save(tmp_path / "s.npy", np.array([["a", "b"]]))
    with pytest.raises(DataError, match=r"^s\.npy: expected a numeric array, found dtype <U1$"):
        load_user_data(tmp_path / "s.npy")
    (tmp_path / "t.txt").write_text("1 2 3")
    with pytest.raises(DataError, match=r"^t\.txt: unsupported file type '\.txt'"):
        load_user_data(tmp_path / "t.txt")


def test_bad_fractions_name_the_option(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((10, 2)))
    with pytest.raises(DataError, match=r"^valid_fraction=1\.5: expected a number in \[0, 1\)$"):
        load_user_data(tmp_path / "x.npy", valid_fraction=1.5)
    with pytest.raises(DataError, match=r"expected at least one of the 10 examples left"):
        load_user_data(tmp_path / "x.npy", valid_fraction=0.5, test_fraction=0.5)


def test_load_dispatches_on_name_or_path(tmp_path):
    assert load("digits").name == "digits"
    np.save(tmp_path / "x.npy", np.zeros((10, 2)))
    assert load(str(tmp_path / "x.npy"), seed=1).dim == 2
    with pytest.raises(DataError) as e:
        load("no_such_thing.npy")
    assert str(e.value) == (
        "unknown dataset 'no_such_thing.npy': expected one of ['binarized_mnist', 'frey_face', "
        "'mnist_test', 'mnist', 'digits'] or a path to .npy/.npz/.csv or an image folder"
    )
    with pytest.raises(
        DataError,
        match=r"^image_size: not an option of the registered dataset "
        r"'digits'",
    ):
        load("digits", image_size=(8, 8))


def test_validate_for_likelihood():
    validate_for_likelihood(np.array([[0.0, 0.5, 1.0]]), "bernoulli", "ok")
    validate_for_likelihood(np.array([[-3.0, 7.0]]), "gaussian", "ok")
    with pytest.raises(
        DataError,
        match=r"^faces: the bernoulli likelihood expects values in "
        r"\[0, 1\], found values in \[-0\.5, 2\]; rescale",
    ):
        validate_for_likelihood(np.array([[-0.5, 2.0]]), "bernoulli", "faces")
    with pytest.raises(DataError, match=r"^x: expected finite values, found 1 NaN/inf"):
        validate_for_likelihood(np.array([[0.0, np.nan]]), "gaussian", "x")
    with pytest.raises(
        DataError,
        match=r"^x: likelihood 'poisson': expected one of bernoulli, "
        r"gaussian, categorical$",
    ):
        validate_for_likelihood(np.zeros((1, 1)), "poisson", "x")
    validate_for_likelihood(np.array([[1.0, 4.0, 2.0, 0.0]]), "categorical", "ids")
    with pytest.raises(DataError, match=r"^ids: the categorical likelihood expects token ids"):
        validate_for_likelihood(np.array([[1.0, 4.5]]), "categorical", "ids")


# ---- one rule for the values of every dtype ------------------------------------------------


def test_uint8_pixels_are_divided_by_255(tmp_path):
    pixels = np.array([[0, 128, 255], [3, 2, 1]], dtype=np.uint8)
    np.save(tmp_path / "px.npy", pixels)
    data = load_user_data(tmp_path / "px.npy", valid_fraction=0, test_fraction=0)
    np.testing.assert_allclose(np.sort(data.train.ravel()), np.sort(pixels.ravel()) / 255.0)
    assert data.scaling == "uint8 0..255 divided by 255"
    assert data.likelihood == "bernoulli" and data.divisor == 255.0


@pytest.mark.parametrize("dtype", [np.int16, np.int64, np.uint16])
def test_other_integer_dtypes_are_kept_even_in_0_255(tmp_path, dtype):
    """Counts 0..9 in an int64 array are not pixels: only the dtype uint8 says so."""
    counts = np.array([[0, 9, 3], [3, 2, 1]], dtype=dtype)
    np.save(tmp_path / "counts.npy", counts)
    data = load_user_data(tmp_path / "counts.npy", valid_fraction=0, test_fraction=0)
    np.testing.assert_array_equal(np.sort(data.train.ravel()), np.sort(counts.ravel()))
    assert data.scaling == "none" and data.likelihood == "gaussian" and data.divisor == 1.0


@pytest.mark.parametrize("dtype", [np.uint8, np.int64, np.bool_])
def test_binary_integers_are_kept(tmp_path, dtype):
    np.save(tmp_path / "bits.npy", np.array([[0, 1, 1], [1, 0, 0]], dtype=dtype))
    data = load_user_data(tmp_path / "bits.npy", valid_fraction=0, test_fraction=0)
    assert sorted(np.unique(data.train)) == [0.0, 1.0]
    assert data.scaling == "none" and data.likelihood == "bernoulli" and data.divisor == 1.0


@pytest.mark.parametrize(
    "values",
    [
        np.array([[0, 128, 255], [3, 2, 1]], dtype=np.float64),  # pixels stored as floats
        np.array([[0, 128, 255], [3, 2, 1]], dtype=np.float32),
        np.array([[-5, 0, 1000], [3, 2, 1]], dtype=np.int64),  # integers, not pixels
        np.array([[0, 300, 1], [3, 2, 1]], dtype=np.uint16),
    ],
)
def test_floats_and_integers_outside_0_255_are_kept_and_suggest_a_gaussian(tmp_path, values):
    np.save(tmp_path / "v.npy", values)
    data = load_user_data(tmp_path / "v.npy", valid_fraction=0, test_fraction=0)
    np.testing.assert_array_equal(np.sort(data.train.ravel()), np.sort(values.ravel()))
    assert data.scaling == "none" and data.likelihood == "gaussian"


def test_image_folder_pixels_are_always_divided_by_255(tmp_path):
    for i in range(3):
        _png(tmp_path / f"{i}.png", (2, 2), value=1)  # dark, but pixels: not 0/1 data
    data = load_user_data(tmp_path, valid_fraction=0, test_fraction=0)
    np.testing.assert_allclose(data.train, 1 / 255.0)
    assert data.scaling == "uint8 image pixels 0..255 divided by 255"


def test_registered_datasets_say_how_they_were_scaled():
    data = load("digits")
    assert data.scaling == "integers 0..16 divided by 16" and data.divisor == 16.0
    assert data.describe() == (
        "digits: 1497 x 64 train rows, values in [0, 1], integers 0..16 divided by 16"
    )


def test_describe_names_rows_range_scaling_and_condition_columns():
    from aevb.data import Dataset

    data = Dataset("pts", np.array([[-2.5, 0.0, 1.0], [3.0, 1.0, 0.0]]), condition_dim=2)
    assert data.describe() == (
        "pts: 2 x 1 train rows (+ 2 condition columns), values in [-2.5, 3], not rescaled"
    )


def test_gaussian_mean_auto_follows_the_range_and_sigmoid_refuses_data_outside_0_1():
    from aevb.data.validation import resolve_gaussian_mean

    assert resolve_gaussian_mean("auto", np.array([[0.0, 1.0]])) == "sigmoid"
    assert resolve_gaussian_mean("auto", np.array([[0.0, 255.0]])) == "identity"
    assert resolve_gaussian_mean("auto", np.array([[-0.1, 0.5]])) == "identity"
    assert resolve_gaussian_mean("sigmoid", np.array([[0.0, 255.0]])) == "sigmoid"
    validate_for_likelihood(np.array([[0.0, 1.0]]), "gaussian", "ok", "sigmoid")
    validate_for_likelihood(np.array([[-3.0, 255.0]]), "gaussian", "ok", "identity")
    with pytest.raises(
        DataError,
        match=r"^px\.npy: a gaussian likelihood with a sigmoid mean expects values in "
        r"\[0, 1\], found values in \[0, 255\]; use --gaussian-mean identity",
    ):
        validate_for_likelihood(np.array([[0.0, 255.0]]), "gaussian", "px.npy", "sigmoid")
