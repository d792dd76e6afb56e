"""``aevb <command>``: a thin layer over the Python API; no logic of its own.

Every error is printed as one line, ``aevb: error: ...``, never a traceback: exit status 2
for bad input (options, files, data, checkpoints) and for what the machine lacks (memory,
disk space); status 1 for an unexpected error (a bug), whose traceback is shown when
``$AEVB_TRACEBACK`` is set. Options are checked while the command line is parsed, each
against its declared range (:mod:`aevb.argtypes`). Warnings are one line too,
``aevb: warning: ...``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from aevb import __version__
from aevb.argtypes import (
    MAX_COUNT,
    MAX_SEED,
    MAX_SIZE,
    Named,
    Number,
    count,
    device_name,
    positive,
)
from aevb.data.errors import one_line
from aevb.data.registry import DEFAULT_DATASET as DEFAULT_DATA

TRAINED_ON = "the dataset the model was trained on"
TRACEBACK_VARIABLE = "AEVB_TRACEBACK"
"""Set (to anything but empty) to see the traceback of an unexpected error."""


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line, without the usage dump.

    Negative numbers in any spelling (``-1e300``, ``-inf``, ``-2ep``) are read as values,
    not as options (no option starts with a digit), so that the option's range check
    names the option.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(
            r"^-\.?\d\S*$|^-(inf|infinity|nan)$", re.IGNORECASE
        )

    def error(self, message: str) -> NoReturn:
        """``aevb train: error: --batch-size: expected ..., got '0' (see aevb train --help)``."""
        message = re.sub(r"^argument ([^:]+): ", r"\1: ", message)
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)\n")


def _add_data_args(p: argparse.ArgumentParser, *, default_help: str) -> None:
    p.add_argument(
        "--data",
        default=None,
        help="a registered dataset (binarized_mnist, frey_face, mnist_test, mnist, digits) or "
        f"a path to .npy/.npz/.csv or a folder of PNG/JPEG images (default: {default_help})",
    )
    p.add_argument(
        "--data-dir",
        default=None,
        help="folder holding dataset files (default: $AEVB_DATA_DIR, else the user cache)",
    )
    p.add_argument(
        "--image-size",
        type=count(1, 8192),
        nargs=2,
        metavar=("H", "W"),
        default=None,
        help="image folders only: resize every image to H x W",
    )


def _model_path(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a run folder (uses best/, else checkpoint/) or a model folder")
    p.add_argument(
        "--device",
        type=device_name,
        default="cpu",
        help="cpu, cuda, cuda:N or auto (default: cpu)",
    )
    _threads(p)


def _threads(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--threads",
        type=count(1, 4096),
        default=None,
        help="CPU threads for PyTorch (default: PyTorch's choice, one per core)",
    )


FIELD_DEFAULT = "the field's default"
"""``Flag.default`` when the option's default is the config field's."""


@dataclasses.dataclass(frozen=True)
class Flag:
    """How ``aevb train`` sets one config field: its help sentence and its range (an
    :mod:`aevb.argtypes` type). The flag's name (``--field-name``), default, ``nargs`` (a
    tuple field takes any number of values) and choices come from the field and its
    module's constant; ``flag``, ``default`` and ``choices`` here say where they differ."""

    help: str
    type: Any = None
    choices: Sequence[str] | None = None
    flag: str | None = None
    default: Any = FIELD_DEFAULT
    nargs: int | str | None = None
    metavar: Any = None


def _add_config_flags(g: Any, config: type, flags: dict[str, Flag]) -> None:
    """One option per field of dataclass ``config`` named in ``flags``, stored under the
    field's name (so a command builds the config from the parsed arguments by name)."""
    fields = {f.name: f for f in dataclasses.fields(config)}
    for name, flag in flags.items():
        default = fields[name].default if flag.default == FIELD_DEFAULT else flag.default
        kw: dict[str, Any] = {"dest": name, "help": flag.help}
        if isinstance(default, bool):
            kw["action"] = "store_true"
        else:
            nargs = flag.nargs or ("*" if isinstance(default, tuple) else None)
            kw.update(default=list(default) if isinstance(default, tuple) else default)
            kw.update(type=flag.type, nargs=nargs, metavar=flag.metavar)
            kw.update(choices=list(flag.choices) if flag.choices else None)
        option = flag.flag or "--" + name.replace("_", "-")
        if flag.flag and "action" not in kw:  # the placeholder of the option, not the field
            kw["metavar"] = kw["metavar"] or option[2:].upper().replace("-", "_")
        g.add_argument(option, **kw)


