"""Training: optimiser steps on in-memory minibatches, evaluation every N examples,
checkpoints that resume bit for bit, early stopping, non-finite guards, progress and logs.

The trainer sees the model only through the objective its config names
(:class:`aevb.objectives.Objective`: ``check``, ``objective(model, x, generator) -> (loss,
metrics)``, ``bound``), and knows nothing of the objective's kind.

A run writes its :class:`~aevb.runfolder.RunFolder`; :mod:`aevb.run` above this module
starts or continues one (:func:`aevb.run.train_or_resume`).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import functools
import hashlib
import io
import json
import math
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from aevb import distributed
from aevb import io as aevb_io
from aevb.atomic import atomic_dir, recover_dir, write_text
from aevb.config import check_choice, check_positive, to_dict
from aevb.data.dataset import SPLITS
from aevb.data.identity import data_identity, identity_differences
from aevb.data.validation import validate_for_likelihood
from aevb.distributions import Shard
from aevb.modelcard import render_card, write_card
from aevb.models.protocol import Model
from aevb.objectives import (
    ALGORITHMS,
    ESTIMATORS,
    OBJECTIVES,
    Objective,
    make_objective,
    posterior_use,
)
from aevb.progress import Progress
from aevb.runfolder import TRAINER_FILE, TRAINER_TENSORS, RunFolder, read_trainer_meta

if TYPE_CHECKING:
    from aevb.data import Dataset

OPTIMIZERS = ("adagrad", "adam")
NONFINITE = ("error", "skip")
PRECISIONS = ("fp32", "bf16")
LR_SCHEDULES = ("constant", "cosine", "linear")
SCHEDULE_FIELDS = ("lr_schedule", "lr_decay_start", "lr_final")
"""The TrainConfig fields of the learning-rate schedule (a resumed run may change them
for the steps still to come: :meth:`TrainConfig.resumed`)."""
RUNTIME_FIELDS = (
    "eval_every",
    "eval_per_decade",
    "checkpoint_every",
    "patience",
    "nonfinite",
    "compile",
    "device",
)
"""The TrainConfig fields a resumed run may change at will: when it is evaluated and
checkpointed, when it stops early, what a non-finite step does, whether the step is
compiled and the device it runs on. None of them changes the steps already taken
(:meth:`TrainConfig.resumed`); a new device type (CPU and CUDA) ends the bit-for-bit
continuation, as its random numbers and arithmetic differ (:meth:`Trainer.restore`)."""


CPU_RNG_STATE_BYTES = 5056
"""The size of a CPU generator's state (Mersenne Twister); a CUDA generator's is 16 bytes."""


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
"""The signals that stop training at the end of the current step, after a checkpoint
(:class:`TrainingInterrupted`); a second one interrupts at once."""


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped by a signal (SIGINT: Ctrl-C, SIGTERM: ``kill``, a scheduler's
    preemption) at the end of a step, with a checkpoint of that step: resuming goes on
    exactly as if the run had not stopped. A ``KeyboardInterrupt``, so that code catching
    ``Exception`` lets it through."""

    def __init__(self, signum: int, examples: int, checkpoint: Path) -> None:
        self.signum = signum
        self.examples = examples
        self.checkpoint = checkpoint
        super().__init__(
            f"training stopped by {signal.Signals(signum).name} after {examples:,} examples; "
            f"checkpoint {checkpoint}; resume to continue"
        )

    def __reduce__(self) -> tuple[type, tuple[int, int, Path]]:
        # pickled as its fields, so that it crosses from one process to another
        return type(self), (self.signum, self.examples, self.checkpoint)


