"""The ``aevb`` commands: each one's options (``_<command>_options``) next to the function
that runs it with the parsed arguments, calling into the API. :mod:`aevb.cli` builds the
parser from :data:`OPTIONS` and turns errors into one line.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aevb import data as aevb_data
from aevb import distributed, memory, viz
from aevb import evaluate as ev
from aevb import io as aevb_io
from aevb.apps import synthetic
from aevb.argtypes import MAX_COUNT, MAX_SEED, MAX_SIZE, Named, Number, count, device_name, positive
from aevb.atomic import write_text
from aevb.config import current_names, from_dict, to_dict, with_defaults
from aevb.data.registry import DEFAULT_DATASET
from aevb.data.validation import looks_like_pixels, resolve_gaussian_mean
from aevb.diagnose import posterior_collapse
from aevb.modelcard import read_card, render_card
from aevb.models import VAE, VAEConfig
from aevb.options import (
    DefaultsHelpFormatter,
    add_config_flags,
    add_data_args,
    add_examples_command,
    add_model_path,
    add_threads,
    given_options,
    model_flags,
    train_flags,
)
from aevb.run import spent_budget, train_or_resume, writer_lock
from aevb.runfolder import RunFolder
from aevb.training import (
    RUNTIME_FIELDS,
    SCHEDULE_FIELDS,
    TrainConfig,
    resolve_device,
    seed_everything,
)


def load_data(args: argparse.Namespace, fallback: str | None = None) -> aevb_data.Dataset:
    """The data ``--data`` names (else ``fallback``), with ``--data-dir`` and
    ``--image-size``; after ``args.prepare`` when a command sets one (:func:`train`)."""
    name = args.data or fallback
    if name is None:
        raise ValueError("--data: expected a dataset name or path (none stored with the model)")
    kw: dict[str, Any] = {}
    if getattr(args, "image_size", None):
        kw["image_size"] = tuple(args.image_size)
    if name not in aevb_data.dataset_names() and not Path(name).expanduser().exists():
        raise aevb_data.DataError(_no_such_data(name, given=args.data is not None))
    if "image_size" in kw and not Path(name).expanduser().is_dir():
        raise aevb_data.DataError(f"--image-size: only for a folder of images, not --data {name}")
    if name not in aevb_data.dataset_names() and Path(name).exists():
        # user data is named by its absolute path, so that resume and evaluate find it again
        kw["name"] = str(Path(name).resolve())
    data = aevb_data.load(name, data_dir=args.data_dir, **kw)
    prepare = getattr(args, "prepare", None)
    return prepare(data) if prepare is not None else data


def _no_such_data(name: str, *, given: bool) -> str:
    """Why ``name`` is neither a registered dataset nor an existing path, in one line.

    Registered names are listed only when ``name`` looks like one (no folder separator,
    no file extension): for a path, "no such file" is the whole story.
    """
    if not given:
        return f"{name}: no such file or folder (the data the model was trained on); pass --data"
    if "/" in name or os.sep in name or Path(name).suffix or name.startswith(("~", ".")):
        return f"--data {name}: no such file or folder"
    return (
        f"--data {name}: no such file or folder, nor a registered dataset; expected one of "
        f"{', '.join(aevb_data.dataset_names())}, or a path to .npy/.npz/.csv or an image folder"
    )


def examples_option(value: int | str, n_train: int, flag: str) -> int:
    """An option counting training examples (``flag``: --kl-warmup, --lr-decay-start) as
    training examples: a count, or E epochs written Eep."""
    if isinstance(value, int):  # training examples, as parsed by the command line
        return value
    try:
        if value.endswith("ep"):
            return int(round(float(value[:-2]) * n_train))
        return int(value)
    except ValueError:
        raise ValueError(
            f"{flag}={value!r}: expected training examples (e.g. 100000) or epochs (e.g. 10ep)"
        ) from None


RESUMABLE = ("epochs", "max_examples", *SCHEDULE_FIELDS, *RUNTIME_FIELDS)
"""The settings a resumed run takes from the command line: its budget, its learning-rate
schedule (for the steps still to come) and how it is run (:data:`RUNTIME_FIELDS`)."""


def check_resume_settings(
    args: argparse.Namespace,
    run: RunFolder,
    n_train: int,
    also: dict[str, Any] | None = None,
) -> None:
    """Refuse, in one line, the model and training options given with ``--resume`` that
    differ from the run's own settings (which a resumed run keeps), and a new
    learning-rate schedule that would change steps already taken (also when the run has
    no budget left). The settings of :data:`RESUMABLE` may change; "auto" is accepted
    whatever the run resolved it to (the run keeps its value, but for ``--device``, a
    runtime setting: there "auto" moves the run to the GPU when there is one).
    ``n_train`` turns epochs and "prior" into numbers; ``also``: the run's settings
    stored outside its configs (e.g. how a molecule run's data was made), checked the
    same way."""
    meta = run.meta()
    train_config = with_defaults(TrainConfig, meta.get("train_config", {}))
    changes = resume_changes(args, n_train)
    if changes:  # checked here too, as resume() does nothing on a finished run
        examples = int(meta.get("state", {}).get("examples", 0))
        from_dict(TrainConfig, train_config).resumed(examples, **changes)
    stored = {**(also or {}), **run.model_config(), **train_config}
    differ = []
    if getattr(args, "conditional", False) and not stored.get("condition_dim"):
        differ.append("--conditional (the run's model is not conditional)")
    for name, option in given_options(args).items():
        value = getattr(args, name)
        if name in RESUMABLE or value == "auto" or name not in stored:
            continue
        if name == "weight_decay":
            value = weight_decay_option(value, n_train)
        elif name == "kl_warmup_examples":
            value = examples_option(value, n_train, option)
        mine = list(value) if isinstance(value, (list, tuple)) else value
        theirs = stored[name]
        if mine != (list(theirs) if isinstance(theirs, (list, tuple)) else theirs):
            differ.append(f"{option} {_plain(mine)} (the run's: {_plain(theirs)})")
    if differ:
        raise ValueError(
            f"--resume keeps the run's settings, and these differ: {', '.join(differ)}; "
            "only the budget, the learning-rate schedule and how the run is watched "
            "(see --resume in --help) may change: start a new run (another --out, or "
            "--overwrite) for the others"
        )


def _plain(value: Any) -> str:
    """A setting as it would be typed: ``4 3`` for a list."""
    return " ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def resume_changes(args: argparse.Namespace, n_train: int) -> dict[str, Any]:
    """What ``--resume`` changes of the run's :class:`TrainConfig` (see
    :meth:`TrainConfig.resumed`): the schedule's options given, and the
    :data:`RUNTIME_FIELDS` options given."""
    given = given_options(args)
    runtime = {k: getattr(args, k) for k in RUNTIME_FIELDS if k in given}
    return {**schedule_options(args, n_train), **runtime}


def schedule_options(args: argparse.Namespace, n_train: int) -> dict[str, Any]:
    """The learning-rate schedule's options given on the command line (those left out are
    absent): a new run's config takes them, a resumed run's schedule is changed by them."""
    given = {k: getattr(args, k, None) for k in SCHEDULE_FIELDS}
    if given["lr_decay_start"] is not None:
        given["lr_decay_start"] = examples_option(
            given["lr_decay_start"], n_train, "--lr-decay-start"
        )
    return {k: v for k, v in given.items() if v is not None}


def weight_decay_option(value: str, n_train: int) -> float:
    """--weight-decay as a number; "prior" is 1 / N_train."""
    if value == "prior":
        return 1.0 / n_train
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"--weight-decay={value!r}: expected a number >= 0 or 'prior'") from None


def _train_options(sub: Any) -> None:
    """``aevb train``'s options."""
    t = sub.add_parser(
        "train",
        help="train a VAE (no arguments: the bundled digits, pictures included)",
        description="Train a VAE and write checkpoints, metrics.csv and pictures to --out.",
        formatter_class=DefaultsHelpFormatter,
    )
    add_train_arguments(t)


