"""Monte Carlo EM with HMC, the paper's MCEM baseline (its Figure 3).

Only the generative model is learned: the VAE's decoder p(x|z) and prior p(z); the
encoder is never used. Every training example i owns a persistent Markov chain state z_i
(initialised from the prior and kept across epochs). For each minibatch:

* E-step: one HMC transition of ``n_leapfrog`` (10) leapfrog steps on each example's
  posterior p(z|x_i) ∝ p(x_i|z) p(z), from its stored z_i; the step size (one, shared by
  all chains) is tuned after every minibatch toward ``target_acceptance`` (0.9);
* M-step: ``updates_per_batch`` (5) Adagrad updates of the decoder that raise the mean of
  log p(x_i|z_i) + log p(z_i) over the minibatch, with the sampled z_i held fixed.

Training examples are counted like :class:`aevb.training.Trainer` counts them (each
datapoint of each minibatch once), so MCEM and AEVB curves share an x-axis.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from aevb.config import check_positive
from aevb.deprecation import deprecated, renamed_kwargs
from aevb.hmc import adapt_step_size, hmc
from aevb.marginal import check_single_layer
from aevb.models.protocol import Model
from aevb.priors import VampPrior


@dataclass(frozen=True)
class MCEMConfig:
    """Every setting of an MCEM run."""

    lr: float = 0.02
    """Adagrad step size for the decoder."""
    weight_decay: float = 0.0
    """L2 penalty on the per-example loss (1 / N_train is the paper's N(0, I) prior)."""
    batch_size: int = 100
    """Minibatch size M."""
    n_leapfrog: int = 10
    """Leapfrog steps per HMC transition (the paper: 10)."""
    target_acceptance: float = 0.9
    """HMC acceptance rate the step size is tuned for (the paper: about 0.9)."""
    updates_per_batch: int = 5
    """Decoder updates per minibatch with the sampled z held fixed (the paper: 5)."""
    seed: int = 0
    """Seed of the chains' initial states, the minibatch order and HMC's randomness."""
    step_size: float = 0.1
    """Initial HMC step size, shared by all chains."""
    adapt_rate: float = 0.5
    """Rate of the step-size tuning, see :func:`aevb.hmc.adapt_step_size`. The
    tuning reads the mean acceptance probability of a whole minibatch, a quiet signal,
    so it can move fast: it has to follow a posterior that narrows as the decoder learns."""
    jitter: float = 0.2
    """Each transition's step is the step size times U(1 - jitter, 1 + jitter)."""

    def __post_init__(self) -> None:
        name = "MCEMConfig"
        for field in ("lr", "batch_size", "n_leapfrog", "updates_per_batch", "step_size"):
            check_positive(name, field, getattr(self, field))
        check_positive(name, "adapt_rate", self.adapt_rate)
        if self.weight_decay < 0:
            raise ValueError(f"{name}.weight_decay={self.weight_decay}: expected >= 0")
        if not 0.0 < self.target_acceptance < 1.0:
            raise ValueError(
                f"{name}.target_acceptance={self.target_acceptance}: expected a number in (0, 1)"
            )
        if not 0.0 <= self.jitter < 1.0:
            raise ValueError(f"{name}.jitter={self.jitter}: expected a number in [0, 1)")


class MCEM:
    """Owns an MCEM run: the model's decoder, its optimiser, the chains and the counters.

    Args:
        model: one stochastic layer, no condition, no VampPrior; only its
            ``generative_parameters()`` are trained.
        x_train: ``(N, D)`` training data; one chain per row.
        config: the settings.

    Attributes:
        z: ``(N, Nz)`` the chains' current states, row i belonging to example i.
        step_size: the current (tuned) HMC step size.
        examples_seen: training examples processed so far.
        epoch: passes over the training data started so far.
    """

    def __init__(self, model: Model, x_train: Tensor, config: MCEMConfig) -> None:
        if x_train.ndim != 2 or x_train.shape[0] == 0:
            raise ValueError(f"x_train has shape {tuple(x_train.shape)}: expected (N, D), N > 0")
        check_single_layer(model, "MCEM")
        if isinstance(model.prior, VampPrior):
            raise ValueError(
                "MCEM: the VampPrior's density runs through the encoder, which MCEM does "
                "not train; use prior 'standard' or 'mog'"
            )
        param = next(model.parameters())
        self.model = model
        self.config = config
        self.x = x_train.to(device=param.device, dtype=param.dtype)
        self.generator = torch.Generator(device=param.device).manual_seed(config.seed)
        self.z = model.prior.sample(self.n_train, generator=self.generator, device=param.device)
        self.z = self.z.to(param.dtype)
        self.optimizer = torch.optim.Adagrad(
            model.generative_parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        self.step_size = config.step_size
        self.examples_seen = 0
        self.epoch = 0
        self._order = torch.empty(0, dtype=torch.long, device=param.device)
        self._position = 0
        self._accepted = 0
        self._proposed = 0

    @property
    def n_train(self) -> int:
        """The number of training examples N (= the number of chains)."""
        return self.x.shape[0]

    @property
    def acceptance_rate(self) -> float:
        """The fraction of HMC proposals accepted since the start (nan before the first)."""
        return self._accepted / self._proposed if self._proposed else float("nan")

    @property
    def samples_seen(self) -> int:
        """Deprecated: :attr:`examples_seen`."""
        deprecated("MCEM.samples_seen", "MCEM.examples_seen")
        return self.examples_seen

    @renamed_kwargs(n_samples="n_examples")
    def run(self, n_examples: int) -> None:
        """Train on whole minibatches until ``n_examples`` more examples have been seen."""
        target = self.examples_seen + n_examples
        while self.examples_seen < target:
            self.step(self._next_indices())

    def step(self, idx: Tensor) -> float:
        """One E-step and M-step on the examples ``idx`` ``(B,)``; returns the mean of
        log p(x|z) + log p(z) over them before the updates (nats per example)."""
        x = self.x[idx]

        def log_joint(z: Tensor) -> Tensor:  # log p(x, z), (B,)
            return self.model.log_joint(x, z)

        c = self.config
        out = hmc(
            log_joint,
            self.z[idx],
            step_size=self.step_size,
            n_leapfrog=c.n_leapfrog,
            jitter=c.jitter,
            generator=self.generator,
        )
        self.z[idx] = out.z
        self.step_size = adapt_step_size(
            self.step_size, out.accept_prob, target=c.target_acceptance, rate=c.adapt_rate
        )
        self._accepted += int(out.accepted.sum())
        self._proposed += idx.numel()
        first = None
        for _ in range(c.updates_per_batch):
            self.optimizer.zero_grad(set_to_none=True)
            objective = log_joint(out.z).mean()
            (-objective).backward()
            self.optimizer.step()
            first = objective.item() if first is None else first
        self.examples_seen += idx.numel()
        return first

    def _next_indices(self) -> Tensor:
        """The next minibatch's example indices; a fresh permutation every epoch, and the
        last minibatch of an epoch is the remainder."""
        if self._position >= self._order.numel():
            self._order = torch.randperm(
                self.n_train, generator=self.generator, device=self._order.device
            )
            self._position = 0
            self.epoch += 1
        idx = self._order[self._position : self._position + self.config.batch_size]
        self._position += idx.numel()
        return idx


def fit_mcem(
    model: nn.Module,
    x_train: Tensor,
    config: MCEMConfig,
    *,
    points: Sequence[int] = (),
    evaluate: Callable[[nn.Module], dict[str, Any]],
    budget: int | None = None,
    eval_every: int | None = None,
) -> list[dict[str, Any]]:
    """Train ``model`` with MCEM and evaluate it at each of ``points`` training examples.

    Training runs whole minibatches until the examples seen reach the next point, then
    calls ``evaluate(model)``, e.g. with :func:`aevb.marginal.log_marginal_hmc` for the
    paper's Figure 3 (a point 0 evaluates the untrained model). Returns one row per point:
    ``{"examples": n, "acceptance_rate": r, **evaluate(model)}``. Deprecated: ``budget``
    and ``eval_every``, the points 0, ``eval_every``, 2 ``eval_every``, ..., ``budget``.
    """
    if budget is not None or eval_every is not None:
        deprecated("fit_mcem(budget=, eval_every=)", "fit_mcem(points=[0, every, ..., budget])")
        check_positive("fit_mcem", "budget", budget)
        check_positive("fit_mcem", "eval_every", eval_every)
        points = [0, *range(eval_every, budget, eval_every), budget]
    if not points or min(points) < 0 or list(points) != sorted(points):
        raise ValueError(f"fit_mcem.points={list(points)}: expected increasing counts >= 0")
    mcem = MCEM(model, x_train, config)
    history = []
    for point in points:
        mcem.run(point - mcem.examples_seen)
        history.append(
            {
                "examples": mcem.examples_seen,
                "acceptance_rate": mcem.acceptance_rate,
                **evaluate(model),
            }
        )
    return history


def generative_parameters(model: Model) -> list[nn.Parameter]:
    """Deprecated: ``model.generative_parameters()``."""
    deprecated("aevb.baselines.mcem.generative_parameters(model)", "model.generative_parameters()")
    return model.generative_parameters()
