"""Minibatches of a tensor already in memory (on any device): one permutation per epoch."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def iterate_minibatches(
    x: torch.Tensor,
    batch_size: int,
    *,
    generator: torch.Generator | None = None,
    shuffle: bool = True,
    drop_last: bool = False,
) -> Iterator[torch.Tensor]:
    """One epoch of minibatches of the rows of ``x``.

    Args:
        x: ``(N, ...)`` examples, on any device.
        batch_size: rows per batch, M.
        generator: source of the permutation (reproducible epochs); its device is where
            the permutation is drawn. None uses torch's global RNG.
        shuffle: draw a fresh ``torch.randperm`` for this epoch; else keep row order
            (batches are then views of ``x``).
        drop_last: skip the final batch when it has fewer than ``batch_size`` rows.

    Yields:
        ``(M, ...)`` tensors on ``x.device`` (the last may be smaller unless ``drop_last``);
        each row of ``x`` appears at most once per epoch, and exactly once unless dropped.
    """
    import torch  # keeps ``import aevb.data`` free of torch's start-up time

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}: expected a positive integer")
    n = x.shape[0]
    stop = n - n % batch_size if drop_last else n
    if not shuffle:
        for start in range(0, stop, batch_size):
            yield x[start : start + batch_size]
        return
    device = generator.device if generator is not None else x.device
    perm = torch.randperm(n, generator=generator, device=device).to(x.device)
    for start in range(0, stop, batch_size):
        yield x.index_select(0, perm[start : start + batch_size])
