"""Checks that an array of examples suits a model: finite values, range for the likelihood."""

from __future__ import annotations

from typing import Any

import numpy as np

from aevb.data.errors import DataError

LIKELIHOODS = ("bernoulli", "gaussian")


def check_finite(x: np.ndarray, source: str) -> None:
    """Raise :class:`DataError` naming ``source`` if ``x`` holds NaN or +-inf.

    The message gives the count and the index of the first offending value.
    """
    if not np.issubdtype(x.dtype, np.floating) and not np.issubdtype(x.dtype, np.complexfloating):
        return
    bad = ~np.isfinite(x)
    count = int(np.count_nonzero(bad))
    if count:
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        where = first[0] if len(first) == 1 else first
        raise DataError(
            f"{source}: expected finite values, found {count} NaN/inf (first at index {where})"
        )


def check_likelihood_name(likelihood: str, source: str) -> None:
    """Raise :class:`DataError` unless ``likelihood`` is one this package knows."""
    if likelihood not in LIKELIHOODS:
        raise DataError(
            f"{source}: likelihood {likelihood!r}: expected one of {', '.join(LIKELIHOODS)}"
        )


def suggest_likelihood(x: np.ndarray) -> str:
    """``"bernoulli"`` when every value of ``x`` lies in [0, 1], else ``"gaussian"``."""
    if x.size and float(x.min()) >= 0.0 and float(x.max()) <= 1.0:
        return "bernoulli"
    return "gaussian"


def validate_for_likelihood(x: Any, likelihood: str, source: str) -> None:
    """Raise :class:`DataError` unless ``x`` suits the decoder ``likelihood``.

    Args:
        x: examples, any shape (an ``np.ndarray`` or anything ``np.asarray`` takes).
        likelihood: ``"bernoulli"`` (needs every value in [0, 1]) or ``"gaussian"``.
        source: what ``x`` came from, named in the message (a file or dataset name).

    NaN and +-inf are rejected for every likelihood.
    """
    check_likelihood_name(likelihood, source)
    x = np.asarray(x)
    check_finite(x, source)
    if likelihood == "bernoulli" and x.size:
        lo, hi = float(x.min()), float(x.max())
        if lo < 0.0 or hi > 1.0:
            raise DataError(
                f"{source}: the bernoulli likelihood expects values in [0, 1], found values "
                f"in [{lo:g}, {hi:g}]; rescale the data or use the gaussian likelihood"
            )
