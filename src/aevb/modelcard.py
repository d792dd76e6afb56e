"""Model cards: a ``README.md`` in every model folder a training run saves (``checkpoint/``,
``best/``), saying what the model is, what it was trained on, how, how well, and what it is
not for. Written by the trainer with the weights, printed by ``aevb info``.

The card is generated from what the run records (configs, the data's identity, the
history); nothing in it is typed by hand, so it cannot disagree with the files beside it.
Numbers computed later (``aevb evaluate``'s importance-sampled log-likelihood) are not
written back into a model folder, which readers never modify; the card says how to get them.
"""

from __future__ import annotations

import datetime
import os
import platform
from pathlib import Path
from typing import Any

from aevb import __version__
from aevb.atomic import write_text

CARD_FILE = "README.md"
"""The model card's name inside a model folder."""


def render_card(
    model_config: dict[str, Any],
    *,
    train_config: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
    bound: str = "elbo",
    examples: int | None = None,
    train_seconds: float | None = None,
    metrics: dict[str, float] | None = None,
    created: datetime.datetime | None = None,
) -> str:
    """The model card (Markdown) of a model.

    Args:
        model_config: the model's config as in ``config.json``.
        train_config: the :class:`~aevb.training.TrainConfig` as a dict, when trained.
        data: the training data's identity (:func:`aevb.data.data_identity`): name,
            scaling, per split shape and sha256.
        bound: what the metrics' bounds measure ("elbo", or "iwae-k<k>").
        examples: training examples seen when the weights were saved.
        train_seconds: training time (optimiser steps) until then.
        metrics: the evaluation at that point: ``<split>_bound`` in nats per example.
        created: when the card is written (default: now, UTC).
    """
    import torch

    created = created or datetime.datetime.now(datetime.timezone.utc)
    name = Path(str((data or {}).get("name", "unknown data"))).name
    lines = [
        f"# Model card: VAE on {name}",
        "",
        f"A variational autoencoder (Kingma & Welling 2013) saved by aevb {__version__} on "
        f"{created:%Y-%m-%d %H:%M} UTC (torch {torch.__version__}, Python "
        f"{platform.python_version()}). Load it with `aevb.load(folder)`; its weights are "
        "safetensors, its config JSON.",
        "",
        "## Model",
        "",
        *_model_lines(model_config),
        "",
        "## Training data",
        "",
        *_data_lines(data),
        "",
        "## Training",
        "",
        *_training_lines(train_config, examples, train_seconds, data),
        "",
        "## Metrics",
        "",
        *_metric_lines(metrics, bound),
        "",
        "## Intended use and limits",
        "",
        *_limits(model_config, name),
        "",
    ]
    return "\n".join(lines)


def write_card(folder: str | os.PathLike, text: str) -> Path:
    """Write ``folder/README.md`` atomically; returns its path."""
    path = Path(folder) / CARD_FILE
    write_text(path, text)
    return path


def read_card(folder: str | os.PathLike) -> str | None:
    """The model card in ``folder``, or None when the folder has none (a model saved by
    an older aevb, or by :func:`aevb.save`)."""
    path = Path(folder) / CARD_FILE
    return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else None


def _model_lines(c: dict[str, Any]) -> list[str]:
    if "tokens" in c:  # a SequenceVAE (aevb.models.sequence)
        return _sequence_lines(c)
    layers = [c.get("latent_dim"), *c.get("upper_latents", [])]
    likelihood = c.get("likelihood", "bernoulli")
    if likelihood == "gaussian":
        likelihood += f" (mean {c.get('gaussian_mean')}, variance {c.get('gaussian_variance')})"
    rows = [
        ("input", f"{c.get('input_dim')} values" + _shape(c.get("image_shape"))),
        (
            "latent layers",
            " -> ".join(str(n) for n in layers)
            + (f" ({c.get('hierarchy')})" if len(layers) > 1 else ""),
        ),
        (
            "body",
            f"{c.get('body', 'mlp')}, hidden {list(c.get('hidden', []))}, {c.get('activation')}",
        ),
        ("likelihood p(x|z)", likelihood),
        ("prior p(z)", c.get("prior", "standard")),
    ]
    if c.get("condition_dim"):
        rows.append(("condition", f"{c['condition_dim']} columns (a conditional VAE)"))
    return _table(rows)


