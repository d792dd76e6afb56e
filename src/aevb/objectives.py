"""The SGVB estimators of the ELBO, as small functions of per-example terms, and the
training objectives built on them.

One forward pass computes :class:`Terms`; every bound reads them:

* estimator A (the paper's eq. 6): mean over L of log p(x|z) + log p(z) - log q(z|x);
* estimator B (eq. 7): mean over L of log p(x|z) - KL(q(z|x) || p(z)), KL in closed form;
* the importance-weighted bound and log-likelihood estimate from the same log-weights.

A training objective is an object behind one small protocol (:class:`Objective`): it
checks its model once, computes the training loss and metrics of a minibatch, and the
per-example bound a run is evaluated and selected by. :class:`ELBOObjective` and
:class:`IWAEObjective` implement it here, the baselines in :mod:`aevb.baselines`; each
registers itself (:func:`register`) under the ``TrainConfig`` name that selects it.

All values are nats per example.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

import torch
from torch import Tensor

from aevb.distributions import DiagonalGaussian, Shard
from aevb.inputs import check_rows
from aevb.models.protocol import Encoded, Model
from aevb.priors import fixed_components
from aevb.progress import Progress

ESTIMATORS = ("A", "B")


def resolve_estimator(model: Model, estimator: str) -> str:
    """``"auto"`` -> ``"B"`` when the model's KL has a closed form, else ``"A"`` (the
    Monte Carlo KL); ``"B"`` without a closed form is a one-line error."""
    analytic = model.config.analytic_kl
    if estimator == "auto":
        return "B" if analytic else "A"
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator={estimator!r}: expected auto or one of {list(ESTIMATORS)}")
    if estimator == "B" and not analytic:
        raise ValueError(
            "estimator B needs a closed-form KL, which this model (prior or hierarchy) "
            "lacks: use estimator A or auto (Monte Carlo KL)"
        )
    return estimator


@dataclass
class Terms:
    """Per-sample, per-example terms of the ELBO for L samples of z.

    ``log_px_z`` is computed with the terms; ``log_pz``, ``log_qz_x`` and ``kl`` on first
    use and then kept, so an estimator pays only for what it reads (estimator B never
    evaluates log q(z|x); the IS estimate never evaluates the closed-form KL).

    In a hierarchical model z stands for all layers: log p(z) = log p(z_1, ..., z_L) and
    log q(z|x) is the sum of every layer's log q (see :meth:`aevb.models.VAE.infer_layers`).

    Attributes:
        z: ``(L, B, N)`` draws from ``posterior`` (reparameterised: they carry gradients).
        log_px_z: ``(L, B)`` log p(x|z).
        posterior: the Gaussian q the model infers from x alone (q(z_1|x); q(z_L|x) in a
            top-down hierarchy), batch shape ``(B,)``.
        model: the model, for its prior and its closed-form KL.
        layers: every layer [z_1, ..., z_L], each ``(L, B, N_l)``, one of them ``z``;
            empty means ``[z]`` (one layer).
        rest_log_q: ``(L, B)`` sum of the log q of the layers other than ``z``, or 0.0.
    """

    z: Tensor
    log_px_z: Tensor
    posterior: DiagonalGaussian
    model: Model
    layers: list[Tensor] = field(default_factory=list)
    rest_log_q: Tensor | float = 0.0

    @cached_property
    def log_pz(self) -> Tensor:
        """log p(z), ``(L, B)``."""
        chain = self.layers or [self.z]
        return self.model.log_prior(chain[0], chain[1:])

    @cached_property
    def log_qz_x(self) -> Tensor:
        """log q(z|x), ``(L, B)``."""
        return self.posterior.log_prob(self.z) + self.rest_log_q

    @cached_property
    def kl(self) -> Tensor | None:
        """KL(q(z|x) || p(z)) in closed form, ``(B,)``, or None when none exists."""
        return self.model.kl_to_prior(self.posterior)

    @cached_property
    def kl_per_dim(self) -> Tensor | None:
        """KL(q(z_i|x) || p(z_i)) per latent dimension, ``(B, Nz)``, or None without a
        closed form."""
        return self.model.kl_to_prior_per_dim(self.posterior)

    @property
    def log_weights(self) -> Tensor:
        """log p(x, z) - log q(z|x), ``(L, B)``: the importance weights' logs."""
        return self.log_px_z + self.log_pz - self.log_qz_x

    @property
    def reconstruction(self) -> Tensor:
        """Monte Carlo E_q[log p(x|z)], ``(B,)``."""
        return self.log_px_z.mean(0)

    @property
    def kl_monte_carlo(self) -> Tensor:
        """Monte Carlo E_q[log q(z|x) - log p(z)], ``(B,)``."""
        return (self.log_qz_x - self.log_pz).mean(0)