class TrainingError(RuntimeError):
    """Training cannot go on (non-finite loss or gradient, incompatible resume)."""


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run; stored in the checkpoint's ``trainer.json``."""

    algorithm: str = "aevb"
    """"aevb" (SGVB on the ELBO) or "wake-sleep" (the paper's baseline, same model)."""
    optimizer: str = "adagrad"
    """The optimiser: "adagrad" (the paper) or "adam"."""
    lr: float = 0.02
    """The optimiser's step size, or learning rate (the paper picks Adagrad's from {0.01,
    0.02, 0.1})."""
    lr_schedule: str = "constant"
    """"constant", or the learning rate after --lr-decay-start decays to lr times
    --lr-final by the end of the budget: along a half cosine ("cosine") or a line
    ("linear").

    The rate is a function of the training examples seen, so a resumed run takes the
    same steps. Extending the budget of a decaying run stretches what is left of the
    decay (the rate jumps up to where the new schedule has it; resuming warns)."""
    lr_decay_start: int = 0
    """Training examples at the constant rate before the decay starts."""
    lr_final: float = 0.0
    """The learning rate at the end of the budget, as a fraction of lr."""
    weight_decay: float = 0.0
    """L2 penalty on the per-example loss; 1 / N_train is the paper's N(0, I) prior on the
    parameters (e.g. 2e-5 for 50,000 images)."""
    batch_size: int = 100
    """Minibatch size M (the paper: 100)."""
    estimator: str = "auto"
    """SGVB estimator: "A" (generic: Monte Carlo KL), "B" (analytic KL, the paper's
    choice) or "auto" = B when the model's KL has a closed form, else A.

    The trainer replaces "auto" by its choice, so a run's trainer.json says which was
    used."""
    n_samples: int = 1
    """Monte Carlo samples L of z per example (the paper: 1); the k of the IWAE bound."""
    objective: str = "elbo"
    """The bound optimised: "elbo" (with beta, free bits and KL warm-up), or "iwae", the
    bound of Burda et al. (2015) with the L samples as its k.

    The bound evaluated on each split (and so the checkpoint kept in ``best/``) is the
    one optimised: the ELBO, or the IWAE bound with k = ``n_samples``."""
    beta: float = 1.0
    """Weight of the KL term (beta-VAE; 1 = the ELBO)."""
    free_bits: float = 0.0
    """Free bits lambda in nats per latent dimension or group (Kingma et al. 2016); 0 =
    off."""
    free_bits_group: int = 1
    """Free bits: consecutive latent dimensions per group (1 = per dimension)."""
    kl_warmup_examples: int = 0
    """KL warm-up: the KL weight rises linearly from 0 to 1 over this many training
    examples (0 = off)."""
    epochs: float = 100.0
    """Budget in passes over the training split (ignored when max_examples is set)."""
    max_examples: int | None = None
    """Budget in training examples seen, overriding epochs (the x-axis of the paper's
    Figure 2, its "training samples evaluated")."""
    eval_every: int | None = None
    """Training examples between evaluations of the bound; None = once per epoch."""
    eval_per_decade: int | None = None
    """Log-spaced evaluations instead: this many per factor of 10 in training examples,
    starting at eval_every (for log-axis curves such as the paper's Figure 2)."""
    eval_max_examples: int | None = None
    """Evaluate on at most this many examples per split (None = the whole split)."""
    checkpoint_every: int | None = None
    """Also save the checkpoint every this many training examples between evaluations
    (None = at evaluations only), so that a killed run loses less; each costs one write
    of the weights and optimiser state."""
    patience: int | None = None
    """Early stopping: stop after this many evaluations without a better validation bound."""
    clip_grad_norm: float | None = None
    """Clip the global gradient norm to this value (None = no clipping)."""
    nonfinite: str = "error"
    """On a non-finite loss or gradient: "error" stops with a message naming the step and
    the term; "skip" drops that update and counts it."""
    seed: int = 0
    """Seed of the minibatch order and of the noise eps."""
    device: str = "cpu"
    """Where to train: "cpu", "cuda", "cuda:N" or "auto" (CUDA when available)."""
    compile: bool = False
    """Compile the training step with torch.compile: meant for GPUs, where kernel-launch
    overhead dominates; slower on small CPUs.

    CPU timings: docs/performance.md."""
    precision: str = "fp32"
    """"fp32", or "bf16": the forward pass under bfloat16 autocast (matrix products in
    bf16, reductions and the optimiser in fp32); meant for GPUs and for CPUs with bf16
    units (Intel AMX)."""
    bucket_pool: int = 0
    """Minibatches of similar lengths, for models whose examples have lengths (the
    sequence VAE, whose minibatch is as long as its longest row): each epoch's shuffled
    order is cut into pools of this many minibatches, each pool sorted by length and cut
    into minibatches, and the minibatches shuffled; 0 = plain shuffling.

    Every example is still seen once per epoch; docs/molecules.md has the speed-up."""

    RENAMED: ClassVar[dict[str, str]] = {
        "max_samples": "max_examples",
        "kl_warmup_samples": "kl_warmup_examples",
    }
    """Fields older versions stored under another name (read by :func:`aevb.config.from_dict`)."""

    def __post_init__(self) -> None:
        name = "TrainConfig"
        check_choice(name, "algorithm", self.algorithm, ALGORITHMS)
        check_choice(name, "optimizer", self.optimizer, OPTIMIZERS)
        check_positive(name, "lr", self.lr)
        check_choice(name, "lr_schedule", self.lr_schedule, LR_SCHEDULES)
        if self.lr_decay_start < 0:
            raise ValueError(f"TrainConfig.lr_decay_start={self.lr_decay_start}: expected >= 0")
        if not 0.0 <= self.lr_final <= 1.0:
            raise ValueError(f"TrainConfig.lr_final={self.lr_final}: expected in [0, 1]")
        if self.lr_schedule == "constant" and (self.lr_decay_start or self.lr_final):
            key = "lr_decay_start" if self.lr_decay_start else "lr_final"
            raise ValueError(
                f"TrainConfig.{key}={getattr(self, key)}: the rate is constant; expected "
                f"lr_schedule {' or '.join(repr(k) for k in LR_SCHEDULES[1:])} with it"
            )
        for key in ("weight_decay", "free_bits", "kl_warmup_examples"):
            if getattr(self, key) < 0:
                raise ValueError(f"TrainConfig.{key}={getattr(self, key)}: expected >= 0")
        check_positive(name, "batch_size", self.batch_size)
        check_choice(name, "estimator", self.estimator, ("auto", *ESTIMATORS))
        check_positive(name, "n_samples", self.n_samples)
        check_choice(name, "objective", self.objective, OBJECTIVES)
        check_positive(name, "beta", self.beta)
        check_positive(name, "free_bits_group", self.free_bits_group)
        check_positive(name, "epochs", self.epochs)
        check_positive(name, "max_examples", self.max_examples, allow_none=True)
        check_positive(name, "eval_every", self.eval_every, allow_none=True)
        check_positive(name, "checkpoint_every", self.checkpoint_every, allow_none=True)
        check_positive(name, "eval_max_examples", self.eval_max_examples, allow_none=True)
        check_positive(name, "eval_per_decade", self.eval_per_decade, allow_none=True)
        check_positive(name, "patience", self.patience, allow_none=True)
        check_positive(name, "clip_grad_norm", self.clip_grad_norm, allow_none=True)
        check_choice(name, "nonfinite", self.nonfinite, NONFINITE)
        check_choice(name, "precision", self.precision, PRECISIONS)
        if self.bucket_pool < 0:
            raise ValueError(f"TrainConfig.bucket_pool={self.bucket_pool}: expected >= 0")
        make_objective(self)  # the objective refuses settings it cannot honour

    def budget_examples(self, n_train: int) -> int:
        """The budget in training examples seen: ``max_examples``, else ``epochs`` passes
        over ``n_train`` training examples."""
        if self.max_examples is not None:
            return self.max_examples
        return int(round(self.epochs * n_train))

    def with_budget(
        self, epochs: float | None = None, max_examples: int | None = None
    ) -> TrainConfig:
        """This config with the budget given to extend a run (as :func:`resume` takes it):
        ``epochs`` replaces the budget in passes (and drops ``max_examples``),
        ``max_examples`` the one in examples; None keeps the config's."""
        changes: dict[str, Any] = {}
        if epochs is not None:
            changes.update(epochs=epochs, max_examples=None)
        if max_examples is not None:
            changes["max_examples"] = max_examples
        return dataclasses.replace(self, **changes)

    def decay_start(self) -> float:
        """Training examples before the rate leaves lr (infinite for a constant rate)."""
        return math.inf if self.lr_schedule == "constant" else self.lr_decay_start

    def resumed(self, examples: int, **changes: Any) -> TrainConfig:
        """This config with ``changes`` (None keeps the config's value), for a run resumed
        after ``examples`` training examples: :data:`RUNTIME_FIELDS` change freely,
        :data:`SCHEDULE_FIELDS` only when the new schedule would have given every step
        already taken the rate it had; other fields are the run's for good."""
        given = {k: v for k, v in changes.items() if v is not None}
        unknown = set(given) - set(SCHEDULE_FIELDS) - set(RUNTIME_FIELDS)
        if unknown:
            raise ValueError(
                f"{sorted(unknown)}: a resumed run keeps these; expected changes of "
                f"{', '.join(SCHEDULE_FIELDS + RUNTIME_FIELDS)}"
            )
        implied = {}
        if given.get("lr_schedule") == "constant":  # no decay: nothing left to start or end
            implied = {"lr_decay_start": 0, "lr_final": 0.0}
        new = dataclasses.replace(self, **{**implied, **given})
        moved = [k for k in SCHEDULE_FIELDS if getattr(new, k) != getattr(self, k) and k in given]
        if not moved or examples <= min(self.decay_start(), new.decay_start()):
            return new
        flags = "/".join("--" + k.replace("_", "-") for k in moved)
        if examples > self.decay_start():
            raise ValueError(
                f"{flags}: the run's rate has decayed since {self.lr_decay_start:,} examples "
                f"({self.lr_schedule}), and a new schedule would change steps already taken; "
                "expected the run's schedule (a larger budget stretches its decay)"
            )
        raise ValueError(
            f"{flags}: the run has trained {examples:,} examples at a constant rate, and "
            f"a decay from {new.lr_decay_start:,} would change steps already taken; "
            f"expected --lr-decay-start >= {examples}"
        )


