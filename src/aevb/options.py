"""Options shared by the ``aevb`` commands, and ``aevb train``'s options generated from the
config dataclasses (:func:`add_config_flags`): name, default and help (the first paragraph
of the field's docstring) come from the field, so a new config field is one line here,
its range."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from typing import Any

from aevb import objectives, training
from aevb.argtypes import MAX_COUNT, MAX_SEED, MAX_SIZE, Number, count, device_name, positive
from aevb.config import field_summary
from aevb.data.dataset import SPLITS
from aevb.models import vae_config
from aevb.networks import INIT_SCHEMES

TRAINED_ON = "the dataset the model was trained on"


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` ends each option with its default, unless the help already says it
    (``(default: ...)`` in words) or there is none to show (``None``)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "(default:" in text or action.default is None:
            return action.help
        return super()._get_help_string(action)


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
    p = sub.add_parser(name, help=help, formatter_class=DefaultsHelpFormatter)
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


RESUMED_SCHEDULE = "with --resume, the run's, changed only for the steps still to come."
"""What the learning-rate schedule's options do to a resumed run."""

FIELD_DEFAULT = "the field's default"
"""``Flag.default`` when the option's default is the config field's."""


@dataclasses.dataclass(frozen=True)
class Flag:
    """How ``aevb train`` sets one config field, where the field alone does not say: its
    range (an :mod:`aevb.argtypes` type), choices (the module's constant), and where they
    differ from the field's, the option's name, default, ``nargs`` and ``metavar``.

    The help is the first paragraph of the field's docstring
    (:func:`aevb.config.field_summary`), so the two cannot drift; ``note`` adds only what
    is true of the command line alone (a default of its own, another spelling of the
    value). ``aliases``: former names of the option, still accepted (the help names them).
    """

    type: Any = None
    choices: Sequence[str] | None = None
    flag: str | None = None
    default: Any = FIELD_DEFAULT
    nargs: int | str | None = None
    metavar: Any = None
    aliases: tuple[str, ...] = ()
    note: str = ""


def flag_help(config: type, name: str, flag: Flag) -> str:
    """The help of field ``name``'s option: the field's summary, then ``flag.note`` and the
    option's former names (``%`` escaped for argparse)."""
    parts = [field_summary(config, name), flag.note]
    if flag.aliases:
        parts.append(f"Formerly {', '.join(flag.aliases)}.")
    return " ".join(p for p in parts if p).replace("%", "%%")


GIVEN = "given_options"
"""The attribute of the parsed arguments naming the config options given on the command
line: {field name: the option as typed} (:func:`given_options`)."""