def model_flags() -> dict[str, Flag]:
    """The :class:`~aevb.models.VAEConfig` fields ``aevb train`` sets, in --help order."""
    from aevb.models import vae
    from aevb.networks import INIT_SCHEMES

    size = count(1, MAX_SIZE)
    return {
        "latent_dim": Flag("latent size Nz", size),
        "hidden": Flag("hidden widths of the encoder (decoder: reversed); none = linear", size),
        "activation": Flag(
            "tanh, relu, elu, gelu, softplus, leaky_relu, or gated (gated dense layers, "
            "as in the VampPrior paper; MLP bodies)"
        ),
        "likelihood": Flag(
            "p(x|z) (default: the dataset's suggestion: bernoulli for data in [0,1] "
            "such as MNIST, the paper's Gaussian for frey_face)",
            choices=vae.LIKELIHOODS,
            default=None,
        ),
        "gaussian_variance": Flag(
            "Gaussian p(x|z): per-pixel log-variance output by the decoder (the "
            "paper), one learned per pixel, or fixed",
            choices=vae.GAUSSIAN_VARIANCES,
        ),
        "gaussian_mean": Flag(
            "Gaussian p(x|z): squash the mean into (0,1) (sigmoid, the paper's; needs data "
            "in [0,1]) or not (identity); auto: sigmoid for data in [0,1], else identity",
            choices=("auto", *vae.GAUSSIAN_MEANS),
            default="auto",
        ),
        "gaussian_std": Flag(
            "Gaussian p(x|z) with fixed variance: its standard deviation", positive()
        ),
        "init": Flag(
            "paper: all parameters ~ N(0, init_std^2); default: PyTorch's; he: weights ~ "
            "N(0, 2/fan_in); glorot: weights ~ U(+-sqrt(6/(fan_in+fan_out))); both: zero biases",
            choices=INIT_SCHEMES,
        ),
        "init_std": Flag("std for --init paper", positive()),
        "prior": Flag(
            "p(z): standard normal, learned mixture of Gaussians, or VampPrior (the "
            "last two have no closed-form KL: the Monte Carlo KL is used)",
            choices=vae.PRIORS,
        ),
        "prior_components": Flag(
            "--prior mog/vamp: mixture components (VampPrior pseudo-inputs)", size
        ),
        "upper_latents": Flag(
            "sizes of stochastic layers above z_1, e.g. 50 (with --latent-dim 100: "
            "IWAE's 2-layer model); none = one layer",
            size,
        ),
        "upper_hidden": Flag("hidden widths between stochastic layers", size),
        "hierarchy": Flag(
            "with --upper-latents: bottom-up = IWAE's q(z_1|x) q(z_2|z_1), p(x|z_1); "
            "top-down = Tomczak & Welling's HVAE q(z_2|x) q(z_1|x, z_2), p(x|z_1, z_2)",
            choices=vae.HIERARCHIES,
        ),
        "latent_logvar_range": Flag(
            "bound the log-variance of q(z_1|x) and of every layer between stochastic "
            "layers, e.g. -6 2 (stabilises hierarchies with a VampPrior); default: unbounded",
            Number(float, -80.0, 80.0),  # exp(88) overflows float32
            nargs=2,
            metavar=("LOW", "HIGH"),
        ),
        "body": Flag(
            "encoder/decoder bodies: MLP, or convolutions for images (then --hidden "
            "adds dense layers after the convolutions; --init default suits it)",
            choices=vae.BODIES,
        ),
        "channels": Flag("--body conv: channels of each stride-2 convolution", size),
    }


