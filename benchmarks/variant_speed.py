"""Cost of each model of the likelihood table: training seconds per epoch and the time of
the k = 5000 importance-sampled test log-likelihood, extrapolated from short timings.

    .venv/bin/python -m benchmarks.variant_speed [--threads 1] [--steps 20] [--rows vae vamp]

For every row of :mod:`aevb.reproduce.likelihood` (same networks, objective, minibatch
100), on random binary 784-pixel data: the median time of ``--steps`` training steps
(after 3 warm-up steps) times 500 steps per epoch of 50,000 images, and the time of an
importance-sampled log-likelihood with k = 500 on 20 images scaled to k = 5000 on
10,000 images. Used to size the default budgets in docs/likelihood.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import torch

from aevb.evaluate import log_likelihood
from aevb.machine import cpu_model
from aevb.models import VAE, VAEConfig
from aevb.objectives import make_objective
from aevb.reproduce.likelihood import ROW_KEYS, ROWS
from aevb.training import TrainConfig, make_optimizer


def time_row(row, steps: int) -> tuple[float, float]:
    """(seconds per training epoch, minutes of IS k=5000 on 10,000 images)."""
    torch.manual_seed(0)
    x = (torch.rand(100, 784) < 0.2).float()
    model = VAE(VAEConfig(input_dim=784, image_shape=(28, 28), **row.model))
    config = TrainConfig(**row.train)
    config = dataclasses.replace(config, **make_objective(config).check(model))
    objective, optimizer = make_objective(config), make_optimizer(model, config)
    times = []
    for i in range(steps + 3):
        start = time.perf_counter()
        loss, _ = objective(model, x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if i >= 3:
            times.append(time.perf_counter() - start)
    per_epoch = statistics.median(times) * 500
    model.eval()
    start = time.perf_counter()
    log_likelihood(model, x[:20], k=500, generator=torch.Generator().manual_seed(0))
    is_minutes = (time.perf_counter() - start) * 10 * 500 / 60
    return per_epoch, is_minutes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rows", nargs="+", default=list(ROW_KEYS), choices=ROW_KEYS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{cpu_model()}, torch {torch.__version__}, "
          f"{args.threads} thread(s)")  # fmt: skip
    print(f"{'row':<12} {'s/epoch':>8} {'IS k=5000, 10k images (min)':>28}")
    for row in ROWS:
        if row.key in args.rows:
            per_epoch, is_minutes = time_row(row, args.steps)
            print(f"{row.key:<12} {per_epoch:>8.1f} {is_minutes:>28.1f}", flush=True)


if __name__ == "__main__":
    main()
