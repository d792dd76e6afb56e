"""The SGVB estimators of the ELBO, as small functions of per-example terms.

One forward pass computes :class:`Terms`; every bound reads them:

* estimator A (the paper's eq. 6): mean over L of log p(x|z) + log p(z) - log q(z|x);
* estimator B (eq. 7): mean over L of log p(x|z) - KL(q(z|x) || p(z)), KL in closed form;
* the importance-weighted log-likelihood estimate (evaluation) from the same log-weights.

All values are nats per example.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import torch
from torch import Tensor

from aevb.distributions import DiagonalGaussian, Shard

ESTIMATORS = ("A", "B")


def resolve_estimator(model, estimator: str) -> str:
    """``"auto"`` -> ``"B"`` when the model's KL has a closed form, else ``"A"`` (the
    Monte Carlo KL); ``"B"`` without a closed form is a one-line error."""
    analytic = bool(getattr(model.config, "analytic_kl", True))
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
    model: Any
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
    model,
    x: Tensor,
    q: DiagonalGaussian,
    *,
    n_samples: int = 1,
    generator: torch.Generator | None = None,
    shard: Shard | None = None,
) -> Terms:
    """Terms for rows ``x`` ``(B, D [+ C])`` given their posterior ``q`` (already encoded)."""
    pixels, condition = model.split(x)
    z = q.rsample(n_samples, generator=generator, shard=shard)
    layers, rest_log_q = model.infer_layers(
        x, z, generator=generator, shard=shard, features=getattr(q, "features", None)
    )
    return Terms(
        z=z,
        log_px_z=model.decode(layers, condition).log_prob(pixels),
        posterior=q,
        model=model,
        layers=layers,
        rest_log_q=rest_log_q,
    )


def compute_terms(
    model,
    x: Tensor,
    *,
    n_samples: int = 1,
    generator: torch.Generator | None = None,
    shard: Shard | None = None,
) -> Terms:
    """Encode ``x`` ``(B, D)``, draw ``n_samples`` z per example, score them.

    ``shard`` marks ``x`` as part of a larger minibatch split across processes.
    """
    q = model.posterior(x)
    return terms_from_posterior(model, x, q, n_samples=n_samples, generator=generator, shard=shard)


def elbo_a(terms: Terms) -> Tensor:
    """Estimator A (generic): mean over samples of the log-weights, ``(B,)``."""
    return terms.log_weights.mean(0)


def elbo_b(terms: Terms) -> Tensor:
    """Estimator B: MC reconstruction minus the analytic KL, ``(B,)``."""
    if terms.kl is None:
        raise ValueError("estimator B needs a closed-form KL; this prior has none: use 'A'")
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
    encoder is free to use it.
    """
    if free_bits > 0:
        per_dim = terms.kl_per_dim
        if per_dim is None:
            raise ValueError(
                "free bits need a closed-form KL per dimension, which this model (prior "
                "or hierarchy) lacks"
            )
        per_group = torch.stack([g.sum() for g in per_dim.mean(0).split(group)])
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


OBJECTIVES = ("elbo", "iwae")


@dataclass(frozen=True)
class ELBOObjective:
    """Training objective: minus the mean ELBO of a minibatch, or one of its variants.

    Called as ``objective(model, x, generator, shard, kl_weight) -> (loss, metrics)``; the
    trainer knows nothing else about the model (``shard``: see
    :class:`aevb.distributions.Shard`; ``kl_weight``: the KL warm-up factor in [0, 1]).
    ``metrics`` holds detached per-example values ``(B,)`` in nats, always of the plain
    ELBO whatever is optimised; reducing them is left to whoever reads them, so the hot
    loop pays nothing for metrics it does not show.

    * ``kind="elbo"``: -(reconstruction - beta * kl_weight * KL), the KL with free bits
      when ``free_bits`` > 0; beta = 1, no free bits and kl_weight = 1 is the ELBO.
    * ``kind="iwae"``: -IWAE bound with ``n_samples`` importance samples.
    """

    estimator: str = "B"
    n_samples: int = 1
    kind: str = "elbo"
    beta: float = 1.0
    free_bits: float = 0.0
    free_bits_group: int = 1

    def __post_init__(self) -> None:
        if self.kind not in OBJECTIVES:
            raise ValueError(f"objective={self.kind!r}: expected one of {list(OBJECTIVES)}")
        if self.kind == "iwae" and (self.beta != 1.0 or self.free_bits > 0):
            raise ValueError("objective='iwae': beta and free bits apply to the ELBO only")

    def __call__(
        self,
        model,
        x: Tensor,
        generator: torch.Generator | None = None,
        shard: Shard | None = None,
        kl_weight: float = 1.0,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        terms = compute_terms(model, x, n_samples=self.n_samples, generator=generator, shard=shard)
        bound = elbo(terms, self.estimator)
        if self.kind == "iwae":
            loss = -iwae_bound(terms).mean()
        elif self.beta == 1.0 and kl_weight == 1.0 and self.free_bits == 0.0:
            loss = -bound.mean()
        else:
            penalty = kl_term(
                terms, self.estimator, free_bits=self.free_bits, group=self.free_bits_group
            )
            loss = -(terms.reconstruction.mean() - self.beta * kl_weight * penalty)
        kl = terms.kl if self.estimator == "B" else terms.kl_monte_carlo
        # per-example values, detached; reduced only when someone reads them
        metrics = {
            "bound": bound.detach(),
            "reconstruction": terms.reconstruction.detach(),
            "kl": kl.detach(),
        }
        return loss, metrics