def train_flags() -> dict[str, Flag]:
    """The :class:`~aevb.training.TrainConfig` fields ``aevb train`` sets, in --help order."""
    from aevb import objectives, training

    size, samples = count(1, MAX_SIZE), count(1, MAX_COUNT)
    return {
        "algorithm": Flag(
            "aevb (SGVB on the ELBO) or the paper's wake-sleep baseline",
            choices=objectives.ALGORITHMS,
        ),
        "optimizer": Flag("adagrad (the paper) or adam", choices=training.OPTIMIZERS),
        "lr": Flag("the optimiser's step size (learning rate)", positive()),
        "weight_decay": Flag(
            "L2 penalty per example, or 'prior' for the paper's N(0,I) parameter prior (1/N_train)",
            Number(float, 0.0, 1e6, words=("prior",)),
            default=str(training.TrainConfig.weight_decay),
        ),
        "batch_size": Flag("minibatch size M", size),
        "estimator": Flag(
            "SGVB estimator: A (generic, Monte Carlo KL), B (analytic KL) or auto (B "
            "where the model has a closed-form KL)",
            choices=("auto", *objectives.ESTIMATORS),
        ),
        "n_samples": Flag("samples L of z per datapoint", count(1, 10**6), flag="--samples"),
        "objective": Flag(
            "elbo, or the IWAE bound with --samples importance samples",
            choices=objectives.OBJECTIVES,
        ),
        "beta": Flag("KL weight (beta-VAE)", positive()),
        "free_bits": Flag(
            "free bits per latent dimension (or group), nats (Kingma et al. 2016); 0 = off",
            Number(float, 0.0, 1e6),
        ),
        "free_bits_group": Flag(
            "free bits: consecutive latent dimensions per group (1 = per dimension)", size
        ),
        "kl_warmup_samples": Flag(
            "KL warm-up from 0 to 1: N training samples, or E epochs written as 'Eep' "
            "(e.g. 10ep); 0 = off",
            Number(int, 0, MAX_COUNT, suffix="ep"),
            flag="--kl-warmup",
            default="0",
        ),
        "epochs": Flag(
            f"budget in epochs (default {training.TrainConfig.epochs:g}; with --resume: the run's)",
            positive(1e6),
            default=None,
        ),
        "max_samples": Flag("budget in training samples (overrides --epochs)", samples),
        "eval_every": Flag("training samples between evaluations (default: one epoch)", samples),
        "eval_per_decade": Flag(
            "log-spaced evaluations: this many per factor 10 of samples, from --eval-every "
            "on (for log-axis curves)",
            count(1, 1000),
        ),
        "eval_max_examples": Flag("evaluate on at most this many examples per split", samples),
        "patience": Flag("early stopping: evaluations without validation improvement", samples),
        "clip_grad_norm": Flag("clip the gradient norm", positive()),
        "nonfinite": Flag(
            "on a NaN/inf loss or gradient: stop with an error, or skip the update",
            choices=training.NONFINITE,
        ),
        "seed": Flag(
            "seed of every random draw: initialisation, data order, noise", count(0, MAX_SEED)
        ),
        "device": Flag("cpu, cuda, cuda:N or auto", device_name),
        "compile": Flag("torch.compile the training step (for GPUs; slower on small CPUs)"),
        "precision": Flag(
            "bf16: forward pass under bfloat16 autocast (for GPUs with bf16)",
            choices=training.PRECISIONS,
        ),
    }