class StoreGiven(argparse.Action):
    """Store the option's value (``const`` for a flag without one), and note that the
    option was given: a resumed run refuses settings other than its own
    (:func:`aevb.commands.check_resume_settings`)."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        setattr(namespace, self.dest, self.const if self.nargs == 0 else values)
        setattr(namespace, GIVEN, {**given_options(namespace), self.dest: option_string})


def given_options(args: argparse.Namespace) -> dict[str, str]:
    """The config options given on the command line: {field name: the option as typed}."""
    return dict(getattr(args, GIVEN, None) or {})


def add_config_flags(g: Any, config: type, flags: dict[str, Flag]) -> None:
    """One option per field of dataclass ``config`` named in ``flags``, stored under the
    field's name (so a command builds the config from the parsed arguments by name), and
    noted in :func:`given_options` when given."""
    fields = {f.name: f for f in dataclasses.fields(config)}
    for name, flag in flags.items():
        default = fields[name].default if flag.default == FIELD_DEFAULT else flag.default
        kw: dict[str, Any] = {"dest": name, "help": flag_help(config, name, flag)}
        kw["action"] = StoreGiven
        if isinstance(default, bool):
            kw.update(nargs=0, const=True, default=default)
        else:
            nargs = flag.nargs or ("*" if isinstance(default, tuple) else None)
            kw.update(default=list(default) if isinstance(default, tuple) else default)
            kw.update(type=flag.type, nargs=nargs, metavar=flag.metavar)
            kw.update(choices=list(flag.choices) if flag.choices else None)
        option = flag.flag or "--" + name.replace("_", "-")
        if flag.flag and kw.get("nargs") != 0:  # the placeholder of the option, not the field
            kw["metavar"] = kw["metavar"] or option[2:].upper().replace("-", "_")
        g.add_argument(option, *flag.aliases, **kw)
        if isinstance(default, bool):  # and its opposite (e.g. for a resumed run)
            g.add_argument(
                "--no-" + option[2:],
                dest=name,
                action=StoreGiven,
                nargs=0,
                const=False,
                default=default,
                help=f"turn {option} off, e.g. on a resumed run that had it "
                f"(default: {'on' if default else 'off'})",
            )


def model_flags() -> dict[str, Flag]:
    """The :class:`~aevb.models.VAEConfig` fields ``aevb train`` sets, in --help order."""
    size = count(1, MAX_SIZE)
    return {
        "latent_dim": Flag(size),
        "hidden": Flag(size),
        "activation": Flag(),
        "likelihood": Flag(
            choices=vae_config.LIKELIHOODS,
            default=None,
            note="Default here: the dataset's suggestion, bernoulli for data in [0, 1] such "
            "as MNIST, the paper's gaussian for frey_face.",
        ),
        "gaussian_variance": Flag(choices=vae_config.GAUSSIAN_VARIANCES),
        "gaussian_mean": Flag(
            choices=("auto", *vae_config.GAUSSIAN_MEANS),
            default="auto",
            note="Here also auto, the default: sigmoid for data in [0, 1], else identity.",
        ),
        "gaussian_std": Flag(positive()),
        "init": Flag(choices=INIT_SCHEMES),
        "init_std": Flag(positive()),
        "prior": Flag(choices=vae_config.PRIORS),
        "prior_components": Flag(size),
        "upper_latents": Flag(size),
        "upper_hidden": Flag(size),
        "hierarchy": Flag(choices=vae_config.HIERARCHIES),
        "latent_logvar_range": Flag(
            Number(float, -80.0, 80.0),  # exp(88) overflows float32
            nargs=2,
            metavar=("LOW", "HIGH"),
        ),
        "body": Flag(choices=vae_config.BODIES),
        "channels": Flag(size),
    }


def train_flags(*, sequences: bool = False) -> dict[str, Flag]:
    """The :class:`~aevb.training.TrainConfig` fields ``aevb train`` sets, in --help order;
    with ``sequences`` also those only models of sequences take (``aevb molecules train``)."""
    size, examples = count(1, MAX_SIZE), count(1, MAX_COUNT)
    flags = {
        "algorithm": Flag(choices=objectives.ALGORITHMS),
        "optimizer": Flag(choices=training.OPTIMIZERS),
        "lr": Flag(positive()),
        "lr_schedule": Flag(
            choices=training.LR_SCHEDULES,
            default=None,
            note=f"Default here {training.TrainConfig.lr_schedule}; {RESUMED_SCHEDULE}",
        ),
        "lr_decay_start": Flag(
            Number(int, 0, MAX_COUNT, suffix="ep"),
            default=None,
            note="Here also E epochs, written Eep (e.g. 10ep). Default here "
            f"{training.TrainConfig.lr_decay_start}; {RESUMED_SCHEDULE} A resumed run may "
            "start decaying where it is: pass the examples it has trained.",
        ),
        "lr_final": Flag(
            Number(float, 0.0, 1.0),
            default=None,
            note=f"Default here {training.TrainConfig.lr_final:g}; {RESUMED_SCHEDULE}",
        ),
        "weight_decay": Flag(
            Number(float, 0.0, 1e6, words=("prior",)),
            default=str(training.TrainConfig.weight_decay),
            note="Here also 'prior', which sets it to 1 / N_train.",
        ),
        "batch_size": Flag(size),
        "estimator": Flag(choices=("auto", *objectives.ESTIMATORS)),
        "n_samples": Flag(count(1, 10**6), flag="--samples"),
        "objective": Flag(choices=objectives.OBJECTIVES),
        "beta": Flag(positive()),
        "free_bits": Flag(Number(float, 0.0, 1e6)),
        "free_bits_group": Flag(size),
        "kl_warmup_examples": Flag(
            Number(int, 0, MAX_COUNT, suffix="ep"),
            flag="--kl-warmup",
            default="0",
            note="Here also E epochs, written Eep (e.g. 10ep).",
        ),
        "epochs": Flag(
            positive(1e6),
            default=None,
            note=f"Default here {training.TrainConfig.epochs:g}; with --resume, the run's.",
        ),
        "max_examples": Flag(examples, aliases=("--max-samples",)),
        "eval_every": Flag(examples),
        "eval_per_decade": Flag(count(1, 1000)),
        "eval_max_examples": Flag(examples),
        "checkpoint_every": Flag(examples),
        "patience": Flag(examples),
        "clip_grad_norm": Flag(positive()),
        "nonfinite": Flag(choices=training.NONFINITE),
        "seed": Flag(count(0, MAX_SEED), note="aevb train also seeds the initialisation with it."),
        "device": Flag(device_name),
        "compile": Flag(),
        "precision": Flag(choices=training.PRECISIONS),
    }
    if sequences:
        flags["bucket_pool"] = Flag(count(0, 10**6))
    return flags
