"""Kingma & Welling (2013), Figure 3: the marginal log-likelihood against training examples seen
on MNIST with 3 latent variables and 100 hidden units, for training sets of 1,000 and
50,000 images, comparing AEVB, wake-sleep and Monte Carlo EM.

The marginal likelihood is the paper's Appendix-D estimate (:mod:`aevb.marginal`: HMC
posterior samples, a Gaussian fitted to them, a harmonic-mean style importance estimate),
on the first ``n_eval`` training images (of the training set used) and test images; the
paper used 1,000 of each and 50 posterior samples with 4 leapfrog steps.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import torch
from matplotlib.figure import Figure

from aevb.baselines import MCEMConfig, fit_mcem
from aevb.data import Dataset, load_dataset
from aevb.marginal import log_marginal_hmc
from aevb.models import VAE, VAEConfig
from aevb.reproduce.curves import LABELS, draw_curves, write_figure
from aevb.reproduce.runs import map_prefixed
from aevb.training import TrainConfig, Trainer, seed_everything
from aevb.viz import save_figure

LATENT, HIDDEN = 3, 100
TRAIN_SIZES = (1_000, 50_000)
ALGORITHMS = ("aevb", "wake-sleep", "mcem")
STEP_SIZE = {"aevb": 0.02, "wake-sleep": 0.01, "mcem": 0.02}
DEFAULT_BUDGET, DEFAULT_EVAL = 1_000_000, 100
FULL_BUDGET, FULL_EVAL = 100_000_000, 1_000


def evaluation_points(budget: int, first: int = 10_000, per_decade: int = 3) -> list[int]:
    """Log-spaced counts of training examples from ``first`` to ``budget`` (inclusive)."""
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
    results = map_prefixed(_curve, labels, jobs_args, jobs=jobs)
    rows = [r for curve in results for r in curve]
    return write_figure(out, "figure3", rows, plot, report(rows, budget, n_eval))


def _curve(
    algorithm: str, n_train: int, budget: int, n_eval: int, data_dir: str | None
) -> list[dict]:
    """Worker: one algorithm on one training-set size, one thread."""
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
    start = "prior" if algorithm == "mcem" else "posterior"  # MCEM trains no encoder

    def evaluate(model: VAE) -> dict[str, float]:
        est = {}
        for split, x in (("train", x_train), ("test", x_test)):
            g = torch.Generator().manual_seed(1)
            v = log_marginal_hmc(model, x, n_draws=50, n_leapfrog=4, start=start, generator=g)
            est[f"{split}_log_marginal"] = v.mean().item() if torch.isfinite(v).all() else -math.inf
        return est

    lr, wd = STEP_SIZE[algorithm], 1.0 / n_train
    points = evaluation_points(budget)
    if algorithm == "mcem":
        config = MCEMConfig(lr=lr, weight_decay=wd, batch_size=100)
        train = torch.as_tensor(data.train)
        history = fit_mcem(model, train, config, points=points, evaluate=evaluate)
    else:
        config = TrainConfig(
            algorithm=algorithm,
            optimizer="adagrad",
            lr=lr,
            weight_decay=wd,
            batch_size=100,
            max_examples=budget,
            eval_every=budget,
        )
        trainer = Trainer(model, data, config, tempfile.mkdtemp(), quiet=True)
        history = []
        for point in points:
            trainer.run(point - trainer.state.examples)
            history.append({"examples": trainer.state.examples, **evaluate(model)})
    keys = ("examples", "train_log_marginal", "test_log_marginal")
    return [
        {"algorithm": algorithm, "n_train": n_train, **{k: h[k] for k in keys}} for h in history
    ]


def plot(rows: list[dict], path: Path) -> Path:
    """Two panels like the paper's: N_train = 1000 and 50000; solid train, dashed test."""
    fig = Figure(figsize=(9, 3.4))
    for i, n in enumerate(TRAIN_SIZES):
        ax = fig.add_subplot(1, 2, i + 1)
        panel = [r for r in rows if r["n_train"] == n]
        draw_curves(ax, panel, ALGORITHMS, "train_log_marginal", "test_log_marginal")
        ax.set_title(f"$N_{{train}} = {n:,}$", fontsize=10)
        ax.set_xlabel("# Training samples evaluated", fontsize=9)  # the paper's words
        ax.set_ylabel("Marginal log-likelihood", fontsize=9)
        if i == 0:
            ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return save_figure(fig, path)


def report(rows: list[dict], budget: int, n_eval: int) -> str:
    """Final estimates per training-set size and algorithm, as a markdown table."""
    lines = [
        f"Budget {budget:,} training examples per curve; marginal likelihood on the "
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
                r = max(last, key=lambda r: r["examples"])
                lines.append(
                    f"| {n:,} | {LABELS[a]} | {r['train_log_marginal']:.2f} | "
                    f"{r['test_log_marginal']:.2f} |"
                )
    return "\n".join(lines) + "\n"
