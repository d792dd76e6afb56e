"""Many training runs of the paper's setup, in parallel processes, each resumable.

A :class:`RunSpec` names one curve of a figure (dataset, latent size, algorithm, step
size, budget). :func:`run_all` trains every spec in its own run folder (resuming one that
exists, so a killed reproduction continues and a larger budget extends the runs) with
``jobs`` worker processes of one thread each: on a small CPU, two one-thread runs side
by side get more done than one run with two threads.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import math
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import torch

from aevb.data import Dataset, load_dataset
from aevb.models import VAE, VAEConfig
from aevb.run import train_or_resume
from aevb.runfolder import TRAINER_FILE, RunFolder
from aevb.training import TrainConfig, TrainingError, TrainingInterrupted, seed_everything

PAPER_STEP_SIZES = (0.01, 0.02, 0.1)
HIDDEN = {"binarized_mnist": 500, "frey_face": 200}
DEFAULT_BUDGET = {"binarized_mnist": 1_500_000, "frey_face": 1_000_000}
PROBE_LATENT = {"binarized_mnist": 20, "frey_face": 10}  # the step-size probe's N_z
FIRST_EVAL = {"binarized_mnist": 100_000, "frey_face": 20_000}


@dataclass(frozen=True)
class RunSpec:
    """One training run of the paper's model.

    The fixed parts are the paper's: one hidden layer of tanh units in encoder and
    decoder, parameters from N(0, 0.01^2), Adagrad, minibatch 100, L = 1, weight decay
    1/N_train (the N(0, I) parameter prior), estimator B.
    """

    dataset: str
    latent_dim: int
    hidden: int
    algorithm: str  # "aevb" or "wake-sleep"
    lr: float
    budget: int  # training examples seen
    eval_every: int = 100_000  # first evaluation; then eval_per_decade per decade
    eval_per_decade: int = 8
    eval_max_examples: int | None = 10_000
    train_subset: int | None = None  # use only the first N training examples
    seed: int = 0

    @property
    def name(self) -> str:
        lr = f"{self.lr:g}"
        subset = f"-n{self.train_subset}" if self.train_subset else ""
        return f"{self.dataset}{subset}-nz{self.latent_dim}-h{self.hidden}-{self.algorithm}-lr{lr}"


def worker_pool(jobs: int) -> ProcessPoolExecutor:
    """``jobs`` spawned worker processes that end when this process ends.

    Without this, killing a reproduction (``kill PID``) would leave its workers training
    on as orphans; on Linux each worker asks the kernel for SIGTERM when its parent dies.
    Their runs resume from the last checkpoint on the next invocation.
    """
    return ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=get_context("spawn"),
        initializer=_die_with_parent,
        initargs=(os.getpid(),),
    )


def _die_with_parent(parent: int) -> None:
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except OSError:
            return
        if os.getppid() != parent:  # the parent died before the request was in place
            os._exit(1)


def budget_for(budget: int | dict[str, int] | None, dataset: str, default: int) -> int:
    """The budget of ``dataset``: one number for all, a per-dataset dict, or the default."""
    value = budget.get(dataset) if isinstance(budget, dict) else budget
    return value or default


def run_all(
    specs: Sequence[RunSpec],
    root: str | os.PathLike,
    *,
    jobs: int = 2,
    data_dir: str | None = None,
) -> dict[RunSpec, list[dict]]:
    """Train every spec under ``root/<spec.name>``; return each run's metrics history."""
    root = Path(root)
    args = [(asdict(s), str(root / s.name), data_dir) for s in specs]
    probe = "step-size/" if root.name == "step-size" else ""
    labels = [f"{probe}{s.name}" for s in specs]
    return dict(zip(specs, map_prefixed(_run_one, labels, args, jobs=jobs), strict=True))


def map_prefixed(
    fn: Callable[..., Any], labels: Sequence[str], args: Sequence[Sequence[Any]], *, jobs: int
) -> list[Any]:
    """``[fn(*a) for a in args]``, in ``jobs`` worker processes (:func:`worker_pool`; in
    this process when ``jobs <= 1``), the output of each call prefixed by its label."""
    if jobs <= 1:
        return [prefixed_call(label, fn, a) for label, a in zip(labels, args, strict=True)]
    with worker_pool(jobs) as pool:
        return list(pool.map(prefixed_call, labels, [fn] * len(args), args))


class LinePrefixer(io.TextIOBase):
    """A text stream that writes whole lines to ``stream``, each one starting with
    ``prefix``: the output of runs trained side by side stays readable, line by line."""

    def __init__(self, stream: io.TextIOBase, prefix: str) -> None:
        super().__init__()
        self.stream, self.prefix, self._partial = stream, prefix, ""

    def write(self, text: str) -> int:
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()  # the text after the last newline
        if lines:  # one write per batch of whole lines, so processes do not interleave
            self.stream.write("".join(f"{self.prefix}{line}\n" for line in lines))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return False  # progress as plain lines, never a bar redrawn with \r

    def finish(self) -> None:
        """Write a last line without its newline, if any."""
        if self._partial:
            self.write("\n")
        self.flush()


