"""Save and load models and training state: safetensors weights + JSON, never pickles.

A model folder holds ``config.json`` (model class, its config, format version, and for
readers whether the KL is computed in closed form or by Monte Carlo) and
``model.safetensors``, whose header also stores the model class and config (and their
sha256) so that a ``config.json`` edited afterwards is refused. A training checkpoint
folder is a model folder plus ``trainer.json`` (train config, counters, metrics history,
optimiser hyper-parameters, the training data's identity) and ``trainer.safetensors``
(optimiser state, RNG state, the epoch's permutation).
Every safetensors file also stores the sha256 of its tensors, so a byte changed inside a
tensor is refused on reading rather than loaded as another model. Folders are written
whole and swapped in atomically (:func:`aevb.atomic.atomic_dir`).
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from aevb.atomic import atomic_path, write_text
from aevb.config import from_dict, to_dict
from aevb.data.errors import one_line
from aevb.models import MODEL_CLASSES

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
CHECKPOINT_DIR = "checkpoint"
"""A run folder's latest full training state (:class:`aevb.runfolder.RunFolder`)."""
BEST_DIR = "best"
"""A run folder's model with the best validation bound."""
CONFIG_KEY = "aevb.config"
"""Safetensors metadata of the weights: the model class and config they were saved with."""
CONFIG_HASH_KEY = "aevb.config_sha256"
"""Safetensors metadata of the weights: sha256 of ``CONFIG_KEY``'s canonical JSON."""


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt or incompatible; the message is one line."""


def save_model(model: nn.Module, folder: str | os.PathLike) -> Path:
    """Write ``config.json`` and ``model.safetensors`` of ``model`` into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    identity = {"model_class": type(model).__name__, "config": to_dict(model.config)}
    meta = {"format_version": FORMAT_VERSION, **identity}
    # written for readers; loading ignores it
    meta["kl"] = "closed form" if model.config.analytic_kl else "monte carlo"
    write_text(folder / CONFIG_FILE, json.dumps(meta, indent=2) + "\n")
    canonical = _canonical(identity)
    metadata = {CONFIG_KEY: canonical, CONFIG_HASH_KEY: _sha256(canonical)}
    save_tensors(model.state_dict(), folder / WEIGHTS_FILE, metadata=metadata)
    return folder


def _canonical(obj: Any) -> str:
    """``obj`` as compact JSON with sorted keys: equal values give equal text."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_config_hash(folder: Path, meta: dict[str, Any], saved: dict[str, str]) -> None:
    """Refuse a ``config.json`` (read as ``meta``) changed after the weights beside it were
    saved with the safetensors metadata ``saved``.

    :func:`save_model` stores the model class and config (and their sha256) in the
    weights' safetensors metadata; a config that differs, e.g. another activation with
    the same layer sizes, would load silently and compute another model. Folders saved
    before the hash existed are not checked.
    """
    if CONFIG_HASH_KEY not in saved:
        return
    current = {"model_class": meta.get("model_class"), "config": meta.get("config")}
    if _sha256(_canonical(current)) == saved[CONFIG_HASH_KEY]:
        return
    try:
        then = json.loads(saved.get(CONFIG_KEY, ""))
    except json.JSONDecodeError:
        then = {"config": {}}  # unreadable: every field counts as changed
    then = then if isinstance(then, dict) else {"config": {}}
    old, new = then.get("config") or {}, current["config"] or {}
    changes = [
        f"{k} {old.get(k)!r} -> {new.get(k)!r}"
        for k in sorted(set(old) | set(new))
        if old.get(k) != new.get(k)
    ]
    if then.get("model_class") != current["model_class"]:
        changes.insert(0, f"model_class {then.get('model_class')!r} -> {current['model_class']!r}")
    if changes:  # equal values written differently (1 for 1.0) are no change
        raise CheckpointError(
            f"{folder / CONFIG_FILE} was changed after the weights were saved "
            f"({', '.join(changes[:3])}); expected the config saved with them"
        )


def load_model(path: str | os.PathLike, *, device: str | torch.device = "cpu") -> nn.Module:
    """Load a model from a model folder, a checkpoint folder or a training run folder.

    A run folder resolves to ``best/`` when present (best validation bound), else
    ``checkpoint/`` (the latest state).
    """
    folder = find_model_folder(path)
    meta = read_json(folder / CONFIG_FILE)
    name = meta.get("model_class")
    known = isinstance(name, str) and name in MODEL_CLASSES  # JSON may hold a list: unhashable
    if meta.get("format_version") != FORMAT_VERSION or not known:
        raise CheckpointError(
            f"{folder / CONFIG_FILE}: expected format_version {FORMAT_VERSION} and a model_class "
            f"in {sorted(MODEL_CLASSES)}, got {meta.get('format_version')!r} and {name!r}"
        )
    cls = MODEL_CLASSES[name]
    if not isinstance(meta.get("config"), dict):
        raise CheckpointError(f"{folder / CONFIG_FILE}: expected 'config' to be a JSON object")
    try:
        config = from_dict(cls.config_class, meta["config"])
        with torch.device("meta"):  # shapes only: a config of absurd sizes allocates nothing
            model = cls(config)
    except (KeyError, TypeError, ValueError, RuntimeError, OverflowError) as e:
        raise CheckpointError(
            f"{folder / CONFIG_FILE}: invalid model config: {one_line(e)}"
        ) from None
    state, saved = read_tensors(folder / WEIGHTS_FILE)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in expected if k in state and state[k].shape != expected[k].shape)
    if missing or unexpected or wrong:
        raise CheckpointError(
            f"{folder / WEIGHTS_FILE}: weights do not fit the config "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]}, wrong shape {wrong[:3]})"
        )
    check_config_hash(folder, meta, saved)
    # storage for the weights' shapes (as large as the file), then the weights: the models
    # keep no state outside the state dict (no non-persistent buffers), so all is filled
    model = model.to_empty(device=device)
    model.load_state_dict(state)
    return model


def find_model_folder(path: str | os.PathLike) -> Path:
    """The folder holding ``config.json`` for ``path`` (see :func:`load_model`).

    A run folder whose ``best/`` lacks a file falls back to ``checkpoint/`` with a warning
    naming what is missing.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such file or folder; expected an aevb model folder")
    best, checkpoint = readable_dir(path / BEST_DIR), readable_dir(path / CHECKPOINT_DIR)
    if (path / CONFIG_FILE).is_file():
        return path  # a model folder; loading names a missing weights file
    missing = [f for f in (CONFIG_FILE, WEIGHTS_FILE) if not (best / f).is_file()]
    if best.is_dir() and not missing:
        return best
    if (checkpoint / CONFIG_FILE).is_file():
        if best.is_dir():
            warnings.warn(
                f"{best} is incomplete (missing {', '.join(missing)}); using {checkpoint}",
                stacklevel=2,
            )
        return checkpoint
    if (best / CONFIG_FILE).is_file():
        return best  # loading names the missing weights file
    raise CheckpointError(
        f"{path}: expected an aevb model folder ({CONFIG_FILE} + {WEIGHTS_FILE}) "
        "or a training run folder with best/ or checkpoint/"
    )


