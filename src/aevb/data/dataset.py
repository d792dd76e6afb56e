"""The in-memory dataset every loader returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from aevb.data.errors import DataError
from aevb.data.validation import check_likelihood_name

SPLITS = ("train", "valid", "test")


@dataclass
class Dataset:
    """Examples as float32 rows, split into train / valid / test.

    Attributes:
        name: the registered name, or the file/folder stem for user data.
        train: float32 ``(N, D)``, C-contiguous. Zero rows when the source has no
            training split (``mnist_test``); :meth:`split` then refuses ``"train"``.
        valid: float32 ``(Nv, D)`` or None.
        test: float32 ``(Nt, D)`` or None.
        image_shape: ``(H, W)`` greyscale or ``(H, W, C)`` colour, row-major within each
            row of ``train``; None for tabular data.
        likelihood: the suggested decoder: ``"bernoulli"`` (all values in [0, 1]) or
            ``"gaussian"``.
        labels: int64 ``(N_split,)`` class labels keyed by split name; may be empty.
        condition_dim: C > 0 when the last C columns of every row are a condition (a
            one-hot label or side vector) for a conditional model, not data to model;
            ``image_shape`` then describes the first D - C columns.
        scaling: how the stored values were derived from the source's, in words, e.g.
            ``"none"`` or ``"uint8 0..255 divided by 255"``; printed by ``aevb train`` and
            stored in the run folder.
        divisor: what the source's values were divided by (255 for 8-bit pixels, 1.0 when
            not rescaled); densities in the source's units (bits per dimension) use it.

    Arrays are converted to float32 C order on construction; shapes are checked.
    """

    name: str
    train: np.ndarray
    valid: np.ndarray | None = None
    test: np.ndarray | None = None
    image_shape: tuple[int, ...] | None = None
    likelihood: str = "bernoulli"
    labels: dict[str, np.ndarray] = field(default_factory=dict)
    condition_dim: int = 0
    scaling: str = "none"
    divisor: float = 1.0

    def __post_init__(self) -> None:
        check_likelihood_name(self.likelihood, f"dataset {self.name!r}")
        self.train = _as_rows(self.train, self.name, "train")
        dim = self.train.shape[1]
        for split in SPLITS[1:]:  # checked against train
            arr = getattr(self, split)
            if arr is not None:
                arr = _as_rows(arr, self.name, split)
                if arr.shape[1] != dim:
                    raise DataError(
                        f"dataset {self.name!r}: {split} has {arr.shape[1]} columns, "
                        f"expected {dim} as in train"
                    )
                setattr(self, split, arr)
        if self.image_shape is not None:
            self.image_shape = tuple(int(s) for s in self.image_shape)
            if int(np.prod(self.image_shape)) != dim - self.condition_dim:
                raise DataError(
                    f"dataset {self.name!r}: image_shape {self.image_shape} has "
                    f"{int(np.prod(self.image_shape))} pixels, expected "
                    f"{dim - self.condition_dim} (the data dimension)"
                )
        labels = {}
        for split, y in self.labels.items():
            x = getattr(self, split, None) if split in SPLITS else None
            y = np.asarray(y).astype(np.int64, copy=False).reshape(-1)
            if x is None or len(y) != len(x):
                raise DataError(
                    f"dataset {self.name!r}: labels[{split!r}] has {len(y)} entries, expected "
                    f"one per example of an existing split"
                )
            labels[split] = y
        self.labels = labels

    @property
    def dim(self) -> int:
        """The number of values per row (data plus any condition columns)."""
        return int(self.train.shape[1])

    @property
    def splits(self) -> list[str]:
        """Names of the splits present (``train`` only when it has rows)."""
        present = [s for s in SPLITS if getattr(self, s) is not None]
        return [s for s in present if s != "train" or len(self.train)]

    def describe(self) -> str:
        """One line for people: name, rows x values of the first split present, the range
        of the modelled values (condition columns left out) and the scaling, e.g.
        ``digits: 1497 x 64 train rows, values in [0, 1], integers 0..16 divided by 16``."""
        split = self.splits[0] if self.splits else "train"
        x = getattr(self, split)[:, : self.dim - self.condition_dim]
        values = f", values in [{x.min():.4g}, {x.max():.4g}]" if x.size else ""
        condition = f" (+ {self.condition_dim} condition columns)" if self.condition_dim else ""
        scaling = "not rescaled" if self.scaling == "none" else self.scaling
        return f"{self.name}: {len(x)} x {x.shape[1]} {split} rows{condition}{values}, {scaling}"

    def split(self, name: str) -> np.ndarray:
        """The float32 ``(N, D)`` array of split ``name`` (``"train"``, ``"valid"``, ``"test"``).

        Raises :class:`DataError` for an unknown name or a split this dataset lacks.
        """
        if name not in SPLITS:
            raise DataError(f"split {name!r}: expected one of {', '.join(SPLITS)}")
        if name not in self.splits:
            raise DataError(
                f"dataset {self.name!r} has no {name!r} split: expected one of "
                f"{', '.join(self.splits)}"
            )
        return getattr(self, name)


def _as_rows(x: np.ndarray, name: str, split: str) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise DataError(
            f"dataset {name!r}: {split} has shape {x.shape}, expected a 2-D (N, D) array"
        )
    return x
