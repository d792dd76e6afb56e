"""Does a class-conditional VAE's output help a classifier that has only n labels per class?

    .venv/bin/python -m benchmarks.augmentation [--seeds 10] [--ns 5 10 20] [--threads 1]
    .venv/bin/python -m benchmarks.augmentation --diagnose  # distances, pictures (n = 10)
    .venv/bin/python -m benchmarks.augmentation --report    # table and figures from the JSONs

On ``mnist_test`` (or ``digits``), a fixed half of the labelled images (5,000 for MNIST)
is the test set, used by no method for anything but the final score; per seed, n images
per class are drawn from the other half (nested: the n = 5 set is part of the n = 10 set).
Each method trains the same two scikit-learn classifiers on the raw pixels of:

* ``real``: the 10 n labelled images only;
* ``jitter``: those plus ``multiplier`` random affine copies of each (rotation +-10 deg,
  shift +-2 px on 28x28, scale 0.9-1.1; ``scipy.ndimage.affine_transform``, bilinear);
* ``mixup``: those plus ``multiplier`` x 10 n mixed images lam x_i + (1 - lam) x_j of
  random pairs, lam ~ Beta(0.2, 0.2); each enters twice, labelled y_i with sample weight
  lam and y_j with weight 1 - lam: the cross-entropy is linear in the label, so this is
  mixup's soft-label loss given to classifiers that take hard labels;
* ``vae``: those plus ``multiplier`` x n draws per class of a conditional VAE (MLP
  784-256-8, ReLU, Bernoulli p(x|y, z), Adam 1e-3, batch 32, 40,000 training examples
  seen) trained on the 10 n labelled images alone: means of p(x|y, z), z ~ N(0, I);
* ``vae-long``: the same with a VAE trained four times as long (160,000 examples seen).

Classifiers: ``LogisticRegression(max_iter=5000)`` and ``MLPClassifier((128,),
max_iter=500, random_state=seed)``. A diagnostic MLP fitted on the whole pool (labels no
method sees) says how often each method's extra images look like their label. Each
finished (n, seed, method, classifier) is appended to a JSONL at once; a restarted run
skips those already there, and ``--report`` uses the seeds that are complete. Every
setting was fixed before the full run; nothing is tuned on the test set.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import platform
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage, stats

from aevb.machine import cpu_model

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"
RESULTS = Path(__file__).resolve().parent / "results"
FIGURES = Path(__file__).resolve().parents[1] / "docs" / "figures"
METHODS = ("real", "jitter", "mixup", "vae", "vae-long")
CLASSIFIERS = ("logreg", "mlp")
HELD_OUT = 5000
"""Test images (at most half of the dataset): a fixed part, the same for every seed."""
MIXUP_ALPHA = 0.2
LATENT, HIDDEN, BATCH, LR = 8, (256,), 32, 1e-3
VAE_EXAMPLES = 40_000
"""Training examples a ``vae`` run sees (epochs = this / 10 n); ``vae-long`` sees 4x."""
LONG = 4
DIAGNOSIS_N, DIAGNOSIS_SEEDS, PICTURE_PER_CLASS = 10, 5, 4


# ---- data ------------------------------------------------------------------------------


def load(name: str, data_dir: str) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Every labelled image of dataset ``name``: ``(N, D)`` in [0, 1], labels ``(N,)``, (H, W)."""
    from aevb.data import load_dataset

    data = load_dataset(name, data_dir=data_dir)
    splits = [s for s in ("train", "valid", "test") if s in data.labels]
    x = np.concatenate([data.split(s) for s in splits if len(data.labels[s])])
    y = np.concatenate([data.labels[s] for s in splits if len(data.labels[s])])
    return x, y.astype(np.int64), tuple(data.image_shape)


