"""The one exception type of :mod:`aevb.data`."""

from __future__ import annotations


class DataError(ValueError):
    """Bad input data: a missing, truncated or corrupt file, or an option out of range.

    The message is one line that names the file (or option) and says what was expected,
    e.g. ``"binarized_mnist_test.amat: expected 784 values of 0 or 1 per line, line 17
    has 783"``.
    """
