"""Seeded random train / valid / test splits of the rows of an array."""

from __future__ import annotations

import numpy as np

from aevb.data.errors import DataError


def split_sizes(n: int, valid_fraction: float, test_fraction: float) -> tuple[int, int, int]:
    """``(n_train, n_valid, n_test)`` for ``n`` examples; valid and test sizes are rounded.

    Raises :class:`DataError` naming the option when a fraction is outside [0, 1) or no
    training example would be left.
    """
    for option, value in (("valid_fraction", valid_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= value < 1.0:
            raise DataError(f"{option}={value!r}: expected a number in [0, 1)")
    n_valid, n_test = round(n * valid_fraction), round(n * test_fraction)
    n_train = n - n_valid - n_test
    if n_train < 1:
        raise DataError(
            f"valid_fraction={valid_fraction!r}, test_fraction={test_fraction!r}: "
            f"expected at least one of the {n} examples left for training"
        )
    return n_train, n_valid, n_test


def split_indices(
    n: int, n_train: int, n_valid: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of train, valid and test: a ``np.random.default_rng(seed)`` permutation of
    ``range(n)`` cut into its first ``n_train``, the next ``n_valid``, and the rest.

    Returns three int64 arrays.
    """
    perm = np.random.default_rng(seed).permutation(n)
    return perm[:n_train], perm[n_train : n_train + n_valid], perm[n_train + n_valid :]
