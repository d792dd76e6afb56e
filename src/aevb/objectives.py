"""The SGVB estimators of the ELBO, as small functions of per-example terms.

One forward pass computes :class:`Terms`; every bound reads them:

* estimator A (the paper's eq. 6): mean over L of log p(x|z) + log p(z) - log q(z|x);
* estimator B (eq. 7): mean over L of log p(x|z) - KL(q(z|x) || p(z)), KL in closed form;
* the importance-weighted log-likelihood estimate (evaluation) from the same log-weights.

All values are nats per example.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from aevb.distributions import DiagonalGaussian, Shard

ESTIMATORS = ("A", "B")


@dataclass
class Terms:
    """Per-sample, per-example terms of the ELBO for L samples of z.

    Attributes:
        z: ``(L, B, Nz)`` draws from q(z|x) (reparameterised: they carry gradients).
        log_px_z: ``(L, B)`` log p(x|z).
        log_pz: ``(L, B)`` log p(z).
        log_qz_x: ``(L, B)`` log q(z|x).
        kl: ``(B,)`` KL(q(z|x) || p(z)) in closed form, or None when none exists.
    """

    z: Tensor
    log_px_z: Tensor
    log_pz: Tensor
    log_qz_x: Tensor
    kl: Tensor | None

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
    analytic_kl: bool = True,
    shard: Shard | None = None,
) -> Terms:
    """Terms for ``x`` ``(B, D)`` given its posterior ``q`` (already encoded)."""
    z = q.rsample(n_samples, generator=generator, shard=shard)
    log_px_z = model.decode(z).log_prob(x)
    return Terms(
        z=z,
        log_px_z=log_px_z,
        log_pz=model.prior.log_prob(z),
        log_qz_x=q.log_prob(z),
        kl=model.kl_to_prior(q) if analytic_kl else None,
    )


def compute_terms(
    model,
    x: Tensor,
    *,
    n_samples: int = 1,
    generator: torch.Generator | None = None,
    analytic_kl: bool = True,
    shard: Shard | None = None,
) -> Terms:
    """Encode ``x`` ``(B, D)``, draw ``n_samples`` z per example, score them.

    ``shard`` marks ``x`` as part of a larger minibatch split across processes.
    """
    q = model.encode(x)
    return terms_from_posterior(
        model,
        x,
        q,
        n_samples=n_samples,
        generator=generator,
        analytic_kl=analytic_kl,
        shard=shard,
    )


def elbo_a(terms: Terms) -> Tensor:
    """Estimator A (generic): mean over samples of the log-weights, ``(B,)``."""
    return terms.log_weights.mean(0)


def elbo_b(terms: Terms) -> Tensor:
    """Estimator B: MC reconstruction minus the analytic KL, ``(B,)``."""
    if terms.kl is None:
        raise ValueError("estimator B needs a closed-form KL; this prior has none: use 'A'")
    return terms.reconstruction - terms.kl


def elbo(terms: Terms, estimator: str = "B") -> Tensor:
    """The ELBO by estimator ``"A"`` or ``"B"``, ``(B,)``."""
    if estimator == "A":
        return elbo_a(terms)
    if estimator == "B":
        return elbo_b(terms)
    raise ValueError(f"estimator={estimator!r}: expected one of {list(ESTIMATORS)}")


@dataclass(frozen=True)
class ELBOObjective:
    """Training objective: minus the mean ELBO of a minibatch.

    Called as ``objective(model, x, generator, shard) -> (loss, metrics)``; the trainer
    knows nothing else about the model (``shard``: see :class:`aevb.distributions.Shard`).
    ``metrics`` holds detached per-batch means (nats).
    """

    estimator: str = "B"
    n_samples: int = 1

    def __call__(
        self,
        model,
        x: Tensor,
        generator: torch.Generator | None = None,
        shard: Shard | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        terms = compute_terms(
            model,
            x,
            n_samples=self.n_samples,
            generator=generator,
            analytic_kl=self.estimator == "B",
            shard=shard,
        )
        bound = elbo(terms, self.estimator)
        kl = terms.kl if terms.kl is not None else terms.kl_monte_carlo
        metrics = {
            "bound": bound.detach().mean(),
            "reconstruction": terms.reconstruction.detach().mean(),
            "kl": kl.detach().mean(),
        }
        return -bound.mean(), metrics
