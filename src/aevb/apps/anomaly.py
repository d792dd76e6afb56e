"""Anomaly detection with a trained VAE: scores, a threshold, and inlier/outlier labels.

An example the model finds unlikely is an anomaly. Four scores, each higher = more
anomalous, in nats:

* ``"elbo"``: the negative ELBO, -L(x) (one pass; estimator B where the KL has a closed
  form);
* ``"nll"``: the importance-sampled negative log-likelihood, -log p(x) with ``k`` samples
  (Burda et al. 2015); tighter than the ELBO, ``k`` times the cost;
* ``"recon-prob"``: An & Cho's (2015) reconstruction probability, -log (1/L) sum_l
  p(x|z_l) with z_l ~ q(z|x): how well the posterior's codes explain x, without the prior;
* ``"nll-complexity"``: Serrà et al.'s (2020) input-complexity score, -log p(x) - L(x)
  ("Input complexity and out-of-distribution detection with likelihood-based generative
  models", ICLR 2020): the ``"nll"`` score minus L(x), the length in nats of the image
  under a generic lossless compressor (:func:`complexity`: its 8-bit PNG at Pillow's best
  compression, bits * ln 2). A likelihood favours simple inputs (little ink, flat
  regions; Nalisnick et al. 2019); subtracting what any image compressor assigns to x
  turns the score into a likelihood ratio against a universal model of images. Only for
  models with an ``image_shape`` and grey levels in [0, 1]; a tabular model gets a
  ``ValueError``. The Bernoulli likelihood on grey levels is a density, not a
  distribution over 8-bit images, so the difference is the published score, not an
  exact log-ratio.

A :class:`Detector` holds the score's settings and a threshold fitted on reference data
(examples assumed normal, or normal up to a ``contamination`` rate, as scikit-learn's
detectors assume): a score above the threshold is an outlier. ``predict`` returns 1 for
inliers and -1 for outliers, as scikit-learn's detectors do. The detector is stored as
``anomaly.json`` beside the model, with percentiles of the reference scores (so a new
score can be placed in the training data's distribution).
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aevb import __version__
from aevb import io as aevb_io
from aevb.atomic import write_text
from aevb.config import check_choice, from_dict, to_dict
from aevb.inputs import check_rows
from aevb.models.protocol import Model
from aevb.objectives import batches, log_likelihood, lower_bound, model_device
from aevb.priors import fixed_components

SCORES = ("elbo", "nll", "recon-prob", "nll-complexity")
"""The anomaly scores, by name (see the module docstring)."""
DETECTOR_FILE = "anomaly.json"
"""The fitted detector, beside the model it scores with (the run folder or model folder)."""
PERCENTILES = 101
"""How many percentiles (0, 1, ..., 100) of the reference scores a detector keeps."""


def anomaly_scores(
    model: Model,
    x: Any,
    *,
    score: str = "elbo",
    k: int = 100,
    n_samples: int = 1,
    batch_size: int = 500,
    seed: int = 0,
) -> np.ndarray:
    """Anomaly score of every row of ``x`` ``(N, D [+ C])``: float64 ``(N,)``, nats,
    higher = more anomalous.

    ``k``: importance samples of ``"nll"`` and ``"nll-complexity"``; ``n_samples``:
    posterior draws L of ``"elbo"`` and ``"recon-prob"``. ``seed`` fixes the Monte Carlo
    noise, so the same rows get the same scores (``"nll-complexity"`` is exactly
    ``"nll"`` minus :func:`complexity` of the image columns). Rows are checked as
    :meth:`aevb.models.VAE.encode` checks them (NaN/inf, width, range): a ``ValueError``
    says what is wrong, as it does for ``"nll-complexity"`` on a model without an
    ``image_shape``.
    """
    check_choice("anomaly_scores", "score", score, SCORES)
    if k < 1 or n_samples < 1:
        raise ValueError(f"k={k}, n_samples={n_samples}: expected at least 1 sample each")
    x = check_rows(model, x)
    if score == "nll-complexity":
        image_shape = model.config.image_shape
        if image_shape is None:
            raise ValueError(
                'score="nll-complexity" compresses images, and this model has no '
                'image_shape (tabular data): use "nll", "elbo" or "recon-prob"'
            )
        bits = complexity(x[:, : model.config.input_dim].cpu().numpy(), image_shape)
        nll = anomaly_scores(model, x, score="nll", k=k, batch_size=batch_size, seed=seed)
        return nll - bits
    generator = torch.Generator(model_device(model)).manual_seed(seed)
    if score == "elbo":
        bound = lower_bound(
            model, x, n_samples=n_samples, batch_size=batch_size, generator=generator
        )
    elif score == "nll":
        bound = log_likelihood(model, x, k=k, batch_size=min(batch_size, 100), generator=generator)
    else:
        bound = reconstruction_log_probability(
            model, x, n_samples=n_samples, batch_size=batch_size, generator=generator
        )
    return -bound.double().numpy()


def complexity(images: np.ndarray, image_shape: tuple[int, ...]) -> np.ndarray:
    """L(x) of Serrà et al. (2020): the length of each image in nats under a generic
    lossless compressor, its 8-bit PNG at Pillow's best compression (``optimize=True``,
    ``compress_level=9``), bytes * 8 * ln 2; float64 ``(N,)``.

    ``images``: ``(N, D)`` grey levels in [0, 1] with D = prod(image_shape), rounded to
    the 256 levels of an 8-bit image (lossless for data stored as k / 255);
    ``image_shape``: ``(H, W)`` or ``(H, W, C)`` with C in {1, 3}, channels last. The
    length includes PNG's fixed overhead (about 60 bytes for one greyscale image), the
    same for every image of one shape, so it shifts scores without reordering them.
    """
    from PIL import Image

    images = np.asarray(images, dtype=np.float64)
    shape = tuple(int(s) for s in image_shape)
    if images.ndim != 2 or images.shape[1] != math.prod(shape):
        raise ValueError(
            f"images of shape {images.shape}: expected rows (N, {math.prod(shape)}) "
            f"of {shape} images"
        )
    if len(shape) == 3 and shape[2] == 1:
        shape = shape[:2]
    if not (len(shape) == 2 or (len(shape) == 3 and shape[2] == 3)):
        raise ValueError(f"image_shape={shape}: expected (H, W) or (H, W, C), C in {{1, 3}}")
    if not np.isfinite(images).all() or images.min() < 0 or images.max() > 1:
        raise ValueError("images: expected grey levels in [0, 1] to encode as 8-bit PNG")
    pixels = np.rint(images * 255).astype(np.uint8).reshape(-1, *shape)
    out = np.empty(len(pixels))
    for i, image in enumerate(pixels):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG", optimize=True, compress_level=9)
        out[i] = buffer.tell() * 8 * math.log(2)
    return out


@torch.no_grad()
def reconstruction_log_probability(
    model: Model,
    x: torch.Tensor,
    *,
    n_samples: int = 1,
    batch_size: int = 500,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """log (1/L) sum_l p(x|z_l), z_l ~ q(z|x) (An & Cho 2015, in logs so that it does not
    underflow), for checked rows ``x`` ``(N, D [+ C])``: ``(N,)`` nats on the CPU.

    In a hierarchical model z_l stands for every layer, drawn from the posterior."""
    from aevb.objectives import terms_from_posterior

    device = model_device(model)
    out = []
    with fixed_components(model.prior):
        for xb in batches(x, batch_size):
            xb = xb.to(device)
            t = terms_from_posterior(
                model, xb, model.encoded(xb), n_samples=n_samples, generator=generator
            )
            out.append((torch.logsumexp(t.log_px_z, dim=0) - math.log(n_samples)).cpu())
    return torch.cat(out)


def check_contamination(contamination: float) -> float:
    """``contamination`` if it is a rate in (0, 0.5], as scikit-learn's detectors take it."""
    if not (isinstance(contamination, (int, float)) and 0 < contamination <= 0.5):
        raise ValueError(
            f"contamination={contamination!r}: expected the share of outliers in the "
            "reference data, a number in (0, 0.5]"
        )
    return float(contamination)


