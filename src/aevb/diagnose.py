"""Telling posterior collapse from under-training: the warning of ``aevb evaluate`` and of
any caller that evaluates a model (:func:`posterior_collapse`).

Few active latent dimensions (Cov_x E[z_i|x] <= 0.01) have two common causes that call
for different remedies. A model trained too briefly has not yet learnt to use its code:
train longer. A model whose bound has stopped improving with most of its code unused has
collapsed: KL warm-up or free bits help. The rule used here reads the run's history of
evaluations (``trainer.json``):

* under-trained: fewer than ``MIN_EVALUATIONS`` evaluations, or the bound gained more
  than ``RECENT_GAIN`` (1%) of its final magnitude during the second half of training
  (from the last evaluation at or before half the final number of training examples to
  the last evaluation), e.g. more than 1 nat at -100 nats;
* plateaued (so: collapse): otherwise, including a bound that never improved.

The gain is measured against the bound's magnitude, not against the total gain since the
first evaluation: a first evaluation at a very poor bound (thousands of nats below the
final one, common after one epoch) would make any later progress look small.

The bound is the validation bound where every evaluation has one, else the training bound.
"""

from __future__ import annotations

import math
import os
from typing import Any

from aevb.models.protocol import Model
from aevb.runfolder import RunFolder

MIN_EVALUATIONS = 3
"""Fewer evaluations than this: too short a run to call the bound plateaued."""
RECENT_GAIN = 0.01
"""Still improving: the second half of training gained more than this share of |bound|."""


def training_trend(history: list[dict[str, Any]]) -> dict[str, Any]:
    """Whether the bound in ``history`` (rows with "examples" and "<split>_bound", nats)
    was still improving at the end of training.

    Returns ``{"improving": bool, "evaluations": n, "split": "valid" | "train", "recent":
    gain over the second half, "total": gain since the first evaluation}`` (gains in nats;
    None where there are too few evaluations to measure them).
    """
    split = "valid" if history and all("valid_bound" in r for r in history) else "train"
    rows = [
        (float(r["examples"]), float(r[f"{split}_bound"]))
        for r in history
        if math.isfinite(float(r.get(f"{split}_bound", math.nan)))
    ]
    trend: dict[str, Any] = {"evaluations": len(rows), "split": split}
    if len(rows) < MIN_EVALUATIONS:
        return {**trend, "improving": True, "recent": None, "total": None}
    last_examples, last = rows[-1]
    half = [bound for examples, bound in rows if examples <= last_examples / 2]
    total = last - rows[0][1]
    recent = last - (half[-1] if half else rows[0][1])
    improving = recent > RECENT_GAIN * abs(last)
    return {**trend, "improving": improving, "recent": recent, "total": total}


def collapse_warning(
    active: int, code_dim: int, history: list[dict[str, Any]] | None
) -> str | None:
    """The warning for ``active`` of ``code_dim`` latent dimensions in use, or None when at
    least half are active. ``history``: the run's evaluations, None when unknown."""
    if active >= code_dim / 2:
        return None
    head = f"only {active} of {code_dim} latent dimensions are active (Cov_x E[z_i|x] > 0.01)"
    remedy = "train with --kl-warmup (e.g. 10ep) or --free-bits (e.g. 0.25) to keep more in use"
    if history is None:
        return (
            f"{head}; no training history was found to tell collapse from under-training: "
            f"if the model was trained until its bound stopped improving, this is posterior "
            f"collapse; {remedy}"
        )
    t = training_trend(history)
    if t["recent"] is None:
        return (
            f"{head}, but the run looks under-trained rather than collapsed: only "
            f"{t['evaluations']} evaluation(s) of its bound (at least {MIN_EVALUATIONS} are "
            "needed to see a plateau); train longer (--resume with a larger --epochs) "
            "before changing the objective"
        )
    gain = f"{t['split']} bound {t['recent']:+.2f} nats over the second half of training"
    if t["improving"]:
        return (
            f"{head}, but the run looks under-trained rather than collapsed: its {gain} "
            f"(more than {RECENT_GAIN:.0%} of the bound) says it is still improving; train "
            "longer (--resume with a larger --epochs) before changing the objective"
        )
    return f"{head}: posterior collapse (the bound has plateaued: {gain}); {remedy}"


def posterior_collapse(model: Model, active: int, model_path: str | os.PathLike) -> str | None:
    """The :func:`collapse_warning` of ``model``, loaded from ``model_path``, with
    ``active`` latent dimensions in use (:func:`aevb.evaluate.active_units`): the history is
    that of the run the model comes from, if any."""
    run = RunFolder.of_model(model_path)
    history = run.meta().get("state", {}).get("history") if run is not None else None
    return collapse_warning(active, model.config.code_dim, history)