def terms_from_posterior(
    model: Model,
    x: Tensor,
    encoded: Encoded,
    *,
    n_samples: int = 1,
    generator: torch.Generator | None = None,
    shard: Shard | None = None,
) -> Terms:
    """Terms for rows ``x`` ``(B, D [+ C])`` given their posterior (``model.encoded(x)``)."""
    pixels, condition = model.separate_condition(x)
    q, features = encoded
    z = q.rsample(n_samples, generator=generator, shard=shard)
    layers, rest_log_q = model.infer_layers(
        x, z, generator=generator, shard=shard, features=features
    )
    return Terms(
        z=z,
        log_px_z=model.decode_layers(layers, condition).log_prob(pixels),
        posterior=q,
        model=model,
        layers=layers,
        rest_log_q=rest_log_q,
    )


def compute_terms(
    model: Model,
    x: Tensor,
    *,
    n_samples: int = 1,
    generator: torch.Generator | None = None,
    shard: Shard | None = None,
) -> Terms:
    """Encode ``x`` ``(B, D)``, draw ``n_samples`` z per example, score them.

    ``shard`` marks ``x`` as part of a larger minibatch split across processes.
    """
    return terms_from_posterior(
        model, x, model.encoded(x), n_samples=n_samples, generator=generator, shard=shard
    )


def elbo_a(terms: Terms) -> Tensor:
    """Estimator A (generic): mean over samples of the log-weights, ``(B,)``."""
    return terms.log_weights.mean(0)


def elbo_b(terms: Terms) -> Tensor:
    """Estimator B: MC reconstruction minus the analytic KL, ``(B,)``; only for models
    with a closed-form KL (:func:`resolve_estimator` refuses B for the others)."""
    return terms.reconstruction - terms.kl


def iwae_bound(terms: Terms) -> Tensor:
    """The importance-weighted bound of Burda et al. (2015) with the L samples, ``(B,)``:
    log (1/L) sum_l p(x, z_l) / q(z_l|x). Equals estimator A for L = 1 and tightens
    towards log p(x) as L grows; its reparameterised gradient is IWAE's estimator."""
    return torch.logsumexp(terms.log_weights, dim=0) - math.log(terms.log_weights.shape[0])


def kl_term(
    terms: Terms, estimator: str = "B", *, free_bits: float = 0.0, group: int = 1
) -> Tensor:
    """The minibatch's KL penalty, a scalar (nats per example).

    With ``free_bits`` = lambda > 0 (Kingma et al. 2016), the KL of each group of
    ``group`` consecutive latent dimensions (1 = each dimension; the last group may be
    smaller), averaged over the minibatch, counts as at least lambda:
    sum_g max(lambda, E_x KL_g). Below the floor a group's KL costs nothing, so the
    encoder is free to use it. Free bits need a closed-form KL per dimension
    (:meth:`ELBOObjective.check` refuses the models without one).
    """
    if free_bits > 0:
        per_group = torch.stack([g.sum() for g in terms.kl_per_dim.mean(0).split(group)])
        return per_group.clamp(min=free_bits).sum()
    kl = terms.kl if estimator == "B" else terms.kl_monte_carlo
    return kl.mean()


