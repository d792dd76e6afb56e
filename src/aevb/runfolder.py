"""The run folder: where a training run keeps everything, named once.

A run folder holds ``checkpoint/`` (the latest full state, for resuming: a model folder
plus ``trainer.json`` and ``trainer.safetensors``), ``best/`` (the model with the best
validation bound, when a validation split exists), ``metrics.csv`` (one row per
evaluation), ``tensorboard/`` and ``.lock`` (:mod:`aevb.runlock`). Callers name these
through :class:`RunFolder`; trainers write them, and everyone else reads them here.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aevb import io as aevb_io
from aevb.config import with_defaults
from aevb.runlock import LOCK_FILE

TRAINER_FILE = "trainer.json"
"""The checkpoint's training metadata: train config, counters and history, data name."""
TRAINER_TENSORS = "trainer.safetensors"
"""The checkpoint's optimiser state, RNG state and the epoch's permutation."""
METRICS_FILE = "metrics.csv"

RENAMED_KEYS = {"samples": "examples", "best_samples": "best_examples"}
"""Keys of a trainer state and its history rows as older versions wrote them, and their
names now: the count of training examples seen was called "samples", a word now kept for
Monte Carlo draws. Read by :func:`current_keys`; never written."""


def current_keys(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` (a trainer state or a history row) with the keys older versions wrote
    renamed (:data:`RENAMED_KEYS`), the history rows it holds included."""
    out = {RENAMED_KEYS.get(k, k): v for k, v in record.items()}
    if isinstance(out.get("history"), list):
        out["history"] = [current_keys(row) for row in out["history"]]
    return out


def read_trainer_meta(checkpoint: Path) -> dict[str, Any]:
    """The ``trainer.json`` of checkpoint folder ``checkpoint``, its state and history in
    today's names (:func:`current_keys`), whichever version wrote it."""
    meta = aevb_io.read_json(checkpoint / TRAINER_FILE)
    if isinstance(meta.get("state"), dict):
        meta["state"] = current_keys(meta["state"])
    return meta


def train_size(meta: dict[str, Any]) -> int | None:
    """How many training examples a run with checkpoint metadata ``meta`` (its
    ``trainer.json``) was trained on, from the data identity it stored; None when it
    recorded none."""
    shape = meta.get("data_identity", {}).get("splits", {}).get("train", {}).get("shape")
    return int(shape[0]) if shape else None


@dataclass(frozen=True)
class RunFolder:
    """The paths of the run folder ``path`` and what its checkpoint records. ``checkpoint``
    is ``path/checkpoint`` unless given (a checkpoint folder moved out of its run)."""

    path: Path
    checkpoint: Path

    def __init__(
        self, path: str | os.PathLike, checkpoint: str | os.PathLike | None = None
    ) -> None:
        object.__setattr__(self, "path", Path(path))
        checkpoint = self.path / aevb_io.CHECKPOINT_DIR if checkpoint is None else checkpoint
        object.__setattr__(self, "checkpoint", Path(checkpoint))

    @classmethod
    def of_model(cls, model_path: str | os.PathLike) -> RunFolder | None:
        """The run a model comes from (``model_path`` is the run, its ``checkpoint/`` or
        its ``best/``), or None for a model folder saved outside a run."""
        path = Path(model_path)
        for run in (path, path.parent):
            if (run / aevb_io.CHECKPOINT_DIR / TRAINER_FILE).is_file():
                return cls(run)
        if (path / TRAINER_FILE).is_file():  # a checkpoint folder moved out of its run
            return cls(path.parent, checkpoint=path)
        return None

    @property
    def best(self) -> Path:
        return self.path / aevb_io.BEST_DIR

    @property
    def metrics(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def tensorboard(self) -> Path:
        return self.path / "tensorboard"

    @property
    def lock(self) -> Path:
        return self.path / LOCK_FILE

    def has_checkpoint(self) -> bool:
        """Whether a run was written here (its checkpoint, or one being swapped in)."""
        return aevb_io.readable_dir(self.checkpoint).is_dir()

    def meta(self) -> dict[str, Any]:
        """The checkpoint's ``trainer.json`` (read without moving anything; a missing or
        corrupt file is a one-line :class:`~aevb.io.CheckpointError`), in today's names
        (:func:`read_trainer_meta`)."""
        return read_trainer_meta(aevb_io.readable_dir(self.checkpoint))

    def history(self) -> list[dict[str, float]]:
        """The metrics history (one row per evaluation); empty when there is none."""
        return self.meta().get("state", {}).get("history") or []

    def data_name(self) -> str | None:
        """The name of the data the run was trained on (a registered name or a path)."""
        return self.meta().get("data")

    def train_size(self) -> int | None:
        """How many training examples the run was trained on (:func:`train_size`)."""
        return train_size(self.meta())

    def model_folder(self) -> Path:
        """The folder of the weights to load: ``best/``, else ``checkpoint/``
        (:func:`aevb.io.find_model_folder`)."""
        return aevb_io.find_model_folder(self.path)

    def model_config(self) -> dict[str, Any]:
        """The stored model config (a dict, as in ``config.json``) of the weights to load,
        the fields a config written by an older version lacks at their defaults."""
        meta = aevb_io.read_json(self.model_folder() / aevb_io.CONFIG_FILE)
        cls = aevb_io.MODEL_CLASSES.get(meta.get("model_class"))
        config = meta["config"]
        return config if cls is None else with_defaults(cls.config_class, config)

    def clear(self) -> None:
        """Remove what a run wrote here (checkpoint, best model, metrics, TensorBoard logs),
        so that nothing of it is mistaken for a new run's. Hold the lock first."""
        for folder in (self.checkpoint, self.best, self.tensorboard):
            for name in (folder, folder.with_name(f".{folder.name}.old")):
                if name.is_dir():
                    shutil.rmtree(name)
        self.metrics.unlink(missing_ok=True)