def add_train_arguments(t: argparse.ArgumentParser) -> None:
    """Every option of ``aevb train`` on parser ``t``: the applications that train a model
    (``aevb anomaly fit``) take the same options, read by :func:`train`."""
    add_data_args(t, default_help=f"{DEFAULT_DATASET}; with --resume, the run's")
    t.add_argument("--out", default=None, help="run folder (default: runs/<dataset>)")
    t.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its last checkpoint (its settings are "
        "kept: other values are refused; --epochs/--max-examples may extend the budget, "
        "the --lr-schedule options change the steps still to come, and --eval-every, "
        "--eval-per-decade, --checkpoint-every, --patience, --nonfinite, --compile and "
        "--device may change; a new device type ends the bit-for-bit continuation)",
    )
    t.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing run in --out (never one that another process is writing)",
    )
    t.add_argument(
        "--new-data",
        action="store_true",
        help="with --resume: continue on --data other than the run's (refused without this "
        "flag), its rows shuffled anew",
    )
    g = t.add_argument_group("model")
    add_config_flags(g, VAEConfig, model_flags())
    g.add_argument(
        "--conditional",
        action="store_true",
        help="conditional VAE on the dataset's class labels (one-hot); sample by class "
        "with aevb sample --label",
    )
    g = t.add_argument_group("training")
    add_config_flags(g, TrainConfig, train_flags())
    add_threads(g)
    g.add_argument(
        "--quiet",
        action="store_true",
        help="no progress (a bar on a terminal, else a plain line every 30 s); still one "
        "log line per evaluation",
    )
    g.add_argument("--no-pictures", action="store_true", help="skip the PNGs at the end")


