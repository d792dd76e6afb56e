"""What the layers above the model (pictures, evaluation, the trainer, the baselines) may
call on it: :class:`Model`, satisfied by :class:`aevb.models.VAE`. A new model class that
offers these works with every one of them; nothing above probes for anything else.

Shapes: a data row is ``(D + C,)`` (C condition columns, usually 0); a code is
``(..., config.code_dim)``, with an optional leading sample dimension.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from aevb.distributions import DiagonalGaussian, Distribution, Shard


class Encoded(NamedTuple):
    """What the encoder infers from rows x: the posterior of the layer inferred from x alone,
    and the encoder body's output it was computed from (a top-down hierarchy's lower layers
    read it again)."""

    q: DiagonalGaussian
    """q(z_1|x), or q(z_L|x) when the hierarchy is top-down: batch ``(B,)``, ``code_dim`` wide."""
    features: Tensor
    """The encoder body's output ``(B, F)`` (a conv body's with the condition appended)."""


@runtime_checkable
class ModelConfig(Protocol):
    """The fields of a model's config that callers read (:class:`aevb.models.VAEConfig`'s)."""

    @property
    def input_dim(self) -> int: ...  # D, the data columns (condition columns excluded)
    @property
    def latent_dim(self) -> int: ...  # Nz, the size of z_1
    @property
    def code_dim(self) -> int: ...  # the size of the layer Model.encode infers from x alone
    @property
    def upper_latents(self) -> tuple[int, ...]: ...  # sizes of the layers above z_1
    @property
    def condition_dim(self) -> int: ...  # C, condition columns ending each row (0: none)
    @property
    def image_shape(self) -> tuple[int, ...] | None: ...  # (H, W) or (H, W, C), or None
    @property
    def likelihood(self) -> str: ...  # the name of p(x|z) (aevb.data.validation.LIKELIHOODS)
    @property
    def analytic_kl(self) -> bool: ...  # whether KL(q(z|x) || p(z)) has a closed form


@runtime_checkable
class Model(Protocol):
    """A latent-variable model with an encoder: q(z|x), p(z) and p(x|z)."""

    @property
    def config(self) -> ModelConfig: ...

    @property
    def prior(self) -> Distribution:
        """p(z) over the top layer."""

    # of nn.Module, what the trainer and the pictures call
    def train(self, mode: bool = True) -> Any: ...
    def eval(self) -> Any: ...
    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]: ...

    def generative_parameters(self) -> list[nn.Parameter]:
        """The parameters of p(x|z) and p(z), without those of the encoder."""

    def separate_condition(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """Rows ``(..., D + C)`` -> data ``(..., D)`` and condition ``(..., C)`` or None."""

    def as_condition(self, condition: Tensor | Sequence[int] | None, n: int) -> Tensor | None:
        """A condition ``(n, C)`` from labels ``(n,)`` or vectors ``(n, C)``; None if C = 0."""

    def encode(self, x: Tensor) -> DiagonalGaussian:
        """q(code|x) for rows ``(B, D + C)`` (checked and converted)."""

    def posterior(self, x: Tensor) -> DiagonalGaussian:
        """:meth:`encode` without its input checks (rows already of the model's dtype)."""

    def encoded(self, x: Tensor) -> Encoded:
        """:meth:`posterior` with the encoder body's output, for the objectives' terms."""

    def decode(self, z: Tensor, condition: Tensor | None = None) -> Distribution:
        """p(x|z) for a code ``(..., code_dim)``: batch shape ``(...)``, event size D."""

    def decode_layers(
        self, layers: Sequence[Tensor], condition: Tensor | None = None
    ) -> Distribution:
        """p(x|z_1, ..., z_L) for every layer, each ``(..., N_l)``: batch shape ``(...)``."""

    def infer_layers(
        self,
        x: Tensor,
        z: Tensor,
        *,
        generator: torch.Generator | None = None,
        shard: Shard | None = None,
        sample: bool = True,
        features: Tensor | None = None,
    ) -> tuple[list[Tensor], Tensor | float]:
        """Every layer [z_1, ..., z_L], each ``(S, B, N_l)``, from draws ``z`` ``(S, B,
        code_dim)`` of :meth:`encode`'s posterior for rows ``x`` ``(B, D + C)``, and the log q
        ``(S, B)`` of the layers drawn here (0.0 for one layer)."""

    def log_prior(self, z: Tensor, upper: Sequence[Tensor] = ()) -> Tensor:
        """log p(z_1, ..., z_L) for z_1 ``(..., N_1)`` and the layers above: ``(...)``."""

    def log_joint(self, x: Tensor, z: Tensor) -> Tensor:
        """log p(x, z) for rows ``(B, D + C)`` and z_1 ``(..., B, Nz)``: ``(..., B)``."""

    def kl_to_prior(self, q: DiagonalGaussian) -> Tensor | None:
        """KL(q || p(z)) in closed form ``(B,)``, or None."""

    def kl_to_prior_per_dim(self, q: DiagonalGaussian) -> Tensor | None:
        """KL per dimension in closed form ``(B, Nz)``, or None."""

    def reconstruct(self, x: Tensor) -> Tensor:
        """Mean of p(x|z) at the posterior means: ``(B, D)``."""

    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        temperature: float = 1.0,
        condition: Tensor | Sequence[int] | None = None,
    ) -> Tensor:
        """Means of p(x|z) for ``n`` draws from the prior: ``(n, D)``."""