def elbo(terms: Terms, estimator: str = "B") -> Tensor:
    """The ELBO by estimator ``"A"`` or ``"B"``, ``(B,)``."""
    if estimator == "A":
        return elbo_a(terms)
    if estimator == "B":
        return elbo_b(terms)
    raise ValueError(f"estimator={estimator!r}: expected one of {list(ESTIMATORS)}")


# ---- bounds over a dataset -------------------------------------------------------------
def model_device(model: Model) -> torch.device:
    """The device of the model's parameters."""
    return next(model.parameters()).device


def batches(x: Tensor, batch_size: int) -> Iterator[Tensor]:
    """Consecutive row blocks of ``x``, at most ``batch_size`` rows each."""
    for start in range(0, x.shape[0], batch_size):
        yield x[start : start + batch_size]


@torch.no_grad()
def lower_bound(
    model: Model,
    x: Tensor,
    *,
    estimator: str = "auto",
    n_samples: int = 1,
    batch_size: int = 1000,
    generator: torch.Generator | None = None,
) -> Tensor:
    """The ELBO of every example of ``x`` ``(N, D)``: ``(N,)`` nats, on the CPU.

    ``estimator`` "auto" is B (analytic KL) where the model has one, else A.
    """
    estimator = resolve_estimator(model, estimator)
    x = check_rows(model, x)
    device = model_device(model)
    out = []
    with fixed_components(model.prior):
        for xb in batches(x, batch_size):
            xb = xb.to(device, non_blocking=True)
            t = compute_terms(model, xb, n_samples=n_samples, generator=generator)
            out.append(elbo(t, estimator).cpu())
    return torch.cat(out)


ACTIVE_UNIT_VARIANCE = 0.01
"""A latent dimension is active when its posterior mean varies over the data by more than
this (Burda et al. 2015; :func:`aevb.evaluate.active_units`' default)."""


@torch.no_grad()
def posterior_use(
    model: Model, x: Tensor, batch_size: int = 1000, device: torch.device | str | None = None
) -> dict[str, float]:
    """How much the posterior is used on rows ``x`` ``(N, D)``: ``kl``, the mean closed-form
    KL(q(z|x) || p(z)) in nats, and ``active_units``, the dimensions with
    Cov_x E_q[z_i] > :data:`ACTIVE_UNIT_VARIANCE`. A collapsed model has KL near 0 and no
    active unit. Empty for a model without a closed-form KL (a hierarchy, a mixture prior)."""
    means, kl = [], 0.0
    for start in range(0, len(x), batch_size):
        q = model.posterior(x[start : start + batch_size].to(device or x.device))
        batch_kl = model.kl_to_prior(q)
        if batch_kl is None:
            return {}
        means.append(q.mean.double().cpu())
        kl += batch_kl.double().sum().item()
    spread = torch.cat(means).var(0) if len(x) > 1 else torch.zeros(1)
    return {"kl": kl / len(x), "active_units": float((spread > ACTIVE_UNIT_VARIANCE).sum())}


