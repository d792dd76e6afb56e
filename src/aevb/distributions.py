"""Distributions of the model: posterior q(z|x), prior p(z) and likelihoods p(x|z).

Light classes instead of ``torch.distributions`` because every sampler here takes an
explicit ``torch.Generator`` (reproducible, resumable runs) and because ``log_prob``
returns one number per example: the event (last) dimension is summed, in nats.

Shapes: a distribution built from parameters of shape ``(*batch, D)`` has batch shape
``batch`` and event size ``D``. ``log_prob(v)`` takes ``(*sample, *batch, D)`` and returns
``(*sample, *batch)``.

Every distribution here and in :mod:`aevb.priors` has the interface :class:`Distribution`:
``sample(n, generator=)`` and ``rsample(n, generator=)`` give ``(n, *batch, D)`` (a prior's
batch shape is empty), ``log_prob`` as above, and ``mean`` where it has one. Those whose
draws cannot be reparameterised (Bernoulli, mixtures) raise ``NotImplementedError`` from
``rsample``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

LOG_2PI = math.log(2.0 * math.pi)


@dataclass(frozen=True)
class Shard:
    """Rows ``start:stop`` of a global minibatch of ``total`` rows (data parallelism)."""

    start: int
    stop: int
    total: int


def standard_normal(
    n: int,
    like: Tensor,
    *,
    generator: torch.Generator | None = None,
    shard: Shard | None = None,
) -> Tensor:
    """Noise eps ~ N(0, I) of shape ``(n, *like.shape)`` on ``like``'s device and dtype.

    With a ``shard``, the noise of the whole global batch (``shard.total`` rows) is drawn
    and rows ``start:stop`` are returned.
    """
    shape = (n, *like.shape) if shard is None else (n, shard.total, *like.shape[1:])
    eps = torch.randn(shape, generator=generator, device=like.device, dtype=like.dtype)
    return eps if shard is None else eps[:, shard.start : shard.stop]


class Distribution(Protocol):
    """What every distribution of the model offers (see the module docstring)."""

    def sample(self, n: int = 1, *, generator: torch.Generator | None = None) -> Tensor:
        """``n`` draws without gradient: ``(n, *batch, D)``."""
        ...

    def rsample(self, n: int = 1, *, generator: torch.Generator | None = None) -> Tensor:
        """``n`` reparameterised draws (gradients reach the parameters): ``(n, *batch, D)``."""
        ...

    def log_prob(self, v: Tensor) -> Tensor:
        """Log-density summed over the event: ``(*sample, *batch, D) -> (*sample, *batch)``."""
        ...


def no_rsample(what: str) -> NotImplementedError:
    """The error of ``rsample`` for a distribution whose draws are not differentiable."""
    return NotImplementedError(f"{what} has no reparameterised draws: use sample()")


def clamp_logvar(logvar: Tensor, bounds: tuple[float, float] | None) -> Tensor:
    """``logvar`` clamped to ``bounds`` (a hard tanh: no gradient outside), or unchanged."""
    return logvar if bounds is None else logvar.clamp(bounds[0], bounds[1])


class DiagonalGaussian:
    """N(mean, diag(exp(logvar))), used for q(z|x) and for Gaussian p(x|z).

    Args:
        mean: ``(*batch, D)``.
        logvar: ``(*batch, D)`` or broadcastable to it (a per-dimension parameter works).
    """

    def __init__(self, mean: Tensor, logvar: Tensor) -> None:
        self.mean = mean
        self.logvar = logvar.expand_as(mean) if logvar.shape != mean.shape else logvar

    @property
    def std(self) -> Tensor:
        """Standard deviation, ``(*batch, D)``."""
        return torch.exp(0.5 * self.logvar)

    def rsample(
        self,
        n: int = 1,
        *,
        generator: torch.Generator | None = None,
        shard: Shard | None = None,
    ) -> Tensor:
        """Reparameterised draws ``mean + std * eps``, ``eps ~ N(0, I)``: ``(n, *batch, D)``.

        Gradients flow to ``mean`` and ``logvar`` (the reparameterisation trick). With a
        ``shard``, this batch is rows ``start:stop`` of a larger (global) batch: the noise
        of the whole global batch is drawn and this shard's rows are kept, so data-parallel
        processes draw exactly the eps that one process would.
        """
        eps = standard_normal(n, self.mean, generator=generator, shard=shard)
        return self.mean + self.std * eps

    def sample(
        self,
        n: int = 1,
        *,
        generator: torch.Generator | None = None,
        shard: Shard | None = None,
    ) -> Tensor:
        """The draws of :meth:`rsample`, detached: ``(n, *batch, D)``."""
        return self.rsample(n, generator=generator, shard=shard).detach()

    def log_prob(self, v: Tensor) -> Tensor:
        """log N(v; mean, var) summed over the last dim: ``(*sample, *batch)``."""
        scaled_square = (v - self.mean) ** 2 * torch.exp(-self.logvar)
        return -0.5 * (LOG_2PI + self.logvar + scaled_square).sum(-1)

    def kl_standard_normal_per_dim(self) -> Tensor:
        """KL(q || N(0, I)) per dimension in closed form: ``(*batch, D)``."""
        return 0.5 * (self.mean**2 + torch.exp(self.logvar) - 1.0 - self.logvar)

    def kl_standard_normal(self) -> Tensor:
        """KL(q || N(0, I)) summed over dimensions (the paper's Appendix B): ``(*batch,)``."""
        return self.kl_standard_normal_per_dim().sum(-1)


class StandardNormal:
    """The prior p(z) = N(0, I) over ``dim`` latent dimensions."""

    def __init__(self, dim: int) -> None:
        self.dim = dim

    def log_prob(self, z: Tensor) -> Tensor:
        """log N(z; 0, I) summed over the last dim: ``(*sample, *batch)``."""
        return -0.5 * (LOG_2PI + z**2).sum(-1)

    def sample(
        self,
        n: int = 1,
        *,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        temperature: float = 1.0,
        dtype: torch.dtype | None = None,
    ) -> Tensor:
        """``n`` draws, ``(n, dim)``; ``temperature`` scales the standard deviation."""
        eps = torch.randn((n, self.dim), generator=generator, device=device, dtype=dtype)
        return temperature * eps

    rsample = sample  # no parameters: every draw is trivially reparameterised


class Bernoulli:
    """Independent Bernoulli p(x|z) parameterised by logits ``(*batch, D)``.

    ``log_prob`` uses ``binary_cross_entropy_with_logits``: stable for any logit, and it
    accepts targets anywhere in [0, 1] (the usual relaxation for grey-level data).
    """

    def __init__(self, logits: Tensor) -> None:
        self.logits = logits

    @property
    def mean(self) -> Tensor:
        """Pixel probabilities, ``(*batch, D)``."""
        return torch.sigmoid(self.logits)

    def log_prob(self, x: Tensor) -> Tensor:
        """Sum over the last dim of log Bernoulli(x; sigmoid(logits)): ``(*sample, *batch)``.

        ``x`` and the logits broadcast: data ``(B, D)`` against logits ``(L, B, D)``, or
        draws ``(n, *batch, D)`` against logits ``(*batch, D)``.
        """
        logits, x = torch.broadcast_tensors(self.logits, x)
        return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)

    def sample(self, n: int = 1, *, generator: torch.Generator | None = None) -> Tensor:
        """Binary draws, ``(n, *batch, D)``."""
        mean = self.mean.detach()
        return torch.bernoulli(mean.expand(n, *mean.shape), generator=generator)

    def rsample(self, n: int = 1, *, generator: torch.Generator | None = None) -> Tensor:
        """Not available: binary draws are not differentiable."""
        raise no_rsample("Bernoulli")


