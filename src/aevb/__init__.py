"""aevb: variational autoencoders from Kingma & Welling (2013) onwards.

Python API in brief::

    import aevb, torch
    data = aevb.load_dataset("binarized_mnist")
    model = aevb.VAE(aevb.VAEConfig(input_dim=data.dim, image_shape=data.image_shape))
    aevb.train(model, data, aevb.TrainConfig(epochs=10), "runs/mnist")
    model = aevb.load("runs/mnist")
    z = model.encode(torch.as_tensor(data.test[:5])).mean
    ll = aevb.evaluate.log_likelihood(model, torch.as_tensor(data.test), k=5000)

Names are imported on first use, so ``import aevb`` and the CLI start quickly.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "VAE": ("aevb.models", "VAE"),
    "VAEConfig": ("aevb.models", "VAEConfig"),
    "TrainConfig": ("aevb.training", "TrainConfig"),
    "train": ("aevb.run", "train"),
    "resume": ("aevb.run", "resume"),
    "train_or_resume": ("aevb.run", "train_or_resume"),
    "load": ("aevb.io", "load_model"),
    "save": ("aevb.io", "save_model"),
    "Dataset": ("aevb.data", "Dataset"),
    "load_dataset": ("aevb.data", "load_dataset"),
    "load_data": ("aevb.data", "load"),
    "VAEEstimator": ("aevb.apps.estimator", "VAEEstimator"),
    "VAEOutlierDetector": ("aevb.apps.estimator", "VAEOutlierDetector"),
}
_MODULES = ("evaluate", "objectives", "distributions", "viz", "data", "io", "training", "run")

__all__ = sorted([*_EXPORTS, *_MODULES])


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module, attr = _EXPORTS[name]
        value = getattr(importlib.import_module(module), attr)
    elif name in _MODULES:
        value = importlib.import_module(f"aevb.{name}")
    else:
        raise AttributeError(f"module 'aevb' has no attribute {name!r}")
    globals()[name] = value
    return value
