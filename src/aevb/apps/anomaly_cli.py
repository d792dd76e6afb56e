"""``aevb anomaly fit | score | report``: anomaly detection from the command line, through
the same functions as the Python API (:mod:`aevb.apps.anomaly`, :func:`aevb.run.train_or_resume`).

* ``fit DATA --out RUN``: train a VAE exactly as ``aevb train`` does (every training
  option applies), on the normal examples only when ``--normal-class`` names them, then
  fit the detector's threshold on the validation split (else the training split) and
  store it as ``RUN/anomaly.json``.
* ``score RUN DATA --csv scores.csv``: one row per input example (index, score, flag).
* ``report RUN DATA --labels LABELS``: AUROC and AUPRC against ground truth, a ROC curve
  and a histogram of the scores of normal examples and anomalies.

DATA is a registered dataset (its ``--split``, test by default) or a user file or image
folder (every example, in the file's order).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from aevb import data as aevb_data
from aevb import io as aevb_io
from aevb.apps import anomaly
from aevb.argtypes import Number, count
from aevb.atomic import write_text
from aevb.data.dataset import SPLITS
from aevb.runfolder import RunFolder

MAX_K = 100_000


def add_options(sub: Any) -> None:
    """``aevb anomaly`` and its three commands."""
    from aevb import commands  # the train command's options, shared by anomaly fit
    from aevb.options import DefaultsHelpFormatter

    a = sub.add_parser(
        "anomaly",
        help="anomaly detection: fit a detector, score data, report AUROC against labels",
        description="Anomaly detection with a VAE: fit a model and its threshold, score "
        "examples, report AUROC and AUPRC against labels.",
    )
    cmds = a.add_subparsers(
        dest="anomaly_command",
        required=True,
        metavar="ACTION",
        help="fit a detector, score data with it, or report how well it separates labels",
    )

    fit = cmds.add_parser(
        "fit",
        help="train a VAE on normal data and fit the detector's threshold",
        formatter_class=DefaultsHelpFormatter,
    )
    fit.add_argument(
        "data_path",
        metavar="DATA",
        nargs="?",
        default=None,
        help="the normal data: a registered dataset or a user file or folder (or --data)",
    )
    commands.add_train_arguments(fit)
    d = fit.add_argument_group("detector")
    _score_options(d)
    d.add_argument(
        "--contamination",
        type=Number(float, 0.0, 0.5, low_open=True),
        default=0.01,
        help="share of the reference split (validation, else training) flagged as "
        "outliers: the threshold is its 1 - contamination quantile of scores",
    )
    _normal_class_option(d, "train on the examples of these classes only (labelled data)")
    fit.set_defaults(handler=fit_command)

    score = cmds.add_parser(
        "score",
        help="score every example of DATA: a CSV of index, score, flag",
        formatter_class=DefaultsHelpFormatter,
    )
    _model_and_data(score)
    score.add_argument("--csv", required=True, help="where to write the scores (CSV)")
    score.set_defaults(handler=score_command)

    report = cmds.add_parser(
        "report",
        help="AUROC and AUPRC against labels, a ROC curve and a score histogram",
        formatter_class=DefaultsHelpFormatter,
    )
    _model_and_data(report)
    truth = report.add_mutually_exclusive_group(required=True)
    truth.add_argument(
        "--labels",
        help="ground truth, one value per example of DATA: 0/1 (1 = anomaly) or 1/-1 "
        "(-1 = outlier), as .npy or a one-column .csv/.txt",
    )
    _normal_class_option(
        truth, "ground truth from DATA's class labels: other classes are anomalies"
    )
    report.add_argument(
        "--out-dir",
        default=None,
        help="folder for report.json, roc.png and scores.png (default: RUN/anomaly-report)",
    )
    report.set_defaults(handler=report_command)


def _score_options(g: Any) -> None:
    g.add_argument(
        "--score",
        choices=anomaly.SCORES,
        default="elbo",
        help="elbo: negative ELBO; nll: importance-sampled negative log-likelihood; "
        "recon-prob: An & Cho's reconstruction probability; nll-complexity: nll minus the "
        "image's PNG length (Serra et al. 2020; images only, see docs/anomaly.md)",
    )
    g.add_argument(
        "--k", type=count(1, MAX_K), default=100, help="importance samples of --score nll"
    )
    g.add_argument(
        "--draws",
        type=count(1, MAX_K),
        default=1,
        help="posterior draws L of --score elbo and recon-prob",
    )


def _normal_class_option(g: Any, help: str) -> None:
    g.add_argument(
        "--normal-class", type=count(0, 10**6), nargs="+", default=None, metavar="K", help=help
    )


def _model_and_data(p: argparse.ArgumentParser) -> None:
    from aevb.options import add_threads

    p.add_argument("model", metavar="RUN", help="a run folder (or model folder) with anomaly.json")
    p.add_argument("data", metavar="DATA", help="a registered dataset, or a user file or folder")
    p.add_argument("--split", default="test", choices=list(SPLITS), help="registered datasets only")
    p.add_argument("--data-dir", default=None, help="folder holding dataset files")
    p.add_argument(
        "--score",
        choices=anomaly.SCORES,
        default=None,
        help="another score than the detector's (the flags then use no threshold)",
    )
    add_threads(p)


def fit_command(args: argparse.Namespace) -> str:
    """``aevb anomaly fit``: train (or resume) the run, then fit and store the detector."""
    from aevb import commands

    if args.out is None:
        raise ValueError("--out: expected the run folder to write")
    if args.data_path is not None and args.data not in (None, args.data_path):
        raise ValueError(f"DATA {args.data_path} and --data {args.data}: expected one of them")
    args.data = args.data or args.data_path
    classes = args.normal_class

    def prepare(data: aevb_data.Dataset) -> aevb_data.Dataset:
        return normal_only(data, classes) if classes else data

    text = commands.train(args, prepare)
    args.prepare = prepare
    data = commands.load_data(args, RunFolder(args.out).data_name())
    model = aevb_io.load_model(args.out)
    split = "valid" if "valid" in data.splits else "train"
    rows = aevb_data.conditioned(data, model.config.condition_dim).split(split)
    detector = anomaly.fit_detector(
        model,
        rows,
        score=args.score,
        contamination=args.contamination,
        k=args.k,
        n_samples=args.draws,
        seed=args.seed,
        description=f"{data.name}, {split} split, {len(rows)} rows",
    )
    path = detector.save(args.out)
    return f"{text}\ndetector: {path} ({detector.score} above {detector.threshold:.2f} nats)"


def normal_only(data: aevb_data.Dataset, classes: list[int]) -> aevb_data.Dataset:
    """``data`` keeping, in every split, only the examples of ``classes``."""
    import dataclasses

    missing = [s for s in data.splits if s not in data.labels]
    if missing or not data.labels:
        raise aevb_data.DataError(
            f"--normal-class: {data.name} has no class labels for its {', '.join(missing)} split"
        )
    keep = {s: np.isin(data.labels[s], classes) for s in data.splits}
    if not keep.get("train", np.ones(1, bool)).any() or not any(k.any() for k in keep.values()):
        raise aevb_data.DataError(f"--normal-class {classes}: no example of {data.name} has them")
    parts = {s: data.split(s)[keep[s]] for s in data.splits}
    return dataclasses.replace(
        data,
        train=parts.get("train", data.train[:0]),
        valid=parts.get("valid"),
        test=parts.get("test"),
        labels={s: data.labels[s][keep[s]] for s in data.splits},
    )


def _rows_and_labels(args: argparse.Namespace, condition_dim: int):
    """The examples of DATA, ``(N, D [+ C])``, and their class labels or None."""
    if args.data in aevb_data.dataset_names():
        data = aevb_data.conditioned(
            aevb_data.load(args.data, data_dir=args.data_dir), condition_dim
        )
        return data.split(args.split), data.labels.get(args.split)
    x, labels, _, _ = aevb_data.read_examples(args.data)
    return x, labels


def _scores(args: argparse.Namespace):
    """The model, its detector, the scores of DATA and its class labels."""
    model = aevb_io.load_model(args.model)
    folder = RunFolder.of_model(args.model)
    detector = anomaly.Detector.load(folder.path if folder else args.model)
    x, labels = _rows_and_labels(args, model.config.condition_dim)
    if args.score not in (None, detector.score):
        scores = anomaly.anomaly_scores(model, x, score=args.score, k=detector.k)
        return detector, scores, None, labels
    return detector, detector.scores(model, x), detector.threshold, labels


def score_command(args: argparse.Namespace) -> str:
    """``aevb anomaly score``: a CSV with one row per example."""
    detector, scores, threshold, _ = _scores(args)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["index", "score", "flag"])
    flags = anomaly.flags(scores, threshold) if threshold is not None else [""] * len(scores)
    for i, (s, f) in enumerate(zip(scores, flags, strict=True)):
        writer.writerow([i, f"{s:.6f}", f])
    write_text(args.csv, buffer.getvalue())
    outliers = f"; {int((np.asarray(flags) == -1).sum())} flagged" if threshold is not None else ""
    return f"scores: {args.csv} ({len(scores)} rows{outliers})"


def report_command(args: argparse.Namespace) -> dict[str, Any]:
    """``aevb anomaly report``: metrics (printed and in report.json) and two PNGs."""
    detector, scores, threshold, classes = _scores(args)
    if args.labels is not None:
        anomalous = anomaly.check_labels(_read_labels(args.labels), len(scores))
    else:
        if classes is None:
            raise aevb_data.DataError(f"--normal-class: {args.data} has no class labels")
        anomalous = ~np.isin(classes, args.normal_class)
    out = Path(args.out_dir) if args.out_dir else _run_path(args.model) / "anomaly-report"
    out.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"score": args.score or detector.score, "examples": len(scores)}
    result.update(anomaly.evaluation(scores, anomalous))
    if threshold is not None:
        flagged = anomaly.flags(scores, threshold) == -1
        result["threshold"] = threshold
        result["flagged_normal"] = float(flagged[~anomalous].mean())
        result["flagged_anomalies"] = float(flagged[anomalous].mean())
    name = f"{result['score']} ({_run_path(args.model).name})"
    result["roc"] = str(anomaly.plot_roc({name: (scores, anomalous)}, out / "roc.png"))
    result["histogram"] = str(
        anomaly.plot_score_histogram(
            scores, anomalous, out / "scores.png", threshold=threshold, score=result["score"]
        )
    )
    write_text(out / "report.json", json.dumps(result, indent=2) + "\n")
    return result


def _run_path(model: str) -> Path:
    folder = RunFolder.of_model(model)
    return folder.path if folder else Path(model)


def _read_labels(path: str) -> np.ndarray:
    """Labels from ``.npy`` or a one-column text/CSV file (an optional header line)."""
    p = Path(path)
    if not p.is_file():
        raise aevb_data.DataError(f"--labels {path}: no such file")
    if p.suffix.lower() == ".npy":
        from aevb.data.npyfile import read_npy

        return read_npy(p).reshape(-1)
    lines = [ln.strip() for ln in p.read_text(errors="replace").splitlines() if ln.strip()]
    try:
        return np.array(
            [int(float(v)) for v in lines[1:]]
            if lines and not _number(lines[0])
            else [int(float(v)) for v in lines]
        )
    except ValueError:
        raise aevb_data.DataError(
            f"--labels {path}: expected one number per line (0/1 or 1/-1)"
        ) from None


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
