"""The model side of ``aevb serve``: what each page element asks of a trained VAE, built on
the library's functions (:mod:`aevb.viz`, :mod:`aevb.apps.anomaly`, :mod:`aevb.apps.synthetic`,
:mod:`aevb.evaluate`, :mod:`aevb.io`), with no web framework in it.

An :class:`Explorer` loads the model once (safetensors + JSON, :func:`aevb.io.load_model`)
and computes at start what does not change: the order of the sliders (KL per dimension on
reference rows), the reference scores that place an upload in the training data's score
distribution (the run's ``anomaly.json`` when it has one), the 2-D projection of encoded
test data and the training curve. Requests then only decode, encode and score.

Codes ``z`` are ``(Nz,)`` with Nz = ``config.code_dim``; images are PNG bytes at the model's
``image_shape``. A conditional model needs a class ``label`` wherever it decodes. Every
model call holds one lock: the model is read-only, but evaluating a mixture prior fixes its
components for the duration of a call (:func:`aevb.priors.fixed_components`), which
concurrent requests must not interleave.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aevb import data as aevb_data
from aevb import evaluate as ev
from aevb import io as aevb_io
from aevb import viz
from aevb.apps import anomaly, synthetic
from aevb.modelcard import read_card
from aevb.runfolder import RunFolder
from aevb.serve.uploads import read_image

MANIFOLD_SIDE = 20
"""Tiles per side of the manifold picture of a 2-D latent space."""
REFERENCE_ROWS = 300
"""Rows of the validation (else training) split whose scores an upload is placed among,
and whose KL per dimension orders the sliders."""
PROJECTION_ROWS = 1000
"""Encoded rows of the test (else validation, training) split in the 2-D projection."""
NLL_REFERENCE_ROWS = 100
"""Of those, the rows whose negative log-likelihood is estimated (``DEFAULT_K`` samples
each): the costliest step of the start."""
DEFAULT_K = 100
"""Importance samples of the negative log-likelihood score (uploads and reference)."""
SCORES = ("elbo", "nll")
"""The anomaly scores shown for an upload (:data:`aevb.apps.anomaly.SCORES`)."""
Z_LIMIT = 100.0
"""Largest code value accepted (prior standard deviations): far beyond any slider."""


def png_bytes(
    rows: np.ndarray | torch.Tensor, image_shape: Sequence[int], nrow: int | None = None
) -> bytes:
    """PNG of ``rows`` ``(N, D)`` in [0, 1] (clipped) tiled as :func:`aevb.viz.image_grid`
    tiles them, ``nrow`` per row (default all N); one row gives the bare ``image_shape``
    picture, 8 bits per value."""
    from PIL import Image

    grid = viz.image_grid(rows, image_shape, nrow=nrow or len(rows))
    buffer = io.BytesIO()
    Image.fromarray(np.rint(grid * 255).astype(np.uint8)).save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


class Explorer:
    """A trained model and what the explorer's page shows of it.

    Args:
        model_path: a run folder (its ``best/``, else ``checkpoint/``) or a model folder.
        data: reference data (the run's training data, or another dataset of the same
            width); None: no score percentiles, sliders in index order, no projection.
        device: where the model runs.
    """

    def __init__(
        self,
        model_path: str | os.PathLike,
        *,
        data: aevb_data.Dataset | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.model = aevb_io.load_model(model_path, device=device).eval()
        config = self.model.config
        if config.image_shape is None:
            raise ValueError(
                f"{model_path}: aevb serve shows images, and this model has no image_shape "
                "(it was trained on tabular data)"
            )
        self.image_shape = tuple(int(s) for s in config.image_shape)
        self.code_dim = config.code_dim
        self.classes = config.condition_dim
        self.run = RunFolder.of_model(model_path)
        self.name = (self.run.path if self.run else Path(model_path)).resolve().name
        self.card = read_card(aevb_io.find_model_folder(model_path))
        self._lock = threading.Lock()
        self._manifolds: dict[int | None, tuple[bytes, list[float]]] = {}
        self.curve = self._training_curve()
        detector = self._stored_detector(model_path)
        self.detectors = {detector.score: detector} if detector else {}
        self.sources = {s: "anomaly.json" for s in self.detectors}
        self.data_name = None
        self.ranking: list[tuple[int, float]] = [(d, 0.0) for d in range(self.code_dim)]
        self.ranked_by = "index (no reference data)"
        self.projection: dict[str, Any] | None = None
        if data is not None:
            self._use_reference(aevb_data.conditioned(data, self.classes))

    # -- what is computed once ----------------------------------------------------------

    def _training_curve(self) -> bytes | None:
        """PNG of the run's bound against training examples (:func:`viz.plot_training_curve`)."""
        history = self.run.history() if self.run and self.run.has_checkpoint() else []
        if not history:
            return None
        with tempfile.TemporaryDirectory() as tmp:
            try:
                path = viz.plot_training_curve(history, Path(tmp) / "curve.png")
            except ValueError:  # no finite bound to draw yet
                return None
            return path.read_bytes()

    def _stored_detector(self, model_path: str | os.PathLike) -> anomaly.Detector | None:
        """The run's (or model folder's) ``anomaly.json``, when it scores elbo or nll."""
        folder = self.run.path if self.run else Path(model_path)
        if not (folder / anomaly.DETECTOR_FILE).is_file():
            return None
        detector = anomaly.Detector.load(folder)
        return detector if detector.score in SCORES and detector.percentiles else None

    def _use_reference(self, data: aevb_data.Dataset) -> None:
        """Slider order, reference scores and projection from ``data`` (with the condition
        columns a conditional model reads)."""
        width = self.model.config.input_dim + self.classes
        if data.dim != width:
            raise ValueError(
                f"reference data {data.name}: has {data.dim - data.condition_dim} values per "
                f"row, the model expects {self.model.config.input_dim}"
            )
        self.data_name = data.name
        split = next(s for s in ("valid", "train", "test") if s in data.splits)
        rows = data.split(split)[:REFERENCE_ROWS]

        def about(n: int) -> str:
            return f"{data.name}, {split} split, first {n} rows"

        for score in SCORES:
            if score not in self.detectors:
                some = rows[:NLL_REFERENCE_ROWS] if score == "nll" else rows
                self.sources[score] = about(len(some))
                self.detectors[score] = anomaly.fit_detector(
                    self.model, some, score=score, k=DEFAULT_K, description=about(len(some))
                )
        if self.model.config.analytic_kl:
            values, self.ranked_by = ev.kl_per_dim(self.model, rows), "KL per dimension"
        else:
            values = ev.active_units(self.model, rows)[1]
            self.ranked_by = "variance of the posterior means"
        self.ranked_by += f", {about(len(rows))}"
        order = torch.argsort(values, descending=True, stable=True).tolist()
        self.ranking = [(d, round(float(values[d]), 4)) for d in order]
        if self.code_dim > 2:
            self.projection = self._project(data)

    def _project(self, data: aevb_data.Dataset) -> dict[str, Any]:
        """PCA of the posterior means of the first rows of the test (else validation,
        training) split: points ``(N, 2)``, their labels, and the plane (mean, components)
        so that a clicked point can be mapped back to a code."""
        from sklearn.decomposition import PCA

        split = next(s for s in ("test", "valid", "train") if s in data.splits)
        rows = data.split(split)[:PROJECTION_ROWS]
        means = ev.posterior_means(self.model, rows).double().numpy()
        pca = PCA(n_components=2).fit(means)
        labels = data.labels.get(split)
        return {
            "points": np.round(pca.transform(means), 4).tolist(),
            "labels": None if labels is None else labels[: len(rows)].tolist(),
            "mean": pca.mean_.tolist(),
            "components": pca.components_.tolist(),
            "explained": [round(float(v), 4) for v in pca.explained_variance_ratio_],
            "about": f"PCA of the posterior means of {data.name}, {split} split, "
            f"first {len(rows)} rows",
        }

    def info(self) -> dict[str, Any]:
        """What the page needs to lay itself out (JSON-ready)."""
        return {
            "name": self.name,
            "image_shape": list(self.image_shape),
            "code_dim": self.code_dim,
            "classes": self.classes,
            "likelihood": self.model.config.likelihood,
            "data": self.data_name,
            "dims": [{"dim": d, "value": v} for d, v in self.ranking],
            "ranked_by": self.ranked_by,
            "map": "manifold" if self.code_dim == 2 else "projection" if self.projection else None,
            "scores": {s: self.sources[s] for s in SCORES if s in self.detectors},
            "curve": self.curve is not None,
            "card": self.card is not None,
        }

    # -- what requests ask ------------------------------------------------------------------

    @contextlib.contextmanager
    def _using(self) -> Iterator[None]:
        """The model for one request: one caller at a time, no gradients."""
        with self._lock, torch.no_grad():
            yield

    def _code(self, z: Sequence[float], name: str = "z") -> torch.Tensor:
        """``z`` as a checked code ``(Nz,)`` of the model's dtype and device."""
        param = next(self.model.parameters())
        values = torch.as_tensor(z, dtype=torch.float64)
        if values.shape != (self.code_dim,):
            raise ValueError(
                f"{name} has {values.numel()} values: expected {self.code_dim}, the model's "
                "code size"
            )
        if not torch.isfinite(values).all() or values.abs().max() > Z_LIMIT:
            raise ValueError(f"{name}: expected finite values in [-{Z_LIMIT:g}, {Z_LIMIT:g}]")
        return values.to(device=param.device, dtype=param.dtype)

    def _condition(self, label: int | None, n: int) -> torch.Tensor | None:
        """One-hot ``label`` ``(n, C)`` for a conditional model, None otherwise (errors
        name a missing, needless or out-of-range label)."""
        if self.classes and label is None:
            raise ValueError(
                f"label: this model is conditional: expected a class in [0, {self.classes})"
            )
        labels = None if label is None else torch.full((n,), int(label))
        return self.model.as_condition(labels, n)

    def _rows(self, x: torch.Tensor, condition: torch.Tensor | None) -> torch.Tensor:
        """Data ``(n, D)`` with the condition columns ``(n, C)`` appended, if any."""
        return x if condition is None else torch.cat([x, condition.to(x)], dim=1)

    def _decode(self, z: torch.Tensor, condition: torch.Tensor | None) -> torch.Tensor:
        """Means of p(x|z) for codes ``(n, Nz)``: ``(n, D)`` on the CPU."""
        return self.model.decode(z, condition).mean.float().cpu()

    def decode(self, z: Sequence[float], label: int | None = None) -> bytes:
        """PNG of the mean of p(x|z) for one code ``z`` ``(Nz,)``."""
        code = self._code(z)[None]
        condition = self._condition(label, 1)
        with self._using():
            x = self._decode(code, condition)
        return png_bytes(x, self.image_shape)

    def manifold(self, label: int | None = None) -> tuple[bytes, list[float]]:
        """The manifold of a 2-D latent space (:func:`viz.manifold_grid`): the PNG of its
        ``MANIFOLD_SIDE`` x ``MANIFOLD_SIDE`` tiles and the latent value at the centre of
        each column (ascending; rows go from high to low)."""
        if self.code_dim != 2:
            raise LookupError(f"the manifold needs a 2-D latent space, not {self.code_dim}-D")
        self._condition(label, 1)  # checks the label
        if label not in self._manifolds:  # two first requests may both draw it: harmless
            with self._using():
                images = viz.manifold_grid(self.model, MANIFOLD_SIDE, label=label or 0)
            picture = png_bytes(images, self.image_shape, nrow=MANIFOLD_SIDE)
            values = viz.manifold_values(MANIFOLD_SIDE).tolist()
            self._manifolds[label] = (picture, values)
        return self._manifolds[label]

    def samples(
        self, n: int, *, temperature: float = 1.0, seed: int = 0, label: int | None = None
    ) -> list[tuple[bytes, list[float]]]:
        """``n`` draws from the prior (:func:`aevb.apps.synthetic.draw`, as ``aevb sample``
        draws), each as its PNG and the posterior mean of the drawn image, the code that
        the sliders and interpolations use."""
        condition = self._condition(label, n)
        labels = None if label is None else torch.full((n,), int(label))
        with self._using():
            x = torch.from_numpy(
                synthetic.draw(self.model, n, labels=labels, temperature=temperature, seed=seed)
            )
            codes = ev.posterior_means(self.model, self._rows(x, condition))
        return [(png_bytes(x[i : i + 1], self.image_shape), codes[i].tolist()) for i in range(n)]

    def interpolate(
        self, a: Sequence[float], b: Sequence[float], steps: int, label: int | None = None
    ) -> list[bytes]:
        """PNGs of the means of p(x|z_t) at ``steps`` codes evenly spaced from ``a`` to
        ``b`` (both ``(Nz,)``), ends included."""
        za, zb = self._code(a, "a"), self._code(b, "b")
        t = torch.linspace(0.0, 1.0, steps, dtype=za.dtype, device=za.device)[:, None]
        condition = self._condition(label, steps)
        with self._using():
            x = self._decode((1 - t) * za + t * zb, condition)
        return [png_bytes(x[i : i + 1], self.image_shape) for i in range(steps)]

    def upload(
        self, data: bytes, *, invert: bool = False, label: int | None = None, k: int = DEFAULT_K
    ) -> dict[str, Any]:
        """An uploaded PNG/JPEG as the model sees it: the converted input, its
        reconstruction, its posterior mean and its anomaly scores (negative ELBO and
        importance-sampled negative log-likelihood with ``k`` samples, nats), each with its
        percentile among the reference scores when there are any."""
        row = torch.from_numpy(read_image(data, self.image_shape, invert=invert))[None]
        rows = self._rows(row, self._condition(label, 1))
        with self._using():
            code = ev.posterior_means(self.model, rows)[0]
            reconstruction = self.model.reconstruct(rows).float().cpu()
            values = {s: self._score(rows, s, k) for s in SCORES}
        scores = {}
        for score, value in values.items():
            detector = self.detectors.get(score)
            entry: dict[str, Any] = {"value": value, "percentile": None, "reference": None}
            if detector is not None:
                entry["percentile"] = float(detector.percentile_of(np.array([value]))[0])
                entry["reference"] = self.sources[score]
                if self.sources[score] == "anomaly.json":
                    entry["flagged"] = value > detector.threshold
            scores[score] = entry
        return {
            "input": png_bytes(row, self.image_shape),
            "reconstruction": png_bytes(reconstruction, self.image_shape),
            "z": code.tolist(),
            "scores": scores,
        }

    def _score(self, rows: torch.Tensor, score: str, k: int) -> float:
        """One score of one row, with the settings of its reference detector."""
        detector = self.detectors.get(score)
        draws = detector.n_samples if detector else 1
        seed = detector.seed if detector else 0
        value = anomaly.anomaly_scores(
            self.model, rows, score=score, k=k, n_samples=draws, seed=seed
        )
        return float(value[0])
