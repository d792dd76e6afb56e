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
import json
import os
import re
import sys
from typing import NoReturn

from aevb import __version__, commands
from aevb.apps import anomaly_cli, molecules_cli
from aevb.data.errors import one_line
from aevb.serve import cli as serve_cli

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


def build_parser() -> argparse.ArgumentParser:
    """The ``aevb`` parser: each command's options come from :mod:`aevb.commands`, next to
    the function that runs it."""
    parser = _Parser(
        prog="aevb",
        description="Variational autoencoders (Kingma & Welling 2013): train, evaluate, draw.",
    )
    parser.add_argument("--version", action="version", version=f"aevb {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    apps = (anomaly_cli.add_options, molecules_cli.add_options, serve_cli.add_options)
    for add_options in (*commands.OPTIONS, *apps):
        add_options(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``aevb`` command."""
    import warnings

    from aevb import distributed

    parser = build_parser()
    args = parser.parse_args(argv)
    ok = False
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            if getattr(args, "threads", None):
                import torch

                torch.set_num_threads(args.threads)
            handler = getattr(args, "handler", None) or getattr(commands, args.command)
            result = handler(args)
        ok = True
    except Exception as e:
        if os.environ.get(TRACEBACK_VARIABLE):
            raise
        status, message = _describe_error(e, parser)
        _end_progress_bars()
        print(f"aevb: error: {one_line(message)}", file=sys.stderr)
        return status
    except KeyboardInterrupt as e:
        from aevb.training import TrainingInterrupted

        _end_progress_bars()
        if isinstance(e, TrainingInterrupted):  # a checkpoint of the last step was written
            print(f"aevb: {e}", file=sys.stderr)
            return 128 + e.signum
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
    options = {a.dest: a.option_strings[0] for a in train._actions if a.option_strings}

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
