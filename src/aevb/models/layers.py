"""Stochastic layers shared by the model's parts."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from aevb.distributions import DiagonalGaussian
from aevb.networks import MLP


class GaussianLayer(nn.Module):
    """``(*, in_dim)`` -> MLP ``hidden`` -> linear -> diagonal Gaussian over ``out_dim``.

    Used for the upper layers of a hierarchical model: q(z_{l+1} | z_l) upwards and
    p(z_l | z_{l+1}) downwards. The returned Gaussian has batch shape ``(*)``.
    """

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


def clamp_logvar(logvar: Tensor, bounds: tuple[float, float] | None) -> Tensor:
    """``logvar`` clamped to ``bounds`` (a hard tanh: no gradient outside), or unchanged."""
    return logvar if bounds is None else logvar.clamp(bounds[0], bounds[1])