def train(
    args: argparse.Namespace,
    prepare: Callable[[aevb_data.Dataset], aevb_data.Dataset] | None = None,
) -> str:
    """``aevb train``: fresh run or ``--resume``; then pictures.

    The run folder is held (:func:`aevb.run.writer_lock`) from before anything in it
    is read until the pictures are drawn, so a second writer is refused at once.
    ``prepare`` turns the loaded data into what is trained on (an application's
    selection of rows), for a new run and a resumed one alike.
    """
    args.prepare = prepare
    if args.resume:
        if args.out is None:
            raise ValueError("--resume: expected --out naming the run folder to continue")
        out = Path(args.out)
        if not out.is_dir():
            raise aevb_io.CheckpointError(f"--out {out}: no such run folder to resume")
        with _holding(out):
            return _resume(args, out)
    if args.new_data:
        raise ValueError("--new-data: only with --resume (a new run trains on --data)")
    data = load_data(args, DEFAULT_DATASET)
    if args.conditional:
        data = aevb_data.append_labels(data)
    out = Path(args.out or f"runs/{Path(data.name).stem}")
    with _holding(out):
        return _train_new(args, data, out)


def _holding(out: Path):
    """The run-folder lock of one ``aevb train`` process. Under torchrun the lock is taken
    inside :func:`~aevb.run.train` / :func:`~aevb.run.resume` instead, where the
    ranks learn together whether rank 0 got it (pictures are drawn after it is released)."""
    return writer_lock(out) if distributed.info().world == 1 else contextlib.nullcontext()


def _resume(args: argparse.Namespace, out: Path) -> str:
    """``aevb train --resume`` once the run folder ``out`` is held."""
    run = RunFolder(out)
    data = load_data(args, _data_name(run))
    changes = resume_changes(args, len(data.train))
    finished = spent_budget(
        out, len(data.train), epochs=args.epochs, max_examples=args.max_examples, changes=changes
    )
    check_resume_settings(args, run, len(data.train))
    if finished:  # nothing to train: say so and how to extend the run
        return finished
    stored = run.model_config()
    data = aevb_data.conditioned(data, stored.get("condition_dim", 0))
    _announce_data(data, stored)
    result = train_or_resume(
        out,
        data,
        epochs=args.epochs,
        max_examples=args.max_examples,
        quiet=args.quiet,
        new_data=args.new_data,
        changes=changes,
    )
    return _report(args, out, data, result)


def _train_new(args: argparse.Namespace, data: aevb_data.Dataset, out: Path) -> str:
    """A fresh ``aevb train`` once the run folder ``out`` is held."""
    seed_everything(args.seed)
    model_config = _config(
        VAEConfig,
        args,
        input_dim=data.dim - data.condition_dim,
        condition_dim=data.condition_dim,
        likelihood=args.likelihood or data.likelihood,
        gaussian_mean=resolve_gaussian_mean(args.gaussian_mean, _modelled(data.train, data)),
        image_shape=data.image_shape,
    )
    _announce_data(data, to_dict(model_config))
    config = train_config(args, len(data.train))
    memory.check_training_fits(model_config, config, len(data.train), resolve_device(args.device))
    result = train_or_resume(
        out,
        data,
        lambda: (VAE(model_config), config),
        if_exists="overwrite" if args.overwrite else "error",
        quiet=args.quiet,
    )
    return _report(args, out, data, result)


def train_config(args: argparse.Namespace, n_train: int, **given: Any) -> TrainConfig:
    """A new run's :class:`TrainConfig` from the training options, with the values that
    depend on the ``n_train`` training examples (epochs, "prior") resolved and the
    values ``given``."""
    return _config(
        TrainConfig,
        args,
        weight_decay=weight_decay_option(args.weight_decay, n_train),
        kl_warmup_examples=examples_option(args.kl_warmup_examples, n_train, "--kl-warmup"),
        epochs=args.epochs if args.epochs is not None else TrainConfig.epochs,
        **schedule_options(args, n_train),
        **given,
    )


def _config(cls: type, args: argparse.Namespace, **given: Any) -> Any:
    """Config dataclass ``cls`` from the options named as its fields (generated from them:
    :func:`aevb.cli.model_flags`), with the values ``given`` derived from the data. An
    option left at None (one whose default depends on the data or the run) takes the
    field's default unless ``given`` sets it."""
    names = {f.name for f in dataclasses.fields(cls)}
    options = {k: v for k, v in vars(args).items() if k in names and v is not None}
    return from_dict(cls, {**options, **given})


def _report(args: argparse.Namespace, out: Path, data: aevb_data.Dataset, result) -> str:
    """The summary of a finished ``aevb train`` and its pictures (main process only)."""
    if not distributed.info().is_main:
        return ""  # under torchrun, the main process reports and draws
    lines = [f"run folder: {out}"]
    last = result.history[-1]
    bounds = ", ".join(f"{k[:-6]} {v:.2f}" for k, v in last.items() if k.endswith("_bound"))
    speed = f"{result.images_per_second:,.0f} training examples/s (excluding evaluation)"
    lines.append(f"lower bound (nats): {bounds}; {speed}")
    if result.skipped:
        lines.append(f"skipped {result.skipped} non-finite updates")
    lines.append(f"metrics: {RunFolder(out).metrics}")
    if not args.no_pictures:
        model = aevb_io.load_model(out)
        if model.config.image_shape is not None:
            for name, path in write_pictures(model, data, result.history, out).items():
                lines.append(f"{name}: {path}")
    return "\n".join(lines)


