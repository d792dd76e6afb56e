"""Evaluation: lower bound, importance-sampled log-likelihood, active units, KL per dim.

Every function takes a model and data ``x`` of shape ``(N, D)`` and works through it in
batches under ``torch.no_grad()``, so memory stays bounded whatever N and k are. ``x`` may
be a numpy array or a tensor of any dtype; it is checked once on entry
(:func:`aevb.inputs.check_rows`: a ``ValueError`` for NaN/inf, another width, or values
outside [0, 1] under a Bernoulli likelihood) and converted to the model's dtype.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from aevb.distributions import DiagonalGaussian
from aevb.inputs import check_rows
from aevb.models.protocol import Model
from aevb.objectives import batches, log_likelihood, lower_bound, model_device

# the bounds live with the objectives that train and select runs by them
__all__ = [
    "Estimate",
    "active_units",
    "bits_per_dim",
    "kl_per_dim",
    "log_likelihood",
    "lower_bound",
    "mutual_information",
    "posterior_means",
]


@dataclass(frozen=True)
class Estimate:
    """Mean of per-example values with its standard error (nats per example)."""

    mean: float
    stderr: float
    n: int

    @classmethod
    def of(cls, values: Tensor) -> Estimate:
        """Summarise per-example values ``(N,)``."""
        v = values.double()
        n = v.numel()
        se = v.std(unbiased=True).item() / math.sqrt(n) if n > 1 else float("nan")
        return cls(mean=v.mean().item(), stderr=se, n=n)

    def __str__(self) -> str:
        return f"{self.mean:.3f} ± {self.stderr:.3f} nats (n={self.n})"


def bits_per_dim(log_px: float, dim: int, *, scale: float = 1.0) -> float:
    """-log p(x) in bits per dimension.

    For data that were divided by ``scale`` (e.g. 255 for 8-bit pixels scaled to [0, 1])
    the density is first converted back to the original units:
    log p(x_orig) = log p(x) - D log(scale).
    """
    return -(log_px - dim * math.log(scale)) / (dim * math.log(2.0))


@torch.no_grad()
def posterior_means(model: Model, x: Tensor, *, batch_size: int = 1000) -> Tensor:
    """E_q[z|x] for every example: ``(N, Nz)`` on the CPU."""
    x = check_rows(model, x)
    device = model_device(model)
    means = [model.posterior(xb.to(device)).mean.cpu() for xb in batches(x, batch_size)]
    return torch.cat(means)


def active_units(
    model: Model, x: Tensor, *, threshold: float = 0.01, batch_size: int = 1000
) -> tuple[int, Tensor]:
    """Active latent dimensions (Burda et al. 2015): Cov_x(E_q[z_i]) > ``threshold``.

    Returns the count and the per-dimension variances ``(Nz,)``.
    """
    variances = posterior_means(model, x, batch_size=batch_size).double().var(0)
    return int((variances > threshold).sum()), variances.float()


@torch.no_grad()
def kl_per_dim(model: Model, x: Tensor, *, batch_size: int = 1000) -> Tensor:
    """Mean over examples of the closed-form KL(q(z_i|x) || p(z_i)) per dimension, ``(Nz,)``.

    Only models whose prior factorises over dimensions (the standard normal, one layer)
    have it: otherwise a ``ValueError``.
    """
    if not model.config.analytic_kl:
        raise ValueError("KL per dimension needs the standard normal prior and one layer")
    x = check_rows(model, x)
    device = model_device(model)
    total = None
    for xb in batches(x, batch_size):
        kl = model.kl_to_prior_per_dim(model.posterior(xb.to(device))).sum(0).double().cpu()
        total = kl if total is None else total + kl
    return (total / x.shape[0]).float()


@torch.no_grad()
def mutual_information(
    model: Model,
    x: Tensor,
    *,
    chunk: int = 100,
    generator: torch.Generator | None = None,
) -> float:
    """Estimate of the mutual information I(x; z) under q(z|x) p_data(x), nats.

    I = E_x E_{q(z|x)} [log q(z|x) - log q(z)] with the aggregate posterior
    q(z) = (1/N) sum_j q(z|x_j) over the N rows of ``x`` (He et al. 2019). Near 0 the
    latents carry no information about x: posterior collapse.

    The quantity estimated is the mutual information between z and the index of a row
    drawn uniformly, E_j KL(q(z|x_j) || q(z)): at least 0, at most log N. It is estimated
    with one z per row; every term is <= log N, but their average is a Monte Carlo
    estimate whose noise can take it a little below 0 when the true value is near 0 (a
    barely trained model). Such a value is clipped to 0: it says "no information", and a
    negative mutual information does not exist.
    """
    x = check_rows(model, x)
    device = model_device(model)
    means, logvars = [], []
    for xb in batches(x, 1000):
        q = model.posterior(xb.to(device))
        means.append(q.mean)
        logvars.append(q.logvar)
    q_all = DiagonalGaussian(torch.cat(means), torch.cat(logvars))  # batch (N,)
    n = q_all.mean.shape[0]
    z = q_all.rsample(1, generator=generator)[0]  # (N, Nz): z_i ~ q(z|x_i)
    total = 0.0
    for start in range(0, n, chunk):
        zi = z[start : start + chunk]  # (c, Nz)
        cross = q_all.log_prob(zi[:, None, :])  # (c, N): log q(z_i | x_j)
        log_qz = torch.logsumexp(cross, dim=1) - math.log(n)
        own = cross[torch.arange(zi.shape[0]), torch.arange(start, start + zi.shape[0])]
        total += (own - log_qz).sum().item()
    return max(0.0, total / n)  # clipped: see the docstring