@torch.no_grad()
def log_likelihood(
    model: Model,
    x: Tensor,
    *,
    k: int = 5000,
    batch_size: int = 100,
    max_rows: int = 2048,
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> Tensor:
    """Importance-sampled log p(x) with ``k`` samples from q(z|x): ``(N,)`` nats, CPU.

    log p(x) ≈ logsumexp_k [log p(x, z_k) - log q(z_k|x)] - log k, a lower bound in
    expectation that tightens as k grows (Burda et al. 2015). Samples are drawn in
    chunks of at most ``max_rows`` decoder rows (chunk × batch) and combined with a
    running logsumexp, so memory does not grow with k. Small chunks are also faster on
    a CPU: their buffers are reused from the allocator instead of being mapped afresh
    (page faults) for every chunk, and they stay in cache (see docs/performance.md).
    ``progress`` shows the examples done on stderr (:class:`aevb.progress.Progress`).
    """
    if k < 1:
        raise ValueError(f"k={k}: expected at least 1 importance sample")
    x = check_rows(model, x)
    device = model_device(model)
    chunk = max(1, min(k, max_rows // max(1, min(batch_size, x.shape[0]))))
    out = []
    # a bar on a terminal, a plain line every 30 s in a log file (aevb.progress)
    bar = Progress(x.shape[0], desc=f"log p(x), k={k}", quiet=not progress)
    with fixed_components(model.prior):  # a mixture prior's components, computed once
        for xb in batches(x, batch_size):
            xb = xb.to(device, non_blocking=True)
            encoded = model.encoded(xb)
            running = torch.full((xb.shape[0],), -math.inf, device=device, dtype=xb.dtype)
            for start in range(0, k, chunk):
                size = min(chunk, k - start)
                t = terms_from_posterior(model, xb, encoded, n_samples=size, generator=generator)
                running = torch.logaddexp(running, torch.logsumexp(t.log_weights, dim=0))
            out.append((running - math.log(k)).cpu())
            bar.update(xb.shape[0])
    bar.close()
    return torch.cat(out)


# ---- training objectives ---------------------------------------------------------------
class Objective(Protocol):
    """What the trainer calls, knowing nothing else of an objective.

    An objective is built from a run's ``TrainConfig`` by the ``from_config`` its class
    registers (:func:`register`); its constructor refuses settings it cannot honour.
    """

    @property
    def bound_name(self) -> str:
        """What :meth:`bound` measures ("elbo", "iwae-k5"), stored with a run's best bound
        so that bounds of another kind are never compared with it."""

    def check(self, model: Model) -> dict[str, Any]:
        """Refuse, with a one-line ``ValueError``, a model this objective cannot train;
        called once before training. Returns the ``TrainConfig`` fields it resolved for
        this model (estimator "auto" -> "A" or "B"), which the run records."""

    def __call__(
        self,
        model: Model,
        x: Tensor,
        generator: torch.Generator | None = None,
        shard: Shard | None = None,
        kl_weight: float = 1.0,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """The loss of minibatch ``x`` ``(B, D [+ C])`` (a scalar to minimise) and detached
        per-example metrics ``(B,)`` in nats: ``bound`` (the ELBO, whatever is optimised),
        ``reconstruction`` and ``kl``; reducing them is left to whoever reads them, so the
        hot loop pays nothing for metrics it does not show. ``shard``: see
        :class:`aevb.distributions.Shard`; ``kl_weight``: the KL warm-up factor in [0, 1]."""

    def bound(self, model: Model, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The bound a run is evaluated and selected by, per example of ``x`` ``(N, D [+ C])``:
        ``(N,)`` nats on the CPU."""


def _imported(module: str, name: str) -> Callable[[Any], Objective]:
    """Builds algorithm ``name`` after importing ``module``, which registers it over this
    entry: a baseline sits in a layer above the trainer, so it is named here, not imported."""

    def build(config) -> Objective:
        importlib.import_module(module)
        return _ALGORITHMS[name](config)

    return build


_OBJECTIVES: dict[str, Callable[[Any], Objective]] = {}
_ALGORITHMS: dict[str, Callable[[Any], Objective]] = {
    "aevb": lambda config: _OBJECTIVES[config.objective](config),
    "wake-sleep": _imported("aevb.baselines.wake_sleep", "wake-sleep"),
}
OBJECTIVES = _OBJECTIVES.keys()
"""AEVB's objectives, ``TrainConfig.objective`` (live: registering adds a name)."""
ALGORITHMS = _ALGORITHMS.keys()
"""``TrainConfig.algorithm``: "aevb" (SGVB on ``objective``) and the baselines."""


def register(name: str, *, algorithm: bool = False):
    """Class decorator: the class's ``from_config(config)`` builds objective ``name``,
    selected by ``TrainConfig.objective``, or by ``TrainConfig.algorithm`` for a baseline
    (``algorithm=True``), which replaces AEVB rather than being one of its objectives."""

    def add(cls):
        (_ALGORITHMS if algorithm else _OBJECTIVES)[name] = cls.from_config
        return cls

    return add


def make_objective(config) -> Objective:
    """The objective that a ``TrainConfig``'s ``algorithm`` and ``objective`` name."""
    return _ALGORITHMS[config.algorithm](config)


@register("elbo")
@dataclass(frozen=True)
class ELBOObjective:
    """Minus the mean ELBO of a minibatch, by estimator ``"A"`` or ``"B"`` with ``n_samples``
    samples of z, or one of its variants: -(reconstruction - beta * kl_weight * KL), the
    KL with ``free_bits`` when > 0; beta = 1, no free bits and kl_weight = 1 is the ELBO.
    Evaluated by the ELBO (:func:`lower_bound`)."""

    estimator: str = "B"
    n_samples: int = 1
    beta: float = 1.0
    free_bits: float = 0.0
    free_bits_group: int = 1
    bound_name = "elbo"

    @classmethod
    def from_config(cls, config) -> ELBOObjective:
        return cls(
            estimator=config.estimator,
            n_samples=config.n_samples,
            beta=config.beta,
            free_bits=config.free_bits,
            free_bits_group=config.free_bits_group,
        )

    def check(self, model: Model) -> dict[str, Any]:
        if self.free_bits > 0 and not model.config.analytic_kl:
            raise ValueError(
                "free bits need a closed-form KL per dimension, which this model (prior "
                "mog/vamp or more than one stochastic layer) lacks"
            )
        return {"estimator": resolve_estimator(model, self.estimator)}

    def __call__(
        self,
        model: Model,
        x: Tensor,
        generator: torch.Generator | None = None,
        shard: Shard | None = None,
        kl_weight: float = 1.0,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        terms = compute_terms(model, x, n_samples=self.n_samples, generator=generator, shard=shard)
        bound = elbo(terms, self.estimator)
        if self.beta == 1.0 and kl_weight == 1.0 and self.free_bits == 0.0:
            loss = -bound.mean()
        else:
            penalty = kl_term(
                terms, self.estimator, free_bits=self.free_bits, group=self.free_bits_group
            )
            loss = -(terms.reconstruction.mean() - self.beta * kl_weight * penalty)
        return loss, _metrics(terms, bound, self.estimator)

    def bound(self, model: Model, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return lower_bound(
            model, x, estimator=self.estimator, n_samples=self.n_samples, generator=generator
        )


@register("iwae")
@dataclass(frozen=True)
class IWAEObjective:
    """Minus the mean IWAE bound (Burda et al. 2015) with ``n_samples`` importance samples;
    evaluated by the same bound (the importance-sampled estimate with that k). The metrics
    report the ELBO by ``estimator``."""

    estimator: str = "B"
    n_samples: int = 1

    @classmethod
    def from_config(cls, config) -> IWAEObjective:
        if config.beta != 1.0 or config.free_bits or config.kl_warmup_examples:
            raise ValueError(
                "TrainConfig.objective='iwae': beta, free_bits and "
                "kl_warmup_examples apply to the ELBO only"
            )
        return cls(estimator=config.estimator, n_samples=config.n_samples)

    @property
    def bound_name(self) -> str:
        return f"iwae-k{self.n_samples}"

    def check(self, model: Model) -> dict[str, Any]:
        return {"estimator": resolve_estimator(model, self.estimator)}

    def __call__(
        self,
        model: Model,
        x: Tensor,
        generator: torch.Generator | None = None,
        shard: Shard | None = None,
        kl_weight: float = 1.0,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        del kl_weight  # refused with the IWAE bound (from_config)
        terms = compute_terms(model, x, n_samples=self.n_samples, generator=generator, shard=shard)
        loss = -iwae_bound(terms).mean()
        return loss, _metrics(terms, elbo(terms, self.estimator), self.estimator)

    def bound(self, model: Model, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return log_likelihood(model, x, k=self.n_samples, generator=generator)


def _metrics(terms: Terms, bound: Tensor, estimator: str) -> dict[str, Tensor]:
    """The per-example metrics ``(B,)`` of a minibatch, detached; reduced only when
    someone reads them."""
    kl = terms.kl if estimator == "B" else terms.kl_monte_carlo
    return {
        "bound": bound.detach(),
        "reconstruction": terms.reconstruction.detach(),
        "kl": kl.detach(),
    }