@dataclass
class TrainState:
    """What changes during training; with the weights and optimiser, all a resume needs.
    Runs written before the count was called ``examples`` stored it as ``samples`` (and
    ``best_samples``): :func:`aevb.runfolder.read_trainer_meta` renames them."""

    examples: int = 0
    """Training examples seen (a minibatch of M adds M, whatever the number L of draws)."""
    step: int = 0
    position: int = 0
    next_eval: int = 0
    train_seconds: float = 0.0
    best_valid: float = -math.inf
    best_examples: int | None = None
    """Training examples seen when ``best/`` was saved (None: not yet, or a run from before this
    field)."""
    bound: str = "elbo"
    """What the evaluated bounds are: "elbo", or "iwae-k<k>" for an IWAE-trained run."""
    evals_since_best: int = 0
    skipped: int = 0
    stopped_early: bool = False
    history: list[dict[str, float]] = field(default_factory=list)


def plausible_bound(bound: float, likelihood: str | None) -> bool:
    """False for a bound no model can reach: above 0 nats under a Bernoulli or categorical
    likelihood, where log p(x) <= 0. Such a bound means the Monte Carlo estimate broke down
    numerically (e.g. a variance collapsed to ~0)."""
    return likelihood not in ("bernoulli", "categorical") or bound <= 0.0


@dataclass(frozen=True)
class TrainResult:
    """Summary of a finished run."""

    out_dir: Path
    history: list[dict[str, float]]
    examples: int
    images_per_second: float
    """Training speed: training examples per second of training time (optimiser steps,
    excluding evaluation and checkpoints), over the whole run; the speed the progress
    bar and the log lines show."""
    stopped_early: bool
    skipped: int


