"""Kingma & Welling (2013), Figure 3: the marginal log-likelihood against training samples
on MNIST with 3 latent variables and 100 hidden units, for training sets of 1,000 and
50,000 images, comparing AEVB, wake-sleep and Monte Carlo EM.

The marginal likelihood is the paper's Appendix-D estimate (:mod:`aevb.marginal`: HMC
posterior samples, a Gaussian fitted to them, a harmonic-mean style importance estimate),
on the first ``n_eval`` training images (of the training set used) and test images; the
paper used 1,000 of each and 50 posterior samples with 4 leapfrog steps.
"""

from __future__ import annotations

import csv
import io
import math
import tempfile
from pathlib import Path

from aevb.atomic import write_text
from aevb.reproduce.runs import prefixed_call, worker_pool

LATENT, HIDDEN = 3, 100
TRAIN_SIZES = (1_000, 50_000)
ALGORITHMS = ("aevb", "wake-sleep", "mcem")
LABELS = {"aevb": "AEVB", "wake-sleep": "Wake-Sleep", "mcem": "MCEM"}
STEP_SIZE = {"aevb": 0.02, "wake-sleep": 0.01, "mcem": 0.02}
DEFAULT_BUDGET, DEFAULT_EVAL = 1_000_000, 100
FULL_BUDGET, FULL_EVAL = 100_000_000, 1_000


def evaluation_points(budget: int, first: int = 10_000, per_decade: int = 3) -> list[int]:
    """Log-spaced training-sample counts from ``first`` to ``budget`` (inclusive)."""
    points, k = [], 0
    while (p := round(first * 10 ** (k / per_decade))) < budget:
        points.append(p)
        k += 1
    return [*points, budget]


def run(
    out: Path,
    *,
    budget: int | None = None,
    n_eval: int | None = None,
    jobs: int = 2,
    data_dir: str | None = None,
) -> dict:
    """Train the six curves (in parallel), write CSV, PNG and a markdown table."""
    budget = budget or DEFAULT_BUDGET
    n_eval = n_eval or DEFAULT_EVAL
    jobs_args = [(a, n, budget, n_eval, data_dir) for n in TRAIN_SIZES for a in ALGORITHMS]
    labels = [f"{a}-n{n}" for a, n, *_ in jobs_args]  # each curve's lines start with it
    if jobs <= 1:
        pairs = zip(labels, jobs_args, strict=True)
        results = [prefixed_call(label, _curve, a) for label, a in pairs]
    else:
        with worker_pool(jobs) as pool:
            results = list(pool.map(prefixed_call, labels, [_curve] * len(jobs_args), jobs_args))
    rows = [r for curve in results for r in curve]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    write_text(out / "figure3.csv", buf.getvalue())
    plot(rows, out / "figure3.png")
    write_text(out / "figure3.md", report(rows, budget, n_eval))
    return {"csv": out / "figure3.csv", "png": out / "figure3.png", "md": out / "figure3.md"}