def split_test(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fixed indices ``(test, pool)``: a permutation with seed 0 cut after HELD_OUT (or half)."""
    perm = np.random.default_rng(0).permutation(len(y))
    cut = min(HELD_OUT, len(y) // 2)
    return perm[:cut], perm[cut:]


def draw_labelled(y: np.ndarray, pool: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Indices of n pool images per class; for one seed the sets are nested in n."""
    rng = np.random.default_rng(seed)
    picked = []
    for c in range(int(y.max()) + 1):
        members = pool[y[pool] == c]
        picked.append(members[rng.permutation(len(members))[:n]])
    return np.concatenate(picked)


# ---- the augmentations: each returns extra rows (M, D), labels (M,), weights (M,) --------


def jitter(x: np.ndarray, y: np.ndarray, shape, copies: int, rng: np.random.Generator):
    """``copies`` random affine copies of every image ``x`` ``(N, D)``: rotation +-10 deg,
    scale 0.9-1.1, shift +-2/28 of the side, about the centre; bilinear, zero outside."""
    h, w = shape
    centre = np.array([(h - 1) / 2, (w - 1) / 2])
    out = np.empty((len(x) * copies, x.shape[1]), np.float32)
    for k, image in enumerate(np.repeat(x, copies, axis=0)):
        angle = np.deg2rad(rng.uniform(-10, 10))
        scale = rng.uniform(0.9, 1.1)
        shift = rng.uniform(-2, 2, size=2) * h / 28
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        inverse = rot.T / scale  # output pixel -> input pixel
        offset = centre - inverse @ (centre + shift)
        moved = ndimage.affine_transform(
            image.reshape(h, w), inverse, offset=offset, order=1, mode="constant", cval=0.0
        )
        out[k] = np.clip(moved, 0.0, 1.0).ravel()
    return out, np.repeat(y, copies), np.ones(len(out))


def mixup(x: np.ndarray, y: np.ndarray, count: int, rng: np.random.Generator):
    """``count`` mixed images of random pairs, lam ~ Beta(alpha, alpha); each appears twice,
    once per label, weighted lam and 1 - lam (soft-label cross-entropy with hard labels)."""
    i, j = rng.integers(len(x), size=count), rng.integers(len(x), size=count)
    lam = rng.beta(MIXUP_ALPHA, MIXUP_ALPHA, size=count)
    mixed = (lam[:, None] * x[i] + (1 - lam[:, None]) * x[j]).astype(np.float32)
    return (
        np.concatenate([mixed, mixed]),
        np.concatenate([y[i], y[j]]),
        np.concatenate([lam, 1 - lam]),
    )


def train_cvae(x: np.ndarray, y: np.ndarray, shape, examples: int, seed: int):
    """A conditional VAE (MLP 784-256-8, ReLU, Bernoulli p(x|y, z), Adam 1e-3, batch 32)
    trained on ``x`` ``(N, D)`` with labels ``y`` for ``examples`` training examples.
    Returns the model and its last training ELBO (nats per image)."""
    from aevb.data import Dataset, append_labels
    from aevb.models import VAE, VAEConfig
    from aevb.run import train
    from aevb.training import TrainConfig

    classes = int(y.max()) + 1
    data = append_labels(
        Dataset(name="labelled", train=x, image_shape=shape, labels={"train": y}), classes
    )
    torch.manual_seed(seed)
    model = VAE(
        VAEConfig(
            input_dim=x.shape[1],
            latent_dim=LATENT,
            hidden=HIDDEN,
            activation="relu",
            init="default",
            image_shape=shape,
            condition_dim=classes,
        )
    )
    config = TrainConfig(
        optimizer="adam",
        lr=LR,
        batch_size=BATCH,
        epochs=examples / len(x),
        eval_every=max(len(x), examples // 10),
        seed=seed,
    )
    with tempfile.TemporaryDirectory() as out:
        result = train(model, data, config, out, quiet=True)
    return model.eval(), result.history[-1]["train_bound"]


def vae_samples(model, per_class: int, classes: int, seed: int):
    """``per_class`` means of p(x|y, z), z ~ N(0, I), for every class y: ``(C * per_class, D)``."""
    labels = torch.arange(classes).repeat_interleave(per_class)
    with torch.no_grad():
        images = model.sample(
            len(labels), generator=torch.Generator().manual_seed(seed), condition=labels
        )
    return images.numpy().astype(np.float32), labels.numpy(), np.ones(len(labels))


# ---- classifiers -----------------------------------------------------------------------


def make_classifier(name: str, seed: int):
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    if name == "logreg":
        return LogisticRegression(max_iter=5000)
    return MLPClassifier(hidden_layer_sizes=(128,), max_iter=500, random_state=seed)


def score(name: str, seed: int, train_set, x_test: np.ndarray, y_test: np.ndarray) -> dict:
    """Fit classifier ``name`` on ``(X, y, weights)``; its test accuracy and fit details."""
    from sklearn.exceptions import ConvergenceWarning

    x, y, w = train_set
    clf = make_classifier(name, seed)
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        clf.fit(x, y, sample_weight=w)
    return {
        "accuracy": float((clf.predict(x_test) == y_test).mean()),
        "rows": len(y),
        "iterations": int(np.max(clf.n_iter_)),
        "converged": not any(issubclass(c.category, ConvergenceWarning) for c in caught),
        "fit_seconds": time.perf_counter() - start,
    }


# ---- the run ---------------------------------------------------------------------------


def machine() -> dict:
    """CPU model, cores, threads used, library versions."""
    import sklearn

    model = cpu_model()
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "sklearn": sklearn.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d"),
    }


def read_records(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def augmented_sets(x, y, shape, n: int, seed: int, multiplier: int, vae_examples: int, needed):
    """Yield ``(method, (X, y, weights), extra)`` for each method in ``needed``, built
    lazily; each method's random numbers depend on (seed, n, method) only."""
    classes = int(y.max()) + 1
    real = (x, y, np.ones(len(y)))

    def plus(extra):
        return tuple(np.concatenate([a, b]) for a, b in zip(real, extra, strict=True))

    if "real" in needed:
        yield "real", real, {}
    if "jitter" in needed:
        rng = np.random.default_rng([seed, n, 1])
        yield "jitter", plus(jitter(x, y, shape, multiplier, rng)), {}
    if "mixup" in needed:
        rng = np.random.default_rng([seed, n, 2])
        yield "mixup", plus(mixup(x, y, multiplier * len(y), rng)), {}
    for method, examples in (("vae", vae_examples), ("vae-long", LONG * vae_examples)):
        if method not in needed:
            continue
        start = time.perf_counter()
        model, bound = train_cvae(x, y, shape, examples, seed)
        extra = vae_samples(model, multiplier * n, classes, seed)
        info = {"vae_train_bound": bound, "vae_seconds": time.perf_counter() - start}
        yield method, plus(extra), info


def reference_classifier(x: np.ndarray, y: np.ndarray, shape):
    """A diagnostic only: an MLP fitted on the whole pool (every non-test image with its
    label) and one affine-jittered copy of each, so that it is not fooled by a 2-pixel
    shift; used to ask whether each method's extra images look like their labels. No
    method sees it or the pool's other labels."""
    xj, yj, _ = jitter(x, y, shape, 1, np.random.default_rng(12345))
    return make_classifier("mlp", 0).fit(np.concatenate([x, xj]), np.concatenate([y, yj]))


def fidelity(reference, n_real: int, train_set) -> float | None:
    """Share of the extra rows (after the ``n_real`` real ones) that ``reference`` assigns
    to their label; for mixup, the heavier of the two labels (weight > 1/2)."""
    x, y, w = (a[n_real:] for a in train_set)
    keep = w > 0.5
    if not keep.any():
        return None
    return float((reference.predict(x[keep]) == y[keep]).mean())


def run(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    from threadpoolctl import threadpool_limits

    threadpool_limits(args.threads)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {(r["n"], r["seed"], r["method"], r["classifier"]) for r in read_records(out)}
    x_all, y_all, shape = load(args.data, args.data_dir)
    test, pool = split_test(y_all)
    paths = ("report", "diagnose", "out", "data_dir", "figures")
    settings = {k: v for k, v in vars(args).items() if k not in paths}
    session = {"machine": machine(), "settings": settings, "started": time.time()}
    print(f"machine: {session['machine']}")
    print(f"{args.data}: {len(test)} test images, pool of {len(pool)}; results -> {out}")
    start = time.perf_counter()
    reference = reference_classifier(x_all[pool], y_all[pool], shape)
    session["reference_accuracy"] = float((reference.predict(x_all[test]) == y_all[test]).mean())
    print(f"reference MLP on the whole pool: test accuracy {session['reference_accuracy']:.4f}")
    for seed in range(args.seeds):  # seeds outer: a run cut short leaves whole seeds
        for n in args.ns:
            todo = {(m, c) for m in METHODS for c in CLASSIFIERS} - {
                (m, c) for (n_, s, m, c) in done if (n_, s) == (n, seed)
            }
            if not todo:
                continue
            idx = draw_labelled(y_all, pool, n, seed)
            x, y = x_all[idx], y_all[idx]
            needed = {m for m, _ in todo}
            for method, train_set, info in augmented_sets(
                x, y, shape, n, seed, args.multiplier, args.vae_examples, needed
            ):
                info = {**info, "fidelity": fidelity(reference, len(y), train_set)}
                for clf in CLASSIFIERS:
                    if (method, clf) not in todo:
                        continue
                    r = {"n": n, "seed": seed, "method": method, "classifier": clf, **info}
                    r.update(score(clf, seed, train_set, x_all[test], y_all[test]))
                    r["finished"] = time.time()
                    with out.open("a") as f:
                        f.write(json.dumps(r) + "\n")
                    print(
                        f"n={n:3d} seed={seed:2d} {method:9s} {clf:7s} "
                        f"acc={r['accuracy']:.4f} ({r['fit_seconds']:.1f} s fit)",
                        flush=True,
                    )
    session["wall_seconds"] = time.perf_counter() - start
    sessions_path = out.with_name(out.stem + "-sessions.json")
    sessions = json.loads(sessions_path.read_text()) if sessions_path.exists() else []
    sessions_path.write_text(json.dumps([*sessions, session], indent=1) + "\n")
    print(f"wall time this session: {session['wall_seconds'] / 60:.1f} min")


# ---- diagnosis: pictures, distances to the labelled images, mixup with hard labels -----


def extra_rows(n_real: int, train_set) -> tuple[np.ndarray, np.ndarray]:
    """The extra images of a training set and their (heavier) labels."""
    x, y, w = (a[n_real:] for a in train_set)
    return x[w > 0.5], y[w > 0.5]


def nearest_distance(x: np.ndarray, y: np.ndarray, ref: np.ndarray, ref_y: np.ndarray) -> float:
    """Mean Euclidean distance (pixels in [0, 1]) from each row of ``x`` to the nearest row
    of ``ref`` with the same label; a row identical to its reference (itself) is skipped."""
    out = []
    for c in np.unique(y):
        a, b = x[y == c], ref[ref_y == c]
        d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
        d2[d2 < 1e-9] = np.inf  # leave-one-out when x is ref
        out.append(np.sqrt(np.maximum(d2.min(1), 0.0)))
    return float(np.concatenate(out).mean())


def diagnose(args: argparse.Namespace) -> None:
    """At n = DIAGNOSIS_N for seeds 0 .. DIAGNOSIS_SEEDS - 1: how far each method's extra
    images lie from the nearest labelled image of their label (beside the real images'
    leave-one-out distance and the test images'), and mixup read the other way (extra
    images with the heavier label as a hard label); plus seed 0's pictures per class."""
    torch.set_num_threads(args.threads)
    from threadpoolctl import threadpool_limits

    threadpool_limits(args.threads)
    x_all, y_all, shape = load(args.data, args.data_dir)
    test, pool = split_test(y_all)
    x_test, y_test = x_all[test], y_all[test]
    n, k = DIAGNOSIS_N, PICTURE_PER_CLASS
    distances: dict[str, list[float]] = {}
    hard: dict[str, list[float]] = {}
    record: dict = {"shape": list(shape), "n": n, "seeds": DIAGNOSIS_SEEDS, "pictures": {}}
    for seed in range(DIAGNOSIS_SEEDS):
        idx = draw_labelled(y_all, pool, n, seed)
        x, y = x_all[idx], y_all[idx]
        dist = {"real (leave-one-out)": nearest_distance(x, y, x, y)}
        dist["test images"] = nearest_distance(x_test, y_test, x, y)
        classes = range(int(y.max()) + 1)
        if seed == 0:
            record["pictures"]["real"] = _pixels(np.stack([x[y == c][:k] for c in classes]))
        sets = augmented_sets(x, y, shape, n, seed, args.multiplier, args.vae_examples, METHODS)
        for method, train_set, _ in sets:
            if method == "real":
                continue
            ex, ey = extra_rows(len(y), train_set)
            dist[method] = nearest_distance(ex, ey, x, y)
            if seed == 0:  # jitter: one copy of each of the first k real images per class
                step = args.multiplier if method == "jitter" else 1
                rows = [ex[ey == c][::step][:k] for c in classes]
                record["pictures"][method] = _pixels(np.stack(rows))
            if method == "mixup":  # the hard-label reading: heavier label, weight 1
                hard_set = (np.concatenate([x, ex]), np.concatenate([y, ey]), None)
                for clf in CLASSIFIERS:
                    acc = score(clf, seed, hard_set, x_test, y_test)["accuracy"]
                    hard.setdefault(clf, []).append(acc)
        for key, value in dist.items():
            distances.setdefault(key, []).append(value)
        print(f"seed {seed}: " + ", ".join(f"{k_} {v:.2f}" for k_, v in dist.items()), flush=True)
    record["nearest_distance"] = {key: float(np.mean(v)) for key, v in distances.items()}
    record["mixup_hard_accuracy"] = hard
    path = Path(args.out)
    path.with_name(path.stem + "-diagnosis.json").write_text(json.dumps(record) + "\n")
    print(json.dumps({k_: v for k_, v in record.items() if k_ != "pictures"}, indent=1))


def _pixels(images: np.ndarray) -> dict:
    """Images in [0, 1] as 8-bit pixels in base64, with their array shape."""
    pixels = np.rint(np.clip(images, 0, 1) * 255).astype(np.uint8)
    return {"dims": list(pixels.shape), "uint8_base64": base64.b64encode(pixels.tobytes()).decode()}


# ---- report ----------------------------------------------------------------------------


def interval(values: list[float]) -> tuple[float, float]:
    """Mean and half-width of the 95% t-interval over seeds."""
    v = np.asarray(values, float)
    if len(v) < 2:
        return float(v.mean()), math.nan
    half = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v))
    return float(v.mean()), float(half)


def cells(records: list[dict]) -> Iterator[tuple[int, str, str, list[dict]]]:
    ns = sorted({r["n"] for r in records})
    for n in ns:
        for clf in CLASSIFIERS:
            for m in METHODS:
                rs = [r for r in records if (r["n"], r["classifier"], r["method"]) == (n, clf, m)]
                if rs:
                    yield n, clf, m, sorted(rs, key=lambda r: r["seed"])


def complete_seeds(records: list[dict]) -> list[dict]:
    """The records of the seeds that have every (n, method, classifier) of the file."""
    ns = {r["n"] for r in records}
    want = len(ns) * len(METHODS) * len(CLASSIFIERS)
    have: dict[int, set] = {}
    for r in records:
        have.setdefault(r["seed"], set()).add((r["n"], r["method"], r["classifier"]))
    return [r for r in records if len(have[r["seed"]]) == want]


def table(records: list[dict]) -> str:
    """Markdown: accuracy (%) mean +- 95% half-width, and the paired difference to real."""
    acc = {(r["n"], r["seed"], r["method"], r["classifier"]): r["accuracy"] for r in records}
    lines = [
        "| n | classifier | method | seeds | test accuracy (%) | minus real-only (pp, paired) |",
        "| ---: | --- | --- | ---: | ---: | ---: |",
    ]
    for n, clf, m, rs in cells(records):
        mean, half = interval([100 * r["accuracy"] for r in rs])
        paired = [
            100 * (r["accuracy"] - acc[(n, r["seed"], "real", clf)])
            for r in rs
            if (n, r["seed"], "real", clf) in acc
        ]
        diff = "-"
        if m != "real" and paired:
            d, dh = interval(paired)
            diff = f"{d:+.2f} ± {dh:.2f}"
        lines.append(f"| {n} | {clf} | {m} | {len(rs)} | {mean:.2f} ± {half:.2f} | {diff} |")
    return "\n".join(lines)


def fidelity_table(records: list[dict]) -> str:
    """Markdown: how often the reference MLP gives the extra images their label (%)."""
    lines = [
        "| n | " + " | ".join(m for m in METHODS if m != "real") + " |",
        "| ---: |" + " ---: |" * (len(METHODS) - 1),
    ]
    for n in sorted({r["n"] for r in records}):
        row = []
        for m in METHODS[1:]:
            v = [
                100 * r["fidelity"]
                for r in records
                if (r["n"], r["method"], r["classifier"]) == (n, m, "logreg")
                and r.get("fidelity") is not None
            ]
            row.append(f"{np.mean(v):.1f}" if v else "-")
        lines.append(f"| {n} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def accuracy_figure(records: list[dict], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from aevb.viz import save_figure

    fig = Figure(figsize=(10, 4))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2, sharey=True)
    ns = sorted({r["n"] for r in records})
    for ax, clf in zip(axes, CLASSIFIERS, strict=True):
        for k, m in enumerate(METHODS):
            points = [
                (n, *interval([100 * r["accuracy"] for r in rs]))
                for n, c, m_, rs in cells(records)
                if c == clf and m_ == m
            ]
            if not points:
                continue
            n_, mean, half = map(np.array, zip(*points, strict=True))
            ax.errorbar(n_ * (1 + 0.03 * (k - 2)), mean, yerr=half, marker="o", capsize=3, label=m)
        ax.set_xscale("log")
        ax.set_xticks(ns, [str(n) for n in ns])
        ax.minorticks_off()
        ax.set_xlabel("labelled images per class (n)")
        ax.set_title({"logreg": "logistic regression", "mlp": "MLP (128 hidden)"}[clf])
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy (%), mean and 95% interval")
    axes[1].legend()
    save_figure(fig, path)


def samples_figure(diagnosis: Path, path: Path) -> None:
    """Seed 0's labelled images and each method's extra images, one row per class."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from aevb.viz import image_grid, save_figure

    record = json.loads(diagnosis.read_text())
    shape = record["shape"]
    titles = {
        "real": f"real (n = {record['n']}, seed 0)",
        "jitter": "affine jitter",
        "mixup": "mixup (heavier label)",
        "vae": "CVAE samples",
        "vae-long": "CVAE, 4x longer",
    }
    fig = Figure(figsize=(13, 4.2))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(titles))
    for ax, (name, title) in zip(axes, titles.items(), strict=True):
        dims = record["pictures"][name]["dims"]
        raw = base64.b64decode(record["pictures"][name]["uint8_base64"])
        images = np.frombuffer(raw, np.uint8).reshape(dims).astype(np.float32) / 255
        grid = image_grid(images.reshape(-1, dims[-1]), shape, nrow=dims[1])
        ax.imshow(grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([(shape[0] + 1) * c + shape[0] / 2 for c in range(dims[0])])
        ax.set_yticklabels([str(c) for c in range(dims[0])] if ax is axes[0] else [])
        ax.tick_params(length=0)
    save_figure(fig, path)


def report(args: argparse.Namespace) -> None:
    out = Path(args.out)
    records = complete_seeds(read_records(out))
    if not records:
        raise SystemExit(f"{out}: no complete seed yet; run without --report first")
    print(table(records))
    print()
    print(fidelity_table(records))
    sessions_path = out.with_name(out.stem + "-sessions.json")
    if sessions_path.exists():
        sessions = json.loads(sessions_path.read_text())
        print(f"\nmachine: {sessions[-1]['machine']}")
        print(f"reference MLP (whole pool): {sessions[-1].get('reference_accuracy')}")
        print(f"wall time: {sum(s['wall_seconds'] for s in sessions) / 60:.1f} min")
    vae = [r for r in records if r["classifier"] == "logreg" and "vae_seconds" in r]
    for m in ("vae", "vae-long"):
        for n in sorted({r["n"] for r in vae}):
            rs = [r for r in vae if (r["method"], r["n"]) == (m, n)]
            if rs:
                print(
                    f"{m} n={n}: train ELBO {np.mean([r['vae_train_bound'] for r in rs]):.1f} "
                    f"nats, {np.mean([r['vae_seconds'] for r in rs]):.1f} s per VAE"
                )
    figures = Path(args.figures)
    accuracy_figure(records, figures / "augmentation-accuracy.png")
    diagnosis = out.with_name(out.stem + "-diagnosis.json")
    if diagnosis.exists():
        record = json.loads(diagnosis.read_text())
        print(f"\ndiagnosis at n = {record['n']}, seeds 0-{record['seeds'] - 1}:")
        for key, value in record["nearest_distance"].items():
            print(f"  distance to the nearest labelled image of the label, {key}: {value:.2f}")
        for clf, accs in record["mixup_hard_accuracy"].items():
            print(f"  mixup, heavier label as a hard label, {clf}: {100 * np.mean(accs):.2f}%")
        samples_figure(diagnosis, figures / "augmentation-samples.png")
    print(f"figures -> {figures}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="mnist_test", choices=("mnist_test", "digits"))
    p.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))
    p.add_argument("--ns", type=int, nargs="+", default=[5, 10, 20], help="labels per class")
    p.add_argument("--seeds", type=int, default=10, help="seeds 0 .. seeds-1")
    p.add_argument("--multiplier", type=int, default=10, help="extra images per real image")
    p.add_argument("--vae-examples", type=int, default=VAE_EXAMPLES)
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch and BLAS threads (on a shared 2-core machine 1 ran 5x faster than 2)",
    )
    p.add_argument("--out", default=str(RESULTS / "augmentation.jsonl"))
    p.add_argument("--figures", default=str(FIGURES))
    p.add_argument("--report", action="store_true", help="only rebuild table and figures")
    p.add_argument(
        "--diagnose", action="store_true", help="distances, hard-label mixup and pictures"
    )
    args = p.parse_args(argv)
    report(args) if args.report else diagnose(args) if args.diagnose else run(args)


if __name__ == "__main__":
    main()
