"""Anomaly detection: aevb's four scores beside scikit-learn's and pyod's detectors.

    .venv/bin/python -m benchmarks.anomaly [--digits 0 1 ...] [--seeds N] [--quick]
        [--epoch-scale F]      # docs/anomaly.md's run: --epoch-scale 0.4 (21-27 min, 2 cores)
    .venv/bin/python -m benchmarks.anomaly --report     # tables + figure from the raw rows
    .venv/bin/python -m benchmarks.anomaly --per-class 8  # AUROC against each other digit

One-class MNIST (Ruff et al. 2018, "Deep One-Class Classification"), on the 10,000
labelled MNIST test digits (``mnist_test``): for each digit d as the normal class and each
seed, 70% of d's images (a seeded permutation) train every method; the other 30% of d and
all images of the other digits are the test set (anomaly = any other digit). Pixels are
divided by 255 (values in [0, 1], 784 per image) and nothing else, for every method;
methods that standardise internally (pyod's neural models) do so as their defaults say.

Breast cancer (scikit-learn's bundled Wisconsin data): benign = normal, malignant =
anomaly; 70% of the benign rows train, the other 30% and all malignant rows test; each
feature is standardised with the mean and standard deviation of the training rows.

Every score is "higher = more anomalous"; AUROC and AUPRC come from
:func:`aevb.apps.anomaly.evaluation`. aevb trains one VAE per split and scores it three
ways (negative ELBO, importance-sampled -log p(x) with k = 100, An & Cho's reconstruction
probability with L = 10), and on images a fourth, added after the first run (Serrà et
al.'s input complexity: -log p(x) minus the PNG length; docs/anomaly.md); its settings
and the baselines' are fixed in :data:`AEVB` and :data:`BASELINES` (written down in
docs/anomaly.md), never tuned on test anomalies: the
only selection is aevb's early stopping on the ELBO of a held-out 10% of the normal
training images.

Each (dataset, digit, seed, method) result is appended to ``<results>.jsonl`` as soon as
it is done, and results already there are skipped, so a killed run resumes. At the end
the tables are printed, ``<results>.json`` holds the aggregate, and the ROC figure of the
best and worst digit goes to docs/figures/anomaly-roc.png.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# Read once, when PyTorch loads its OpenMP runtime. With other processes on the cores,
# OpenMP threads that spin while waiting for each other slowed training 10-20x here
# (2 threads: ~400 images/s spinning, ~8,000 passive); passive waiting costs nothing
# on an idle machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from aevb.machine import cpu_model  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data"
DEFAULT_RESULTS = REPO / "benchmarks" / "results" / "anomaly"
DEFAULT_FIGURES = REPO / "docs" / "figures"
TRAIN_SHARE = 0.7
"""Share of the normal class used for training (the rest joins the test set)."""
VALID_SHARE = 0.1
"""Share of aevb's training rows held out (normal only) to pick its checkpoint."""
FPR_GRID = np.unique(np.concatenate([[0.0], np.geomspace(1e-3, 1, 61), np.linspace(0, 1, 51)]))
"""False-positive rates at which the first seed's ROC curves are stored for the figure."""


@dataclasses.dataclass(frozen=True)
class Task:
    """One split: ``train`` ``(N, D)`` normal rows, ``test`` ``(M, D)`` with ``anomalous``
    ``(M,)`` booleans; ``digit`` is the normal class (None for tabular data)."""

    dataset: str
    digit: int | None
    seed: int
    train: np.ndarray
    test: np.ndarray
    anomalous: np.ndarray


@dataclasses.dataclass(frozen=True)
class Result:
    """A method's scores on a task's test rows ``(M,)`` and its times in seconds."""

    method: str
    scores: np.ndarray
    fit_s: float
    score_s: float
    notes: dict[str, Any] = dataclasses.field(default_factory=dict)


# ---- the splits ------------------------------------------------------------------------


