"""Data: named datasets (download, verify, cache), the user's own files.

Typical use::

    from aevb.data import load
    data = load("binarized_mnist")            # or load("my_images/") / load("x.npy")
    data.train.shape, data.image_shape        # (50000, 784), (28, 28)

Files of named datasets are looked for in ``data_dir``, else ``$AEVB_DATA_DIR``, else the
user cache dir (``$AEVB_CACHE_DIR``, ``$XDG_CACHE_HOME/aevb`` or ``~/.cache/aevb``), and are
downloaded from their public URLs when missing. Every bad input raises :class:`DataError`
with a one-line message naming the file or option and what was expected.
"""

from __future__ import annotations

from aevb.data.conditions import append_labels, conditioned, label_classes
from aevb.data.dataset import Dataset
from aevb.data.dispatch import load
from aevb.data.errors import DataError
from aevb.data.identity import data_identity, identity_differences
from aevb.data.locations import resolve_cache_dir, resolve_data_dir
from aevb.data.registry import dataset_names, load_dataset
from aevb.data.user import load_user_data, read_examples
from aevb.data.validation import validate_for_likelihood

__all__ = [
    "DataError",
    "append_labels",
    "conditioned",
    "label_classes",
    "Dataset",
    "data_identity",
    "dataset_names",
    "identity_differences",
    "load",
    "load_dataset",
    "load_user_data",
    "read_examples",
    "resolve_cache_dir",
    "resolve_data_dir",
    "validate_for_likelihood",
]
