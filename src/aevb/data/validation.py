"""Checks that an array of examples suits a model: finite values, range for the likelihood."""

from __future__ import annotations

from typing import Any

import numpy as np

from aevb.data.errors import DataError

LIKELIHOODS = ("bernoulli", "gaussian", "categorical")
"""Every likelihood a dataset may suggest; "categorical" is for rows of token ids
(:mod:`aevb.models.sequence`)."""
ROW_LIKELIHOODS = ("bernoulli", "gaussian")
"""The likelihoods of :class:`aevb.models.VAE` (real-valued rows)."""


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


def needs_unit_interval(likelihood: str, gaussian_mean: str | None) -> bool:
    """True when the decoder ``likelihood`` can score only values in [0, 1]: Bernoulli, or
    Gaussian with a ``"sigmoid"`` mean (which lies in (0, 1)); an ``"identity"`` mean (or
    None) accepts any finite value."""
    return likelihood == "bernoulli" or (likelihood == "gaussian" and gaussian_mean == "sigmoid")


def in_unit_interval(x: np.ndarray) -> bool:
    """True when every value of ``x`` lies in [0, 1] (an empty ``x`` counts as inside)."""
    return not x.size or (float(x.min()) >= 0.0 and float(x.max()) <= 1.0)


def suggest_likelihood(x: np.ndarray) -> str:
    """``"bernoulli"`` when every value of ``x`` lies in [0, 1], else ``"gaussian"``."""
    return "bernoulli" if x.size and in_unit_interval(x) else "gaussian"


def looks_like_pixels(x: np.ndarray) -> bool:
    """True when ``x`` holds whole numbers in 0..255 reaching above 1: 8-bit pixels that
    were not divided by 255 (e.g. saved as floats)."""
    if not x.size or float(x.min()) < 0.0 or not 1.0 < float(x.max()) <= 255.0:
        return False
    return bool(np.all(x == np.round(x)))


def resolve_gaussian_mean(requested: str, x: np.ndarray) -> str:
    """The Gaussian decoder's mean for ``requested`` ("auto", "sigmoid" or "identity").

    "auto" is "sigmoid" (the paper's squashed mean) when every value of ``x`` lies in
    [0, 1], else "identity", since a sigmoid mean cannot reach values outside (0, 1).
    Another name is returned as it is: ``VAEConfig`` refuses it, naming the field.
    """
    if requested == "auto":
        return "sigmoid" if in_unit_interval(x) else "identity"
    return requested


def validate_for_likelihood(
    x: Any, likelihood: str, source: str, gaussian_mean: str | None = None
) -> None:
    """Raise :class:`DataError` unless ``x`` suits the decoder ``likelihood``.

    Args:
        x: examples, any shape (an ``np.ndarray`` or anything ``np.asarray`` takes).
        likelihood: ``"bernoulli"`` (needs every value in [0, 1]) or ``"gaussian"``.
        source: what ``x`` came from, named in the message (a file or dataset name).
        gaussian_mean: the Gaussian decoder's mean; ``"sigmoid"`` needs every value in
            [0, 1] as Bernoulli does (:func:`needs_unit_interval`); ``"identity"`` or
            None accepts any finite value.

    NaN and +-inf are rejected for every likelihood.
    """
    check_likelihood_name(likelihood, source)
    x = np.asarray(x)
    check_finite(x, source)
    if likelihood == "categorical":  # token ids (aevb.models.sequence)
        if x.size and (float(x.min()) < 0 or not np.all(x == np.round(x))):
            raise DataError(
                f"{source}: the categorical likelihood expects token ids (whole numbers "
                f">= 0), found values in [{float(x.min()):g}, {float(x.max()):g}]"
            )
        return
    if not needs_unit_interval(likelihood, gaussian_mean) or in_unit_interval(x):
        return
    lo, hi = float(x.min()), float(x.max())
    if likelihood == "bernoulli":
        raise DataError(
            f"{source}: the bernoulli likelihood expects values in [0, 1], found values "
            f"in [{lo:g}, {hi:g}]; rescale the data or use the gaussian likelihood"
        )
    raise DataError(
        f"{source}: a gaussian likelihood with a sigmoid mean expects values in [0, 1], "
        f"found values in [{lo:g}, {hi:g}]; use --gaussian-mean identity (gaussian_mean="
        f"'identity') or rescale the data to [0, 1]"
    )
