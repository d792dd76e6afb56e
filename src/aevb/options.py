"""Options shared by the ``aevb`` commands, and ``aevb train``'s options generated from the
config dataclasses (:func:`add_config_flags`): a new config field is one line here."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from typing import Any

from aevb import objectives, training
from aevb.argtypes import MAX_COUNT, MAX_SEED, MAX_SIZE, Number, count, device_name, positive
from aevb.data.dataset import SPLITS
from aevb.models import vae_config
from aevb.networks import INIT_SCHEMES

TRAINED_ON = "the dataset the model was trained on"


def add_data_args(p: argparse.ArgumentParser, *, default_help: str) -> None:
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


def add_model_path(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a run folder (uses best/, else checkpoint/) or a model folder")
    p.add_argument(
        "--device",
        type=device_name,
        default="cpu",
        help="cpu, cuda, cuda:N or auto (default: cpu)",
    )
    add_threads(p)


def add_examples_command(sub: Any, name: str, help: str) -> argparse.ArgumentParser:
    """The parser of command ``name``, which reads a model and examples of a split of its
    data: the model's options, the data's and ``--split``."""
    p = sub.add_parser(name, help=help, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_model_path(p)
    add_data_args(p, default_help=TRAINED_ON)
    p.add_argument(
        "--split",
        default="test",
        choices=list(SPLITS),
        help="which part of the data to take the examples from",
    )
    return p


def add_threads(p: argparse.ArgumentParser) -> None:
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
    module's constant; ``flag``, ``default`` and ``choices`` here say where they differ.
    ``aliases``: former spellings of the option, still accepted (the help names them)."""

    help: str
    type: Any = None
    choices: Sequence[str] | None = None
    flag: str | None = None
    default: Any = FIELD_DEFAULT
    nargs: int | str | None = None
    metavar: Any = None
    aliases: tuple[str, ...] = ()


def add_config_flags(g: Any, config: type, flags: dict[str, Flag]) -> None:
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
        if flag.aliases:
            kw["help"] += f" (also {', '.join(flag.aliases)}, its former name)"
        g.add_argument(option, *flag.aliases, **kw)


def model_flags() -> dict[str, Flag]:
    """The :class:`~aevb.models.VAEConfig` fields ``aevb train`` sets, in --help order."""
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
            choices=vae_config.LIKELIHOODS,
            default=None,
        ),
        "gaussian_variance": Flag(
            "Gaussian p(x|z): per-pixel log-variance output by the decoder (the "
            "paper), one learned per pixel, or fixed",
            choices=vae_config.GAUSSIAN_VARIANCES,
        ),
        "gaussian_mean": Flag(
            "Gaussian p(x|z): squash the mean into (0,1) (sigmoid, the paper's; needs data "
            "in [0,1]) or not (identity); auto: sigmoid for data in [0,1], else identity",
            choices=("auto", *vae_config.GAUSSIAN_MEANS),
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
            choices=vae_config.PRIORS,
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
            choices=vae_config.HIERARCHIES,
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
            choices=vae_config.BODIES,
        ),
        "channels": Flag("--body conv: channels of each stride-2 convolution", size),
    }


def train_flags() -> dict[str, Flag]:
    """The :class:`~aevb.training.TrainConfig` fields ``aevb train`` sets, in --help order."""
    size, examples = count(1, MAX_SIZE), count(1, MAX_COUNT)
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
        "kl_warmup_examples": Flag(
            "KL warm-up from 0 to 1: N training examples, or E epochs written as 'Eep' "
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
        "max_examples": Flag(
            "budget in training examples seen (overrides --epochs)",
            examples,
            aliases=("--max-samples",),
        ),
        "eval_every": Flag("training examples between evaluations (default: one epoch)", examples),
        "eval_per_decade": Flag(
            "log-spaced evaluations: this many per factor 10 of examples, from --eval-every "
            "on (for log-axis curves)",
            count(1, 1000),
        ),
        "eval_max_examples": Flag("evaluate on at most this many examples per split", examples),
        "patience": Flag("early stopping: evaluations without validation improvement", examples),
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