def _modelled(x: np.ndarray, data: aevb_data.Dataset) -> np.ndarray:
    """The columns of rows ``x`` ``(N, D + C)`` the decoder models: ``(N, D)``."""
    return x[:, : data.dim - data.condition_dim]


def _likelihood_words(config: dict[str, Any]) -> str:
    """The decoder's likelihood as a person reads it, from a model config dict."""
    if config["likelihood"] != "gaussian":
        return config["likelihood"]
    variance = config["gaussian_variance"]
    if variance == "fixed":
        variance = f"fixed std {config['gaussian_std']:g}"
    return f"gaussian (mean {config['gaussian_mean']}, variance {variance})"


def _announce_data(data: aevb_data.Dataset, config: dict[str, Any]) -> None:
    """Refuse data the model's likelihood cannot model; print on stderr what is trained on:
    the data, its scaling and the likelihood (one line, before any training)."""
    x = _modelled(data.train, data)
    aevb_data.validate_for_likelihood(
        x, config["likelihood"], data.name, config.get("gaussian_mean")
    )
    if not distributed.info().is_main:
        return
    print(f"aevb: data {data.describe()}; likelihood {_likelihood_words(config)}", file=sys.stderr)
    if data.scaling == "none" and looks_like_pixels(x):
        print(
            "aevb: note: the values are whole numbers in 0..255 but not uint8, so they were "
            "not rescaled (only uint8 arrays and image folders are); if they are 8-bit "
            "pixels, divide them by 255 (or store them as uint8) to model them in [0, 1]",
            file=sys.stderr,
        )


def write_pictures(model, data: aevb_data.Dataset, history, out: Path) -> dict[str, Path]:
    """The standard pictures of a run: samples, reconstructions, manifold, curve."""
    x = torch.as_tensor(data.test if data.test is not None else data.train)
    return {
        "samples": viz.plot_samples(model, out / "samples.png", n=100),
        "reconstructions": viz.plot_reconstructions(model, x[:10], out / "reconstructions.png"),
        "manifold": viz.plot_manifold(model, out / "manifold.png", n=20),
        "interpolation": viz.plot_interpolation(model, x[0], x[1], out / "interpolation.png"),
        "training curve": viz.plot_training_curve(history, out / "training_curve.png"),
    }


def _data_name(run: RunFolder | None) -> str | None:
    """The name of the data of ``run`` (None without a run, or a run that names none)."""
    return run.data_name() if run is not None else None


def _model_and_split(args: argparse.Namespace):
    """The model ``args.model`` and the data (``--data``, else the run's), with the
    condition columns a conditional model reads."""
    model = aevb_io.load_model(args.model, device=resolve_device(args.device))
    data = load_data(args, _data_name(RunFolder.of_model(args.model)))
    data = aevb_data.conditioned(data, model.config.condition_dim)
    if data.dim != model.config.input_dim + model.config.condition_dim:
        raise ValueError(
            f"--data {data.name}: has dimension {data.dim - data.condition_dim}, the model "
            f"expects {model.config.input_dim}"
        )
    return model, data