def _sequence_lines(c: dict[str, Any]) -> list[str]:
    rows = [
        (
            "input",
            f"sequences of up to {c.get('input_dim')} token positions; {len(c['tokens'])} "
            f"{c.get('tokenizer')} tokens (the vocabulary is in config.json)",
        ),
        ("latent layers", str(c.get("latent_dim"))),
        (
            "encoder",
            f"{c.get('encoder')}, {c.get('encoder_layers')} layer(s) of "
            f"{c.get('encoder_hidden')}, embeddings of {c.get('embedding_dim')}",
        ),
        (
            "decoder",
            f"{c.get('decoder', 'gru')}, {c.get('decoder_layers')} layer(s) of "
            f"{c.get('decoder_hidden')}, teacher forcing, word dropout {c.get('word_dropout')}",
        ),
        ("likelihood p(x|z)", "categorical, token by token (autoregressive)"),
        ("prior p(z)", "standard"),
    ]
    return _table(rows)


def _data_lines(data: dict[str, Any] | None) -> list[str]:
    if not data:
        return ["Not recorded (the model was saved outside a training run)."]
    rows = [("name", f"`{data.get('name')}`"), ("scaling", data.get("scaling", "none"))]
    for split, s in data.get("splits", {}).items():
        shape = " x ".join(str(n) for n in s["shape"])
        rows.append((f"{split} split", f"{shape}, sha256 `{s['sha256'][:16]}…`"))
    return _table(rows)


def _training_lines(
    t: dict[str, Any] | None,
    examples: int | None,
    seconds: float | None,
    data: dict[str, Any] | None,
) -> list[str]:
    if not t:
        return ["Not recorded."]
    objective = t.get("objective", "elbo")
    if t.get("algorithm", "aevb") != "aevb":
        objective = t["algorithm"]
    extras = [f"{k} {t[k]}" for k in ("beta", "free_bits") if t.get(k) not in (None, 0, 1.0)]
    rows = [
        ("objective", ", ".join([objective, f"estimator {t.get('estimator')}", *extras])),
        (
            "optimiser",
            f"{t.get('optimizer')}, step size {t.get('lr')}{_decay(t)}, "
            f"minibatch {t.get('batch_size')}, seed {t.get('seed')}",
        ),
    ]
    n_train = (data or {}).get("splits", {}).get("train", {}).get("shape", [0])[0]
    if examples is not None:
        epochs = f" ({examples / n_train:.4g} epochs)" if n_train else ""
        rows.append(("trained on", f"{examples:,} examples{epochs}"))
    if seconds is not None:
        rows.append(("training time", f"{seconds:,.1f} s of optimiser steps"))
    return _table(rows)


def _decay(t: dict[str, Any]) -> str:
    """The learning-rate decay of training settings ``t``, as words ("" when constant)."""
    schedule = t.get("lr_schedule", "constant")
    if schedule == "constant":
        return ""
    return (
        f" ({schedule} decay from {t.get('lr_decay_start', 0):,} examples to "
        f"{t.get('lr_final', 0.0):g} of it at the end)"
    )


def _metric_lines(metrics: dict[str, float] | None, bound: str) -> list[str]:
    bounds = {k[: -len("_bound")]: v for k, v in (metrics or {}).items() if k.endswith("_bound")}
    if not bounds:
        return ["No evaluation at these weights (a run folder's metrics.csv has those so far)."]
    what = "ELBO" if bound == "elbo" else bound.upper()
    rows = [(f"{split} {what}", f"{v:.2f} nats per example") for split, v in bounds.items()]
    return [
        *_table(rows),
        "",
        "The bounds are lower bounds on log p(x). For the importance-sampled log-likelihood, "
        "run `aevb evaluate <this folder> --k 5000`.",
    ]


def _limits(c: dict[str, Any], name: str) -> list[str]:
    lines = [
        f"- Intended for: sampling, encoding, reconstructing and scoring data like `{name}`, "
        "and for research and teaching.",
        f"- Scores (ELBO, log-likelihood, anomaly scores) of data unlike `{name}` are not "
        "calibrated: a VAE can give high likelihood to inputs it has never seen.",
    ]
    if c.get("likelihood") == "bernoulli":
        lines.append(
            "- The Bernoulli likelihood models values in [0, 1]; on non-binary data its "
            "log-likelihood is not a density of the data and is not comparable with "
            "continuous models."
        )
    if "tokens" in c:
        lines.append(
            "- Samples are strings: check each with RDKit (or your parser) before use; "
            "validity, novelty and property scores are in docs/molecules.md for MOSES."
        )
    lines.append("- Not for decisions about people without validation on their own data.")
    return lines


def _shape(shape: Any) -> str:
    return f" (image {' x '.join(str(s) for s in shape)})" if shape else ""


def _table(rows: list[tuple[str, Any]]) -> list[str]:
    return ["| | |", "| --- | --- |", *(f"| {k} | {v} |" for k, v in rows)]
