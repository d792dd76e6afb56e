"""Deterministic network bodies. Nothing probabilistic lives here."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "softplus": nn.Softplus,
    "leaky_relu": nn.LeakyReLU,
}


class MLP(nn.Sequential):
    """Fully connected body ``in_dim -> hidden[0] -> ... -> hidden[-1]``, activation after each.

    With ``hidden == ()`` it is the identity and ``out_dim == in_dim``. Input ``(*, in_dim)``,
    output ``(*, out_dim)``.
    """

    def __init__(self, in_dim: int, hidden: Sequence[int], activation: str) -> None:
        layers: list[nn.Module] = []
        width = in_dim
        for h in hidden:
            layers += [nn.Linear(width, h), ACTIVATIONS[activation]()]
            width = h
        super().__init__(*layers)
        self.out_dim = width

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102 - nn.Sequential's forward
        return super().forward(x)
