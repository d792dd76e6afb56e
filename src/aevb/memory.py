"""Memory a model or a batch will take, estimated before anything is allocated.

Sizes that cannot fit (``--hidden 100000000``) are refused at once with one line naming
the setting, instead of an allocator's traceback. Parameters are counted exactly: the
model is built on PyTorch's ``meta`` device, which allocates nothing. Activations are
counted roughly, one float per layer output per example (a convolution's feature maps
are larger), so every estimate is a lower bound and refuses only what surely cannot fit.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import torch
from torch import nn

from aevb.models import VAE, VAEConfig

FLOAT_BYTES = 4
"""float32."""
OPTIMIZER_STATES = {"adagrad": 1, "adam": 2}
"""Tensors of the size of the parameters that each optimiser keeps."""
# settings that size a training run: the option of ``aevb train`` that sets each, its
# field (of VAEConfig, else of TrainConfig) and a value that makes its share smallest
_SHRINKABLE = (
    ("--hidden", "hidden", ()),
    ("--latent-dim", "latent_dim", 1),
    ("--prior-components", "prior_components", 1),
    ("--upper-latents", "upper_latents", ()),
    ("--upper-hidden", "upper_hidden", ()),
    ("--channels", "channels", (1,)),
    ("--batch-size", "batch_size", 1),
    ("--samples", "n_samples", 1),
)
_MODEL_FIELDS = {f.name for f in dataclasses.fields(VAEConfig)}


class MemoryLimitError(ValueError):
    """A requested size cannot fit in memory; the message is one line naming the setting."""


def available_bytes(device: str | torch.device = "cpu") -> int:
    """Memory free for new tensors on ``device``, in bytes.

    CPU: ``MemAvailable`` of ``/proc/meminfo`` (Linux), else the physical memory.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024  # the file says kB and means KiB
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def meta_model(config: VAEConfig) -> nn.Module:
    """The model of ``config`` with shapes but no storage (PyTorch's ``meta`` device)."""
    with torch.device("meta"):
        return VAE(config)


def activation_floats(model: nn.Module) -> int:
    """Floats one example leaves in memory in one pass: the input and every layer output."""
    outputs = sum(p.shape[0] for p in model.parameters() if p.dim() >= 2)
    return model.config.input_dim + model.config.condition_dim + outputs


def training_bytes(config: VAEConfig, train, n_train: int) -> int:
    """Bytes that training a model of ``config`` takes at least, for a ``TrainConfig``.

    Parameters, their gradients and the optimiser's state, plus the activations of a
    minibatch of ``min(batch_size, n_train)`` examples times ``n_samples`` z-samples, kept
    for the backward pass.
    """
    model = meta_model(config)
    params = sum(p.numel() for p in model.parameters())
    copies = 2 + OPTIMIZER_STATES.get(train.optimizer, 2)
    rows = min(train.batch_size, n_train) * train.n_samples
    return FLOAT_BYTES * (params * copies + 2 * rows * activation_floats(model))


def sampling_bytes(model: nn.Module, n: int) -> int:
    """Bytes that drawing ``n`` samples from ``model`` and picturing them take at least."""
    return FLOAT_BYTES * n * (activation_floats(model) + model.config.input_dim)


def check_fits(needed: int, subject: str, what: str, device: str | torch.device) -> None:
    """Raise :class:`MemoryLimitError` when ``needed`` bytes exceed what ``device`` has free.

    The message reads ``{subject}: {what} would need about 1,214.5 GiB, more than the
    117.3 GiB of memory available``.
    """
    available = available_bytes(device)
    if needed > available:
        raise _too_large(needed, available, subject, what)


def check_training_fits(config: VAEConfig, train, n_train: int, device: torch.device) -> None:
    """Refuse a training run that cannot fit, naming the option that makes it largest."""
    needed = training_bytes(config, train, n_train)
    available = available_bytes(device)
    if needed <= available:
        return
    setting = _largest_setting(config, train, n_train, needed)
    params = sum(p.numel() for p in meta_model(config).parameters())
    raise _too_large(
        needed,
        available,
        setting,
        f"training ({params:,} parameters, with gradients, optimiser state and a minibatch)",
    )


def _too_large(needed: int, available: int, subject: str, what: str) -> MemoryLimitError:
    return MemoryLimitError(
        f"{subject}: {what} would need about {_size(needed)}, more than the "
        f"{_size(available)} of memory available"
    )


def _largest_setting(config: VAEConfig, train, n_train: int, needed: int) -> str:
    """The setting whose smallest value shrinks the estimate (``needed`` bytes) most, as
    typed: ``--hidden=2000 2000``."""
    best, smallest = None, needed
    for option, field, small in _SHRINKABLE:
        try:
            if field in _MODEL_FIELDS:
                size = training_bytes(dataclasses.replace(config, **{field: small}), train, n_train)
            else:
                size = training_bytes(config, dataclasses.replace(train, **{field: small}), n_train)
        except ValueError:  # the small value does not make a valid config here
            continue
        if size < smallest:
            best, smallest = (option, field), size
    if best is None:  # the data's dimension, which no option sets
        return f"VAEConfig.input_dim={config.input_dim}"
    option, field = best
    return f"{option}={_words(getattr(config if field in _MODEL_FIELDS else train, field))}"


def _words(value: object) -> str:
    """A setting as typed on a command line: tuples as space-separated values."""
    return " ".join(map(str, value)) if isinstance(value, tuple) else str(value)


def _size(n: int) -> str:
    """``n`` bytes in GiB, or MiB below one GiB."""
    return f"{n / 2**30:,.1f} GiB" if n >= 2**30 else f"{n / 2**20:,.1f} MiB"