def _evaluate_options(sub: Any) -> None:
    """``aevb evaluate``'s options."""
    e = add_examples_command(
        sub, "evaluate", "lower bound and importance-sampled log-likelihood on a split"
    )
    e.add_argument(
        "-k",
        "--k",
        type=count(0, 10**7),
        default=5000,
        help="importance samples per example for log p(x) (0 = skip it)",
    )
    e.add_argument(
        "--batch-size", type=count(1, MAX_SIZE), default=100, help="examples per IS batch"
    )
    e.add_argument(
        "--max-examples",
        type=count(1, MAX_COUNT),
        default=None,
        help="use only the first N examples of the split",
    )
    e.add_argument(
        "--seed",
        type=count(0, MAX_SEED),
        default=0,
        help="seed of the random draws, for results that repeat exactly",
    )
    e.add_argument("--json", default=None, help="also write the results to this JSON file")
    e.add_argument(
        "--quiet", action="store_true", help="no progress of the log-likelihood on stderr"
    )


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    """``aevb evaluate``: bound, IS log-likelihood, active units, KL per dimension."""
    model, data = _model_and_split(args)
    model.eval()
    x = torch.as_tensor(data.split(args.split))[: args.max_examples]
    aevb_data.validate_for_likelihood(
        x.numpy(), model.config.likelihood, data.name, model.config.gaussian_mean
    )
    gen = torch.Generator(device=next(model.parameters()).device).manual_seed(args.seed)
    bound = ev.Estimate.of(ev.lower_bound(model, x, generator=gen))
    result: dict[str, Any] = {
        "model": str(args.model),
        "data": data.name,
        "split": args.split,
        "examples": int(x.shape[0]),
        "lower_bound": dataclass_dict(bound),
    }
    if args.k > 0:
        ll = ev.Estimate.of(
            ev.log_likelihood(
                model,
                x,
                k=args.k,
                batch_size=args.batch_size,
                generator=gen,
                progress=not args.quiet,
            )
        )
        result["log_likelihood"] = {**dataclass_dict(ll), "k": args.k}
        if model.config.likelihood == "gaussian":
            result["log_likelihood"]["bits_per_dim"] = ev.bits_per_dim(
                ll.mean, model.config.input_dim, scale=data.divisor
            )
    active, variances = ev.active_units(model, x)
    result["active_units"] = active
    # counted over the code encode() infers: z_1, or z_L of a top-down hierarchy
    result["code_dim"] = viz.code_dim(model)
    if model.config.analytic_kl:  # a mixture prior or a hierarchy has no KL per dimension
        result["kl_per_dim"] = [round(v, 4) for v in ev.kl_per_dim(model, x).tolist()]
    result["mutual_information"] = ev.mutual_information(model, x, generator=gen)
    result["mutual_information_max"] = math.log(x.shape[0])
    warning = posterior_collapse(model, active, args.model)
    if warning:  # collapse, or under-training (train longer first): see aevb.diagnose
        print(f"aevb: warning: {warning}", file=sys.stderr)
    if args.json:
        write_text(args.json, json.dumps(result, indent=2) + "\n")
    return result


def dataclass_dict(e: ev.Estimate) -> dict[str, float]:
    return {"mean": e.mean, "stderr": e.stderr}


def _sample_options(sub: Any) -> None:
    """``aevb sample``'s options."""
    s = sub.add_parser(
        "sample",
        help="draw synthetic data from the prior: a PNG grid, .npy, .npz, .csv or a folder of PNGs",
        formatter_class=DefaultsHelpFormatter,
    )
    add_model_path(s)
    s.add_argument("-n", type=count(1, 10**6), default=100, help="number of samples")
    s.add_argument(
        "--per-class",
        type=count(1, 10**6),
        default=None,
        metavar="N",
        help="conditional model: N samples of each class (of --label, else every class) "
        "instead of -n",
    )
    s.add_argument(
        "--temperature",
        type=Number(float, 0.0, 1e6),
        default=1.0,
        help="scale of the prior's standard deviation",
    )
    s.add_argument(
        "--seed",
        type=count(0, MAX_SEED),
        default=0,
        help="seed of the random draws, for results that repeat exactly",
    )
    s.add_argument(
        "--label",
        type=count(0, MAX_SIZE),
        nargs="*",
        default=None,
        help="conditional model: class labels to draw, one per column (default: all)",
    )
    s.add_argument(
        "--out",
        default="samples.png",
        help="where to write: .png (a grid), .npy (rows), .npz (rows x and labels y), .csv "
        "(a header, one row per sample, a label column for a conditional model) or a "
        "folder, written as a path ending in / (one PNG per sample, and labels.csv)",
    )
    s.add_argument("--npy", default=None, help="also save the samples (n, D) to this .npy")


def sample(args: argparse.Namespace) -> str:
    """``aevb sample``: synthetic data (:mod:`aevb.apps.synthetic`) in the format of
    ``--out``, and optionally a .npy of the same draws."""
    model = aevb_io.load_model(args.model, device=resolve_device(args.device))
    synthetic.output_format(args.out)  # an unknown format fails before drawing
    labels, n = None, args.n
    if args.per_class is not None:
        labels = synthetic.class_labels(model, args.per_class, args.label)
        n = len(labels)
    elif model.config.condition_dim:
        classes = args.label or list(range(model.config.condition_dim))
        labels = torch.tensor([classes[i % len(classes)] for i in range(n)])
    elif args.label:
        raise ValueError("--label: this model is not conditional")
    x = synthetic.draw(model, n, labels=labels, temperature=args.temperature, seed=args.seed)
    y = None if labels is None else labels.numpy()
    lines = []
    if args.npy:
        synthetic.write_samples(x, args.npy)
        lines.append(f"samples: {args.npy}")
    columns = len(set(y.tolist())) if y is not None else 1
    nrow = columns if columns > 1 else max(1, int(math.sqrt(n)))
    if synthetic.output_format(args.out) != "grid" or model.config.image_shape is not None:
        path = synthetic.write_samples(
            x, args.out, labels=y, image_shape=model.config.image_shape, nrow=nrow
        )
        kind = synthetic.output_format(args.out)
        lines.append(f"{'grid' if kind == 'grid' else kind}: {path} ({n} samples)")
    elif not args.npy:
        raise ValueError(
            "this model has no image_shape: pass --out samples.npy (or .npz, .csv) to save "
            "the samples"
        )
    return "\n".join(lines)


