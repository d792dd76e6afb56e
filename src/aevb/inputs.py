"""Checks of the data rows handed to the Python API (``VAE.encode``, :mod:`aevb.evaluate`).

The public entry points call :func:`check_rows` once on the whole input, so that a user's
numpy array or float64 tensor works and values the model cannot score (NaN, +-inf,
values outside [0, 1] for a Bernoulli likelihood) are a ``ValueError`` instead of silent
nonsense. The training hot path (objectives, priors) calls ``VAE.posterior`` directly on
minibatches the trainer already checked, so no check runs (or synchronises a GPU) per step.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from aevb.data.validation import needs_unit_interval


def check_rows(
    model: Any, x: Any, *, name: str = "x", device: torch.device | str | None = None
) -> Tensor:
    """``x`` as a tensor of the model's dtype, after checking that the model can score it.

    Args:
        model: a :class:`~aevb.models.VAE` (its ``config`` gives input_dim, condition_dim,
            likelihood and gaussian_mean; its parameters give the dtype).
        x: rows ``(N, D + C)``: a tensor of any dtype and device, a numpy array or nested
            lists of numbers.
        name: what ``x`` is called in messages.
        device: where the result lives; None keeps ``x``'s device (the CPU for numpy).

    Returns:
        ``(N, D + C)`` tensor of the dtype of the model's parameters.

    Raises:
        ValueError: not numbers, not 2-D, no rows, a width other than D + C, NaN or +-inf,
            or values outside [0, 1] for a Bernoulli likelihood or a Gaussian one with a
            sigmoid mean (whose mean lies in (0, 1)); the message says what was expected.
    """
    param = next(model.parameters())
    c = model.config
    width = c.input_dim + c.condition_dim
    x = _as_tensor(x, name)
    if x.dim() != 2:
        raise ValueError(f"{name} of shape {tuple(x.shape)}: expected 2-D rows (N, {width})")
    if x.shape[0] == 0:
        raise ValueError(f"{name} of shape {tuple(x.shape)}: expected at least one row")
    if x.shape[1] != width:
        extra = f" + {c.condition_dim} condition columns" if c.condition_dim else ""
        raise ValueError(f"{name} has {x.shape[1]} values per row: expected {c.input_dim}{extra}")
    x = x.to(device=device if device is not None else x.device, dtype=param.dtype)
    _check_finite(x, name)
    _check_range(x[:, : c.input_dim], c, name)
    return x


def _as_tensor(x: Any, name: str) -> Tensor:
    """A real-valued tensor of ``x`` (a tensor, numpy array or nested lists)."""
    try:
        x = torch.as_tensor(x)
    except (TypeError, ValueError, RuntimeError) as e:
        raise ValueError(
            f"{name} of type {type(x).__name__}: expected numbers, rows (N, D) ({e})"
        ) from None
    if x.is_complex():
        raise ValueError(f"{name} of dtype {x.dtype}: expected real numbers")
    return x


def _check_finite(x: Tensor, name: str) -> None:
    """Raise ``ValueError`` naming how many values of ``x`` ``(N, D)`` are NaN/inf, and where."""
    bad = ~torch.isfinite(x)
    if not bad.any():
        return
    rows = bad.any(dim=1).nonzero().flatten()
    raise ValueError(
        f"{name}: expected finite values, found {int(bad.sum())} NaN/inf in {len(rows)} "
        f"row(s) (first: row {int(rows[0])})"
    )


def _check_range(pixels: Tensor, config: Any, name: str) -> None:
    """Raise ``ValueError`` when ``pixels`` ``(N, D)`` lie outside [0, 1] and the model's
    likelihood needs them inside: Bernoulli, or Gaussian with a sigmoid mean."""
    likelihood = config.likelihood
    if not needs_unit_interval(likelihood, config.gaussian_mean):
        return
    lo, hi = (v.item() for v in torch.aminmax(pixels.detach()))
    if lo >= 0.0 and hi <= 1.0:
        return
    what = "bernoulli likelihood" if likelihood == "bernoulli" else "gaussian sigmoid mean"
    raise ValueError(
        f"{name}: values in [{lo:g}, {hi:g}], but the model's {what} expects values in "
        f"[0, 1]; scale them as the training data were (e.g. 8-bit pixels divided by 255)"
    )
