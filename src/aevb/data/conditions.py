"""Condition columns for a conditional VAE: one-hot class labels appended to every row."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from aevb.data.dataset import SPLITS, Dataset
from aevb.data.errors import DataError


def label_classes(data: Dataset) -> int:
    """Number of classes C = the largest label + 1 over every split (DataError without labels)."""
    if "train" not in data.labels and len(data.train) or not data.labels:
        raise DataError(
            f"dataset {data.name!r} has no class labels for its training split: a "
            "conditional model needs labels (or condition columns of your own, via the API)"
        )
    return int(max(int(y.max()) for y in data.labels.values() if len(y))) + 1


def append_labels(data: Dataset, classes: int | None = None) -> Dataset:
    """A copy of ``data`` whose rows ``(N, D)`` become ``(N, D + C)``: x then one-hot(y).

    ``classes`` defaults to :func:`label_classes`. Splits without labels are dropped
    with a warning (they could not be conditioned); labels outside ``[0, classes)`` are a DataError.
    """
    c = label_classes(data) if classes is None else classes
    out: dict[str, np.ndarray | None] = {}
    for split in SPLITS:
        x = getattr(data, split)
        y = data.labels.get(split)
        if x is None or y is None:
            if x is not None and len(x):
                warnings.warn(
                    f"dataset {data.name!r}: the {split} split has no labels and is left out "
                    "of the conditional data (no validation or test bound for it)",
                    stacklevel=2,
                )
            out[split] = None if split != "train" else np.zeros((0, data.dim + c), np.float32)
            continue
        if len(y) and (y.min() < 0 or y.max() >= c):
            raise DataError(
                f"dataset {data.name!r}: {split} labels in [{y.min()}, {y.max()}], "
                f"expected [0, {c}) for a model conditioned on {c} classes"
            )
        out[split] = np.concatenate([x, np.eye(c, dtype=np.float32)[y]], axis=1)
    if data.condition_dim:
        raise DataError(f"dataset {data.name!r} already has {data.condition_dim} condition columns")
    return dataclasses.replace(data, **out, condition_dim=c)


def conditioned(data: Dataset, condition_dim: int) -> Dataset:
    """``data`` as a model conditioned on ``condition_dim`` classes reads it: with one-hot
    labels appended (:func:`append_labels`) unless it is unconditional or ``data`` already
    has its condition columns."""
    return append_labels(data, condition_dim) if condition_dim and not data.condition_dim else data
