"""Priors p(z) over the top latent layer: standard normal, a learned Gaussian mixture, and
the VampPrior (Tomczak & Welling 2017).

Every prior is an :class:`aevb.distributions.Distribution`: ``log_prob(z)`` (``(..., Nz) ->
(...)``, nats) and ``sample(n, generator=, device=, temperature=) -> (n, Nz)``;
``temperature`` scales the standard deviation of each component. A mixture's ``rsample``
raises (its component choice is discrete). Only the standard normal gives a closed-form
KL(q(z|x) || p(z)); with the others the trainer uses the Monte Carlo KL (estimator A), and
records that choice in the run's ``trainer.json``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from aevb.deprecation import deprecated
from aevb.distributions import (
    LOG_2PI,
    DiagonalGaussian,
    Distribution,
    StandardNormal,
    no_rsample,
)


def fixed_components(prior: nn.Module) -> contextlib.AbstractContextManager:
    """:meth:`MixturePrior.fixed` for a mixture ``prior`` (a model's ``.prior``, not the
    model), else a no-op."""
    return prior.fixed() if isinstance(prior, MixturePrior) else contextlib.nullcontext()


def mixture_log_prob(z: Tensor, mean: Tensor, logvar: Tensor, log_weights: Tensor) -> Tensor:
    """log sum_k w_k N(z; mean_k, diag(exp(logvar_k))): ``(..., Nz) -> (...)``.

    ``mean`` and ``logvar`` are ``(K, Nz)``, ``log_weights`` ``(K,)`` (normalised). The
    squared distance is expanded into two matrix products, so memory is ``(..., K)``
    rather than ``(..., K, Nz)``: this is what keeps importance sampling with k = 5000
    and K = 500 pseudo-inputs affordable. The expansion cancels large terms when the
    components are narrow (VampPrior components are encoder posteriors), so it runs in
    float64 and outside any autocast (bfloat16 would lose tens of nats); the result
    comes back in ``z``'s dtype.
    """
    with torch.autocast(z.device.type, enabled=False):
        zd, md, lv = z.double(), mean.double(), logvar.double()
        precision = torch.exp(-lv)  # (K, Nz)
        const = -0.5 * (LOG_2PI * md.shape[-1] + lv.sum(-1) + (md**2 * precision).sum(-1))
        quad = -0.5 * (zd**2) @ precision.T + zd @ (md * precision).T  # (..., K)
        out = torch.logsumexp(quad + const + log_weights.double(), dim=-1)
    return out.to(z.dtype)


class MixturePrior(nn.Module):
    """A prior that is a mixture of diagonal Gaussians; subclasses say where the
    components come from (:meth:`components`), this class scores and samples them."""

    dim: int
    _fixed: tuple[Tensor, Tensor, Tensor] | None = None

    def components(self) -> tuple[Tensor, Tensor, Tensor]:
        """Means ``(K, Nz)``, log-variances ``(K, Nz)`` and normalised log-weights ``(K,)``."""
        raise NotImplementedError

    def _components(self) -> tuple[Tensor, Tensor, Tensor]:
        if self._fixed is None:
            return self.components()
        if torch.is_grad_enabled():
            raise RuntimeError(
                "prior components are fixed (MixturePrior.fixed) but gradients are on: "
                "fixed components carry no gradient; train outside the block"
            )
        return self._fixed

    @contextlib.contextmanager
    def fixed(self) -> Iterator[None]:
        """Inside the block the components are computed once and reused.

        For evaluation with parameters that do not change (importance sampling scores
        thousands of chunks against the same VampPrior, whose components would otherwise
        re-encode every pseudo-input each time). Components computed under
        ``torch.no_grad`` carry no gradient: do not train inside the block.
        """
        with torch.no_grad():
            self._fixed = self.components()
        try:
            yield
        finally:
            self._fixed = None

    def log_prob(self, z: Tensor) -> Tensor:
        """log p(z): ``(..., Nz) -> (...)``."""
        return mixture_log_prob(z, *self._components())

    def rsample(self, n: int = 1, *, generator: torch.Generator | None = None) -> Tensor:
        """Not available: a mixture's component choice is discrete."""
        raise no_rsample(type(self).__name__)

    @torch.no_grad()
    def sample(
        self,
        n: int = 1,
        *,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        temperature: float = 1.0,
        dtype: torch.dtype | None = None,
    ) -> Tensor:
        """``n`` draws ``(n, Nz)`` on the parameters' device and dtype: a component by its
        weight, then a Gaussian draw with its standard deviation times ``temperature``."""
        mean, logvar, log_w = self._components()
        k = torch.multinomial(log_w.exp(), n, replacement=True, generator=generator)
        shape = (n, mean.shape[-1])
        eps = torch.randn(shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return mean[k] + temperature * torch.exp(0.5 * logvar[k]) * eps


class GaussianMixturePrior(MixturePrior):
    """p(z) = sum_k w_k N(z; mu_k, diag(sigma_k^2)) with every parameter learned.

    Means start spread as draws from N(0, I), variances at 1, weights equal: at
    initialisation the prior is a blurred standard normal.
    """

    def __init__(self, dim: int, components: int) -> None:
        super().__init__()
        self.dim = dim
        self.means = nn.Parameter(torch.randn(components, dim))
        self.logvars = nn.Parameter(torch.zeros(components, dim))
        self.logits = nn.Parameter(torch.zeros(components))

    def components(self) -> tuple[Tensor, Tensor, Tensor]:  # noqa: D102
        return self.means, self.logvars, self.logits.log_softmax(-1)


class VampPrior(MixturePrior):
    """p(z) = (1/K) sum_k q(z | u_k): the encoder's posteriors at K learned pseudo-inputs.

    ``encode`` maps pseudo-inputs ``(K, D)`` to the posterior over this prior's latent
    layer; it is the owning model's encoder, so the prior moves with it (a bound method
    of the model: copying the prior alone copies the model with it). Pseudo-inputs are
    stored unconstrained and clamped to [0, 1] for Bernoulli data (Tomczak & Welling's
    hard-tanh), initialised around 0.05 with standard deviation 0.01 as in their code.

    Args:
        dim: latent size Nz of the layer the prior is over.
        components: K.
        input_dim: D, the size of one pseudo-input (condition columns excluded).
        encode: ``(K, D) -> DiagonalGaussian`` with batch shape ``(K,)``.
        unit_interval: clamp pseudo-inputs to [0, 1].
    """

    def __init__(
        self,
        dim: int,
        components: int,
        input_dim: int,
        encode: Callable[[Tensor], DiagonalGaussian],
        *,
        unit_interval: bool = True,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.pseudo_inputs = nn.Parameter(0.05 + 0.01 * torch.randn(components, input_dim))
        self.unit_interval = unit_interval
        self._encode = encode

    def posteriors(self) -> DiagonalGaussian:
        """q(z | u_k) for every pseudo-input: batch shape ``(K,)``."""
        u = self.pseudo_inputs
        return self._encode(u.clamp(0.0, 1.0) if self.unit_interval else u)

    def components(self) -> tuple[Tensor, Tensor, Tensor]:  # noqa: D102
        q = self.posteriors()
        k = q.mean.shape[0]
        log_weights = torch.full((k,), -math.log(k), dtype=q.mean.dtype, device=q.mean.device)
        return q.mean, q.logvar, log_weights


@dataclass(frozen=True)
class PriorSite:
    """What a prior is built from: the model's settings and its encoder."""

    dim: int
    """Nz of the layer the prior is over (the top one)."""
    components: int
    """``VAEConfig.prior_components``: K for a mixture."""
    input_dim: int
    """D, the size of a data row without its condition columns (a VampPrior's pseudo-input)."""
    encode: Callable[[Tensor], DiagonalGaussian]
    """The model's q over the top layer for rows ``(K, D)``."""
    unit_interval: bool
    """Whether the data lie in [0, 1] (a Bernoulli likelihood)."""


PRIORS: dict[str, Callable[[PriorSite], Distribution]] = {
    "standard": lambda site: StandardNormal(site.dim),
    "mog": lambda site: GaussianMixturePrior(site.dim, site.components),
    "vamp": lambda site: VampPrior(
        site.dim, site.components, site.input_dim, site.encode, unit_interval=site.unit_interval
    ),
}
"""Every prior by its name in ``VAEConfig.prior`` and ``aevb train --prior``: a function
from the :class:`PriorSite` to the prior. Adding an entry adds a prior (docs/architecture.md)."""


def build_prior(name: str, site: PriorSite | int, **old: Any) -> Distribution:
    """The prior named ``name`` (one of :data:`PRIORS`) at ``site``."""
    if not isinstance(site, PriorSite):  # deprecated: build_prior(kind, dim, components=, ...)
        deprecated("build_prior(kind, dim, **fields)", "build_prior(name, PriorSite(dim, ...))")
        site = PriorSite(site, **old)
    if name not in PRIORS:
        raise ValueError(f"prior={name!r}: expected one of {list(PRIORS)}")
    return PRIORS[name](site)


def fixed_prior(prior: nn.Module) -> contextlib.AbstractContextManager:
    """Deprecated: :func:`fixed_components`, which takes the prior; this also takes the model."""
    deprecated("aevb.priors.fixed_prior", "aevb.priors.fixed_components(model.prior)")
    return fixed_components(getattr(prior, "prior", prior))