def _reconstruct_options(sub: Any) -> None:
    """``aevb reconstruct``'s options."""
    r = add_examples_command(sub, "reconstruct", "inputs above their reconstructions, as a PNG")
    r.add_argument("-n", type=count(1, 10_000), default=10, help="number of inputs")
    r.add_argument("--out", default="reconstructions.png", help="where to write the PNG picture")


def reconstruct(args: argparse.Namespace) -> str:
    """``aevb reconstruct``: inputs above reconstructions."""
    model, data = _model_and_split(args)
    x = torch.as_tensor(data.split(args.split))[: args.n]
    return str(viz.plot_reconstructions(model, x, args.out, n=args.n))


def _traverse_options(sub: Any) -> None:
    """``aevb traverse``'s options."""
    tr = add_examples_command(
        sub, "traverse", "vary one latent dimension at a time around an encoded input"
    )
    tr.add_argument("--index", type=count(0, MAX_COUNT), default=0, help="which example to encode")
    tr.add_argument(
        "--dims", type=count(0, MAX_SIZE), nargs="*", default=None, help="dimensions (default: all)"
    )
    tr.add_argument("-n", type=count(1, 1000), default=9, help="values per dimension")
    tr.add_argument("--span", type=positive(), default=3.0, help="from -span to +span")
    tr.add_argument("--out", default="traversal.png", help="where to write the PNG picture")


def traverse(args: argparse.Namespace) -> str:
    """``aevb traverse``: latent traversals around one encoded example."""
    model, data = _model_and_split(args)
    x = torch.as_tensor(data.split(args.split))
    if not 0 <= args.index < x.shape[0]:
        raise ValueError(f"--index {args.index}: expected 0 <= index < {x.shape[0]}")
    path = viz.plot_traversal(
        model, x[args.index], args.out, dims=args.dims, n=args.n, span=args.span
    )
    return str(path)


def _manifold_options(sub: Any) -> None:
    """``aevb manifold``'s options."""
    m = sub.add_parser(
        "manifold",
        help="the 2-D latent manifold (the paper's Figure 4)",
        formatter_class=DefaultsHelpFormatter,
    )
    add_model_path(m)
    m.add_argument("-n", type=count(1, 200), default=20, help="grid points per axis")
    m.add_argument(
        "--dims",
        type=count(0, MAX_SIZE),
        nargs=2,
        default=[0, 1],
        help="the two latent dimensions to vary (others stay at 0)",
    )
    m.add_argument(
        "--label", type=count(0, MAX_SIZE), default=0, help="conditional model: the class drawn"
    )
    m.add_argument("--out", default="manifold.png", help="where to write the PNG picture")


def manifold(args: argparse.Namespace) -> str:
    """``aevb manifold``: the 2-D latent manifold."""
    model = aevb_io.load_model(args.model, device=resolve_device(args.device))
    return str(
        viz.plot_manifold(model, args.out, n=args.n, dims=tuple(args.dims), label=args.label)
    )


def _interpolate_options(sub: Any) -> None:
    """``aevb interpolate``'s options."""
    i = add_examples_command(sub, "interpolate", "decode a line between two inputs' latent means")
    i.add_argument(
        "--index", type=count(0, MAX_COUNT), nargs=2, default=[0, 1], help="the two examples"
    )
    i.add_argument("--steps", type=count(2, 10_000), default=10, help="points on the line")
    i.add_argument("--out", default="interpolation.png", help="where to write the PNG picture")


def interpolate(args: argparse.Namespace) -> str:
    """``aevb interpolate``: decode a line between two inputs."""
    model, data = _model_and_split(args)
    x = torch.as_tensor(data.split(args.split))
    for i in args.index:
        if not 0 <= i < x.shape[0]:
            raise ValueError(f"--index {i}: expected 0 <= index < {x.shape[0]}")
    a, b = args.index
    return str(viz.plot_interpolation(model, x[a], x[b], args.out, steps=args.steps))


def _curve_options(sub: Any) -> None:
    """``aevb curve``'s options."""
    c = sub.add_parser(
        "curve",
        help="plot a run's lower bound against training examples seen",
        formatter_class=DefaultsHelpFormatter,
    )
    c.add_argument("run", help="a training run folder (reads its checkpoint's metrics)")
    c.add_argument("--linear", action="store_true", help="linear x axis instead of log")
    c.add_argument("--title", default=None, help="title printed above the figure")
    c.add_argument("--out", default="training_curve.png", help="where to write the PNG picture")


def curve(args: argparse.Namespace) -> str:
    """``aevb curve``: the training curve of a run, from its checkpoint's history."""
    run = RunFolder(args.run)
    history = run.history()
    if not history:
        raise ValueError(f"{run.checkpoint}/trainer.json: expected a metrics history, found none")
    return str(viz.plot_training_curve(history, args.out, log_x=not args.linear, title=args.title))


