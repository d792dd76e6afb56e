"""Synthetic data (aevb.apps.synthetic, aevb sample): every output format reads back as
the same draws, N per class for a conditional model, and bad requests are refused."""

from __future__ import annotations

import csv

import numpy as np
import pytest

import aevb
from aevb.apps import synthetic
from aevb.cli import main
from aevb.data import read_examples

from helpers import tiny_vae


@pytest.fixture()
def cvae(tmp_path):
    model = tiny_vae(input_dim=64, latent_dim=3, hidden=(16,), image_shape=(8, 8), condition_dim=4)
    aevb.save(model, tmp_path / "cvae")
    return model, tmp_path / "cvae"


def test_per_class_draws_cycle_through_the_classes(cvae):
    model, _ = cvae
    labels = synthetic.class_labels(model, 3, [1, 2])
    assert labels.tolist() == [1, 2, 1, 2, 1, 2]
    x = synthetic.draw(model, len(labels), labels=labels, seed=5)
    assert x.shape == (6, 64) and x.dtype == np.float32
    np.testing.assert_array_equal(x, synthetic.draw(model, 6, labels=labels, seed=5))
    # each draw is the decoder's mean for its own class: the same z under another class differs
    assert not np.allclose(x, synthetic.draw(model, 6, labels=labels.flip(0), seed=5))


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".csv", "/"])
def test_every_format_reads_back_as_the_draws(cvae, tmp_path, suffix, capsys):
    model, folder = cvae
    out = str(tmp_path / "draws") + suffix
    args = ["sample", str(folder), "--per-class", "5", "--seed", "3", "--out", out]
    assert main(args) == 0
    assert "20 samples" in capsys.readouterr().out
    labels = synthetic.class_labels(model, 5)
    expected = synthetic.draw(model, 20, labels=labels, seed=3)
    x, y, shape, _ = read_examples(out.rstrip("/"))
    tolerance = {".npy": 0, ".npz": 0, ".csv": 1e-5, "/": 0.5 / 255}[suffix]
    if suffix == ".csv":  # the label column is the last of the file
        x, y = x[:, :-1], x[:, -1]
    np.testing.assert_allclose(x, expected, atol=tolerance, rtol=0)
    if suffix == "/":
        assert shape == (8, 8)
        rows = list(csv.DictReader(open(tmp_path / "draws" / "labels.csv")))
        y = [int(r["label"]) for r in rows]
        assert rows[0]["file"] == "000000.png"
    if suffix != ".npy":
        np.testing.assert_array_equal(np.asarray(y, dtype=np.int64), labels.numpy())


def test_csv_has_a_header_and_a_label_column(cvae, tmp_path):
    _, folder = cvae
    assert main(["sample", str(folder), "-n", "4", "--out", str(tmp_path / "s.csv")]) == 0
    header = (tmp_path / "s.csv").read_text().splitlines()[0].split(",")
    assert header[0] == "x0" and header[63] == "x63" and header[-1] == "label"


def test_bad_requests_are_one_line_errors(cvae, tmp_path, capsys):
    model, folder = cvae
    with pytest.raises(ValueError, match="unknown output format .txt"):
        synthetic.output_format(tmp_path / "s.txt")
    with pytest.raises(ValueError, match=r"expected labels in \[0, 4\)"):
        synthetic.class_labels(model, 2, [7])
    plain = tiny_vae(input_dim=64, image_shape=(8, 8))
    with pytest.raises(ValueError, match="not conditional"):
        synthetic.class_labels(plain, 2)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.png").write_bytes(b"")
    assert main(["sample", str(folder), "-n", "2", "--out", str(tmp_path / "full") + "/"]) == 2
    assert "not empty" in capsys.readouterr().err
    with pytest.raises(ValueError, match="no image_shape"):
        synthetic.write_samples(np.zeros((2, 6), np.float32), f"{tmp_path}/d/")
    assert not (tmp_path / "d").exists()
