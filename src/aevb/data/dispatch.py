"""One entry point for "a dataset": a registered name, or a path to the user's own data."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from aevb.data.dataset import Dataset
from aevb.data.errors import DataError
from aevb.data.registry import dataset_names, load_dataset
from aevb.data.user import load_user_data

USER_OPTIONS = {"image_size", "valid_fraction", "test_fraction", "seed", "name"}


def load(
    name_or_path: str | os.PathLike, data_dir: str | os.PathLike | None = None, **kw: Any
) -> Dataset:
    """Load a registered dataset by name, or user data from an existing path.

    Args:
        name_or_path: one of :func:`dataset_names`, or a ``.npy``/``.npz``/``.csv`` file or
            an image folder.
        data_dir: where registered datasets' files are (see :func:`load_dataset`).
        **kw: passed on: ``download`` to :func:`load_dataset`; ``image_size``,
            ``valid_fraction``, ``test_fraction``, ``seed``, ``name`` to
            :func:`load_user_data`.

    Raises:
        DataError: neither a registered name nor an existing path, an option that does
            not apply, or any error of the loader.
    """
    key = os.fspath(name_or_path)
    if key in dataset_names():
        extra = sorted(set(kw) - {"download"})
        if extra:
            raise DataError(
                f"{', '.join(extra)}: not an option of the registered dataset {key!r} "
                f"(only download is)"
            )
        return load_dataset(key, data_dir=data_dir, **kw)
    if Path(key).expanduser().exists():
        extra = sorted(set(kw) - USER_OPTIONS)
        if extra:
            raise DataError(
                f"{', '.join(extra)}: not an option of user data ({key}); expected any of "
                f"{', '.join(sorted(USER_OPTIONS))}"
            )
        return load_user_data(key, **kw)
    raise DataError(
        f"unknown dataset {key!r}: expected one of {dataset_names()} "
        f"or a path to .npy/.npz/.csv or an image folder"
    )