@contextlib.contextmanager
def prefixed_output(label: str) -> Iterator[None]:
    """Within: every line written to ``sys.stdout`` and ``sys.stderr`` (log lines,
    warnings, notices) starts with ``[label] ``."""
    streams = sys.stdout, sys.stderr
    out, err = (LinePrefixer(s, f"[{label}] ") for s in streams)
    sys.stdout, sys.stderr = out, err
    try:
        yield
    finally:
        sys.stdout, sys.stderr = streams
        out.finish()
        err.finish()


def prefixed_call(label: str, fn: Callable[..., Any], args: Sequence[Any]) -> Any:
    """``fn(*args)`` with its output prefixed by ``[label]`` (:func:`prefixed_output`);
    a module-level function, so that worker pools can run it."""
    with prefixed_output(label):
        try:
            return fn(*args)
        except TrainingInterrupted as e:
            if multiprocessing.parent_process() is None:  # not a pool worker
                raise
            signum = e.signum
    # A pool worker whose run a signal stopped (its parent died, or Ctrl-C reached the
    # process group): the run is checkpointed; end here rather than take the next run.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(128 + signum)


def paper_spec(
    dataset: str,
    algorithm: str,
    budget: int | dict[str, int] | None,
    root: str | os.PathLike,
    *,
    jobs: int = 2,
    data_dir: str | None = None,
) -> tuple[RunSpec, dict[float, float]]:
    """The paper's run of ``algorithm`` on ``dataset`` (:func:`budget_for` ``budget``
    training examples) at the step size the paper's rule selects, and the probes' scores.

    The rule: the step size from {0.01, 0.02, 0.1} with the best training bound of a run
    with ``PROBE_LATENT`` latent variables after 5 first evaluation intervals (a diverged
    probe counts as -inf); the probes are trained under ``root/step-size``."""
    n = budget_for(budget, dataset, DEFAULT_BUDGET[dataset])
    first = FIRST_EVAL[dataset]
    spec = RunSpec(
        dataset, PROBE_LATENT[dataset], HIDDEN[dataset], algorithm, 0.02, n, eval_every=first
    )
    probe_examples = min(n, 5 * first)
    probes = [
        replace(spec, lr=lr, budget=probe_examples, eval_every=probe_examples)
        for lr in PAPER_STEP_SIZES
    ]
    scores = {}
    for probe, history in run_all(
        probes, Path(root) / "step-size", jobs=jobs, data_dir=data_dir
    ).items():
        last = history[-1]["train_bound"] if history else -math.inf
        scores[probe.lr] = last if math.isfinite(last) else -math.inf
    return replace(spec, lr=max(scores, key=scores.get)), scores


def _run_one(spec_dict: dict, out: str, data_dir: str | None) -> list[dict]:
    """Worker: train (or resume) one run with one thread; return its metrics history, which
    for a diverged run ends with a row marked ``diverged`` (bounds -inf)."""
    torch.set_num_threads(1)
    spec = RunSpec(**spec_dict)
    data = load_dataset(spec.dataset, data_dir=data_dir)
    if spec.train_subset:
        data = Dataset(
            name=data.name,
            train=data.train[: spec.train_subset],
            valid=data.valid,
            test=data.test,
            image_shape=data.image_shape,
            likelihood=data.likelihood,
            scaling=data.scaling,
            divisor=data.divisor,
        )

    def start() -> tuple[VAE, TrainConfig]:
        seed_everything(spec.seed)
        model = VAE(
            VAEConfig(
                input_dim=data.dim,
                latent_dim=spec.latent_dim,
                hidden=(spec.hidden,),
                activation="tanh",
                likelihood=data.likelihood,
                init="paper",
                image_shape=data.image_shape,
            )
        )
        config = TrainConfig(
            algorithm=spec.algorithm,
            optimizer="adagrad",
            lr=spec.lr,
            weight_decay=1.0 / len(data.train),
            batch_size=100,
            n_samples=1,
            max_examples=spec.budget,
            eval_every=spec.eval_every,
            eval_per_decade=spec.eval_per_decade,
            eval_max_examples=spec.eval_max_examples,
            seed=spec.seed,
        )
        return model, config

    try:
        return train_or_resume(out, data, start, max_examples=spec.budget, quiet=True).history
    except TrainingError:
        run = RunFolder(out)
        history = run.history() if (run.checkpoint / TRAINER_FILE).is_file() else []
        return [
            *history,
            {
                "examples": math.nan,
                "train_bound": -math.inf,
                "test_bound": -math.inf,
                "diverged": 1.0,
            },
        ]
