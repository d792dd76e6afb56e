"""``aevb anomaly fit | score | report`` on the bundled digits (digit 0 normal), and their
one-line errors."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from aevb.apps.anomaly import Detector
from aevb.cli import main
from aevb.data import load_dataset

FIT = ["--epochs", "60", "--latent-dim", "4", "--hidden", "32", "--optimizer", "adam"]
FIT += ["--lr", "3e-3", "--init", "default", "--quiet", "--no-pictures", "--batch-size", "50"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("anomaly") / "zeros"
    assert main(["anomaly", "fit", "digits", "--out", str(out), "--normal-class", "0", *FIT]) == 0
    return out


def test_fit_trains_on_the_normal_class_and_stores_the_detector(run):
    detector = Detector.load(run)
    assert detector.score == "elbo" and detector.contamination == 0.01
    meta = json.loads((run / "checkpoint" / "trainer.json").read_text())
    zeros = (load_dataset("digits").labels["train"] == 0).sum()
    assert meta["data_identity"]["splits"]["train"]["shape"][0] == zeros
    assert "valid split" in detector.reference


def test_score_writes_one_row_per_example(run, tmp_path, capsys):
    path = tmp_path / "scores.csv"
    assert main(["anomaly", "score", str(run), "digits", "--csv", str(path)]) == 0
    rows = list(csv.DictReader(path.open()))
    assert len(rows) == len(load_dataset("digits").test)
    assert [int(r["index"]) for r in rows] == list(range(len(rows)))
    assert {r["flag"] for r in rows} <= {"1", "-1"}
    assert "flagged" in capsys.readouterr().out


def test_report_separates_the_normal_class(run, tmp_path, capsys):
    out = tmp_path / "report"
    code = main(
        ["anomaly", "report", str(run), "digits", "--normal-class", "0", "--out-dir", str(out)]
    )
    assert code == 0
    result = json.loads((out / "report.json").read_text())
    assert result["auroc"] > 0.95
    assert result["flagged_normal"] < 0.5 < result["flagged_anomalies"]
    assert (out / "roc.png").stat().st_size > 0 and (out / "scores.png").stat().st_size > 0


def test_report_reads_labels_from_a_file(run, tmp_path):
    y = (load_dataset("digits").labels["test"] != 0).astype(int)
    np.savetxt(tmp_path / "labels.csv", y, fmt="%d", header="anomaly", comments="")
    out = tmp_path / "r"
    labels = str(tmp_path / "labels.csv")
    cmd = ["anomaly", "report", str(run), "digits", "--labels", labels, "--out-dir", str(out)]
    assert main(cmd) == 0
    assert json.loads((out / "report.json").read_text())["auroc"] > 0.95


def error_of(capsys, argv):
    try:
        code = main(argv)
    except SystemExit as e:  # refused while parsing
        code = e.code
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    return err


def test_bad_input_gets_one_line(run, tmp_path, capsys):
    assert "contamination" in error_of(
        capsys, ["anomaly", "fit", "digits", "--out", str(tmp_path / "x"), "--contamination", "0.7"]
    )
    np.savetxt(tmp_path / "short.csv", [0, 1, 0], fmt="%d")
    err = error_of(
        capsys, ["anomaly", "report", str(run), "digits", "--labels", str(tmp_path / "short.csv")]
    )
    assert "one label per example" in err
    np.save(tmp_path / "narrow.npy", np.zeros((5, 10), np.float32))
    err = error_of(
        capsys, ["anomaly", "score", str(run), str(tmp_path / "narrow.npy"), "--csv", "s.csv"]
    )
    assert "expected 64" in err
    plain = tmp_path / "plain"
    main(
        [
            "train",
            "--data",
            "digits",
            "--out",
            str(plain),
            "--epochs",
            "1",
            "--quiet",
            "--no-pictures",
        ]
    )
    capsys.readouterr()
    err = error_of(
        capsys, ["anomaly", "score", str(plain), "digits", "--csv", str(tmp_path / "s.csv")]
    )
    assert "no anomaly.json" in err
    err = error_of(
        capsys, ["anomaly", "fit", "digits", "--out", str(tmp_path / "y"), "--normal-class", "42"]
    )
    assert "no example" in err