@dataclasses.dataclass(frozen=True)
class Detector:
    """A score's settings and its threshold; stored as ``anomaly.json`` (JSON, no pickle).

    Attributes:
        score: one of :data:`SCORES`.
        threshold: scores above it are outliers (nats).
        contamination: the share of the reference data taken as outliers when the
            threshold was fitted (the threshold is their 1 - contamination quantile).
        k: importance samples (scores ``"nll"``, ``"nll-complexity"``).
        n_samples: posterior draws L (scores ``"elbo"``, ``"recon-prob"``).
        seed: the Monte Carlo noise's seed.
        reference: what the threshold was fitted on, in words (data name, split, rows).
        percentiles: the 0th, 1st, ..., 100th percentiles of the reference scores.
    """

    score: str
    threshold: float
    contamination: float
    k: int = 100
    n_samples: int = 1
    seed: int = 0
    reference: str = ""
    percentiles: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        check_choice("Detector", "score", self.score, SCORES)
        check_contamination(self.contamination)
        if not math.isfinite(self.threshold):
            raise ValueError(f"Detector.threshold={self.threshold}: expected a finite number")

    def scores(self, model: Model, x: Any) -> np.ndarray:
        """Anomaly scores of rows ``x`` under this detector's settings: ``(N,)``."""
        return anomaly_scores(
            model, x, score=self.score, k=self.k, n_samples=self.n_samples, seed=self.seed
        )

    def predict(self, model: Model, x: Any) -> np.ndarray:
        """1 for inliers, -1 for outliers (score above the threshold): int64 ``(N,)``."""
        return flags(self.scores(model, x), self.threshold)

    def percentile_of(self, scores: np.ndarray) -> np.ndarray:
        """Where ``scores`` fall among the reference scores: the percentage (0 to 100) of
        reference examples scoring lower, interpolated between stored percentiles."""
        if not self.percentiles:
            raise ValueError("this detector stores no reference percentiles")
        return np.interp(scores, self.percentiles, np.linspace(0, 100, len(self.percentiles)))

    def save(self, folder: str | os.PathLike) -> Path:
        """Write ``folder/anomaly.json`` atomically; returns its path."""
        path = Path(folder) / DETECTOR_FILE
        record = {"format": 1, "aevb_version": __version__, "detector": to_dict(self)}
        write_text(path, json.dumps(record, indent=2) + "\n")
        return path

    @classmethod
    def load(cls, folder: str | os.PathLike) -> Detector:
        """The detector stored in ``folder`` (a run folder or model folder); a missing
        or damaged file is a one-line :class:`aevb.io.CheckpointError`."""
        path = Path(folder) / DETECTOR_FILE
        if not path.is_file():
            raise aevb_io.CheckpointError(
                f"{folder}: no {DETECTOR_FILE}: fit a detector first (aevb anomaly fit, "
                "or aevb anomaly threshold on a trained run)"
            )
        try:
            return from_dict(cls, aevb_io.read_json(path)["detector"])
        except (KeyError, TypeError, ValueError) as e:
            raise aevb_io.CheckpointError(f"{path}: not an aevb anomaly detector: {e}") from None