def build_parser() -> argparse.ArgumentParser:
    from aevb.models import VAEConfig
    from aevb.training import TrainConfig

    parser = _Parser(
        prog="aevb",
        description="Variational autoencoders (Kingma & Welling 2013): train, evaluate, draw.",
    )
    parser.add_argument("--version", action="version", version=f"aevb {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser(
        "train",
        help="train a VAE (no arguments: the bundled digits, pictures included)",
        description="Train a VAE and write checkpoints, metrics.csv and pictures to --out.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _add_data_args(t, default_help=f"{DEFAULT_DATA}; with --resume, the run's")
    t.add_argument("--out", default=None, help="run folder (default: runs/<dataset>)")
    t.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its last checkpoint (its settings are "
        "kept; --epochs/--max-samples may extend the budget)",
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
    _add_config_flags(g, VAEConfig, model_flags())
    g.add_argument(
        "--conditional",
        action="store_true",
        help="conditional VAE on the dataset's class labels (one-hot); sample by class "
        "with aevb sample --label",
    )
    g = t.add_argument_group("training")
    _add_config_flags(g, TrainConfig, train_flags())
    _threads(g)
    g.add_argument(
        "--quiet",
        action="store_true",
        help="no progress (a bar on a terminal, else a plain line every 30 s); still one "
        "log line per evaluation",
    )
    g.add_argument("--no-pictures", action="store_true", help="skip the PNGs at the end")

    e = sub.add_parser(
        "evaluate",
        help="lower bound and importance-sampled log-likelihood on a split",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _model_path(e)
    _add_data_args(e, default_help=TRAINED_ON)
    e.add_argument(
        "--split",
        default="test",
        choices=["train", "valid", "test"],
        help="which part of the data to take the examples from",
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

    s = sub.add_parser(
        "sample",
        help="draw samples from the prior into a PNG grid",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _model_path(s)
    s.add_argument("-n", type=count(1, 10**6), default=100, help="number of samples")
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
    s.add_argument("--out", default="samples.png", help="where to write the PNG picture")
    s.add_argument("--npy", default=None, help="also save the samples (n, D) to this .npy")

    r = sub.add_parser(
        "reconstruct",
        help="inputs above their reconstructions, as a PNG",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _model_path(r)
    _add_data_args(r, default_help=TRAINED_ON)
    r.add_argument(
        "--split",
        default="test",
        choices=["train", "valid", "test"],
        help="which part of the data to take the examples from",
    )
    r.add_argument("-n", type=count(1, 10_000), default=10, help="number of inputs")
    r.add_argument("--out", default="reconstructions.png", help="where to write the PNG picture")

    m = sub.add_parser(
        "manifold",
        help="the 2-D latent manifold (the paper's Figure 4)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _model_path(m)
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

    i = sub.add_parser(
        "interpolate",
        help="decode a line between two inputs' latent means",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _model_path(i)
    _add_data_args(i, default_help=TRAINED_ON)
    i.add_argument(
        "--split",
        default="test",
        choices=["train", "valid", "test"],
        help="which part of the data to take the examples from",
    )
    i.add_argument(
        "--index", type=count(0, MAX_COUNT), nargs=2, default=[0, 1], help="the two examples"
    )
    i.add_argument("--steps", type=count(2, 10_000), default=10, help="points on the line")
    i.add_argument("--out", default="interpolation.png", help="where to write the PNG picture")

    tr = sub.add_parser(
        "traverse",
        help="vary one latent dimension at a time around an encoded input",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _model_path(tr)
    _add_data_args(tr, default_help=TRAINED_ON)
    tr.add_argument(
        "--split",
        default="test",
        choices=["train", "valid", "test"],
        help="which part of the data to take the examples from",
    )
    tr.add_argument("--index", type=count(0, MAX_COUNT), default=0, help="which example to encode")
    tr.add_argument(
        "--dims", type=count(0, MAX_SIZE), nargs="*", default=None, help="dimensions (default: all)"
    )
    tr.add_argument("-n", type=count(1, 1000), default=9, help="values per dimension")
    tr.add_argument("--span", type=positive(), default=3.0, help="from -span to +span")
    tr.add_argument("--out", default="traversal.png", help="where to write the PNG picture")

    c = sub.add_parser(
        "curve",
        help="plot a run's lower bound against training samples",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    c.add_argument("run", help="a training run folder (reads its checkpoint's metrics)")
    c.add_argument("--linear", action="store_true", help="linear x axis instead of log")
    c.add_argument("--title", default=None, help="title printed above the figure")
    c.add_argument("--out", default="training_curve.png", help="where to write the PNG picture")

    rp = sub.add_parser(
        "reproduce",
        help="rerun a figure of Kingma & Welling (2013): CSV, PNG, report",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    rp.add_argument(
        "figure",
        choices=["figure2", "figure3", "figure4", "figure5", "all", "likelihood-table"],
        help="which figure (figure2: bound vs samples, AEVB and wake-sleep; "
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
        help="training samples per run: N for every dataset, or NAME=N per dataset "
        "(e.g. binarized_mnist=10000000 frey_face=1000000); default: about 15 minutes per "
        "figure on 2 CPU cores: 1.5M for MNIST, 1M for Frey Face",
    )
    rp.add_argument(
        "--full",
        action="store_true",
        help="the paper's budget: 10^8 samples (and, for figure3, the marginal "
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

    f = sub.add_parser("info", help="what a checkpoint holds: model, training, metrics")
    f.add_argument("model", help="a run folder, checkpoint folder or model folder")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``aevb`` command."""
    import warnings

    from aevb import commands, distributed

    parser = build_parser()
    args = parser.parse_args(argv)
    ok = False
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            if getattr(args, "threads", None):
                import torch

                torch.set_num_threads(args.threads)
            result = getattr(commands, args.command)(args)
        ok = True
    except Exception as e:
        if os.environ.get(TRACEBACK_VARIABLE):
            raise
        status, message = _describe_error(e, parser)
        _end_progress_bars()
        print(f"aevb: error: {one_line(message)}", file=sys.stderr)
        return status
    except KeyboardInterrupt:
        _end_progress_bars()
        print("aevb: interrupted; resume a training run with --resume", file=sys.stderr)
        return 130
    finally:
        distributed.teardown(wait=ok)  # under torchrun: leave the process group cleanly
    try:
        if isinstance(result, dict):
            print(json.dumps(result, indent=2))
        elif result:
            print(result)
        sys.stdout.flush()
    except BrokenPipeError:  # the reader stopped early (`aevb info run | head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def _describe_error(error: Exception, parser: argparse.ArgumentParser) -> tuple[int, str]:
    """The exit status and message of an error that ends a command.

    Status 2: bad input (options, data, checkpoints, files) or a resource the machine lacks
    (memory, disk space), said in the user's terms. Status 1: an unexpected error, a bug;
    its traceback is shown when ``$AEVB_TRACEBACK`` is set.
    """
    import torch

    from aevb.data import DataError
    from aevb.io import CheckpointError
    from aevb.training import TrainingError

    text = str(error)
    if isinstance(error, DataError | CheckpointError):
        return 2, text
    if isinstance(error, ValueError):
        return 2, _name_flags(text, parser)
    if isinstance(error, TrainingError):
        return 2, text
    if isinstance(error, MemoryError | torch.OutOfMemoryError) or (
        isinstance(error, RuntimeError) and "can't allocate memory" in text
    ):
        first = one_line(error)[:200]
        return 2, f"out of memory ({first}); try smaller sizes (--batch-size, --hidden, -n)"
    if isinstance(error, OSError):
        if error.filename is not None and error.strerror:
            return 2, f"{error.filename}: {error.strerror}"
        return 2, text
    return 1, (
        f"unexpected {type(error).__name__}: {text or 'no message'} (a bug: please report it; "
        f"rerun with {TRACEBACK_VARIABLE}=1 to see where it happened)"
    )


# a message that names two fields together: the option of the first
_FIELD_OPTIONS = {"upper_latents/upper_hidden": "upper_latents"}


def _name_flags(message: str, parser: argparse.ArgumentParser) -> str:
    """``message`` with ``VAEConfig.latent_dim`` and the like replaced by ``--latent-dim``.

    The configs name their fields; a user of the command typed options, each stored under
    its field's name (:func:`_add_config_flags`). Fields without an option (e.g.
    ``input_dim``, set from the data) are left as they are.
    """
    train = next(
        a.choices["train"] for a in parser._actions if isinstance(a, argparse._SubParsersAction)
    )
    options = {a.dest: a.option_strings[-1] for a in train._actions if a.option_strings}

    def option(match: re.Match) -> str:
        field = match.group(2)
        return options.get(_FIELD_OPTIONS.get(field, field), match.group(0))

    return re.sub(r"\b(VAEConfig|TrainConfig)\.([a-z_/]+)", option, message)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one line, ``aevb: warning: ...``, like errors; a progress bar being drawn
    is cleared, the line printed above it, and the bar drawn again (``tqdm.write``)."""
    from tqdm import tqdm

    tqdm.write(f"aevb: warning: {one_line(message)}", file=file or sys.stderr)


def _end_progress_bars() -> None:
    """Close the progress bars still drawn, so that the next message starts on its own line."""
    from tqdm import tqdm

    for bar in list(getattr(tqdm, "_instances", ())):
        bar.close()


def exit_process(code: int) -> None:
    """End the ``aevb`` process with ``code``.

    Under torchrun (``WORLD_SIZE`` > 1) the process ends with ``os._exit`` after flushing
    its output: by then the process group is closed and every file is written, and C++
    static destructors run at a normal exit can abort a worker ("terminate called without
    an active exception", SIGABRT), which torchrun reports as a failed job.
    """
    import os

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def entry() -> None:  # pragma: no cover - console script
    exit_process(main())


if __name__ == "__main__":  # pragma: no cover
    exit_process(main())