def readable_dir(folder: Path) -> Path:
    """``folder``, or its aside copy ``.<name>.old`` when a writer is swapping a new
    ``folder`` in (or was killed doing so). Readers never move folders: a reader racing a
    live writer must not undo its swap; the next writer that holds the run restores it."""
    old = folder.with_name(f".{folder.name}.old")
    return old if not folder.exists() and old.is_dir() else folder


TENSORS_HASH_KEY = "aevb.tensors_sha256"
"""Safetensors metadata of every file aevb writes: :func:`tensors_sha256` of its tensors."""


def tensors_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 of the names, dtypes, shapes and bytes of ``tensors`` (CPU, contiguous), in
    name order: a byte changed inside a tensor changes it."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name]
        digest.update(f"{name}|{t.dtype}|{list(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def save_tensors(
    tensors: dict[str, torch.Tensor], path: Path, *, metadata: dict[str, str] | None = None
) -> None:
    """Write a safetensors file atomically, with optional string ``metadata`` in its header
    and the checksum of the tensors (checked by :func:`read_tensors`)."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    metadata = {**(metadata or {}), TENSORS_HASH_KEY: tensors_sha256(tensors)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def read_tensors_metadata(path: Path) -> dict[str, str]:
    """The string metadata in a safetensors file's header (empty when it has none)."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, RuntimeError) as e:
        raise CheckpointError(
            f"{path}: not a readable safetensors file (truncated or corrupt?): {one_line(e)}"
        ) from None


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Read a safetensors file; a missing, truncated or corrupt file is a one-line error."""
    return read_tensors(path)[0]


def read_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors of a safetensors file and the string metadata in its header, read in
    one open; a missing, truncated or corrupt file is a one-line error."""
    if not path.is_file():
        raise CheckpointError(f"{path}: missing; expected a safetensors file")
    try:
        with safe_open(str(path), framework="pt") as f:
            tensors, metadata = {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})
    except (SafetensorError, OSError, RuntimeError, ValueError, TypeError, MemoryError) as e:
        raise CheckpointError(
            f"{path}: not a readable safetensors file (truncated or corrupt?): {one_line(e)}"
        ) from None
    saved = metadata.get(TENSORS_HASH_KEY)  # files written before the checksum have none...
    if saved is None and any(k.startswith("aevb.") for k in metadata):
        # ...nor any other aevb metadata: a header with some but not this key is damaged
        raise CheckpointError(
            f"{path}: the header has aevb metadata but no checksum of the tensors (the file "
            "is corrupt); expected the header that was saved"
        )
    if saved is not None and saved != tensors_sha256(tensors):
        raise CheckpointError(
            f"{path}: the tensors do not match the checksum stored with them (the file is "
            "corrupt); expected the bytes that were saved"
        )
    return tensors, metadata


def read_json(path: Path) -> dict[str, Any]:
    """Read a JSON object; a missing or corrupt file is a one-line error."""
    if not path.is_file():
        raise CheckpointError(f"{path}: missing; expected a JSON file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read the file ({one_line(e)})") from None
    except (ValueError, RecursionError) as e:  # JSONDecodeError, UnicodeDecodeError, too deep
        raise CheckpointError(f"{path}: not valid JSON ({one_line(e)})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    return data
