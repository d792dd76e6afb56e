"""Deterministic network bodies and their initialisation. Nothing probabilistic lives here."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "softplus": nn.Softplus,
    "leaky_relu": nn.LeakyReLU,
}


GATED = "gated"
"""A dense-layer "activation" of its own: h = (W x + b) * sigmoid(V x + c), the gated
dense layer of Tomczak & Welling's VampPrior code (one linear layer of twice the width,
then :class:`torch.nn.GLU`). Dense layers only."""
DENSE_ACTIVATIONS = (*ACTIVATIONS, GATED)

INIT_SCHEMES = ("paper", "default", "he", "glorot")
"""Weight initialisation schemes of :func:`initialise`."""


def initialise(module: nn.Module, scheme: str, std: float = 0.01) -> None:
    """Draw the parameters of ``module`` in place, in :meth:`~torch.nn.Module.parameters` order.

    "paper": every weight and bias ~ N(0, std^2) (the paper's N(0, 0.01) read as a standard
    deviation); "default": PyTorch's initialisation, left as it is; "he": weights ~
    N(0, 2 / fan_in) (He et al. 2015); "glorot": weights ~ U(+-sqrt(6 / (fan_in + fan_out)))
    (Glorot & Bengio 2010). "he" and "glorot" set biases to zero and touch only linear and
    (transposed) convolution layers.
    """
    if scheme == "paper":
        for p in module.parameters():
            nn.init.normal_(p, 0.0, std)
    elif scheme in ("he", "glorot"):
        for m in module.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
                if scheme == "he":
                    nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                else:
                    nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)


class MLP(nn.Sequential):
    """Fully connected body ``in_dim -> hidden[0] -> ... -> hidden[-1]``, activation after each.

    ``activation`` is a name in :data:`ACTIVATIONS` or "gated" (:data:`GATED`). With
    ``hidden == ()`` it is the identity and ``out_dim == in_dim``. Input ``(*, in_dim)``,
    output ``(*, out_dim)``.
    """

    def __init__(self, in_dim: int, hidden: Sequence[int], activation: str) -> None:
        layers: list[nn.Module] = []
        width = in_dim
        for h in hidden:
            if activation == GATED:
                layers += [nn.Linear(width, 2 * h), nn.GLU(dim=-1)]
            else:
                layers += [nn.Linear(width, h), ACTIVATIONS[activation]()]
            width = h
        super().__init__(*layers)
        self.out_dim = width


def image_layout(image_shape: Sequence[int]) -> tuple[int, int, int]:
    """``(H, W)`` or ``(H, W, C)`` (the data's row-major layout) as ``(C, H, W)``."""
    if len(image_shape) == 2:
        return 1, int(image_shape[0]), int(image_shape[1])
    if len(image_shape) == 3:
        return int(image_shape[2]), int(image_shape[0]), int(image_shape[1])
    raise ValueError(f"image_shape={tuple(image_shape)}: expected (H, W) or (H, W, C)")


def _downsampled(size: int, layers: int) -> list[int]:
    """Spatial sizes after each stride-2 convolution (kernel 4, padding 1): ``size // 2``."""
    sizes = [size]
    for _ in range(layers):
        sizes.append(sizes[-1] // 2)
    if sizes[-1] < 1:
        raise ValueError(f"image side {size}: too small for {layers} stride-2 convolutions")
    return sizes


class ConvEncoder(nn.Module):
    """Image rows ``(*, H*W*C + extra)`` -> stride-2 convolutions -> flattened -> MLP
    ``hidden``, then the last ``extra`` values of each row (a condition) appended unchanged.

    Each convolution (kernel 4, stride 2, padding 1) halves the image side: 28 -> 14 -> 7,
    32 -> 16 -> 8, 64 -> 32 -> 16 -> 8 -> 4. Output ``(*, out_dim)``.
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        channels: Sequence[int],
        hidden: Sequence[int],
        activation: str,
        extra: int = 0,
    ) -> None:
        super().__init__()
        self.layout, self.extra = image_layout(image_shape), extra
        self.image_shape = tuple(int(s) for s in image_shape)
        c, h, w = self.layout
        layers: list[nn.Module] = []
        for out in channels:
            layers += [nn.Conv2d(c, out, 4, stride=2, padding=1), ACTIVATIONS[activation]()]
            c = out
        self.convs = nn.Sequential(*layers)
        flat = c * _downsampled(h, len(channels))[-1] * _downsampled(w, len(channels))[-1]
        self.mlp = MLP(flat, hidden, activation)
        self.out_dim = self.mlp.out_dim + extra

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        lead, pixels = x.shape[:-1], x.shape[-1] - self.extra
        img = x[..., :pixels].reshape(-1, *self.image_shape)
        img = img.unsqueeze(1) if len(self.image_shape) == 2 else img.permute(0, 3, 1, 2)
        features = self.convs(img.contiguous()).flatten(1)
        h = self.mlp(features).reshape(*lead, self.mlp.out_dim)
        return torch.cat([h, x[..., pixels:]], dim=-1) if self.extra else h


class ConvDecoder(nn.Module):
    """``(*, in_dim)`` -> MLP ``hidden`` -> linear -> transposed convolutions -> image
    parameters ``(*, per_pixel * H*W*C)``.

    The mirror of :class:`ConvEncoder`. The output holds ``per_pixel`` blocks of H*W*C
    values, each in the data's row-major ``(H, W, C)`` layout (e.g. logits; or means then
    log-variances), so it reads exactly like an MLP decoder's output.
    """

    def __init__(
        self,
        in_dim: int,
        image_shape: Sequence[int],
        channels: Sequence[int],
        hidden: Sequence[int],
        activation: str,
        per_pixel: int = 1,
    ) -> None:
        super().__init__()
        self.image_shape = tuple(int(s) for s in image_shape)
        c_img, h, w = image_layout(image_shape)
        self.per_pixel = per_pixel
        hs, ws = _downsampled(h, len(channels)), _downsampled(w, len(channels))
        top = channels[-1] if channels else c_img * per_pixel
        self.start = (top, hs[-1], ws[-1])
        self.mlp = MLP(in_dim, hidden, activation)
        self.linear = nn.Linear(self.mlp.out_dim, top * hs[-1] * ws[-1])
        layers: list[nn.Module] = [ACTIVATIONS[activation]()] if channels else []
        widths = [*reversed(channels), c_img * per_pixel]
        for i in range(len(channels)):
            j = len(channels) - i  # the spatial size this layer restores is hs[j - 1]
            pad = (hs[j - 1] - 2 * hs[j], ws[j - 1] - 2 * ws[j])
            layers.append(nn.ConvTranspose2d(widths[i], widths[i + 1], 4, 2, 1, output_padding=pad))
            if i < len(channels) - 1:
                layers.append(ACTIVATIONS[activation]())
        self.deconvs = nn.Sequential(*layers)
        self.out_dim = per_pixel * c_img * h * w

    def forward(self, z: Tensor) -> Tensor:  # noqa: D102
        lead = z.shape[:-1]
        feat = self.linear(self.mlp(z.reshape(-1, z.shape[-1]))).reshape(-1, *self.start)
        out = self.deconvs(feat)  # (N, per_pixel * C, H, W)
        n, _, h, w = out.shape
        out = out.reshape(n, self.per_pixel, -1, h, w).permute(0, 1, 3, 4, 2)  # (N, k, H, W, C)
        return out.reshape(*lead, self.out_dim)
