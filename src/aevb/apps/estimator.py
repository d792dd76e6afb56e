"""scikit-learn estimators on aevb's VAE: :class:`VAEEstimator` (a transformer and density
model) and :class:`VAEOutlierDetector` (an outlier detector), for pipelines, grid searches
and cross-validation. docs/estimator.md explains the choices made here.

Both train through :func:`aevb.run.train_or_resume` into a run folder (a temporary one
unless ``run_dir`` is given), score through :mod:`aevb.evaluate` and
:func:`aevb.apps.anomaly.anomaly_scores`, and store the model as safetensors + JSON
(:mod:`aevb.io`), also when pickled. Rows ``X`` are ``(N, D)``: NumPy arrays, lists or
pandas DataFrames of numeric columns.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import numbers
import os
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    OutlierMixin,
    TransformerMixin,
)
from sklearn.utils import check_array, check_random_state
from sklearn.utils.validation import check_is_fitted

try:
    from sklearn.utils.validation import validate_data
except ImportError:  # pragma: no cover - scikit-learn < 1.6
    raise ImportError("aevb.apps.estimator needs scikit-learn >= 1.6 (validate_data)") from None

from aevb import __version__
from aevb import io as aevb_io
from aevb.apps.anomaly import SCORES, anomaly_scores, check_contamination, flags
from aevb.atomic import atomic_dir, write_text
from aevb.config import check_choice, check_positive, to_dict, with_defaults
from aevb.data.dataset import Dataset
from aevb.data.identity import data_identity, identity_differences
from aevb.data.validation import ROW_LIKELIHOODS as LIKELIHOODS
from aevb.data.validation import check_finite, in_unit_interval
from aevb.evaluate import posterior_means
from aevb.inputs import check_rows
from aevb.models import VAE, VAEConfig
from aevb.run import train_or_resume
from aevb.runfolder import RunFolder
from aevb.training import TrainConfig, TrainingInterrupted, resolve_device

ESTIMATOR_FILE = "estimator.json"
"""The estimator's parameters and fitted attributes, beside the model it wraps (a folder
written by :meth:`VAEEstimator.save`, or the run folder of a fit with ``run_dir``)."""
FORMAT = 1
SCORE_SEED = 0
"""Seed of the Monte Carlo noise of every score: the same rows in the same order get the
same scores."""
_FITTED = (
    "n_features_in_",
    "feature_names_in_",
    "likelihood_",
    "mean_",
    "scale_",
    "history_",
    "offset_",
)
"""The fitted attributes ``estimator.json`` holds (those a fit set)."""
EXPECTED_FAILED_CHECKS = {
    check: (
        "score_samples (and a detector's decision_function and predict) is a Monte Carlo "
        "estimate: a generator seeded at every call draws the noise for the rows in the "
        "order given, so a row's score moves, within the Monte Carlo error, with the rows "
        "scored beside it"
    )
    for check in ("check_methods_subset_invariance", "check_methods_sample_order_invariance")
}
"""The checks of ``sklearn.utils.estimator_checks`` both estimators fail, with the reason
(for ``parametrize_with_checks(..., expected_failed_checks=...)``)."""
_TRAIN_KEYS = ("optimizer", "lr", "lr_schedule", "batch_size", "n_samples", "beta", "device")
"""The TrainConfig fields an estimator sets that a resumed run must share (the budget may
grow; the seed only starts a run)."""


class VAEEstimator(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """A variational autoencoder (Kingma & Welling 2013) as a scikit-learn transformer and
    density model.

    ``fit(X)`` trains a VAE on rows ``X`` ``(N, D)``; ``transform(X)`` gives the posterior
    means E_q[z|x] ``(N, latent_dim)``; ``inverse_transform(Z)`` the decoder's means
    ``(N, D)``; ``score_samples(X)`` the importance-sampled log-likelihood log p(x) of each
    row with ``k`` samples (nats, in the units of ``X``; higher = more normal); ``score(X)``
    its mean; ``sample(n)`` draws new rows from the model.

    Likelihood: ``"auto"`` picks Bernoulli when every value of ``X`` lies in [0, 1] (pixel
    intensities, binary or proportion data), else a Gaussian with an identity mean and a
    per-value variance output by the decoder, fitted to columns standardised by ``mean_``
    and ``scale_``. ``score_samples`` adds the log-Jacobian of that standardisation
    (-sum(log scale_)), so log-likelihoods are densities of ``X`` itself. The choice is
    ``likelihood_`` and shows in ``repr``.

    Parameters (each maps onto :class:`aevb.models.VAEConfig` or
    :class:`aevb.training.TrainConfig`, which check them when ``fit`` starts):
        latent_dim: latent dimensions Nz (``VAEConfig.latent_dim``).
        hidden: hidden widths of the encoder; the decoder uses them reversed.
        likelihood: ``"auto"``, ``"bernoulli"`` (needs values in [0, 1]) or ``"gaussian"``.
        epochs: passes over ``X``.
        batch_size: minibatch size; clamped to the number of rows when ``X`` has fewer,
            so a fit on 10 rows trains on full batches of 10.
        lr: Adam's (or Adagrad's) step size.
        lr_schedule: ``"constant"`` (the default), or ``"cosine"`` / ``"linear"``: the
            step size decays from ``lr`` at the first step to 0 at the end of the fit
            (``TrainConfig.lr_schedule``). A resumed fit with more ``epochs`` stretches
            the decay, so its rate jumps up (with a ``RuntimeWarning``).
        optimizer: ``"adam"`` or ``"adagrad"`` (the paper's; slower to converge).
        beta: weight of the KL term (1 = the ELBO; beta-VAE otherwise).
        n_samples: draws L of z per row in the training objective (and in the detector's
            "elbo" and "recon-prob" scores).
        k: importance samples of ``score_samples`` (more = a tighter, slower estimate).
        random_state: None, an int or a ``numpy.random.RandomState``: the seed of the
            initialisation, minibatch order and noise (same int, same fit).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"auto"``.
        verbose: 0 = silent (the default, for loops such as grid searches); 1 or more =
            a progress bar and one line per epoch on stderr.
        run_dir: None = train in a temporary folder, deleted once the model is read;
            a path = train into that run folder (checkpoints, ``metrics.csv``,
            ``estimator.json``), resumed by a later ``fit`` on the same data with the
            same settings (``epochs`` may grow). Leave None in cross-validation: the
            folds are other data.

    Fitted attributes: ``model_`` (the :class:`aevb.models.VAE`), ``n_features_in_``,
    ``feature_names_in_`` (DataFrames with string column names), ``likelihood_``,
    ``mean_`` and ``scale_`` ``(D,)`` (0 and 1 for Bernoulli), ``history_`` (one dict per
    evaluation: examples, epoch, train_bound in nats of the standardised rows, ...).

    Saving: :meth:`save` / :meth:`load` write and read a folder (``config.json`` +
    ``model.safetensors`` as :func:`aevb.io.save_model` writes them, and
    ``estimator.json``); no pickle is involved. ``pickle.dumps(estimator)`` works (joblib,
    ``GridSearchCV(n_jobs>1)``): the model goes into the pickle as those same
    safetensors + JSON files, never as torch pickles. Like any pickle, load it only from a
    trusted source; share models with :meth:`save`.

    scikit-learn's ``check_estimator`` passes every check but the two of
    :data:`EXPECTED_FAILED_CHECKS` (``check_methods_subset_invariance``,
    ``check_methods_sample_order_invariance``): ``score_samples`` is a Monte Carlo
    estimate whose noise is drawn for the rows in the order given, so a row's score
    depends, within the estimate's Monte Carlo error, on the rows scored with it.
    ``transform`` is exact and passes both.
    """

    def __init__(
        self,
        latent_dim: int = 20,
        hidden: tuple[int, ...] = (500,),
        likelihood: str = "auto",
        *,
        epochs: float = 100.0,
        batch_size: int = 100,
        lr: float = 1e-3,
        lr_schedule: str = "constant",
        optimizer: str = "adam",
        beta: float = 1.0,
        n_samples: int = 1,
        k: int = 100,
        random_state: int | np.random.RandomState | None = None,
        device: str = "cpu",
        verbose: int = 0,
        run_dir: str | os.PathLike | None = None,
    ) -> None:
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.likelihood = likelihood
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.lr_schedule = lr_schedule
        self.optimizer = optimizer
        self.beta = beta
        self.n_samples = n_samples
        self.k = k
        self.random_state = random_state
        self.device = device
        self.verbose = verbose
        self.run_dir = run_dir

    # ---- fitting ---------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> VAEEstimator:
        """Train the VAE on rows ``X`` ``(N, D)``; ``y`` is ignored. Returns ``self``."""
        self._check_params()
        rows = self._train(X)
        self._fit_threshold(rows)
        if self.run_dir is not None:
            write_text(Path(self.run_dir) / ESTIMATOR_FILE, self._record())
        return self

    def _train(self, X: Any) -> torch.Tensor:
        """Train on ``X`` and set the fitted attributes; returns the standardised rows,
        float32 ``(N, D)``."""
        X = self._validated(X, reset=True)
        likelihood = self._resolve_likelihood(X)
        gaussian = likelihood == "gaussian"
        mean = X.mean(axis=0) if gaussian else np.zeros(X.shape[1])
        scale = X.std(axis=0) if gaussian else np.ones(X.shape[1])
        scale[scale <= 1e-12 * np.maximum(1.0, np.abs(mean))] = 1.0  # constant columns
        rows = ((X - mean) / scale).astype(np.float32)
        model_config, train_config = self._configs(X.shape, likelihood)
        data = Dataset(name="X", train=rows, likelihood=likelihood)
        with self._run_folder() as run:
            self._check_resumable(run, model_config, train_config, data)

            def start() -> tuple[VAE, TrainConfig]:
                with torch.random.fork_rng(devices=[]):  # leave the global RNG as it was
                    torch.manual_seed(train_config.seed)
                    return VAE(model_config), train_config

            quiet = self.verbose == 0
            result = train_or_resume(
                run, data, start, epochs=self.epochs, quiet=quiet, log_evaluations=not quiet
            )
            model = aevb_io.load_model(RunFolder(run).checkpoint, device=train_config.device)
        self.model_ = model.eval()
        self.likelihood_ = likelihood
        self.mean_, self.scale_ = mean, scale
        self.history_ = [dict(row) for row in result.history]
        return torch.as_tensor(rows)

    def _validated(self, X: Any, *, reset: bool) -> np.ndarray:
        """``X`` as float64 ``(N, D)`` after scikit-learn's checks (2-D, numbers, rows,
        the fit's width and column names unless ``reset``) and ours: numeric DataFrame
        columns, finite values (a one-line message)."""
        X = validate_data(self, _numeric(X), dtype=np.float64, ensure_all_finite=False, reset=reset)
        check_finite(X, "X")
        return X

    def _fit_threshold(self, rows: torch.Tensor) -> None:
        """What a fit sets after training, from the standardised rows: nothing here (the
        detector's ``offset_``)."""

    def _check_params(self) -> None:
        """The estimator's own parameters (the configs check theirs)."""
        name = type(self).__name__
        check_choice(name, "likelihood", self.likelihood, ("auto", *LIKELIHOODS))
        check_positive(name, "k", self.k)
        if not isinstance(self.verbose, numbers.Integral) or self.verbose < 0:
            raise ValueError(f"{name}.verbose={self.verbose!r}: expected an integer >= 0")

    def _resolve_likelihood(self, X: np.ndarray) -> str:
        """``likelihood``, with "auto" resolved for ``X``; Bernoulli refuses values outside
        [0, 1]."""
        inside = in_unit_interval(X)
        if self.likelihood == "auto":
            return "bernoulli" if inside else "gaussian"
        if self.likelihood == "bernoulli" and not inside:
            raise ValueError(
                f"likelihood='bernoulli': X has values in [{X.min():g}, {X.max():g}], "
                "expected [0, 1]; use likelihood='gaussian' or 'auto'"
            )
        return self.likelihood

    def _configs(self, shape: tuple[int, int], likelihood: str) -> tuple[VAEConfig, TrainConfig]:
        """The model's and the training's configs for ``shape`` ``(N, D)`` rows."""
        hidden = self.hidden
        model = VAEConfig(
            input_dim=shape[1],
            latent_dim=_plain(self.latent_dim),
            hidden=tuple(_plain(h) for h in (hidden if np.iterable(hidden) else [hidden])),
            likelihood=likelihood,
            gaussian_mean="identity",  # standardised columns are not in (0, 1)
            init="default",  # PyTorch's: with Adam it starts learning sooner than N(0, 0.01)
        )
        check_positive(type(self).__name__, "batch_size", self.batch_size)
        train = TrainConfig(
            optimizer=self.optimizer,
            lr=_plain(self.lr),
            lr_schedule=self.lr_schedule,
            batch_size=min(_plain(self.batch_size), shape[0]),
            n_samples=_plain(self.n_samples),
            beta=_plain(self.beta),
            epochs=_plain(self.epochs),
            seed=_seed(self.random_state),
            device=str(resolve_device(self.device)),
        )
        return model, train

    @contextlib.contextmanager
    def _run_folder(self) -> Iterator[Path]:
        """``run_dir``, or a temporary folder removed afterwards."""
        if self.run_dir is not None:
            yield Path(self.run_dir)
            return
        with tempfile.TemporaryDirectory(prefix="aevb-estimator-") as tmp:
            try:
                yield Path(tmp) / "run"
            except TrainingInterrupted as e:  # its checkpoint is about to be removed
                raise KeyboardInterrupt(
                    f"fit stopped by {signal.Signals(e.signum).name} after {e.examples:,} "
                    "examples; nothing was kept (fit with run_dir= to keep a run that resumes)"
                ) from None

    def _check_resumable(
        self, run: Path, model_config: VAEConfig, train_config: TrainConfig, data: Dataset
    ) -> None:
        """Refuse to resume a run of ``run_dir`` with other settings or data than this fit's
        (the seed aside: a resumed run goes on with its own random numbers)."""
        folder = RunFolder(run)
        if not folder.has_checkpoint():
            return
        meta = folder.meta()
        then = {**with_defaults(TrainConfig, meta.get("train_config", {})), **folder.model_config()}
        now = {**to_dict(train_config), **to_dict(model_config)}
        keys = [f.name for f in dataclasses.fields(VAEConfig)] + list(_TRAIN_KEYS)
        changes = [f"{k} {then.get(k)!r} -> {now[k]!r}" for k in keys if then.get(k) != now[k]]
        changes += identity_differences(meta.get("data_identity") or {}, data_identity(data))
        if changes:
            raise ValueError(
                f"run_dir={str(run)!r} holds a run of other settings or data "
                f"({'; '.join(changes[:3])}); fit with the run's, or pass another run_dir "
                "(or remove the folder) to start anew"
            )

    # ---- using a fitted model ---------------------------------------------------------
    def _rows(self, X: Any) -> torch.Tensor:
        """Rows ``X`` checked against the fit (width, names, finite) and standardised as
        the training rows were: float32 ``(N, D)``."""
        check_is_fitted(self)
        X = self._validated(X, reset=False)
        rows = torch.as_tensor(((X - self.mean_) / self.scale_).astype(np.float32))
        return check_rows(self.model_, rows, name="X")  # a Bernoulli model: values in [0, 1]

    def transform(self, X: Any) -> np.ndarray:
        """Posterior means E_q[z|x] of rows ``X`` ``(N, D)``: float64 ``(N, latent_dim)``."""
        return posterior_means(self.model_, self._rows(X)).double().numpy()

    def inverse_transform(self, Z: Any) -> np.ndarray:
        """The decoder's means E[x|z] for codes ``Z`` ``(N, latent_dim)``, in the units of
        ``X``: float64 ``(N, D)``."""
        check_is_fitted(self)
        Z = check_array(Z, dtype=np.float32, ensure_all_finite=False)
        check_finite(Z, "Z")
        if Z.shape[1] != self.latent_dim:
            raise ValueError(
                f"Z has {Z.shape[1]} columns, but {type(self).__name__} is expecting "
                f"{self.latent_dim} (latent_dim)"
            )
        with torch.no_grad():
            z = torch.as_tensor(Z).to(next(self.model_.parameters()).device)
            return self._unscaled(self.model_.decode(z).mean)

    def _unscaled(self, rows: torch.Tensor) -> np.ndarray:
        """Standardised rows ``(N, D)`` back in the units of ``X``: float64 ``(N, D)``."""
        return rows.double().cpu().numpy() * self.scale_ + self.mean_

    def score_samples(self, X: Any) -> np.ndarray:
        """log p(x) of every row of ``X`` ``(N, D)`` by importance sampling with ``k``
        samples (Burda et al. 2015; a lower bound in expectation): float64 ``(N,)``, nats,
        in the units of ``X``; higher = more normal."""
        return self._log_density(self._rows(X))

    def _log_density(self, rows: torch.Tensor) -> np.ndarray:
        """The score of :meth:`score_samples` for standardised rows ``(N, D)``: minus
        the anomaly score, plus the standardisation's log-Jacobian."""
        name, k, draws = self._score_name(), self.k, self.n_samples
        scores = anomaly_scores(
            self.model_, rows, score=name, k=k, n_samples=draws, seed=SCORE_SEED
        )
        return -scores - np.log(self.scale_).sum()

    def _score_name(self) -> str:
        """The anomaly score (:data:`aevb.apps.anomaly.SCORES`) that ``score_samples``
        negates: the importance-sampled negative log-likelihood."""
        return "nll"

    def score(self, X: Any, y: Any = None) -> float:
        """Mean of :meth:`score_samples` over the rows of ``X`` (nats per row); ``y`` is
        ignored. What ``GridSearchCV`` maximises when given no ``scoring``."""
        return float(np.mean(self.score_samples(X)))

    def sample(
        self,
        n: int = 1,
        random_state: int | np.random.RandomState | None = None,
        *,
        mean: bool = False,
    ) -> np.ndarray:
        """``n`` new rows from the model, in the units of ``X``: float64 ``(n, D)``.

        z ~ p(z), then x ~ p(x|z) (Bernoulli rows are 0/1); with ``mean``, the decoder's
        mean E[x|z] instead (smooth pictures, as ``aevb sample`` draws them).
        """
        check_is_fitted(self)
        if not isinstance(n, numbers.Integral) or n < 1:
            raise ValueError(f"n={n!r}: expected a whole number of rows >= 1")
        device = next(self.model_.parameters()).device
        generator = torch.Generator(device).manual_seed(_seed(random_state))
        with torch.no_grad():
            z = self.model_.prior.sample(int(n), generator=generator, device=device)
            p = self.model_.decode(z)
            return self._unscaled(p.mean if mean else p.sample(generator=generator)[0])

    @property
    def _n_features_out(self) -> int:
        """Output columns of :meth:`transform` (named by ``get_feature_names_out``)."""
        return self.latent_dim

    def __repr__(self, N_CHAR_MAX: int = 700) -> str:
        text = super().__repr__(N_CHAR_MAX)
        if not hasattr(self, "likelihood_"):
            return text
        on = " on standardised columns" if self.likelihood_ == "gaussian" else ""
        return f"{text}  # likelihood_={self.likelihood_!r}{on}"

    # ---- saving -----------------------------------------------------------------------
    def _record(self) -> str:
        """``estimator.json``: class, parameters and fitted attributes (arrays as lists)."""
        params = self.get_params(deep=False)
        if isinstance(params["random_state"], np.random.RandomState):
            params["random_state"] = None  # no JSON form; the fit it seeded is stored
        fitted = {name: getattr(self, name) for name in _FITTED if hasattr(self, name)}
        record = {
            "format": FORMAT,
            "aevb_version": __version__,
            "class": type(self).__name__,
            "params": params,
            "fitted": fitted,
        }
        return json.dumps(record, indent=1, default=_jsonable) + "\n"

    def save(self, path: str | os.PathLike) -> Path:
        """Write the fitted estimator into folder ``path``: ``config.json`` +
        ``model.safetensors`` (an aevb model folder, readable by ``aevb.load``) and
        ``estimator.json``. ``path`` must not exist, be empty, or hold a saved estimator
        (which is replaced). Returns ``path``."""
        check_is_fitted(self)
        path = Path(path)
        if path.exists() and any(path.iterdir()) and not (path / ESTIMATOR_FILE).is_file():
            raise FileExistsError(
                f"{path}: a folder that holds no saved estimator; expected a new or empty "
                "folder, or one written by save()"
            )
        with atomic_dir(path) as tmp:
            aevb_io.save_model(self.model_, tmp)
            write_text(tmp / ESTIMATOR_FILE, self._record())
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, *, device: str | None = None) -> VAEEstimator:
        """The estimator saved in folder ``path`` (by :meth:`save`, or the run folder of a
        fit with ``run_dir``), on ``device`` (default: the one it was fitted with).

        A folder that holds no saved estimator is a one-line :class:`aevb.io.CheckpointError`
        (a ``ValueError``)."""
        path = Path(path)
        if not (path / ESTIMATOR_FILE).is_file():
            raise aevb_io.CheckpointError(
                f"{path}: no {ESTIMATOR_FILE}; expected a folder written by save() or the "
                "run_dir of a fit"
            )
        record = aevb_io.read_json(path / ESTIMATOR_FILE)
        target = {c.__name__: c for c in (VAEEstimator, VAEOutlierDetector)}.get(
            record.get("class")
        )
        if target is None or not issubclass(target, cls) or record.get("format") != FORMAT:
            raise aevb_io.CheckpointError(
                f"{path / ESTIMATOR_FILE}: holds {record.get('class')!r} (format "
                f"{record.get('format')!r}); expected a {cls.__name__} of format {FORMAT}"
            )
        try:
            params = dict(record["params"])
            if isinstance(params.get("hidden"), list):
                params["hidden"] = tuple(params["hidden"])
            if device is not None:
                params["device"] = device
            estimator = target(**params)
            fitted = record["fitted"]
            for name in _FITTED:
                if name in fitted:
                    setattr(estimator, name, _from_json(name, fitted[name]))
        except (KeyError, TypeError, ValueError) as e:
            raise aevb_io.CheckpointError(f"{path / ESTIMATOR_FILE}: {e}") from None
        folder = path if (path / aevb_io.CONFIG_FILE).is_file() else RunFolder(path).checkpoint
        estimator.model_ = aevb_io.load_model(
            folder, device=resolve_device(estimator.device)
        ).eval()
        return estimator

    def __getstate__(self) -> dict[str, Any]:
        """The pickled state: the model as the files :func:`aevb.io.save_model` writes
        (safetensors + JSON bytes), everything else as it is."""
        state = dict(super().__getstate__())  # a copy: object's is the instance's __dict__
        if "model_" in state:
            with tempfile.TemporaryDirectory(prefix="aevb-pickle-") as tmp:
                aevb_io.save_model(state["model_"], tmp)
                state["model_"] = {p.name: p.read_bytes() for p in Path(tmp).iterdir()}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        files = state.get("model_")
        if isinstance(files, dict):
            with tempfile.TemporaryDirectory(prefix="aevb-pickle-") as tmp:
                for name, content in files.items():
                    (Path(tmp) / Path(name).name).write_bytes(content)
                device = resolve_device(state.get("device", "cpu"))
                state = {**state, "model_": aevb_io.load_model(tmp, device=device).eval()}
        super().__setstate__(state)


class VAEOutlierDetector(OutlierMixin, VAEEstimator):
    """An outlier detector for scikit-learn users: a :class:`VAEEstimator` whose
    ``score_samples`` is minus an anomaly score of :mod:`aevb.apps.anomaly`, with a
    threshold fitted on the training data.

    ``fit(X)`` trains the VAE on ``X`` and sets ``offset_``, the ``contamination``
    quantile of ``score_samples(X)``: so that share of the training rows (exactly, up to
    one row, unless scores tie) gets ``decision_function(X) = score_samples(X) - offset_``
    below 0 and ``predict(X) = -1`` (outlier); the others 1 (inlier). On new data from
    the same distribution about ``contamination`` of the rows are flagged.

    Parameters, beside :class:`VAEEstimator`'s:
        contamination: the share of outliers in the training data, in (0, 0.5]; default
            0.1, as scikit-learn's ``EllipticEnvelope`` (there is no "auto" offset: VAE
            scores have no natural zero).
        anomaly_score: ``"nll"`` (default: importance-sampled -log p(x) with ``k``
            samples, so that ``score_samples`` is :class:`VAEEstimator`'s log-likelihood),
            ``"elbo"`` (the negative ELBO: one pass, ``k`` times cheaper) or
            ``"recon-prob"`` (An & Cho's reconstruction probability, ``n_samples``
            draws). Named ``anomaly_score`` because a parameter ``score`` would hide the
            ``score`` method scikit-learn calls. ``"nll-complexity"`` compresses images,
            and this estimator's models are tabular: ``fit`` refuses it (``ValueError``).

    ``score_samples`` = -anomaly score - sum(log scale_): higher = more normal, in nats of
    ``X``. The detector is also a transformer (``transform``, ``sample``, ...), and saves,
    loads and pickles as :class:`VAEEstimator` does (``offset_`` in ``estimator.json``).
    Expected failures of ``check_estimator``: those of :class:`VAEEstimator`.
    """

    def __init__(
        self,
        latent_dim: int = 20,
        hidden: tuple[int, ...] = (500,),
        likelihood: str = "auto",
        *,
        contamination: float = 0.1,
        anomaly_score: str = "nll",
        epochs: float = 100.0,
        batch_size: int = 100,
        lr: float = 1e-3,
        lr_schedule: str = "constant",
        optimizer: str = "adam",
        beta: float = 1.0,
        n_samples: int = 1,
        k: int = 100,
        random_state: int | np.random.RandomState | None = None,
        device: str = "cpu",
        verbose: int = 0,
        run_dir: str | os.PathLike | None = None,
    ) -> None:
        super().__init__(
            latent_dim,
            hidden,
            likelihood,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            lr_schedule=lr_schedule,
            optimizer=optimizer,
            beta=beta,
            n_samples=n_samples,
            k=k,
            random_state=random_state,
            device=device,
            verbose=verbose,
            run_dir=run_dir,
        )
        self.contamination = contamination
        self.anomaly_score = anomaly_score

    def fit(self, X: Any, y: Any = None) -> VAEOutlierDetector:
        """Train on rows ``X`` ``(N, D)`` and set ``offset_`` (see the class docstring);
        ``y`` is ignored. Returns ``self``."""
        return super().fit(X, y)

    def _check_params(self) -> None:
        super()._check_params()
        check_contamination(self.contamination)
        check_choice(type(self).__name__, "anomaly_score", self.anomaly_score, SCORES)

    def _fit_threshold(self, rows: torch.Tensor) -> None:
        """``offset_``: the ``contamination`` quantile of the training rows' scores."""
        scores = self._log_density(rows)
        self.offset_ = float(np.percentile(scores, 100.0 * self.contamination))

    def _score_name(self) -> str:
        return self.anomaly_score

    def decision_function(self, X: Any) -> np.ndarray:
        """``score_samples(X) - offset_``: float64 ``(N,)``, negative for outliers."""
        check_is_fitted(self, "offset_")
        return self.score_samples(X) - self.offset_

    def predict(self, X: Any) -> np.ndarray:
        """1 for inliers, -1 for outliers (``decision_function`` below 0): int64 ``(N,)``."""
        return flags(-self.decision_function(X), 0.0)


def _numeric(X: Any) -> Any:
    """``X``, after refusing a DataFrame with non-numeric columns (named in the message);
    pandas is recognised by its attributes, not imported."""
    if not (hasattr(X, "dtypes") and hasattr(X, "columns")):
        return X
    kinds = [(c, getattr(t, "kind", None)) for c, t in zip(X.columns, X.dtypes, strict=True)]
    bad = [str(c) for c, kind in kinds if kind is not None and kind not in "biuf"]
    if bad:
        shown = ", ".join(repr(c) for c in bad[:5]) + (
            f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        )
        raise ValueError(
            f"X has non-numeric column(s) {shown}: expected numbers only (encode or drop them)"
        )
    return X


def _seed(random_state: Any) -> int:
    """A torch seed from scikit-learn's ``random_state``: an int as it is, else a draw
    from the RandomState (None: NumPy's global one)."""
    if isinstance(random_state, numbers.Integral):
        check_random_state(random_state)  # refuses ints outside [0, 2**32)
        return int(random_state)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def _plain(value: Any) -> Any:
    """A NumPy scalar (as grids of ``np.arange`` give) as the Python number the configs
    store in JSON; anything else as it is."""
    return value.item() if isinstance(value, np.generic) else value


def _jsonable(value: Any) -> Any:
    """What ``json`` cannot write by itself: arrays as lists, NumPy scalars as numbers,
    paths as text."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} has no JSON form")


def _from_json(name: str, value: Any) -> Any:
    """A fitted attribute read back from ``estimator.json``."""
    if name in ("mean_", "scale_"):
        return np.asarray(value, dtype=np.float64)
    if name == "feature_names_in_":
        return np.asarray(value, dtype=object)
    return value