def _curve(
    algorithm: str, n_train: int, budget: int, n_eval: int, data_dir: str | None
) -> list[dict]:
    """Worker: one algorithm on one training-set size, one thread."""
    import torch

    from aevb.baselines import MCEM, MCEMConfig
    from aevb.data import Dataset, load_dataset
    from aevb.marginal import log_marginal_hmc
    from aevb.models import VAE, VAEConfig
    from aevb.training import TrainConfig, Trainer, seed_everything

    torch.set_num_threads(1)
    full = load_dataset("binarized_mnist", data_dir=data_dir)
    data = Dataset(
        name=full.name,
        train=full.train[:n_train],
        test=full.test,
        image_shape=full.image_shape,
        likelihood="bernoulli",
    )
    x_train = torch.as_tensor(data.train[:n_eval])
    x_test = torch.as_tensor(data.test[:n_eval])
    seed_everything(0)
    model = VAE(
        VAEConfig(
            input_dim=784,
            latent_dim=LATENT,
            hidden=(HIDDEN,),
            activation="tanh",
            init="paper",
            image_shape=(28, 28),
        )
    )
    lr, wd = STEP_SIZE[algorithm], 1.0 / n_train
    if algorithm == "mcem":
        learner = MCEM(
            model, torch.as_tensor(data.train), MCEMConfig(lr=lr, weight_decay=wd, batch_size=100)
        )
        advance, seen = learner.run, lambda: learner.samples_seen
    else:
        config = TrainConfig(
            algorithm=algorithm,
            optimizer="adagrad",
            lr=lr,
            weight_decay=wd,
            batch_size=100,
            max_samples=budget,
            eval_every=budget,
        )
        learner = Trainer(model, data, config, tempfile.mkdtemp(), quiet=True)
        advance, seen = learner.run, lambda: learner.state.samples
    rows = []
    for point in evaluation_points(budget):
        advance(point - seen())
        init = "prior" if algorithm == "mcem" else "posterior"  # MCEM trains no encoder
        est = {}
        for split, x in (("train", x_train), ("test", x_test)):
            g = torch.Generator().manual_seed(1)
            v = log_marginal_hmc(model, x, n_samples=50, n_leapfrog=4, init=init, generator=g)
            est[split] = v.mean().item() if torch.isfinite(v).all() else -math.inf
        rows.append(
            {
                "algorithm": algorithm,
                "n_train": n_train,
                "samples": seen(),
                "train_log_marginal": est["train"],
                "test_log_marginal": est["test"],
            }
        )
    return rows


def plot(rows: list[dict], path: Path) -> Path:
    """Two panels like the paper's: N_train = 1000 and 50000; solid train, dashed test."""
    from matplotlib.figure import Figure

    from aevb.viz import save_figure

    fig = Figure(figsize=(9, 3.4))
    colours = {"aevb": "tab:red", "wake-sleep": "tab:blue", "mcem": "tab:green"}
    for i, n in enumerate(TRAIN_SIZES):
        ax = fig.add_subplot(1, 2, i + 1)
        for a in ALGORITHMS:
            pts = sorted(
                (r["samples"], r["train_log_marginal"], r["test_log_marginal"])
                for r in rows
                if r["algorithm"] == a and r["n_train"] == n
            )
            if not pts:
                continue
            s, tr, te = zip(*pts, strict=True)
            ax.plot(s, tr, color=colours[a], label=f"{LABELS[a]} (train)")
            ax.plot(s, te, color=colours[a], linestyle="--", label=f"{LABELS[a]} (test)")
        ax.set_xscale("log")
        ax.set_title(f"$N_{{train}} = {n:,}$", fontsize=10)
        ax.set_xlabel("# Training samples evaluated", fontsize=9)
        ax.set_ylabel("Marginal log-likelihood", fontsize=9)
        ax.grid(alpha=0.3)
        finite = sorted(
            v
            for r in rows
            if r["n_train"] == n
            for v in (r["train_log_marginal"], r["test_log_marginal"])
            if math.isfinite(v)
        )
        if finite:
            low = finite[len(finite) // 5]
            ax.set_ylim(low - 0.1 * (finite[-1] - low), finite[-1] + 0.05 * (finite[-1] - low))
        if i == 0:
            ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return save_figure(fig, path)


def report(rows: list[dict], budget: int, n_eval: int) -> str:
    """Final estimates per training-set size and algorithm, as a markdown table."""
    lines = [
        f"Budget {budget:,} training samples per curve; marginal likelihood on the "
        f"first {n_eval} training and test images (50 posterior samples, 4 leapfrog "
        "steps).",
        "",
        "| N_train | algorithm | train log p(x) | test log p(x) |",
        "| ---: | --- | ---: | ---: |",
    ]
    for n in TRAIN_SIZES:
        for a in ALGORITHMS:
            last = [r for r in rows if r["algorithm"] == a and r["n_train"] == n]
            if last:
                r = max(last, key=lambda r: r["samples"])
                lines.append(
                    f"| {n:,} | {LABELS[a]} | {r['train_log_marginal']:.2f} | "
                    f"{r['test_log_marginal']:.2f} |"
                )
    return "\n".join(lines) + "\n"