def fit_detector(
    model: Model,
    reference: Any,
    *,
    score: str = "elbo",
    contamination: float = 0.01,
    k: int = 100,
    n_samples: int = 1,
    seed: int = 0,
    description: str = "",
) -> Detector:
    """A :class:`Detector` whose threshold flags the highest-scoring ``contamination``
    share of ``reference`` rows ``(N, D [+ C])`` (the 1 - contamination quantile).

    With clean reference data (a validation split of normal examples),
    ``contamination`` is the false-positive rate to expect on new normal data; with
    training data that holds some outliers, set it to their share, as for scikit-learn's
    detectors.
    """
    check_contamination(contamination)
    scores = anomaly_scores(model, reference, score=score, k=k, n_samples=n_samples, seed=seed)
    quantiles = np.percentile(scores, np.linspace(0, 100, PERCENTILES))
    return Detector(
        score=score,
        threshold=float(np.quantile(scores, 1 - contamination)),
        contamination=contamination,
        k=k,
        n_samples=n_samples,
        seed=seed,
        reference=description or f"{len(scores)} rows",
        percentiles=tuple(float(q) for q in quantiles),
    )


def flags(scores: np.ndarray, threshold: float) -> np.ndarray:
    """1 where ``scores`` ``(N,)`` are at most ``threshold`` (inliers), -1 above it."""
    return np.where(np.asarray(scores) > threshold, -1, 1).astype(np.int64)


