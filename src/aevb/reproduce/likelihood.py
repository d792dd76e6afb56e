"""The likelihood table: test log-likelihood on statically binarized MNIST next to the
published figures (IWAE, Burda et al. 2015; VampPrior, Tomczak & Welling 2017; Pythae).

Each row is a model config and a training recipe. :func:`run` trains every row in its own
run folder (resuming one that exists: a killed reproduction continues, a larger budget
extends it), picks the checkpoint with the best validation bound (the trainer's
``best/``), estimates the test negative log-likelihood by importance sampling with k =
5000, and writes the table as Markdown with the budget, wall times and machine of every
row and the command that reproduces it.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from aevb.atomic import write_text
from aevb.data import load_dataset
from aevb.evaluate import Estimate, log_likelihood
from aevb.io import CONFIG_FILE, load_model, read_json
from aevb.machine import cpu_model
from aevb.models import VAE, VAEConfig
from aevb.reproduce.runs import map_prefixed
from aevb.run import train_or_resume
from aevb.runfolder import RunFolder
from aevb.training import TrainConfig, resolve_device, seed_everything

DATASET = "binarized_mnist"
TRAIN_IMAGES = 50_000
RESULT_FILE = "result.json"


@dataclass(frozen=True)
class Row:
    """One line of the table: what is published, and how we train the same model.

    ``model`` and ``train`` hold :class:`~aevb.models.VAEConfig` and
    :class:`~aevb.training.TrainConfig` fields (the data's own fields and the budget are
    added by :func:`train_row`). ``warmup`` is the KL warm-up as a fraction of the budget.
    """

    key: str
    label: str
    published: float
    source: str
    published_epochs: int
    pythae: str = "—"
    model: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    warmup: float = 0.0


_IWAE_NET = {"latent_dim": 50, "hidden": (200, 200), "activation": "tanh", "init": "default"}
_IWAE_2L = {**_IWAE_NET, "latent_dim": 100, "upper_latents": (50,), "upper_hidden": (100, 100)}
_VAMP_NET = {
    "latent_dim": 40,
    "hidden": (300, 300),
    "activation": "gated",
    "init": "he",
    "prior": "vamp",
    "prior_components": 500,
}
_ADAM = {"optimizer": "adam", "lr": 1e-3, "batch_size": 100}

ROWS: tuple[Row, ...] = (
    Row(
        "vae",
        "VAE, 1 stochastic layer, k = 1",
        88.71,
        "Burda et al. 2015, appendix table (fixed binarization)",
        3280,
        "89.78 (IS k=200)",
        _IWAE_NET,
        {**_ADAM, "objective": "elbo", "n_samples": 1},
    ),
    Row(
        "iwae",
        "IWAE, 1 stochastic layer, k = 50",
        87.10,
        "Burda et al. 2015, appendix table (fixed binarization)",
        3280,
        "86.82 (IS k=5000)",
        _IWAE_NET,
        {**_ADAM, "objective": "iwae", "n_samples": 50},
    ),
    Row(
        "iwae-2layer",
        "IWAE, 2 stochastic layers (100, 50), k = 50",
        85.32,
        "Burda et al. 2015, appendix table (fixed binarization)",
        3280,
        "—",
        _IWAE_2L,
        {**_ADAM, "objective": "iwae", "n_samples": 50},
    ),
    Row(
        "vamp",
        "VAE + VampPrior, 1 stochastic layer",
        85.57,
        "Tomczak & Welling 2017, Table 2",
        2000,
        "85.79 (IS k=5000)",
        _VAMP_NET,
        {**_ADAM, "lr": 5e-4, "objective": "elbo", "n_samples": 1},
        warmup=0.05,
    ),
    Row(
        "hvae-vamp",
        "HVAE (2 stochastic layers) + VampPrior",
        83.19,
        "Tomczak & Welling 2017, Table 2",
        2000,
        "—",
        {
            **_VAMP_NET,
            "upper_latents": (40,),
            "upper_hidden": (300, 300),
            "hierarchy": "top-down",
            "latent_logvar_range": (-6.0, 2.0),
        },
        {**_ADAM, "lr": 5e-4, "objective": "elbo", "n_samples": 1},
        warmup=0.05,
    ),
)
ROW_KEYS = tuple(r.key for r in ROWS)

DEFAULT_EPOCHS = {"vae": 500, "iwae": 35, "iwae-2layer": 22, "vamp": 200, "hvae-vamp": 120}
"""Epochs per row, 7 to 150 times fewer than the published runs' (their cost:
docs/performance.md). ``--full`` uses theirs."""


def _row(key: str) -> Row:
    for r in ROWS:
        if r.key == key:
            return r
    raise ValueError(f"likelihood-table row {key!r}: expected one of {list(ROW_KEYS)}")


def run_folder(out: Path, key: str, epochs: float) -> Path:
    """``out/runs/<row>-<epochs>ep``: a new budget is a new run, because the KL warm-up
    and the evaluation spacing are fractions of the budget fixed when a run starts."""
    return out / "runs" / f"{key}-{epochs:g}ep"


def train_row(
    row: Row, out: Path, epochs: float, data_dir: str | None, device: str = "cpu"
) -> dict[str, Any]:
    """Train (or resume and extend) ``row`` for ``epochs`` in run folder ``out``.

    ``device`` applies to a new run; a resumed run keeps the device it was started on.
    """
    data = load_dataset(DATASET, data_dir=data_dir)
    n = len(data.train)
    budget = int(round(epochs * n))
    eval_every = max(n // 2, budget // 20)  # about 20 validation checks per run

    def start() -> tuple[VAE, TrainConfig]:
        seed_everything(0)
        model = VAE(
            VAEConfig(
                input_dim=data.dim,
                likelihood="bernoulli",
                image_shape=data.image_shape,
                **row.model,
            )
        )
        config = TrainConfig(
            **row.train,
            max_examples=budget,
            eval_every=eval_every,
            eval_max_examples=5000,
            kl_warmup_examples=int(row.warmup * budget),
            seed=0,
            device=device,
        )
        return model, config

    start_time = time.perf_counter()
    result = train_or_resume(out, data, start, max_examples=budget, quiet=True)
    seconds = time.perf_counter() - start_time
    return {"train_wall_seconds": seconds, "examples_seen": result.examples}


def check_row_run(row: Row, out: Path) -> None:
    """A one-line error when run folder ``out`` holds a run of another recipe than
    ``row``'s (the row changed since the run was made): resuming it, or reusing its
    result, would report the old model under the new row."""
    run = RunFolder(out)
    if not (run.checkpoint / CONFIG_FILE).is_file():
        return
    model = read_json(run.checkpoint / CONFIG_FILE).get("config", {})
    trained = run.meta().get("train_config", {})
    wanted = {f"model.{k}": v for k, v in row.model.items()}
    wanted.update({f"train.{k}": v for k, v in row.train.items()})
    have = {f"model.{k}": model.get(k) for k in row.model}
    have.update({f"train.{k}": trained.get(k) for k in row.train})
    differ = [k for k in wanted if _jsonable(wanted[k]) != _jsonable(have[k])]
    if differ:
        k = differ[0]
        raise ValueError(
            f"{out}: this run was trained with {k}={have[k]!r}, row {row.key!r} now uses "
            f"{wanted[k]!r} ({len(differ)} setting(s) differ); move the folder aside or "
            "use another --out"
        )


def _jsonable(v: Any) -> Any:
    """``v`` as it reads back from JSON (tuples become lists)."""
    return json.loads(json.dumps(v))


def evaluate_row(
    out: Path, *, k: int, examples: int | None, data_dir: str | None, device: str = "cpu"
) -> dict[str, Any]:
    """Test NLL (nats) of the validation-selected model of run ``out``, IS with ``k``."""
    data = load_dataset(DATASET, data_dir=data_dir)
    dev = resolve_device(device)
    model = load_model(out, device=dev)  # best/ (validation-selected) when present
    model.eval()
    x = torch.as_tensor(data.test[:examples] if examples else data.test)
    start = time.perf_counter()
    generator = torch.Generator(device=dev).manual_seed(0)
    ll = Estimate.of(log_likelihood(model, x, k=k, generator=generator))
    state = RunFolder(out).meta()["state"]
    return {
        "nll": -ll.mean,
        "stderr": ll.stderr,
        "k": k,
        "test_examples": int(x.shape[0]),
        "eval_wall_seconds": time.perf_counter() - start,
        "selected_at_examples": selected_examples(state),
        "best_valid_bound": state.get("best_valid"),
        "train_seconds": state.get("train_seconds"),
    }


def selected_examples(state: dict[str, Any]) -> int | None:
    """Training examples seen when ``best/`` was saved, from a run's ``trainer.json`` state
    (as :meth:`~aevb.runfolder.RunFolder.meta` reads it): its ``best_examples``, or for
    runs from before that was recorded the first of the equal best finite, possible (<= 0
    nats: binary data) validation bounds; None without validation evaluations."""
    if state.get("best_examples") is not None:
        return int(state["best_examples"])
    scored = [
        r
        for r in state.get("history", [])
        if math.isfinite(r.get("valid_bound", math.nan)) and r["valid_bound"] <= 0.0
    ]
    if not scored:
        return None
    return int(max(scored, key=lambda r: r["valid_bound"])["examples"])


RENAMED_RESULT_KEYS = {"samples": "examples_seen", "selected_at_samples": "selected_at_examples"}
"""Keys of ``result.json`` as older versions wrote them (training examples seen were called
"samples"), and their names now."""


def _current_result(result: dict[str, Any]) -> dict[str, Any]:
    """A row's ``result.json`` in today's names (:data:`RENAMED_RESULT_KEYS`)."""
    return {RENAMED_RESULT_KEYS.get(k, k): v for k, v in result.items()}


def _run_row(
    key: str, out: str, epochs: float, k: int, examples, data_dir, device: str = "cpu"
) -> dict[str, Any]:
    """Worker (one thread): train, then evaluate unless an up-to-date result exists."""
    torch.set_num_threads(1)
    row, folder = _row(key), Path(out)
    check_row_run(row, folder)
    wanted = {"epochs": epochs, "k": k, "examples": examples}
    done = folder / RESULT_FILE
    if done.is_file():
        old = _current_result(read_json(done))
        if {name: old.get(name) for name in wanted} == wanted:
            return old
    trained = train_row(row, folder, epochs, data_dir, device)
    result = {
        "row": key,
        **wanted,
        **trained,
        **evaluate_row(folder, k=k, examples=examples, data_dir=data_dir, device=device),
        "machine": machine(),
    }
    write_text(done, json.dumps(result, indent=2) + "\n")
    return result


def machine() -> str:
    """A one-line description of this machine (CPU model, cores, torch version)."""
    cpu = cpu_model()
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, 1 thread per row"


def run(
    out: Path,
    *,
    rows: Sequence[str] = ROW_KEYS,
    epochs: dict[str, float] | float | None = None,
    k: int = 5000,
    examples: int | None = None,
    jobs: int = 2,
    data_dir: str | None = None,
    device: str = "cpu",
    doc: Path | None = None,
    command: str = "aevb reproduce likelihood-table",
) -> dict[str, Any]:
    """Train and evaluate ``rows`` under ``out/runs``; write ``out/likelihood.md`` (and
    ``doc`` when given). ``epochs``: one budget for all rows, per-row, or the defaults."""
    for key in rows:
        _row(key)
    budgets = {
        key: (epochs.get(key, DEFAULT_EPOCHS[key]) if isinstance(epochs, dict) else epochs)
        or DEFAULT_EPOCHS[key]
        for key in rows
    }
    for key in rows:  # fail at once, before any row starts
        check_row_run(_row(key), run_folder(out, key, budgets[key]))
    args = [
        (key, str(run_folder(out, key, budgets[key])), budgets[key], k, examples, data_dir, device)
        for key in rows
    ]
    results = map_prefixed(_run_row, list(rows), args, jobs=jobs)  # lines start with [row]
    text = markdown({r["row"]: r for r in results}, command)
    paths = {"md": out / "likelihood.md"}
    write_text(paths["md"], text)
    if doc is not None:
        write_text(doc, text)
        paths["doc"] = doc
    return {"results": results, **{name: str(p) for name, p in paths.items()}}


def markdown(results: dict[str, dict[str, Any]], command: str) -> str:
    """The table as Markdown: ours (± standard error) next to the published figures."""
    lines = [
        "| model | published test NLL | source | Pythae's reproduction | ours (test NLL) |"
        " ours − published | epochs: ours (selected); published | train / IS wall time |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in ROWS:
        r = results.get(row.key)
        if r is None:
            ours, gap, budget, wall = "not run", "", "", ""
        else:
            ours = f"{r['nll']:.2f} ± {r['stderr']:.2f}"
            gap = f"{r['nll'] - row.published:+.2f}"
            best = r.get("selected_at_examples")
            at = f" (best at {best / TRAIN_IMAGES:g})" if best else ""
            budget = f"{r['epochs']:g}{at}; {row.published_epochs}"
            wall = f"{_minutes(r.get('train_seconds'))} / {_minutes(r['eval_wall_seconds'])}"
        lines.append(
            f"| {row.label} | {row.published:.2f} | {row.source} | {row.pythae} | {ours} |"
            f" {gap} | {budget} | {wall} |"
        )
    some = next(iter(results.values()), {})
    lines += [
        "",
        f"Test NLL in nats on the first {some.get('test_examples', 10_000):,} test images of "
        f"`{DATASET}` (lower is better), "
        f"importance sampling with k = {some.get('k', 5000)} (± one standard error over "
        "test images), model selected by the validation bound.",
        f"Machine: {some.get('machine', 'n/a')}.",
        f"Command: `{command}`",
        "",
    ]
    return "\n".join(lines)


def _minutes(seconds: float | None) -> str:
    return "n/a" if seconds is None or not math.isfinite(seconds) else f"{seconds / 60:.1f} min"
