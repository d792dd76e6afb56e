"""Start or continue a training run in its run folder: :func:`train`, :func:`resume`, and
:func:`train_or_resume`, the one way callers (the CLI, the paper's reproductions, the
applications) train, plus :func:`spent_budget` to say when a run has nothing left to do.

This module sits above the trainer (:mod:`aevb.training`) and the run folder's layout
(:mod:`aevb.runfolder`): it holds the folder's lock, reads the checkpoint a resume starts
from and hands the trainer its model, data and config.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from aevb import distributed, runlock
from aevb import io as aevb_io
from aevb.atomic import recover_dir, remove_leftovers
from aevb.config import check_choice, from_dict
from aevb.data.conditions import conditioned
from aevb.models.protocol import Model
from aevb.runfolder import TRAINER_FILE, RunFolder, read_trainer_meta, train_size
from aevb.training import TrainConfig, Trainer, TrainResult, lr_factor, resolve_device

if TYPE_CHECKING:
    from aevb.data import Dataset

IF_EXISTS = ("resume", "error", "overwrite")
"""What :func:`train_or_resume` does with a run folder that already holds a run."""


def train(
    model: Model,
    data: Dataset,
    config: TrainConfig,
    out_dir: str | Path,
    *,
    quiet: bool = False,
    overwrite: bool = False,
    log_evaluations: bool = True,
) -> TrainResult:
    """Train ``model`` on ``data`` from scratch, writing the run folder ``out_dir``.

    The run folder is held for the whole run (:func:`writer_lock`): a second writer fails
    at once. ``overwrite`` replaces the run already there (its checkpoint, best model,
    metrics and TensorBoard logs), never one that another process is writing. ``quiet``
    turns the progress bar off; ``log_evaluations`` off also drops the line per evaluation
    on stderr (for callers with their own reporting, such as scikit-learn's loops).
    """
    out = Path(out_dir)
    trainer = Trainer(model, data, config, out, quiet=quiet, log_evaluations=log_evaluations)
    with writer_lock(out, trainer.device):  # a second writer is told who holds it
        if trainer.run_folder.checkpoint.exists() and not overwrite:
            raise FileExistsError(
                f"{out}: already holds a training run; pass resume to continue it or "
                "overwrite to start again"
            )
        if overwrite and distributed.info().is_main:
            trainer.run_folder.clear()
        result = trainer.fit()
    distributed.barrier()  # every process returns once the last checkpoint is written
    return result


@contextlib.contextmanager
def writer_lock(out: Path, device: torch.device | None = None):
    """Hold run folder ``out`` for this process (:func:`aevb.runlock.hold`), then remove
    the temporary files a killed writer left there.

    Under torchrun only rank 0, the one process that writes, takes the lock; when the
    process group is up (pass the ``device`` of its collectives), every rank learns
    whether rank 0 could, and all stop together if not.
    """
    me = distributed.info()
    with contextlib.ExitStack() as stack:
        refused: runlock.RunFolderInUse | None = None
        if me.is_main:
            try:
                stack.enter_context(runlock.hold(out))
            except runlock.RunFolderInUse as e:
                refused = e
        if device is not None and me.world > 1:
            if not distributed.all_true(refused is None, device):
                raise refused or runlock.RunFolderInUse(
                    f"run folder {out} is in use (rank 0 names the holder)"
                )
        elif refused is not None:
            raise refused
        if me.is_main:
            remove_leftovers(out)
        yield


def resume(
    out_dir: str | Path,
    data: Dataset,
    *,
    epochs: float | None = None,
    max_examples: int | None = None,
    quiet: bool = False,
    new_data: bool = False,
    log_evaluations: bool = True,
    changes: Mapping[str, Any] | None = None,
) -> TrainResult:
    """Continue the run in ``out_dir`` from its last checkpoint.

    The checkpoint's settings are used; only the budget may be changed (to extend a run),
    and through ``changes`` the learning-rate schedule of the steps still to come (e.g.
    ``{"lr_schedule": "cosine", "lr_decay_start": examples_so_far}``) and the settings of
    :data:`~aevb.training.RUNTIME_FIELDS` (e.g. ``{"patience": 5}``):
    :meth:`~aevb.training.TrainConfig.resumed`.
    Interrupted and resumed, a run ends with the same parameters as an uninterrupted one
    (bit for bit on the CPU with the same thread count). ``data`` must be the data the
    run was trained on (checked against the identity stored in ``trainer.json``); with
    ``new_data`` other data is accepted and its rows are shuffled anew. A conditional
    model's one-hot labels are appended to ``data`` when it lacks them. The run folder is
    held for the whole run, as in :func:`train`; ``quiet`` and ``log_evaluations`` as there.
    """
    out = Path(out_dir)
    if not out.is_dir():
        raise aevb_io.CheckpointError(
            f"{out_dir}: no checkpoint/ to resume from; start a new run without resume"
        )
    collective = _collective_device(out)
    moved = (changes or {}).get("device")
    if collective is not None and moved not in (None, _stored_device(out)):
        raise ValueError(
            "--device: a run under torchrun keeps its device (its process group is set up "
            "on it); resume it in one process to move it"
        )
    with writer_lock(out, collective):
        folder = recover_dir(RunFolder(out).checkpoint)
        if not folder.is_dir():
            raise aevb_io.CheckpointError(
                f"{out}: no checkpoint/ to resume from; start a new run without resume"
            )
        meta = read_trainer_meta(folder)
        try:
            stored = from_dict(TrainConfig, meta["train_config"])
            examples = int(meta["state"]["examples"])
        except (KeyError, ValueError, TypeError) as e:
            raise aevb_io.CheckpointError(f"{folder}/{TRAINER_FILE}: {e}") from None
        config = stored.with_budget(epochs, max_examples).resumed(examples, **(changes or {}))
        model = aevb_io.load_model(folder)
        data = conditioned(data, model.config.condition_dim)  # the labels the model reads
        trainer = Trainer(model, data, config, out, quiet=quiet, log_evaluations=log_evaluations)
        trainer.restore(folder, new_data=new_data)
        # the rate where the run left off: its budget over its own training data
        n_train = train_size(meta) or trainer.n_train
        was = stored.lr * lr_factor(stored, examples, stored.budget_examples(n_train))
        if not math.isclose(trainer.learning_rate(), was, rel_tol=1e-9):
            warnings.warn(
                f"{out}: with the new budget the learning rate goes on at "
                f"{trainer.learning_rate():.3g}, not {was:.3g} where the run left off "
                f"({config.lr_schedule} decay from {config.lr_decay_start:,} examples)",
                RuntimeWarning,
                stacklevel=2,
            )
        result = trainer.fit()
        distributed.barrier()
        return result


def train_or_resume(
    out_dir: str | Path,
    data: Dataset,
    start: Callable[[], tuple[Model, TrainConfig]] | None = None,
    *,
    if_exists: str = "resume",
    epochs: float | None = None,
    max_examples: int | None = None,
    quiet: bool = False,
    new_data: bool = False,
    log_evaluations: bool = True,
    changes: Mapping[str, Any] | None = None,
) -> TrainResult:
    """Train the run in ``out_dir``: continue it from its checkpoint, or start it.

    ``start()`` builds the model and its :class:`TrainConfig` of a new run (called only
    when one starts, so that it can seed the initialisation); without it the run must
    exist (:func:`resume`). When the folder holds a run, ``if_exists`` says what to do:
    "resume" it (extended to ``epochs`` / ``max_examples`` when given), refuse with an
    "error", or "overwrite" it with a new run. A new run replaces what a run that wrote
    no checkpoint left behind. ``quiet`` and ``log_evaluations`` as in :func:`train`;
    ``changes`` are those a resumed run takes (:func:`resume`; a new run takes its
    config's).
    """
    check_choice("train_or_resume", "if_exists", if_exists, IF_EXISTS)
    run = RunFolder(out_dir)
    if start is None or (if_exists == "resume" and run.has_checkpoint()):
        return resume(
            run.path,
            data,
            epochs=epochs,
            max_examples=max_examples,
            quiet=quiet,
            new_data=new_data,
            log_evaluations=log_evaluations,
            changes=changes,
        )
    if new_data:
        raise ValueError("new_data: only when resuming (a new run trains on data)")
    model, config = start()
    return train(
        model,
        data,
        config,
        run.path,
        quiet=quiet,
        overwrite=if_exists != "error",
        log_evaluations=log_evaluations,
    )


def _stored_device(out: Path) -> str:
    """The device setting of the run in ``out`` (its ``trainer.json``)."""
    return RunFolder(out).meta().get("train_config", {}).get("device", "cpu")


def _collective_device(out: Path) -> torch.device | None:
    """Under torchrun: the device of the run in ``out`` (from its ``trainer.json``, read
    without moving anything), with the process group joined on it, so that every rank
    learns whether rank 0 got the run folder's lock. None for one process."""
    me = distributed.info()
    if me.world == 1:
        return None
    device = resolve_device(_stored_device(out), local_rank=me.local_rank)
    distributed.setup(device)
    return device


def spent_budget(
    out_dir: str | Path,
    n_train: int,
    *,
    epochs: float | None = None,
    max_examples: int | None = None,
    changes: dict[str, Any] | None = None,
) -> str | None:
    """When the run in ``out_dir`` has already spent its budget (or stopped early, and
    no new budget is given), a message saying so and what to pass to train on; None when
    :func:`resume` has training left to do (or there is no readable checkpoint: resume
    reports that).

    The budget is the run's own, or the one given to extend it (``epochs``,
    ``max_examples``, as :func:`resume` takes them); ``n_train`` is the number of training
    examples, which turns epochs into examples. A run that stopped early trains on within
    its budget when ``changes`` (those :func:`resume` takes) give it a ``patience`` that
    its evaluations since the best have not used up.
    """
    run = RunFolder(out_dir)
    if not (run.checkpoint / TRAINER_FILE).is_file():
        return None
    try:
        meta = run.meta()
        config = from_dict(TrainConfig, meta["train_config"]).with_budget(epochs, max_examples)
        examples = int(meta["state"]["examples"])
        stopped_early = bool(meta["state"].get("stopped_early"))
        since_best = int(meta["state"].get("evals_since_best", 0))
    except (aevb_io.CheckpointError, KeyError, TypeError, ValueError, AttributeError):
        return None  # resume gives the one-line error
    extend = (
        f"To train on, pass --resume with --epochs E, E > {examples / n_train:.4g}, or "
        f"--max-examples N, N > {examples}"
    )
    patience = (changes or {}).get("patience")
    more_patience = patience is not None and patience > since_best
    if stopped_early and epochs is None and max_examples is None and not more_patience:
        return (
            f"{out_dir}: the run stopped early at {examples:,} training examples: no better "
            f"validation bound in {config.patience} evaluation(s); nothing to resume. "
            f"{extend} (it stops again at the next evaluation that is no better), or "
            f"--patience P, P > {since_best}"
        )
    budget = config.budget_examples(n_train)
    if examples < budget:
        return None
    done = f"{examples:,} training examples ({examples / n_train:.4g} epochs)"
    if epochs is None and max_examples is None:
        what = f"{out_dir}: the run is finished: {done} of its budget of {budget:,}"
    else:
        what = f"{out_dir}: the run has already trained {done}, the budget given is {budget:,}"
    return f"{what}; nothing to resume. {extend}"