def check_labels(labels: Any, n: int) -> np.ndarray:
    """Ground-truth labels ``(n,)`` as booleans, True = anomaly. Accepted: 0/1 or
    True/False (1 = anomaly), or scikit-learn's 1 (inlier) / -1 (outlier)."""
    y = np.asarray(labels)
    if y.ndim != 1 or len(y) != n:
        raise ValueError(f"labels of shape {y.shape}: expected one label per example, ({n},)")
    values = set(np.unique(y).tolist())
    if values <= {0, 1}:
        return y.astype(bool)
    if values <= {-1, 1}:
        return y == -1
    shown = sorted(values)[:5]
    raise ValueError(f"labels {shown}: expected 0/1 (1 = anomaly) or 1/-1 (-1 = outlier)")


def evaluation(scores: np.ndarray, anomalous: np.ndarray) -> dict[str, float]:
    """AUROC and AUPRC (average precision, anomalies as the positive class) of ``scores``
    against boolean labels ``anomalous`` (scikit-learn's metrics)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    if anomalous.all() or not anomalous.any():
        raise ValueError("labels: expected both normal examples and anomalies")
    return {
        "auroc": float(roc_auc_score(anomalous, scores)),
        "auprc": float(average_precision_score(anomalous, scores)),
        "anomaly_share": float(anomalous.mean()),
    }


def plot_roc(
    curves: dict[str, tuple[np.ndarray, np.ndarray]], path: str | os.PathLike, *, title: str = ""
) -> Path:
    """ROC curves, one per entry ``name -> (scores (N,), anomalous (N,) bool)``, with each
    curve's AUROC in the legend; saved as a PNG at ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from sklearn.metrics import roc_auc_score, roc_curve

    from aevb.viz import save_figure

    fig = Figure(figsize=(4.5, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for name, (scores, anomalous) in curves.items():
        fpr, tpr, _ = roc_curve(anomalous, scores)
        ax.plot(fpr, tpr, label=f"{name} (AUROC {roc_auc_score(anomalous, scores):.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("false-positive rate (normal flagged)")
    ax.set_ylabel("true-positive rate (anomalies flagged)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_score_histogram(
    scores: np.ndarray,
    anomalous: np.ndarray,
    path: str | os.PathLike,
    *,
    threshold: float | None = None,
    score: str = "",
) -> Path:
    """Histograms of the scores of normal examples and of anomalies, on shared bins, with
    the detector's threshold as a vertical line; saved as a PNG at ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from aevb.viz import save_figure

    fig = Figure(figsize=(6.0, 3.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    bins = np.histogram_bin_edges(scores, bins=50)
    ax.hist(scores[~anomalous], bins=bins, alpha=0.6, density=True, label="normal")
    ax.hist(scores[anomalous], bins=bins, alpha=0.6, density=True, label="anomaly")
    if threshold is not None:
        ax.axvline(threshold, color="black", linestyle="--", linewidth=1, label="threshold")
    ax.set_xlabel(f"anomaly score ({score}, nats; higher = more anomalous)")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)