def one_class_split(
    x: np.ndarray, normal: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows ``x`` ``(N, D)`` with boolean ``normal`` ``(N,)``: a seeded 70% of the normal
    rows (in shuffled order) for training; the other normal rows and every other row for
    testing. Returns ``(train, test, anomalous)``."""
    idx = np.random.default_rng(seed).permutation(np.flatnonzero(normal))
    train_idx = idx[: round(TRAIN_SHARE * len(idx))]
    in_test = np.ones(len(x), dtype=bool)
    in_test[train_idx] = False
    return x[train_idx], x[in_test], ~normal[in_test]


def mnist_tasks(data_dir: str, digits: list[int], seeds: list[int]) -> Iterator[Task]:
    """One-class MNIST splits of ``mnist_test``: pixels in [0, 1], 784 per image."""
    from aevb.data import load_dataset

    data = load_dataset("mnist_test", data_dir=data_dir)
    x, y = data.test, data.labels["test"]
    for digit in digits:
        for seed in seeds:
            yield Task("mnist", digit, seed, *one_class_split(x, y == digit, seed))


def breast_cancer_tasks(seeds: list[int]) -> Iterator[Task]:
    """Benign (normal) vs malignant (anomaly), standardised with the training rows' mean
    and standard deviation."""
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)  # y: 0 malignant, 1 benign
    for seed in seeds:
        train, test, anomalous = one_class_split(x, y == 1, seed)
        mean, std = train.mean(0), train.std(0)
        std[std == 0] = 1.0
        train, test = ((a - mean) / std for a in (train, test))
        yield Task(
            "breast_cancer", None, seed, *(a.astype(np.float32) for a in (train, test)), anomalous
        )


# ---- aevb ------------------------------------------------------------------------------

AEVB = {
    # pytorch/examples' VAE (the reference model of benchmarks/train_speed.py): MLP
    # 784-400-20, ReLU, Bernoulli decoder on grey levels, PyTorch's init, Adam 1e-3
    "mnist": dict(
        model=dict(
            latent_dim=20,
            hidden=(400,),
            activation="relu",
            init="default",
            likelihood="bernoulli",
            image_shape=(28, 28),
        ),
        train=dict(optimizer="adam", lr=1e-3, batch_size=128),
    ),
    # the same recipe scaled to 30 standardised features: 30-64-8, Gaussian decoder with
    # an identity mean and one learned variance per feature
    "breast_cancer": dict(
        model=dict(
            latent_dim=8,
            hidden=(64,),
            activation="relu",
            init="default",
            likelihood="gaussian",
            gaussian_mean="identity",
            gaussian_variance="learned",
        ),
        train=dict(optimizer="adam", lr=1e-3, batch_size=32),
    ),
}
"""aevb's settings per dataset, chosen before any run (docs/anomaly.md says why)."""
AEVB_EPOCHS = 500
"""Epochs over aevb's training rows; the checkpoint with the best validation ELBO is kept."""
AEVB_EVALS = 100
"""Evaluations of the validation ELBO over the run (every 5 epochs at 500 epochs)."""
AEVB_SCORES = {
    "aevb-elbo": dict(score="elbo", n_samples=1),
    "aevb-nll-k100": dict(score="nll", k=100),
    "aevb-recon-prob": dict(score="recon-prob", n_samples=10),
    # added after the first run (docs/anomaly.md): Serrà et al.'s (2020) input complexity
    "aevb-nll-complexity": dict(score="nll-complexity", k=100),
}
"""aevb's scores: method name -> keyword arguments of :func:`anomaly_scores`.
``aevb-nll-complexity`` is computed as ``aevb-nll-k100``'s scores minus
:func:`aevb.apps.anomaly.complexity` (what ``anomaly_scores`` returns for it, exactly, with
the same seed), so the importance sampling is not run twice; images only."""
IMAGE_ONLY = {"aevb-nll-complexity"}
"""aevb's scores that need a model with an ``image_shape`` (not run on breast cancer)."""


def fit_aevb(task: Task, epoch_scale: float) -> list[Result]:
    """Train one VAE on the task's normal rows (90%; 10% held out to pick the checkpoint
    with the best ELBO) and score the test rows three ways (four on images)."""
    from aevb.apps.anomaly import anomaly_scores, complexity
    from aevb.data import Dataset
    from aevb.io import load_model
    from aevb.models import VAE, VAEConfig
    from aevb.run import train
    from aevb.runfolder import RunFolder
    from aevb.training import TrainConfig

    spec = AEVB[task.dataset]
    n_valid = max(1, round(VALID_SHARE * len(task.train)))  # rows are in shuffled order
    fit, valid = task.train[:-n_valid], task.train[-n_valid:]
    likelihood = spec["model"]["likelihood"]
    data = Dataset(f"{task.dataset}-normal", fit, valid=valid, likelihood=likelihood)
    epochs = max(1, round(AEVB_EPOCHS * epoch_scale))
    config = TrainConfig(
        **spec["train"],
        epochs=epochs,
        eval_every=max(1, epochs * len(fit) // AEVB_EVALS),
        seed=task.seed,
    )
    torch.manual_seed(task.seed)  # PyTorch's init draws from the global generator
    model = VAE(VAEConfig(input_dim=task.train.shape[1], **spec["model"]))
    with tempfile.TemporaryDirectory() as run:
        log = io.StringIO()  # the trainer's line per evaluation; anything else is shown
        start = time.perf_counter()
        with contextlib.redirect_stderr(log):
            result = train(model, data, config, run, quiet=True)
        fit_s = time.perf_counter() - start
        for line in log.getvalue().splitlines():
            if not line.startswith("examples "):  # warnings, errors
                print(line, file=sys.stderr)
        best = max(result.history, key=lambda row: row["valid_bound"])
        model = load_model(RunFolder(run).best).eval()
    notes = {
        "epochs": epochs,
        "best_epoch": round(best["epoch"], 1),
        "valid_elbo": round(best["valid_bound"], 3),
        "train_images_per_s": round(result.images_per_second),
    }
    out: dict[str, Result] = {}
    for method in methods_of("aevb", task.dataset):
        kwargs = AEVB_SCORES[method]
        start = time.perf_counter()
        if kwargs["score"] == "nll-complexity":  # -log p(x) - L(x), from the nll's scores
            nll = out["aevb-nll-k100"]
            scores = nll.scores - complexity(task.test, model.config.image_shape)
            score_s = nll.score_s + time.perf_counter() - start
        else:
            scores = anomaly_scores(model, task.test, seed=task.seed, **kwargs)
            score_s = time.perf_counter() - start
        out[method] = Result(method, scores, fit_s, score_s, notes)
    return list(out.values())


# ---- the baselines ---------------------------------------------------------------------


class PCAError:
    """Squared reconstruction error from the principal components explaining 90% of the
    training variance (higher = more anomalous)."""

    def fit(self, x: np.ndarray) -> PCAError:
        from sklearn.decomposition import PCA

        self.pca = PCA(n_components=0.9, svd_solver="full").fit(x)
        return self

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        back = self.pca.inverse_transform(self.pca.transform(x))
        return ((x - back) ** 2).sum(axis=1)


def _epochs(default: int, scale: float) -> int:
    return max(1, round(default * scale))


def _detector(package: str, name: str, **fixed: Any) -> Callable[[Task, float], Any]:
    """A maker of detector ``package.name`` (``module.Class``), imported when first made,
    with the settings ``fixed`` (a callable one is computed from the task and scale)."""

    def make(task: Task, scale: float) -> Any:
        import importlib

        module, cls = name.rsplit(".", 1)
        kwargs = {k: v(task, scale) if callable(v) else v for k, v in fixed.items()}
        return getattr(importlib.import_module(f"{package}.{module}"), cls)(**kwargs)

    return make


def _pyod(name: str, **fixed: Any) -> Callable[[Task, float], Any]:
    """A pyod detector with its defaults, silenced and seeded where it takes a seed."""
    return _detector("pyod.models", name, **fixed)


def _sklearn(name: str, **fixed: Any) -> Callable[[Task, float], Any]:
    """A scikit-learn detector with its defaults, seeded where it takes a seed."""
    return _detector("sklearn", name, **fixed)


def _seed(task: Task, scale: float) -> int:
    return task.seed


def _negated_score_samples(est: Any, x: np.ndarray) -> np.ndarray:
    return -est.score_samples(x)  # scikit-learn: higher score_samples = more normal


def _decision_function(est: Any, x: np.ndarray) -> np.ndarray:
    return est.decision_function(x)  # pyod: higher = more anomalous


BASELINES: dict[str, tuple[str, Callable[[Task, float], Any], Callable]] = {
    "iforest": (
        "sklearn IsolationForest, defaults (100 trees, 256 samples per tree)",
        _sklearn("ensemble.IsolationForest", random_state=_seed),
        _negated_score_samples,
    ),
    "ocsvm": (
        'sklearn OneClassSVM, RBF kernel, gamma="scale", nu=0.1',
        _sklearn("svm.OneClassSVM", kernel="rbf", gamma="scale", nu=0.1),
        _negated_score_samples,
    ),
    "pca": (
        "sklearn PCA, components explaining 90% of the variance; squared reconstruction error",
        lambda task, scale: PCAError(),
        _decision_function,
    ),
    "knn": (
        "pyod KNN, k=5, distance to the 5th neighbour (defaults)",
        _pyod("knn.KNN", n_neighbors=5),
        _decision_function,
    ),
    "lof": ("pyod LOF, defaults (20 neighbours)", _pyod("lof.LOF"), _decision_function),
    "ecod": ("pyod ECOD, defaults (parameter-free)", _pyod("ecod.ECOD"), _decision_function),
    "pyod-autoencoder": (
        "pyod AutoEncoder, defaults (64-32, ReLU, batch norm, dropout 0.2, 10 epochs)",
        _pyod(
            "auto_encoder.AutoEncoder",
            epoch_num=lambda task, s: _epochs(10, s),
            verbose=0,
            random_state=_seed,
        ),
        _decision_function,
    ),
    "pyod-vae": (
        "pyod VAE, defaults (128-64-32, latent 2, MSE, 30 epochs)",
        _pyod("vae.VAE", epoch_num=lambda task, s: _epochs(30, s), verbose=0, random_state=_seed),
        _decision_function,
    ),
    "pyod-deepsvdd": (
        "pyod DeepSVDD, defaults (MLP 64-32, one-class objective, 100 epochs)",
        _pyod(
            "deep_svdd.DeepSVDD",
            n_features=lambda task, s: task.train.shape[1],
            epochs=lambda task, s: _epochs(100, s),
            verbose=0,
            random_state=_seed,
        ),
        _decision_function,
    ),
}
"""Method name -> (settings in words, constructor from (task, epoch scale), scorer)."""
GROUPS: dict[str, list[str]] = {"aevb": list(AEVB_SCORES), **{m: [m] for m in BASELINES}}
"""What one fit produces: aevb's one model gives four scores (three on tabular data)."""


def methods_of(group: str, dataset: str) -> list[str]:
    """The methods one fit of ``group`` produces on ``dataset`` (no image scores on tables)."""
    return [m for m in GROUPS[group] if dataset == "mnist" or m not in IMAGE_ONLY]


def fit_baseline(name: str, task: Task, epoch_scale: float) -> list[Result]:
    """Fit a baseline on the task's training rows and score its test rows."""
    _, make, score = BASELINES[name]
    est = make(task, epoch_scale)
    start = time.perf_counter()
    est.fit(task.train)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    scores = np.asarray(score(est, task.test), dtype=np.float64)
    return [Result(name, scores, fit_s, time.perf_counter() - start)]


def run_group(group: str, task: Task, epoch_scale: float) -> list[Result]:
    if group == "aevb":
        return fit_aevb(task, epoch_scale)
    return fit_baseline(group, task, epoch_scale)


def per_class(
    data_dir: str, digit: int, seed: int, epoch_scale: float, groups: list[str]
) -> dict[str, Any]:
    """Which anomalies each method misses: AUROC of normal digit ``digit``'s test images
    against each other digit alone, and the mean ink (sum of pixel values) per digit."""
    from sklearn.metrics import roc_auc_score

    from aevb.data import load_dataset

    labels = load_dataset("mnist_test", data_dir=data_dir).labels["test"]
    (task,) = mnist_tasks(data_dir, [digit], [seed])
    # the test rows' digits, in the order one_class_split keeps them
    idx = np.random.default_rng(seed).permutation(np.flatnonzero(labels == digit))
    in_test = np.ones(len(labels), dtype=bool)
    in_test[idx[: round(TRAIN_SHARE * len(idx))]] = False
    test_digits = labels[in_test]
    out: dict[str, Any] = {
        "digit": digit,
        "seed": seed,
        "ink": {str(d): float(task.test[test_digits == d].sum(1).mean()) for d in range(10)},
        "auroc": {},
    }
    for group in groups:
        for r in run_group(group, task, epoch_scale):
            normal = r.scores[test_digits == digit]
            out["auroc"][r.method] = {
                str(d): float(
                    roc_auc_score(
                        np.r_[np.zeros(len(normal)), np.ones((test_digits == d).sum())],
                        np.r_[normal, r.scores[test_digits == d]],
                    )
                )
                for d in range(10)
                if d != digit
            }
    others = [str(d) for d in range(10) if d != digit]
    print(f"\nnormal digit {digit}, seed {seed}: AUROC against each other digit alone")
    print("| method | " + " | ".join(others) + " |")
    print("| --- | " + " | ".join("---:" for _ in others) + " |")
    for method, per in out["auroc"].items():
        print(f"| {method} | " + " | ".join(f"{per[d]:.3f}" for d in others) + " |")
    print("| mean ink | " + " | ".join(f"{out['ink'][d]:.0f}" for d in others) + " |")
    print(f"(mean ink of the normal digit {digit}: {out['ink'][str(digit)]:.0f})")
    return out


# ---- rows, resuming --------------------------------------------------------------------


def machine() -> str:
    """CPU model, cores, threads and library versions, in one line."""
    import pyod
    import sklearn

    model = cpu_model()
    return (
        f"{model}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}, scikit-learn {sklearn.__version__}, pyod {pyod.__version__}"
    )


def row_of(task: Task, result: Result, epoch_scale: float, host: str, keep_roc: bool) -> dict:
    """One JSONL row: the task, the method, AUROC/AUPRC, times, the ROC when kept."""
    from sklearn.metrics import roc_curve

    from aevb.apps.anomaly import evaluation

    if not np.isfinite(result.scores).all():
        raise ValueError(f"{result.method}: non-finite scores")
    row = {
        "dataset": task.dataset,
        "digit": task.digit,
        "seed": task.seed,
        "method": result.method,
        **{k: round(v, 5) for k, v in evaluation(result.scores, task.anomalous).items()},
        "fit_s": round(result.fit_s, 3),
        "score_s": round(result.score_s, 4),
        "n_train": len(task.train),
        "n_test": len(task.test),
        "epoch_scale": epoch_scale,
        "notes": result.notes,
        "machine": host,
        "load": round(os.getloadavg()[0], 2),
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    if keep_roc:
        fpr, tpr, _ = roc_curve(task.anomalous, result.scores)
        # the ROC is a staircase: the best TPR reached at each FPR of the grid
        row["tpr"] = [round(float(t), 4) for t in tpr[np.searchsorted(fpr, FPR_GRID, "right") - 1]]
    return row


def error_row(task: Task, method: str, error: Exception, host: str) -> dict:
    """A row saying why a method could not run (counted as done on resume)."""
    return {
        "dataset": task.dataset,
        "digit": task.digit,
        "seed": task.seed,
        "method": method,
        "error": f"{type(error).__name__}: {error}",
        "machine": host,
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def read_rows(path: Path) -> list[dict]:
    """The rows of a JSONL file; a last line cut off by a kill is ignored."""
    rows = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return rows


def append_rows(path: Path, rows: list[dict]) -> None:
    """Append ``rows`` as lines and flush them to disk (a killed run keeps them)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write("".join(json.dumps(r) + "\n" for r in rows))
        f.flush()
        os.fsync(f.fileno())


def warm_up() -> None:
    """Compile pyod's numba kernels once, so the first method to use them is not billed."""
    from pyod.utils.stat_models import pairwise_distances_no_broadcast

    a = np.zeros((2, 3))
    pairwise_distances_no_broadcast(a, a)


# ---- aggregating, tables, figure -------------------------------------------------------


def _mean_std(values: list[float]) -> tuple[float, float]:
    a = np.asarray(values, dtype=float)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else float("nan")


def method_order(rows: list[dict]) -> list[str]:
    known = [m for group in GROUPS.values() for m in group]
    present = {r["method"] for r in rows}
    return [m for m in known if m in present] + sorted(present - set(known))


def aggregate(rows: list[dict]) -> dict[str, Any]:
    """Per dataset and method: AUROC per digit (mean and std over seeds), the mean over
    digits (mean and std over seeds of each seed's mean over digits), AUPRC, mean times."""
    out: dict[str, Any] = {}
    for dataset in sorted({r["dataset"] for r in rows}):
        done = [r for r in rows if r["dataset"] == dataset and "auroc" in r]
        methods: dict[str, Any] = {}
        for method in method_order(done):
            mine = [r for r in done if r["method"] == method]
            entry: dict[str, Any] = {}
            digits = sorted({r["digit"] for r in mine if r["digit"] is not None})
            if digits:
                entry["per_digit"] = {
                    str(d): dict(
                        zip(
                            ("mean", "std"),
                            _mean_std([r["auroc"] for r in mine if r["digit"] == d]),
                            strict=True,
                        )
                    )
                    for d in digits
                }
            seeds = sorted({r["seed"] for r in mine})
            per_seed = [np.mean([r["auroc"] for r in mine if r["seed"] == s]) for s in seeds]
            entry["auroc_mean"], entry["auroc_std"] = _mean_std(per_seed)
            per_seed = [np.mean([r["auprc"] for r in mine if r["seed"] == s]) for s in seeds]
            entry["auprc_mean"], entry["auprc_std"] = _mean_std(per_seed)
            entry["seeds"] = len(seeds)
            entry["runs"] = len(mine)
            entry["fit_s"] = float(np.mean([r["fit_s"] for r in mine]))
            entry["score_s"] = float(np.mean([r["score_s"] for r in mine]))
            seconds = sum(r["score_s"] for r in mine)
            images = sum(r["n_test"] for r in mine)
            entry["score_images_per_s"] = images / seconds if seconds > 0 else float("nan")
            methods[method] = entry
        errors = sorted(
            {(r["method"], r["error"]) for r in rows if r["dataset"] == dataset and "error" in r}
        )
        out[dataset] = {"methods": methods, "errors": [dict(method=m, error=e) for m, e in errors]}
    return out


def _pm(mean: float, std: float) -> str:
    return f"{mean:.3f}" if np.isnan(std) else f"{mean:.3f} ± {std:.3f}"


def tables(summary: dict[str, Any]) -> str:
    """Markdown tables: MNIST per digit and mean; every dataset's mean, AUPRC and times."""
    lines = []
    mnist = summary.get("mnist", {}).get("methods", {})
    if mnist:
        digits = sorted({d for e in mnist.values() for d in e.get("per_digit", {})}, key=int)
        lines += [
            "One-class MNIST: AUROC per normal digit (mean ± std over seeds), mean over digits",
            "",
            "| method | " + " | ".join(digits) + " | mean |",
            "| --- | " + " | ".join("---:" for _ in digits) + " | ---: |",
        ]
        for method, e in mnist.items():
            cells = [
                _pm(e["per_digit"][d]["mean"], e["per_digit"][d]["std"])
                if d in e["per_digit"]
                else "–"
                for d in digits
            ]
            mean = _pm(e["auroc_mean"], e["auroc_std"])
            lines.append(f"| {method} | " + " | ".join(cells) + f" | **{mean}** |")
        lines.append("")
    for dataset, block in summary.items():
        lines += [
            f"{dataset}: mean AUROC and AUPRC (± std over seeds), mean seconds per fit and "
            "per scoring of the test set",
            "",
            "| method | AUROC | AUPRC | seeds | fit s | score s | scored images/s |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for method, e in block["methods"].items():
            lines.append(
                f"| {method} | {_pm(e['auroc_mean'], e['auroc_std'])} | "
                f"{_pm(e['auprc_mean'], e['auprc_std'])} | {e['seeds']} | {e['fit_s']:.2f} | "
                f"{e['score_s']:.2f} | {e['score_images_per_s']:,.0f} |"
            )
        for err in block["errors"]:
            lines.append(f"\n{err['method']} could not run: {err['error']}")
        lines.append("")
    return "\n".join(lines)


def best_methods(methods: dict[str, Any]) -> tuple[str, str]:
    """aevb's best score and the strongest other method, by mean AUROC."""
    ours = {m: e for m, e in methods.items() if m.startswith("aevb-")}
    theirs = {m: e for m, e in methods.items() if not m.startswith("aevb-")}
    pick = lambda group: max(group, key=lambda m: group[m]["auroc_mean"])  # noqa: E731
    return pick(ours), pick(theirs)


def plot_best_worst(rows: list[dict], summary: dict[str, Any], path: Path) -> Path | None:
    """ROC curves (first seed) of aevb's best score and the strongest other method, on the
    digit where aevb's best score does best and the one where it does worst."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from aevb.viz import save_figure

    methods = summary.get("mnist", {}).get("methods", {})
    if not any(m.startswith("aevb-") for m in methods) or len(methods) < 2:
        return None
    if not any(r["dataset"] == "mnist" and "tpr" in r for r in rows):
        return None
    ours, theirs = best_methods(methods)
    per_digit = methods[ours]["per_digit"]
    best = max(per_digit, key=lambda d: per_digit[d]["mean"])
    worst = min(per_digit, key=lambda d: per_digit[d]["mean"])
    seed = min(r["seed"] for r in rows if r["dataset"] == "mnist" and "tpr" in r)
    fig = Figure(figsize=(9.0, 4.5))
    FigureCanvasAgg(fig)
    for i, (label, digit) in enumerate((("best", best), ("worst", worst))):
        ax = fig.add_subplot(1, 2, i + 1)
        for method in (ours, theirs):
            (r,) = [
                r
                for r in rows
                if r["dataset"] == "mnist"
                and r["digit"] == int(digit)
                and r["seed"] == seed
                and r["method"] == method
                and "tpr" in r
            ]
            ax.plot(
                FPR_GRID[1:],
                r["tpr"][1:],
                label=f"{method} (AUROC {r['auroc']:.3f})",
                drawstyle="steps-post",
            )
        ax.plot(FPR_GRID[1:], FPR_GRID[1:], color="grey", linestyle=":", linewidth=1)
        ax.set_xscale("log")  # the AUROCs are high: the differences are at low FPR
        ax.set_xlim(FPR_GRID[1], 1)
        ax.set_xlabel("false-positive rate (normal flagged, log scale)")
        ax.set_ylabel("true-positive rate (anomalies flagged)")
        ax.set_title(f"normal digit {digit} ({label} for {ours}), seed {seed}", fontsize=9)
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return save_figure(fig, path)


def report(rows: list[dict], results: Path, figure: Path | None) -> dict[str, Any]:
    """Print the tables, write ``<results>.json`` and the figure; return the summary."""
    summary = aggregate(rows)
    hosts = sorted({r["machine"] for r in rows})
    print(f"\nmachine: {'; '.join(hosts)}")
    loads = [r["load"] for r in rows if "load" in r]
    if loads:
        print(
            f"1-minute load average while running: median {np.median(loads):.1f}, "
            f"max {max(loads):.1f}"
        )
    print()
    print(tables(summary))
    for dataset, block in summary.items():
        m = block["methods"]
        if any(k.startswith("aevb-") for k in m) and len(m) > 1:
            ours, theirs = best_methods(m)
            print(
                f"{dataset}: aevb's best score {ours} {m[ours]['auroc_mean']:.3f} vs the "
                f"strongest other method {theirs} {m[theirs]['auroc_mean']:.3f}"
            )
    record = {
        "machine": hosts,
        "protocol": {"train_share": TRAIN_SHARE, "aevb_valid_share": VALID_SHARE},
        "aevb": {"settings": AEVB, "epochs": AEVB_EPOCHS, "scores": AEVB_SCORES},
        "baselines": {name: spec[0] for name, spec in BASELINES.items()},
        "epoch_scales": sorted({r["epoch_scale"] for r in rows if "epoch_scale" in r}),
        "results": summary,
    }
    path = results.with_suffix(".json")
    path.write_text(json.dumps(record, indent=1, default=list) + "\n")
    print(f"\nwrote {path}")
    if figure is not None and (drawn := plot_best_worst(rows, summary, figure)):
        print(f"wrote {drawn}")
    return summary


# ---- main ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))
    p.add_argument(
        "--datasets",
        nargs="+",
        default=["mnist", "breast_cancer"],
        choices=["mnist", "breast_cancer"],
    )
    p.add_argument("--digits", nargs="+", type=int, default=list(range(10)))
    p.add_argument("--seeds", type=int, help="seeds 0..N-1 (default: 3 MNIST, 5 breast cancer)")
    p.add_argument("--methods", nargs="+", choices=list(GROUPS), default=list(GROUPS))
    p.add_argument(
        "--epoch-scale",
        type=float,
        default=1.0,
        help="multiply every neural method's epochs (aevb's, pyod's) by this",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: neural epochs x 0.1, results in <results>-quick",
    )
    p.add_argument("--report", action="store_true", help="only rebuild tables and figure")
    p.add_argument("--results", help=f"path stem of the results (default {DEFAULT_RESULTS})")
    p.add_argument("--figure", help="ROC figure path (default docs/figures/anomaly-roc.png)")
    p.add_argument(
        "--per-class",
        type=int,
        metavar="DIGIT",
        help="instead: AUROC of aevb, PCA, KNN and LOF against each other digit alone (seed 0)",
    )
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    # aevb's trainer flushes denormals while it trains; set it for every method alike, or
    # pyod's Adam steps slow down up to 10x on denormal optimiser state
    torch.set_flush_denormal(True)
    scale = args.epoch_scale * (0.1 if args.quick else 1.0)
    stem = args.results or f"{DEFAULT_RESULTS}{'-quick' if args.quick else ''}"
    results = Path(stem).with_suffix(".jsonl")
    figure = Path(args.figure) if args.figure else None
    if figure is None:
        figure = (
            Path(tempfile.gettempdir()) if args.quick else DEFAULT_FIGURES
        ) / "anomaly-roc.png"
    if args.report:
        report(read_rows(results), results, figure)
        return
    if args.per_class is not None:
        groups = [g for g in args.methods if g in ("aevb", "pca", "knn", "lof")]
        found = per_class(args.data_dir, args.per_class, 0, scale, groups)
        path = Path(f"{stem}-per-class-{args.per_class}.json")
        path.write_text(json.dumps(found, indent=1) + "\n")
        print(f"wrote {path}")
        return

    host = machine()
    print(f"machine: {host}\nresults: {results}")
    done = {(r["dataset"], r["digit"], r["seed"], r["method"]) for r in read_rows(results)}
    warm_up()
    tasks: list[Iterator[Task]] = []
    for dataset in args.datasets:
        seeds = list(range(args.seeds or (3 if dataset == "mnist" else 5)))
        if dataset == "mnist":
            tasks.append(mnist_tasks(args.data_dir, args.digits, seeds))
        else:
            tasks.append(breast_cancer_tasks(seeds))
    start = time.perf_counter()
    for task in (t for it in tasks for t in it):
        for group in args.methods:
            key = (task.dataset, task.digit, task.seed)
            if all((*key, m) in done for m in methods_of(group, task.dataset)):
                continue
            keep_roc = task.dataset == "mnist" and task.seed == 0
            try:
                rows = [
                    row_of(task, r, scale, host, keep_roc) for r in run_group(group, task, scale)
                ]
            except Exception as e:  # a baseline that cannot run here is reported, not fatal
                if group == "aevb":
                    raise
                rows = [error_row(task, m, e, host) for m in methods_of(group, task.dataset)]
            append_rows(results, rows)
            for r in rows:
                what = (
                    f"AUROC {r['auroc']:.4f}  fit {r['fit_s']:7.2f} s  score {r['score_s']:6.2f} s"
                    if "auroc" in r
                    else r["error"]
                )
                print(
                    f"[{time.perf_counter() - start:7.0f} s] {task.dataset} digit={task.digit} "
                    f"seed={task.seed} {r['method']:16} {what}",
                    flush=True,
                )
    report(read_rows(results), results, figure)


if __name__ == "__main__":
    main()