def _budget(values: list[str] | None) -> int | dict[str, int] | None:
    """``--budget N`` or ``--budget NAME=N ...``."""
    if not values:
        return None
    try:
        if len(values) == 1 and "=" not in values[0]:
            return int(values[0])
        return {k: int(v) for k, v in (item.split("=", 1) for item in values)}
    except ValueError:
        raise ValueError(
            f"--budget {' '.join(values)}: expected N or NAME=N pairs, e.g. "
            "binarized_mnist=10000000 frey_face=1000000"
        ) from None


FIGURES = ("figure2", "figure3", "figure4", "figure5")  # what ``aevb reproduce all`` draws


def _reproduce_options(sub: Any) -> None:
    """``aevb reproduce``'s options."""
    rp = sub.add_parser(
        "reproduce",
        help="rerun a figure of Kingma & Welling (2013): CSV, PNG, report",
        formatter_class=DefaultsHelpFormatter,
    )
    rp.add_argument(
        "figure",
        choices=[*FIGURES, "all", "likelihood-table"],
        help="which figure (figure2: bound vs training examples, AEVB and wake-sleep; "
        "figure3: marginal likelihood, AEVB, wake-sleep and MCEM; "
        "figure4: 2-D manifolds; figure5: samples for Nz = 2, 5, 10, 20); or "
        "likelihood-table: test NLL on binarized MNIST of VAE, IWAE, 2-layer IWAE, "
        "VampPrior and HVAE + VampPrior next to the published figures",
    )
    rp.add_argument(
        "--budget",
        type=Named(count(1, MAX_COUNT)),
        nargs="+",
        default=None,
        help="training examples per run: N for every dataset, or NAME=N per dataset "
        "(e.g. binarized_mnist=10000000 frey_face=1000000); default: about 15 minutes per "
        "figure on 2 CPU cores: 1.5M for MNIST, 1M for Frey Face",
    )
    rp.add_argument(
        "--full",
        action="store_true",
        help="the paper's budget: 10^8 training examples (and, for figure3, the marginal "
        "likelihood on 1,000 training and test images instead of 100)",
    )
    rp.add_argument(
        "--jobs", type=count(1, 1024), default=2, help="runs trained side by side, 1 thread each"
    )
    rp.add_argument(
        "--rows",
        nargs="+",
        default=None,
        help="likelihood-table: rows to run (vae iwae iwae-2layer vamp hvae-vamp; default all)",
    )
    rp.add_argument(
        "--epochs",
        type=Named(positive(1e6)),
        nargs="+",
        default=None,
        help="likelihood-table: training epochs, N for every row or ROW=N (default: "
        "vae=500 iwae=35 iwae-2layer=22 vamp=200 hvae-vamp=120, 20-60 CPU-minutes each; "
        "--full: the published 3280 / 2000)",
    )
    rp.add_argument(
        "--k",
        type=count(1, 10**7),
        default=5000,
        help="likelihood-table: importance samples per image",
    )
    rp.add_argument(
        "--eval-examples",
        type=count(1, MAX_COUNT),
        default=None,
        help="likelihood-table: evaluate on the first N test images (default: all 10,000)",
    )
    rp.add_argument(
        "--device",
        type=device_name,
        default="cpu",
        help="likelihood-table: cpu, cuda, cuda:N or auto, for new runs and the evaluation",
    )
    rp.add_argument(
        "--doc",
        default=None,
        help="likelihood-table: also write the table to this file (e.g. docs/likelihood.md)",
    )
    rp.add_argument("--data-dir", default=None, help="folder holding dataset files")
    rp.add_argument("--out", default="reproduce", help="output folder (runs are resumed)")


def reproduce(args: argparse.Namespace) -> str:
    """``aevb reproduce``: train what a figure needs (resuming), then draw and tabulate."""
    from aevb.reproduce import figure2, figure3, figures45
    from aevb.reproduce.runs import budget_for

    out = Path(args.out)
    if args.figure == "likelihood-table":
        return _likelihood_table(args, out)
    budget = figure2.FULL_BUDGET if args.full else _budget(args.budget)
    kw = {"budget": budget, "jobs": args.jobs, "data_dir": args.data_dir}
    wanted = FIGURES if args.figure == "all" else (args.figure,)
    lines = []
    if "figure2" in wanted:
        paths = figure2.run(out, **kw)
        lines += [f"figure 2: {paths['png']} (curves {paths['csv']}, table {paths['md']})"]
    if "figure3" in wanted:
        n_eval = figure3.FULL_EVAL if args.full else None
        paths = figure3.run(
            out,
            budget=budget_for(budget, "binarized_mnist", figure3.DEFAULT_BUDGET),
            n_eval=n_eval,
            jobs=args.jobs,
            data_dir=args.data_dir,
        )
        lines += [f"figure 3: {paths['png']} (curves {paths['csv']}, table {paths['md']})"]
    if "figure4" in wanted or "figure5" in wanted:
        paths = figures45.run(out, **kw)
        lines += [f"figure 4: {paths['figure4']}", f"figure 5: {paths['figure5']}"]
    return "\n".join(lines)