# -- likelihood heads: a decoder's output -> p(x|z) ---------------------------------------
GAUSSIAN_MEANS = ("sigmoid", "identity")
GAUSSIAN_VARIANCES = ("output", "learned", "fixed")


class BernoulliHead:
    """p(x|z) = Bernoulli(sigmoid(out)) from decoder outputs ``out`` ``(*batch, D)`` (logits)."""

    outputs_per_value = 1

    def initial_logvar(self, dim: int) -> None:
        """None: a Bernoulli has no variance to keep."""
        return None

    def __call__(self, out: Tensor, logvar: Tensor | None = None) -> Bernoulli:
        """The likelihood for ``out``; ``logvar`` is unused (a Bernoulli has no variance)."""
        return Bernoulli(out)


@dataclass(frozen=True)
class GaussianHead:
    """p(x|z) = N(mean, exp(logvar)) from decoder outputs.

    ``mean`` "sigmoid" squashes the output into (0, 1) (the paper), "identity" keeps it.
    ``variance`` "output": the decoder outputs ``(*batch, 2D)``, means then log-variances
    (the paper's Frey Face decoder); "learned" or "fixed" (standard deviation ``std``): the
    output is ``(*batch, D)`` and the model keeps a log-variance per value
    (:meth:`initial_logvar`, a parameter or a constant), passed with it. The log-variance
    is floored at ``min_logvar``: pixels that never change would otherwise drive their
    variance to 0 and the likelihood to infinity.
    """

    mean: str = "sigmoid"
    variance: str = "output"
    min_logvar: float = -10.0
    std: float = 0.1

    def initial_logvar(self, dim: int) -> Tensor | None:
        """The log-variance ``(dim,)`` the model keeps: 0 to learn, 2 log ``std`` when fixed;
        None when the decoder outputs it."""
        if self.variance == "output":
            return None
        return torch.full((dim,), 0.0 if self.variance == "learned" else 2.0 * math.log(self.std))

    @property
    def outputs_per_value(self) -> int:
        """Decoder outputs per data value: 2 with variance "output", else 1."""
        return 2 if self.variance == "output" else 1

    def __call__(self, out: Tensor, logvar: Tensor | None = None) -> DiagonalGaussian:
        """The likelihood for ``out``; ``logvar`` ``(D,)`` unless the variance is "output"."""
        if self.variance == "output":
            out, logvar = out.chunk(2, dim=-1)
        mean = torch.sigmoid(out) if self.mean == "sigmoid" else out
        return DiagonalGaussian(mean, logvar.clamp(min=self.min_logvar))
