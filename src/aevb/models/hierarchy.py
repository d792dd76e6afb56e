"""Stochastic layers above z_1, and the two ways a VAE wires them (``VAEConfig.hierarchy``).

"bottom-up", IWAE's stack (Burda et al. 2015): q(z_1|x) q(z_2|z_1) ... q(z_L|z_{L-1}) and
p(z_L) p(z_{L-1}|z_L) ... p(z_1|z_2) p(x|z_1). "top-down", the HVAE of Tomczak & Welling
(2017): q(z_L|x) q(z_{L-1}|x, z_L) ... q(z_1|x, z_2) and p(z_L) ... p(z_1|z_2)
p(x|z_1, ..., z_L): every inference step sees x (through the encoder body's features,
shared by every layer) and the decoder reads every layer.

A model keeps three lists of :class:`GaussianLayer` (:func:`stacks`): ``upward``
q(z_{l+1}|z_l) (bottom-up only), ``posterior_down`` q(z_l|x, z_{l+1}) (top-down only) and
``downward`` p(z_l|z_{l+1}); all three are empty for one layer. Layers are listed bottom
(z_1) to top (z_L), each ``(..., N_l)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from aevb.distributions import DiagonalGaussian, Distribution, Shard, clamp_logvar, standard_normal
from aevb.networks import MLP

HIERARCHIES = ("bottom-up", "top-down")


class GaussianLayer(nn.Module):
    """``(*, in_dim)`` -> MLP ``hidden`` -> linear -> diagonal Gaussian over ``out_dim``,
    batch shape ``(*)``: one step q(z_{l+1}|z_l), q(z_l|x, z_{l+1}) or p(z_l|z_{l+1})."""

    def __init__(
        self,
        in_dim: int,
        hidden: Sequence[int],
        out_dim: int,
        activation: str,
        logvar_range: tuple[float, float] | None = None,
    ):
        super().__init__()
        self.body = MLP(in_dim, hidden, activation)
        self.head = nn.Linear(self.body.out_dim, 2 * out_dim)
        self.logvar_range = logvar_range

    def forward(self, v: Tensor) -> DiagonalGaussian:  # noqa: D102
        mean, logvar = self.head(self.body(v)).chunk(2, dim=-1)
        return DiagonalGaussian(mean, clamp_logvar(logvar, self.logvar_range))


def stacks(
    sizes: Sequence[int],
    *,
    top_down: bool,
    features: int,
    hidden: Sequence[int],
    activation: str,
    logvar_range: tuple[float, float] | None,
) -> tuple[nn.ModuleList, nn.ModuleList, nn.ModuleList]:
    """``upward``, ``posterior_down`` and ``downward`` for layers of ``sizes`` (bottom to top).

    ``features``: the width of the encoder body's output, which top-down inference reads;
    ``hidden``: the widths between layers (reversed downwards).
    """
    up, down, n = hidden, tuple(reversed(hidden)), len(sizes) - 1
    upward = nn.ModuleList(
        GaussianLayer(sizes[i], up, sizes[i + 1], activation, logvar_range)
        for i in range(0 if top_down else n)
    )
    posterior_down = nn.ModuleList(
        GaussianLayer(features + sizes[i + 1], up, sizes[i], activation, logvar_range)
        for i in range(n if top_down else 0)
    )
    downward = nn.ModuleList(
        GaussianLayer(sizes[i + 1], down, sizes[i], activation, logvar_range) for i in range(n)
    )
    return upward, posterior_down, downward


def infer_layers(
    upward: nn.ModuleList,
    posterior_down: nn.ModuleList,
    z: Tensor,
    features: Tensor | None,
    *,
    generator: torch.Generator | None = None,
    shard: Shard | None = None,
    sample: bool = True,
) -> tuple[list[Tensor], Tensor | float]:
    """Every layer [z_1, ..., z_L], given draws ``z`` ``(L, B, N)`` of the layer inferred from
    x alone (z_1 bottom-up, z_L top-down) and the encoder body's ``features`` ``(B, F)`` (read
    top-down only), with the sum of the log q of the layers drawn here, ``(L, B)`` (0.0 for
    one layer). With ``sample=False`` each layer is its conditional mean and the log q 0.0.
    """
    log_q: Tensor | float = 0.0

    def draw(q: DiagonalGaussian) -> Tensor:
        nonlocal log_q
        if not sample:
            return q.mean
        eps = standard_normal(z.shape[0], q.mean[0], generator=generator, shard=shard)
        v = q.mean + q.std * eps
        log_q = log_q + q.log_prob(v)
        return v

    chain = [z]
    for layer in upward:
        chain.append(draw(layer(chain[-1])))
    if len(posterior_down):
        h = features.to(z.dtype).expand(z.shape[0], -1, -1)  # (L, B, F)
        for layer in reversed(posterior_down):
            chain.insert(0, draw(layer(torch.cat([h, chain[0]], dim=-1))))
    return chain, log_q


def pass_means_up(q: DiagonalGaussian, upward: nn.ModuleList) -> DiagonalGaussian:
    """q over the top layer from q(z_1|x), passing each layer's mean up (the VampPrior of a
    bottom-up hierarchy: q(z_L|u) has no closed form)."""
    for layer in upward:
        q = layer(q.mean)
    return q


def lower_means(downward: nn.ModuleList, top: Tensor) -> list[Tensor]:
    """[z_1, ..., z_L] from z_L ``(..., N_L)``, each lower layer at the mean of p(z_l|z_{l+1})."""
    chain = [top]
    for layer in reversed(downward):
        chain.insert(0, layer(chain[0]).mean)
    return chain


def log_prior(prior: Distribution, downward: nn.ModuleList, chain: Sequence[Tensor]) -> Tensor:
    """log p(z_1, ..., z_L) = log p(z_L) + sum_l log p(z_l | z_{l+1}): ``(...)``."""
    total = prior.log_prob(chain[-1])
    for i, layer in enumerate(downward):
        total = total + layer(chain[i + 1]).log_prob(chain[i])
    return total


def sample_below(
    downward: nn.ModuleList, top: Tensor, *, generator: torch.Generator | None, temperature: float
) -> list[Tensor]:
    """Every layer [z_1, ..., z_L], each ``(n, N_l)``, from draws ``top`` ``(n, N_L)`` of the
    prior, ancestrally: z_l ~ p(z_l|z_{l+1}), its standard deviation scaled by ``temperature``."""
    chain = [top]
    for layer in reversed(downward):
        p = layer(chain[0])
        eps = torch.randn(
            p.mean.shape, generator=generator, device=p.mean.device, dtype=p.mean.dtype
        )
        chain.insert(0, p.mean + temperature * p.std * eps)
    return chain