def _likelihood_table(args: argparse.Namespace, out: Path) -> str:
    from aevb.reproduce import likelihood

    epochs: dict[str, float] | float | None = None
    if args.full and args.epochs:
        raise ValueError("--full and --epochs: expected one of them (--full = published budgets)")
    if args.full:
        epochs = {r.key: r.published_epochs for r in likelihood.ROWS}
    elif args.epochs:
        per_row = {}
        for item in args.epochs:
            key, _, value = item.rpartition("=")
            try:
                per_row[key] = float(value)
            except ValueError:
                raise ValueError(f"--epochs {item!r}: expected N or ROW=N") from None
        if "" in per_row and len(per_row) > 1:
            raise ValueError("--epochs: expected one N for every row, or ROW=N items, not both")
        epochs = per_row.get("", per_row)
    parts = ["aevb reproduce likelihood-table", f"--out {out}"]
    if args.full:
        parts.append("--full")
    elif args.epochs:
        parts.append("--epochs " + " ".join(args.epochs))
    if args.rows:
        parts.append("--rows " + " ".join(args.rows))
    parts.append(f"--k {args.k}")
    if args.device != "cpu":
        parts.append(f"--device {args.device}")
    if args.eval_examples:
        parts.append(f"--eval-examples {args.eval_examples}")
    command = " ".join(parts)
    result = likelihood.run(
        out,
        rows=args.rows or likelihood.ROW_KEYS,
        epochs=epochs,
        k=args.k,
        examples=args.eval_examples,
        jobs=args.jobs,
        data_dir=args.data_dir,
        device=args.device,
        doc=Path(args.doc) if args.doc else None,
        command=command,
    )
    lines = [f"{r['row']}: test NLL {r['nll']:.2f} ± {r['stderr']:.2f}" for r in result["results"]]
    return "\n".join([*lines, f"table: {result['md']}"])


def _info_options(sub: Any) -> None:
    """``aevb info``'s options."""
    f = sub.add_parser(
        "info", help="what a checkpoint holds: its model card (model, data, training, metrics)"
    )
    f.add_argument("model", help="a run folder, checkpoint folder or model folder")
    f.add_argument(
        "--json",
        action="store_true",
        help="print the config, parameter count, training state and last metrics as JSON "
        "instead of the model card",
    )


def info(args: argparse.Namespace) -> dict[str, Any] | str:
    """``aevb info``: the model card (``README.md`` of the model folder; for a model saved
    without one, a card rendered from what the folder records), or with ``--json`` the
    model config, parameter count, training state and last metrics."""
    folder = aevb_io.find_model_folder(args.model)
    if not getattr(args, "json", False):
        card = read_card(folder)
        return card if card is not None else _recorded_card(folder)
    model = aevb_io.load_model(folder)
    out: dict[str, Any] = {
        "folder": str(folder),
        "model_class": type(model).__name__,
        "parameters": sum(p.numel() for p in model.parameters()),
        "config": aevb_io.read_json(folder / aevb_io.CONFIG_FILE)["config"],
    }
    run = RunFolder.of_model(folder)
    if run is not None:
        meta = run.meta()
        st = meta.get("state", {})
        out["data"] = meta.get("data")
        out["train_config"] = current_names(TrainConfig, meta.get("train_config") or {})
        out["training_examples"] = st.get("examples")
        out["last_evaluation"] = (st.get("history") or [None])[-1]
        out["best_valid_bound"] = st.get("best_valid")
    return out


def _recorded_card(folder: Path) -> str:
    """The model card of a folder saved without one (by :func:`aevb.save`, or by an aevb
    older than model cards), from its config and, in a run, the checkpoint's record."""
    aevb_io.load_model(folder)  # the same checks as a reader of the weights
    config = aevb_io.read_json(folder / aevb_io.CONFIG_FILE)["config"]
    run = RunFolder.of_model(folder)
    if run is None:
        return render_card(config)
    meta = run.meta()
    st = meta.get("state", {})
    return render_card(
        config,
        train_config=current_names(TrainConfig, meta.get("train_config") or {}),
        data=meta.get("data_identity") or {"name": meta.get("data")},
        bound=st.get("bound", "elbo"),
        examples=st.get("examples"),
        train_seconds=st.get("train_seconds"),
        metrics=(st.get("history") or [{}])[-1],
    )


OPTIONS = (
    _train_options,
    _evaluate_options,
    _sample_options,
    _reconstruct_options,
    _manifold_options,
    _interpolate_options,
    _traverse_options,
    _curve_options,
    _reproduce_options,
    _info_options,
)
"""Each command's options, in the order ``aevb --help`` lists the commands."""