def resolve_device(name: str, *, local_rank: int = 0) -> torch.device:
    """``"auto"`` picks CUDA when available; anything else goes to ``torch.device``.

    Under torchrun, a plain ``"cuda"`` means this process's GPU, ``cuda:<LOCAL_RANK>``.
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and local_rank:
        name = f"cuda:{local_rank}"
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={name!r}: CUDA is not available on this machine; use 'cpu'")
    return device


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """Adagrad or Adam over all parameters, fused kernels where the device has them."""
    params = list(model.parameters())
    cls = torch.optim.Adagrad if config.optimizer == "adagrad" else torch.optim.Adam
    try:
        return cls(params, lr=config.lr, weight_decay=config.weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return cls(params, lr=config.lr, weight_decay=config.weight_decay)


def denormals_flushed() -> bool:
    """True when this thread flushes subnormal floats to zero (``torch.set_flush_denormal``):
    half the smallest normal float32 then comes out as 0."""
    tiny = torch.tensor([2.0**-126], dtype=torch.float32)
    return (tiny * 0.5).item() == 0.0


@contextlib.contextmanager
def flushing_denormals() -> Iterator[None]:
    """Flush subnormal floats to zero inside the block (optimiser state decaying to
    subnormals makes CPU steps many times slower), then put the calling thread's mode
    back: leaving it on would also change the caller's NumPy and Python arithmetic.

    The flag is per thread: PyTorch's intra-op worker threads keep the mode they started
    with (those first started inside the block flush from then on)."""
    was_on = denormals_flushed()
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if not was_on:
            torch.set_flush_denormal(False)


def bucketed_order(
    perm: Tensor,
    lengths: Tensor,
    batch_size: int,
    pool: int,
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    """The permutation ``perm`` ``(N,)`` reordered into minibatches of rows of similar
    ``lengths`` ``(N_rows,)``: cut into pools of ``pool`` minibatches (``pool *
    batch_size`` rows), each pool sorted by length (stably) and cut into minibatches of
    ``batch_size``; the full minibatches are shuffled with ``generator``, a last partial
    one stays last. The result ``(N,)`` holds the same rows as ``perm``."""
    n = perm.shape[0]
    pool_of = torch.arange(n, device=perm.device) // (pool * batch_size)
    key = pool_of * (int(lengths.max()) + 1) + lengths[perm]  # pool first, then length
    order = perm[torch.sort(key, stable=True).indices]
    full = n // batch_size
    shuffle = torch.randperm(full, generator=generator, device=perm.device)
    batches = order[: full * batch_size].view(full, batch_size)[shuffle]
    return torch.cat([batches.reshape(-1), order[full * batch_size :]])


def lr_factor(config: TrainConfig, examples: int, total: int) -> float:
    """The learning rate after ``examples`` of ``total`` training examples, as a fraction
    of ``config.lr``: 1 until ``config.lr_decay_start``, then down to ``config.lr_final``
    at ``total`` along ``config.lr_schedule``."""
    start = config.lr_decay_start
    if config.lr_schedule == "constant" or examples <= start:
        return 1.0
    t = min(1.0, (examples - start) / max(total - start, 1))
    shape = 0.5 * (1.0 + math.cos(math.pi * t)) if config.lr_schedule == "cosine" else 1.0 - t
    return config.lr_final + (1.0 - config.lr_final) * shape


def kl_weight(examples: int, warmup_examples: int) -> float:
    """The KL warm-up factor after ``examples`` training examples: linear from 0 to 1."""
    return 1.0 if warmup_examples <= 0 else min(1.0, examples / warmup_examples)


class ObjectiveStep(nn.Module):
    """The model and its objective as one module, so that ``DistributedDataParallel``
    (which synchronises gradients through ``forward``) can wrap them."""

    def __init__(self, model: nn.Module, objective: Objective) -> None:
        super().__init__()
        self.model = model
        self.objective = objective

    def forward(
        self,
        x: Tensor,
        generator: torch.Generator,
        shard: Shard | None = None,
        kl_weight: float = 1.0,
    ):
        return self.objective(self.model, x, generator, shard, kl_weight)


class Trainer:
    """Owns one run: model, optimiser, RNG, counters and the run folder."""

    def __init__(
        self,
        model: Model,
        data: Dataset,
        config: TrainConfig,
        out_dir: str | Path,
        *,
        quiet: bool = False,
        log_evaluations: bool = True,
    ) -> None:
        mc = model.config
        # the objective checks the model once; the run records what it resolved ("auto")
        config = dataclasses.replace(config, **make_objective(config).check(model))
        self.objective = make_objective(config)
        self.config = config
        self.device = resolve_device(config.device, local_rank=distributed.info().local_rank)
        self.process = distributed.setup(self.device)
        self.model = model.to(self.device)
        self.data = data
        width = model.config.input_dim + model.config.condition_dim
        if data.dim != width:
            raise ValueError(
                f"dataset {data.name!r} has dimension {data.dim}, the model expects "
                f"{width} (input_dim + condition_dim)"
            )
        if data.train is None or len(data.train) == 0:
            raise ValueError(f"dataset {data.name!r} has no training examples; expected N > 0")
        # NaN or values the likelihood cannot reach (Bernoulli, sigmoid mean: [0, 1]) fail
        # here, before any training, rather than as a nonsense bound
        for split in data.splits:
            validate_for_likelihood(
                data.split(split)[:, : mc.input_dim],
                mc.likelihood,
                f"{data.name} ({split} split)",
                mc.gaussian_mean,
            )
        self.x_train = torch.as_tensor(data.train, dtype=torch.float32).to(self.device)
        self.eval_sets: dict[str, Tensor] = {}
        for split in SPLITS:
            arr = getattr(data, split)
            if arr is not None and len(arr):
                arr = arr[: config.eval_max_examples] if config.eval_max_examples else arr
                x = torch.as_tensor(arr, dtype=torch.float32)
                # pinned host memory lets evaluation batches go to the GPU asynchronously
                self.eval_sets[split] = x.pin_memory() if self.device.type == "cuda" else x
        self.out_dir = Path(out_dir)
        self.run_folder = RunFolder(out_dir)
        self.quiet = quiet or not self.process.is_main
        self.log_evaluations = log_evaluations
        self.bf16 = config.precision == "bf16"
        self.step_module: nn.Module = ObjectiveStep(self.model, self.objective)
        if self.process.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            self.step_module = DistributedDataParallel(self.step_module)
        if config.compile:
            self.step_module = torch.compile(self.step_module)
        self.optimizer = make_optimizer(self.model, config)
        self.generator = torch.Generator(device=self.device).manual_seed(config.seed)
        self.perm: Tensor | None = None
        self.lengths: Tensor | None = None  # (N_train,) for bucket_pool
        if config.bucket_pool:
            lengths_of = getattr(model, "example_lengths", None)
            if lengths_of is None:
                raise ValueError(
                    f"bucket_pool={config.bucket_pool}: {type(model).__name__} examples have "
                    "no lengths to group by; expected 0 (plain shuffling) with this model"
                )
            self.lengths = lengths_of(self.x_train).to(self.device)
        self.state = TrainState(next_eval=self.eval_interval, bound=self.objective.bound_name)
        self._tensorboard = None
        self._progress: Progress | None = None
        self._tick: float | None = None  # start of the training time being counted
        self._stop_signal: int | None = None  # a stop asked for by a signal (fit)

    # ---- budget -------------------------------------------------------------------
    @property
    def n_train(self) -> int:
        return self.x_train.shape[0]

    @property
    def total_examples(self) -> int:
        return self.config.budget_examples(self.n_train)

    @property
    def eval_interval(self) -> int:
        """Examples between evaluations: the config's, else one epoch but at most ~100 in all."""
        return self.config.eval_every or max(self.n_train, self.total_examples // 100)

    def next_evaluation(self, examples: int) -> int:
        """The first evaluation point after ``examples`` training examples."""
        every = self.eval_interval
        if self.config.eval_per_decade is None or examples < every:
            return (examples // every + 1) * every
        k = math.floor(self.config.eval_per_decade * math.log10(examples / every) + 1e-9) + 1
        return max(examples + 1, round(every * 10 ** (k / self.config.eval_per_decade)))

    def _next_checkpoint(self) -> float:
        """Training examples at the next checkpoint between evaluations: the next multiple
        of ``checkpoint_every`` (inf when off)."""
        every = self.config.checkpoint_every
        return math.inf if every is None else (self.state.examples // every + 1) * every

    # ---- the loop -----------------------------------------------------------------
    def fit(self) -> TrainResult:
        """Train until the budget is spent or early stopping fires; return a summary."""
        st = self.state
        # training examples out of the budget: a bar on a terminal, a line every 30 s otherwise
        bar = self._progress = Progress(
            self.total_examples, initial=st.examples, desc="train", quiet=self.quiet
        )
        try:
            with self._stopping_on_signals():
                while st.examples < self.total_examples and not st.stopped_early:
                    end = min(st.next_eval, self._next_checkpoint(), self.total_examples)
                    # the budget is met exactly (a minibatch that would pass it is cut);
                    # evaluation and checkpoint points fall after the first minibatch that
                    # reaches them (the same minibatches whichever points there are)
                    self.run(end - st.examples, bar=bar, limit=self.total_examples - st.examples)
                    if st.examples >= min(st.next_eval, self.total_examples):
                        self._evaluate_and_checkpoint()
                    elif self.process.is_main:
                        self.save_checkpoint()  # a checkpoint point, or a stop (a signal)
                    finished = st.examples >= self.total_examples or st.stopped_early
                    if self._stop_signal is not None and not finished:
                        checkpoint = self.run_folder.checkpoint  # one process: the main one
                        raise TrainingInterrupted(self._stop_signal, st.examples, checkpoint)
        finally:
            self._stop_signal = None
            bar.close()
            self._progress = None
            if self._tensorboard:
                self._tensorboard.close()
                self._tensorboard = None
        if not st.history or st.history[-1]["examples"] != st.examples:
            self._evaluate_and_checkpoint()
        return TrainResult(
            out_dir=self.out_dir,
            history=list(st.history),
            examples=st.examples,
            images_per_second=self.training_speed(),
            stopped_early=st.stopped_early,
            skipped=st.skipped,
        )

    def run(
        self, n_examples: int, *, bar: Progress | None = None, limit: int | None = None
    ) -> None:
        """Optimiser steps until ``n_examples`` more training examples are seen; no evaluation.

        Whole minibatches, so the count may pass ``n_examples`` by less than one minibatch,
        but never ``limit`` (e.g. what is left of the budget): a minibatch that would pass
        it is cut. The hot loop: a minibatch is an ``index_select`` of the in-memory
        training tensor.
        """
        self.model.train()
        st = self.state
        stop = st.examples + n_examples
        cap = None if limit is None else st.examples + limit
        self._tick = time.perf_counter()
        with flushing_denormals():
            try:
                while (
                    st.examples < stop
                    and (cap is None or st.examples < cap)
                    and self._stop_signal is None
                ):
                    self._step(self._next_batch(None if cap is None else cap - st.examples), bar)
            finally:
                st.train_seconds += time.perf_counter() - self._tick
                self._tick = None

    @contextlib.contextmanager
    def _stopping_on_signals(self) -> Iterator[None]:
        """While :meth:`fit` trains: SIGINT or SIGTERM asks for a stop at the end of the
        current step (or evaluation, or checkpoint), and :meth:`fit` then writes a
        checkpoint and raises :class:`TrainingInterrupted` (unless the run has just
        finished). A second SIGINT raises ``KeyboardInterrupt`` at once; a second SIGTERM
        ends the process as SIGTERM does. Only in a single process's main thread (Python
        sets handlers there alone; under torchrun the ranks would stop at different steps,
        and a signal ends the run, which resumes from its last checkpoint), and never for
        a signal the process ignores (SIGINT, for a job a script starts with ``&``)."""
        if self.process.world > 1 or threading.current_thread() is not threading.main_thread():
            yield
            return

        def ask_to_stop(signum: int, frame: object) -> None:
            if self._stop_signal is None:
                self._stop_signal = signum  # the loops look at it between steps
                return
            if signum == signal.SIGTERM:
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)
            raise KeyboardInterrupt

        previous = {
            s: signal.signal(s, ask_to_stop)
            for s in STOP_SIGNALS
            if signal.getsignal(s) is not signal.SIG_IGN
        }
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler if handler is not None else signal.SIG_DFL)

    def training_speed(self) -> float:
        """Training examples per second of training time (optimiser steps, excluding
        evaluation and checkpoints), over the whole run including resumed sessions."""
        seconds = self.state.train_seconds
        if self._tick is not None:  # inside run(): count the time of this stretch too
            seconds += time.perf_counter() - self._tick
        return self.state.examples / max(seconds, 1e-9)

    def _next_batch(self, limit: int | None = None) -> Tensor:
        """The next minibatch ``(M, D)`` of the epoch's permutation, at most ``limit`` rows."""
        st = self.state
        if self.perm is None or st.position >= self.n_train:
            self.perm = torch.randperm(self.n_train, generator=self.generator, device=self.device)
            if self.lengths is not None:
                self.perm = bucketed_order(
                    self.perm,
                    self.lengths,
                    self.config.batch_size,
                    self.config.bucket_pool,
                    generator=self.generator,
                )
            st.position = 0
        size = self.config.batch_size
        if self.lengths is not None and st.position % size:
            size -= st.position % size  # after a cut minibatch: back in step with the buckets
        size = size if limit is None else min(size, limit)
        idx = self.perm[st.position : st.position + size]
        st.position += idx.shape[0]
        return self.x_train.index_select(0, idx)

    def _step(self, x: Tensor, bar) -> None:
        st = self.state
        shard = None
        if self.process.world > 1:  # this process's rows of the global minibatch
            start, stop = distributed.shard_bounds(x.shape[0], self.process)
            shard = Shard(start, stop, x.shape[0])
            x = x[start:stop]
        with torch.autocast(self.device.type, torch.bfloat16, enabled=self.bf16):
            weight = kl_weight(st.examples, self.config.kl_warmup_examples)
            loss, metrics = self.step_module(x, self.generator, shard, weight)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        # The loss is checked at every step (one scalar). The gradient norm costs a pass
        # over all gradients, so it is computed only when it is needed before the update:
        # to clip, or to skip a bad update. Otherwise a non-finite gradient with a finite
        # loss shows up as a non-finite loss one step later, and training stops there.
        finite = bool(torch.isfinite(loss))
        norm = None
        if self.config.clip_grad_norm is not None or self.config.nonfinite == "skip":
            grads = [p.grad for p in self.model.parameters() if p.grad is not None]
            norm = torch.nn.utils.get_total_norm(grads)
            finite = finite and bool(torch.isfinite(norm))
        if self.process.world > 1:
            finite = distributed.all_true(finite, self.device)
        if not finite:
            self._handle_nonfinite(loss, metrics)
        else:
            if self.config.clip_grad_norm is not None:
                torch.nn.utils.clip_grads_with_norm_(
                    self.model.parameters(), self.config.clip_grad_norm, norm
                )
            self._set_lr()
            self.optimizer.step()
        st.step += 1
        n = shard.total if shard is not None else x.shape[0]
        st.examples += n
        if bar is None:
            return
        # the status costs a device sync: every 50 steps, and before a plain progress line
        if not self.quiet and (st.step % 50 == 0 or bar.due()):
            bound = metrics["bound"].mean().item()
            bar.set_status(f"bound {bound:.2f}, {self.training_speed():,.0f} training examples/s")
        bar.update(n)

    def learning_rate(self) -> float:
        """The learning rate of the next step (``config.lr`` scaled by the schedule)."""
        return self.config.lr * lr_factor(self.config, self.state.examples, self.total_examples)

    def _set_lr(self) -> None:
        lr = self.learning_rate()
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def _handle_nonfinite(self, loss: Tensor, metrics: dict[str, Tensor]) -> None:
        st = self.state
        bad_terms = [k for k, v in metrics.items() if not torch.isfinite(v).all()]
        bad_grads = [
            n
            for n, p in self.model.named_parameters()
            if p.grad is not None and not torch.isfinite(p.grad).all()
        ]
        where = f"step {st.step + 1} (after {st.examples} training examples)"
        if bad_terms:
            what = (
                f"non-finite loss ({', '.join(bad_terms)} = "
                + ", ".join(f"{metrics[k].mean().item()}" for k in bad_terms)
                + ")"
            )
        elif not torch.isfinite(loss):
            what = f"non-finite loss ({loss.item()})"
        elif bad_grads:
            what = f"non-finite gradient in {', '.join(bad_grads[:3])}"
        else:
            what = "gradient norm overflowed to inf (every gradient finite but huge)"
        if self.config.nonfinite == "error":
            raise TrainingError(
                f"{what} at {where}; lower --lr, set --clip-grad-norm, or pass "
                "--nonfinite skip to drop such updates"
            )
        self.optimizer.zero_grad(set_to_none=True)
        st.skipped += 1

    # ---- evaluation, checkpoints, early stopping ----------------------------------
    def _evaluate_and_checkpoint(self) -> None:
        st = self.state
        row = {"examples": float(st.examples), "epoch": st.examples / self.n_train}
        row.update(self.evaluate())
        row["train_seconds"] = st.train_seconds
        row["skipped"] = float(st.skipped)
        row["lr"] = self.learning_rate()  # of the steps from here on
        st.history.append(row)
        st.next_eval = self.next_evaluation(st.examples)
        if "valid_bound" in row:
            plausible = self._plausible(row["valid_bound"])
            if plausible and row["valid_bound"] > st.best_valid:
                st.best_valid = row["valid_bound"]
                st.best_examples = st.examples
                st.evals_since_best = 0
                if self.process.is_main:
                    with atomic_dir(self.run_folder.best) as tmp:
                        aevb_io.save_model(self.model, tmp)
                        write_card(tmp, self.model_card(row))
            else:
                st.evals_since_best += 1
                if self.config.patience is not None and st.evals_since_best >= self.config.patience:
                    st.stopped_early = True
        if self.process.is_main:
            self.save_checkpoint()
            self._log(row)

    def _plausible(self, bound: float) -> bool:
        """False (with a warning) for a validation bound no model can reach
        (:func:`plausible_bound`): it must never select the best checkpoint."""
        if plausible_bound(bound, self.model.config.likelihood):
            return True
        warnings.warn(
            f"validation bound {bound:+.2f} nats at {self.state.examples} training examples is "
            "impossible for a Bernoulli likelihood (log p(x) <= 0): the estimate has broken "
            "down numerically; best/ keeps the last plausible checkpoint. Consider "
            "--latent-logvar-range or a lower --lr",
            RuntimeWarning,
            stacklevel=2,
        )
        return False

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """The objective's bound (nats, :meth:`aevb.objectives.Objective.bound`) on each
        available split, with fixed evaluation noise."""
        was_training = self.model.training
        self.model.eval()
        out = {}
        for split, x in self.eval_sets.items():
            gen = torch.Generator(device=self.device).manual_seed(self.config.seed + 7919)
            values = self.objective.bound(self.model, x, generator=gen)
            out[f"{split}_bound"] = values.double().mean().item()
        out.update(self._posterior_use())
        self.model.train(was_training)
        return out

    def _posterior_use(self) -> dict[str, float]:
        """:func:`aevb.objectives.posterior_use` on the validation split (else the training
        split's evaluation rows): ``kl`` and ``active_units``, so that a collapsed
        posterior shows in every log line."""
        if not self.eval_sets:
            return {}
        x = self.eval_sets.get("valid", next(iter(self.eval_sets.values())))
        return posterior_use(self.model, x, self.config.batch_size, self.device)

    @functools.cached_property
    def data_identity(self) -> dict[str, Any]:
        """Name, split shapes and checksums of the training data (:func:`data_identity`),
        stored in ``trainer.json`` so that a resume can check it is given the same data."""
        return data_identity(self.data)

    def model_card(self, metrics: dict[str, float]) -> str:
        """The model card (:mod:`aevb.modelcard`) of the weights saved now, with the
        evaluation ``metrics`` they were saved at."""
        return render_card(
            to_dict(self.model.config),
            train_config=to_dict(self.config),
            data=self.data_identity,
            bound=self.state.bound,
            examples=self.state.examples,
            train_seconds=self.state.train_seconds,
            metrics=metrics,
        )

    def save_checkpoint(self) -> Path:
        """Write ``checkpoint/`` (weights, optimiser, RNG, counters, the data's identity)
        and ``metrics.csv``."""
        st = self.state
        tensors, opt_meta = _flatten_optimizer(self.optimizer)
        tensors["rng"] = self.generator.get_state()
        # torch's global generators, which layers may draw from (word dropout)
        tensors["global_rng"] = torch.get_rng_state()
        if self.device.type == "cuda":
            tensors["global_rng_cuda"] = torch.cuda.get_rng_state(self.device)
        if self.perm is not None:
            tensors["perm"] = self.perm.cpu()
        # the card's bounds are those of an evaluation at these weights (none between)
        last = st.history[-1] if st.history else {}
        evaluated = last if last.get("examples") == st.examples else {}
        meta = {
            "train_config": to_dict(self.config),
            "data": self.data.name,
            "data_identity": self.data_identity,
            "state": dict(vars(st)),
            "optimizer": opt_meta,
            "rng_device": self.generator.device.type,
        }
        run = self.run_folder
        with atomic_dir(run.checkpoint) as tmp:
            aevb_io.save_model(self.model, tmp)
            write_card(tmp, self.model_card(evaluated))
            aevb_io.save_tensors(tensors, tmp / TRAINER_TENSORS)
            write_text(tmp / TRAINER_FILE, json.dumps(meta, indent=1, default=float) + "\n")
        write_text(run.metrics, _history_csv(st.history))
        return run.checkpoint

    def _restore_generator(self, folder: Path, state: Tensor, device_type: str | None) -> None:
        """Set the generator to the checkpoint's ``state``, saved by a generator on a
        device of ``device_type`` (None: a checkpoint that did not record it, told by the
        state's size). A state of another device type cannot be set (CPU and CUDA generators
        differ): the run goes on with a generator seeded from that state (the same for
        every resume of that checkpoint), and says it is no longer bit-for-bit the run it
        would have been on its first device."""
        here = self.generator.device.type
        if device_type is None:  # older checkpoints: a CUDA (Philox) state is 16 bytes
            device_type = "cpu" if state.numel() == CPU_RNG_STATE_BYTES else "cuda"
        if device_type == here:
            self.generator.set_state(state)
            return
        digest = hashlib.sha256(state.cpu().numpy().tobytes()).digest()
        self.generator.manual_seed(int.from_bytes(digest[:8], "little") >> 1)
        warnings.warn(
            f"{folder}: the run moves from {device_type} to {here}: its random numbers go on "
            f"from a generator seeded by its {device_type} state, and the arithmetic "
            "differs, so it is no longer the same bit for bit as it would have been on "
            f"{device_type}",
            RuntimeWarning,
            stacklevel=3,
        )

    def restore(self, folder: str | Path, *, new_data: bool = False) -> None:
        """Load optimiser, RNG, permutation and counters from a checkpoint folder.

        The data must be the run's (same split shapes and values, see
        :meth:`_check_data`); with ``new_data``, other data is accepted and the data order
        starts again: a new shuffle of its rows.
        """
        folder = recover_dir(folder)
        meta = read_trainer_meta(folder)
        tensors = aevb_io.load_tensors(folder / TRAINER_TENSORS)
        try:
            _restore_optimizer(self.optimizer, meta["optimizer"], tensors)
            self._restore_generator(folder, tensors["rng"], meta.get("rng_device"))
            if "global_rng" in tensors:
                torch.set_rng_state(tensors["global_rng"])
            if "global_rng_cuda" in tensors and self.device.type == "cuda":
                torch.cuda.set_rng_state(tensors["global_rng_cuda"], self.device)
            self.perm = tensors["perm"].to(self.device) if "perm" in tensors else None
            self.state = TrainState(**meta["state"])
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise aevb_io.CheckpointError(
                f"{folder}: training state does not fit this run ({type(e).__name__}: {e})"
            ) from None
        self.state.stopped_early = False
        self._check_data(folder, meta, new_data)
        st, kind = self.state, self.objective.bound_name
        if st.bound != kind or not plausible_bound(st.best_valid, self.model.config.likelihood):
            # bounds of another kind (a run evaluated before IWAE runs were scored by the
            # IWAE bound) or a broken best are not comparable: best/ starts again
            warnings.warn(
                f"{folder}: the best validation bound so far ({st.best_valid:+.2f}, "
                f"{st.bound}) is not comparable with this run's ({kind}); the next "
                "evaluation replaces best/",
                RuntimeWarning,
                stacklevel=2,
            )
            st.best_valid, st.best_examples, st.evals_since_best = -math.inf, None, 0
            st.bound = kind

    def _check_data(self, folder: Path, meta: dict[str, Any], new_data: bool) -> None:
        """Refuse data other than the run's (unless ``new_data``), and restart the data
        order when the stored permutation cannot apply to this data."""
        stored = meta.get("data_identity")
        if stored is None:
            warnings.warn(
                f"{folder}: saved before runs recorded their data; cannot check that "
                f"{self.data.name} is the data the run was trained on",
                RuntimeWarning,
                stacklevel=3,
            )
        differs = identity_differences(stored, self.data_identity) if stored else []
        if differs and not new_data:
            raise TrainingError(
                f"--data {self.data.name}: not the data the run in {self.out_dir} was trained "
                f"on ({'; '.join(differs)}); pass the run's data ({stored.get('name')}), or "
                "--new-data to continue on this data in a new shuffled order"
            )
        st = self.state
        if differs or (self.perm is not None and self.perm.shape[0] != self.n_train):
            what = "; ".join(differs) or f"{self.n_train} training rows, not {len(self.perm)}"
            self.perm, st.position = None, 0  # the next minibatch draws a new permutation
            warnings.warn(
                f"{folder}: continuing on other data than the run's ({what}) in a new "
                "shuffled order; bounds before and after this point are of different data",
                RuntimeWarning,
                stacklevel=3,
            )
        if any(d.startswith("valid") for d in differs):
            # a best bound measured on another validation split is not comparable
            st.best_valid, st.best_examples, st.evals_since_best = -math.inf, None, 0

    # ---- output -------------------------------------------------------------------
    def _log(self, row: dict[str, float]) -> None:
        """One line per evaluation on stderr (also when quiet, unless ``log_evaluations``
        is off), and TensorBoard scalars."""
        parts = [f"examples {int(row['examples']):,}", f"epoch {row['epoch']:.2f}"]
        parts += [f"{s} {row[f'{s}_bound']:.2f}" for s in SPLITS if f"{s}_bound" in row]
        ips = row["examples"] / max(row["train_seconds"], 1e-9)  # as training_speed()
        line = " | ".join(parts) + " nats"
        if "kl" in row:
            dims = self.model.config.latent_dim
            line += f" | KL {row['kl']:.2f} nats, {row['active_units']:.0f}/{dims} active"
        if self.config.lr_schedule != "constant":
            line += f" | lr {row['lr']:.3g}"
        line += f" | {ips:,.0f} training examples/s"
        if self.log_evaluations and self._progress is not None:
            self._progress.write(line)
        elif self.log_evaluations:
            print(line, file=sys.stderr, flush=True)
        writer = self._tensorboard_writer()
        if writer is not None:
            for k, v in row.items():
                if k != "examples":
                    writer.add_scalar(k, v, int(row["examples"]))

    def _tensorboard_writer(self):
        if self._tensorboard is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # TensorBoard is optional
                self._tensorboard = False
                return None
            self._tensorboard = SummaryWriter(str(self.run_folder.tensorboard))
        return self._tensorboard or None


def _history_csv(history: list[dict[str, float]]) -> str:
    keys: list[str] = []
    for row in history:
        keys += [k for k in row if k not in keys]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    return buf.getvalue()


def _flatten_optimizer(opt: torch.optim.Optimizer) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Split ``opt.state_dict()`` into tensors (safetensors) and JSON-able metadata."""
    sd = opt.state_dict()
    tensors: dict[str, Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, pstate in sd["state"].items():
        for key, value in pstate.items():
            if isinstance(value, Tensor):
                tensors[f"optim.{idx}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(idx), {})[key] = value
    groups = [
        {k: list(v) if isinstance(v, tuple) else v for k, v in g.items()}
        for g in sd["param_groups"]
    ]
    return tensors, {"class": type(opt).__name__, "param_groups": groups, "scalars": scalars}


def _restore_optimizer(
    opt: torch.optim.Optimizer, meta: dict[str, Any], tensors: dict[str, Tensor]
) -> None:
    if meta["class"] != type(opt).__name__:
        raise ValueError(
            f"checkpoint optimiser is {meta['class']}, this run uses {type(opt).__name__}"
        )
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, idx, key = name.split(".", 2)
            state.setdefault(int(idx), {})[key] = value
    for idx, values in meta["scalars"].items():
        state.setdefault(int(idx), {}).update(values)
    groups = [
        {k: tuple(v) if k == "betas" else v for k, v in g.items()} for g in meta["param_groups"]
    ]
    opt.load_state_dict({"state": state, "param_groups": groups})


def seed_everything(seed: int) -> None:
    """Seed torch and NumPy global RNGs (model initialisation uses torch's)."""
    torch.manual_seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - third-party code may draw from the global RNG


_MOVED_TO_RUN = ("train", "resume", "train_or_resume", "spent_budget", "writer_lock")


def __getattr__(name: str) -> Any:
    """``aevb.training.train`` and its siblings, which moved to :mod:`aevb.run`."""
    if name in _MOVED_TO_RUN:
        from aevb import run  # above this module: imported on first use, not at import

        return getattr(run, name)
    raise AttributeError(f"module 'aevb.training' has no attribute {name!r}")
