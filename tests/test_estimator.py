"""The scikit-learn estimators (aevb.apps.estimator): scikit-learn's own estimator checks,
pipelines and grid searches, safe pickles and saved folders, the standardisation's
Jacobian, the detector's contamination rate, and one-line errors for bad input."""

from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from aevb.apps.estimator import EXPECTED_FAILED_CHECKS, VAEEstimator, VAEOutlierDetector
from aevb.io import CheckpointError
from aevb.runfolder import RunFolder

FAST = dict(latent_dim=2, hidden=(8,), epochs=1, k=5)
"""Settings of the tiny estimators scikit-learn's checks fit by the dozen."""
SMALL = dict(latent_dim=8, hidden=(64,), lr=3e-3, k=20, random_state=0)
"""A small model that learns the digits in a few epochs."""


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny tensors: one thread is fastest, and it cannot stall on a busy CPU (set before
    the module's fixtures train)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def digits():
    """The 8x8 digits scaled to [0, 1], split in halves: (X_train, y_train, X_test, y_test)."""
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    order = np.random.default_rng(0).permutation(len(X))
    train, test = order[: len(X) // 2], order[len(X) // 2 :]
    return X[train], y[train], X[test], y[test]


@pytest.fixture(scope="module")
def fitted(digits):
    """A VAEEstimator trained on the digits' training half."""
    return VAEEstimator(epochs=20, **SMALL).fit(digits[0])


@parametrize_with_checks(
    [VAEEstimator(**FAST), VAEOutlierDetector(**FAST)],
    expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS,
)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def test_transform_is_the_same_for_a_row_whatever_the_rows_beside_it(fitted, digits):
    """What the expected failures leave out: transform (posterior means) is exact, so a
    row's code does not depend on the rows transformed with it, nor on their order."""
    X = digits[2][:50]
    full = fitted.transform(X)
    np.testing.assert_allclose(fitted.transform(X[10:20]), full[10:20], rtol=1e-6, atol=1e-6)
    order = np.random.default_rng(1).permutation(len(X))
    np.testing.assert_allclose(fitted.transform(X[order]), full[order], rtol=1e-6, atol=1e-6)


def test_pipeline_with_a_classifier_on_the_codes(digits):
    """VAE codes of the digits (8 dimensions) separate the ten classes well above chance
    (0.1) with a linear classifier."""
    X_train, y_train, X_test, y_test = digits
    pipe = make_pipeline(VAEEstimator(epochs=15, **SMALL), LogisticRegression(max_iter=1000)).fit(
        X_train, y_train
    )
    assert pipe.score(X_test, y_test) > 0.6


def test_grid_search_over_latent_dim(digits):
    """GridSearchCV (cv=2) ranks latent sizes by the held-out log-likelihood (``score``,
    nats per row) and refits the best on all the rows."""
    search = GridSearchCV(
        VAEEstimator(hidden=(32,), epochs=3, lr=3e-3, k=10, random_state=0),
        {"latent_dim": [1, 4]},
        cv=2,
    ).fit(digits[0][:400])
    scores = search.cv_results_["mean_test_score"]
    assert np.isfinite(scores).all() and (scores < 0).all()  # Bernoulli: log p(x) <= 0
    best = [1, 4][int(np.argmax(scores))]
    assert search.best_params_ == {"latent_dim": best}
    assert search.best_estimator_.transform(digits[2][:3]).shape == (3, best)


def test_pickle_holds_safetensors_not_torch_pickles(fitted, digits):
    """A pickled estimator (as joblib sends it to worker processes, e.g. for
    GridSearchCV(n_jobs=2)) gives identical codes and scores, and its model travels as the
    safetensors + JSON files save() writes: nothing of torch is pickled."""
    X = digits[2][:30]
    data = pickle.dumps(fitted)
    assert b"torch" not in data
    again = pickle.loads(data)
    np.testing.assert_array_equal(again.transform(X), fitted.transform(X))
    np.testing.assert_array_equal(again.score_samples(X), fitted.score_samples(X))
    assert set(fitted.__getstate__()["model_"]) == {"config.json", "model.safetensors"}
    assert isinstance(fitted.model_, torch.nn.Module)  # pickling left the estimator whole


def test_save_and_load_round_trip(fitted, digits, tmp_path):
    """save() writes an aevb model folder plus estimator.json; load() gives back the same
    parameters, fitted attributes, codes and scores."""
    X = digits[2][:30]
    folder = fitted.save(tmp_path / "vae")
    assert {p.name for p in folder.iterdir()} == {
        "config.json",
        "model.safetensors",
        "estimator.json",
    }
    loaded = VAEEstimator.load(folder)
    assert loaded.get_params() == fitted.get_params()
    assert repr(loaded) == repr(fitted)
    np.testing.assert_array_equal(loaded.mean_, fitted.mean_)
    assert loaded.history_ == fitted.history_
    np.testing.assert_array_equal(loaded.transform(X), fitted.transform(X))
    np.testing.assert_array_equal(loaded.score_samples(X), fitted.score_samples(X))
    fitted.save(folder)  # a saved estimator may be replaced


def test_load_and_save_refuse_folders_that_are_not_estimators(fitted, tmp_path):
    other = tmp_path / "notes"
    other.mkdir()
    (other / "todo.txt").write_text("keep me")
    with pytest.raises(CheckpointError, match=r"no estimator\.json"):
        VAEEstimator.load(other)
    with pytest.raises(FileExistsError, match="holds no saved estimator"):
        fitted.save(other)
    assert (other / "todo.txt").read_text() == "keep me"
    detector = tmp_path / "detector"
    VAEOutlierDetector(**FAST).fit(np.random.default_rng(0).random((20, 3))).save(detector)
    assert isinstance(VAEEstimator.load(detector), VAEOutlierDetector)  # a subclass is one
    fitted.save(tmp_path / "estimator")
    with pytest.raises(CheckpointError, match="expected a VAEOutlierDetector"):
        VAEOutlierDetector.load(tmp_path / "estimator")


def test_same_random_state_same_fit_and_the_global_rng_untouched():
    X = np.random.default_rng(0).random((40, 5))
    before = torch.get_rng_state()
    a = VAEEstimator(**FAST, random_state=3).fit(X).transform(X)
    assert torch.equal(torch.get_rng_state(), before)
    b = VAEEstimator(**FAST, random_state=3).fit(X).transform(X)
    c = VAEEstimator(**FAST, random_state=4).fit(X).transform(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_likelihood_follows_the_data_and_shows_in_repr():
    rng = np.random.default_rng(0)
    unit = VAEEstimator(**FAST).fit(rng.random((20, 3)))
    assert unit.likelihood_ == "bernoulli"
    assert repr(unit).endswith("# likelihood_='bernoulli'")
    wide = VAEEstimator(**FAST).fit(rng.normal(5.0, 3.0, (20, 3)))
    assert wide.likelihood_ == "gaussian"
    assert repr(wide).endswith("# likelihood_='gaussian' on standardised columns")
    np.testing.assert_array_equal(unit.mean_, 0.0)
    forced = VAEEstimator(**FAST, likelihood="gaussian").fit(rng.random((20, 3)))
    assert forced.likelihood_ == "gaussian"
    assert "likelihood='gaussian'" in repr(forced)


def test_gaussian_log_likelihood_is_in_the_units_of_x():
    """Data rescaled by a and shifted by b standardise to the same rows, so they train
    the same model; their log-densities differ by the Jacobian, -D log a, exactly (up to
    float32 rounding of the standardised rows)."""
    X = np.random.default_rng(0).normal(size=(60, 4)) @ np.diag([1.0, 2.0, 0.5, 1.0])
    a, b = 10.0, -3.0
    settings = dict(FAST, epochs=3, k=50, random_state=0)
    original = VAEEstimator(**settings).fit(X)
    scaled = VAEEstimator(**settings).fit(a * X + b)
    np.testing.assert_allclose(scaled.scale_, a * original.scale_)
    expected = original.score_samples(X) - X.shape[1] * math.log(a)
    np.testing.assert_allclose(scaled.score_samples(a * X + b), expected, atol=1e-3)
    np.testing.assert_allclose(
        scaled.inverse_transform(scaled.transform(a * X + b)),
        a * original.inverse_transform(original.transform(X)) + b,
        rtol=1e-4,
        atol=1e-3,
    )


def test_held_out_digits_score_above_noise(fitted, digits):
    """log p(x) of unseen digits is higher on average than that of uniform noise, by far
    more than 4 standard errors of the difference."""
    normal = fitted.score_samples(digits[2][:300])
    noise = fitted.score_samples(np.random.default_rng(0).random((300, 64)))
    gap = normal.mean() - noise.mean()
    stderr = math.sqrt(normal.var(ddof=1) / len(normal) + noise.var(ddof=1) / len(noise))
    assert gap > 4 * stderr


def test_inverse_transform_and_sample_give_rows_like_x(fitted):
    codes = fitted.transform(fitted.inverse_transform(np.zeros((2, 8))))
    assert codes.shape == (2, 8)
    draws = fitted.sample(5, random_state=0)
    assert draws.shape == (5, 64) and set(np.unique(draws)) <= {0.0, 1.0}  # Bernoulli
    np.testing.assert_array_equal(fitted.sample(5, random_state=0), draws)
    means = fitted.sample(5, random_state=0, mean=True)
    assert ((means > 0) & (means < 1)).all()


def test_detector_flags_the_contamination_share(digits):
    """By construction offset_ is the contamination quantile of the training scores, so
    the share flagged in the training data is the rate within one row (1/n); on unseen
    digits it is the rate within 4 standard deviations of the two binomial shares."""
    X_train, _, X_test, _ = digits
    rate = 0.1
    detector = VAEOutlierDetector(epochs=10, contamination=rate, **SMALL).fit(X_train)
    flagged = detector.predict(X_train) == -1
    assert abs(flagged.mean() - rate) <= 1 / len(X_train)
    held_out = (detector.predict(X_test) == -1).mean()
    sd = math.sqrt(rate * (1 - rate) * (1 / len(X_train) + 1 / len(X_test)))
    assert abs(held_out - rate) < 4 * sd
    noise = np.random.default_rng(0).random((100, 64))
    assert (detector.predict(noise) == -1).all()
    np.testing.assert_allclose(
        detector.decision_function(X_test), detector.score_samples(X_test) - detector.offset_
    )


@pytest.mark.parametrize("score", ["elbo", "recon-prob"])
def test_detector_scores_are_minus_the_anomaly_scores(score):
    from aevb.apps.anomaly import anomaly_scores

    X = np.random.default_rng(0).random((30, 4))
    detector = VAEOutlierDetector(**FAST, anomaly_score=score, n_samples=3, random_state=0)
    detector.fit(X)
    rows = X.astype(np.float32)
    expected = -anomaly_scores(detector.model_, rows, score=score, k=5, n_samples=3)
    np.testing.assert_allclose(detector.score_samples(X), expected)


def test_batch_size_is_clamped_to_the_rows(tmp_path):
    """Fewer rows than batch_size: the run trains on minibatches of all of them."""
    X = np.random.default_rng(0).random((7, 3))
    estimator = VAEEstimator(**FAST, batch_size=100, run_dir=tmp_path / "run").fit(X)
    assert estimator.batch_size == 100  # the parameter is left as given
    assert RunFolder(tmp_path / "run").meta()["train_config"]["batch_size"] == 7


def test_run_dir_is_a_run_folder_that_resumes(tmp_path):
    """With run_dir, a fit writes a run folder that load() reads; a later fit with more
    epochs resumes it and ends where one uninterrupted fit ends."""
    X = np.random.default_rng(0).random((30, 4))
    settings = dict(FAST, random_state=0)
    first = VAEEstimator(**settings, run_dir=tmp_path / "run").fit(X)
    assert (tmp_path / "run" / "checkpoint").is_dir()
    np.testing.assert_array_equal(
        VAEEstimator.load(tmp_path / "run").transform(X), first.transform(X)
    )
    meta = tmp_path / "run" / "checkpoint" / "trainer.json"  # as written before schedules
    stored = json.loads(meta.read_text())
    for key in ("lr_schedule", "lr_decay_start", "lr_final"):
        del stored["train_config"][key]
    meta.write_text(json.dumps(stored))
    resumed = first.set_params(epochs=3).fit(X)
    assert [row["epoch"] for row in resumed.history_] == [1.0, 2.0, 3.0]
    straight = VAEEstimator(**dict(settings, epochs=3), run_dir=tmp_path / "straight").fit(X)
    np.testing.assert_array_equal(resumed.transform(X), straight.transform(X))
    with pytest.raises(ValueError, match=r"run_dir=.* other settings or data \(latent_dim 2 -> 3"):
        VAEEstimator(**dict(settings, latent_dim=3), run_dir=tmp_path / "run").fit(X)
    with pytest.raises(
        ValueError, match=r"other settings or data \(.*train 60 x 4, the run's 30 x 4"
    ):
        VAEEstimator(**settings, run_dir=tmp_path / "run").fit(np.vstack([X, X]))


def test_lr_schedule_decays_over_the_fit():
    """A cosine schedule takes the step size from lr at the first step to 0 at the last,
    along half a cosine: the rate of each epoch's end in history_."""
    X = np.random.default_rng(0).random((40, 4))
    fitted = VAEEstimator(**dict(FAST, epochs=4, lr=2e-3, lr_schedule="cosine")).fit(X)
    rates = [row["lr"] for row in fitted.history_]
    expected = [1e-3 * (1 + math.cos(math.pi * e / 4)) for e in (1, 2, 3, 4)]
    np.testing.assert_allclose(rates, expected, atol=1e-12)
    constant = VAEEstimator(**dict(FAST, epochs=2, lr=2e-3)).fit(X)
    assert [row["lr"] for row in constant.history_] == [2e-3, 2e-3]


def test_fit_is_silent_unless_verbose(capfd):
    X = np.random.default_rng(0).random((20, 3))
    VAEEstimator(**FAST).fit(X)
    assert capfd.readouterr().err == ""
    VAEEstimator(**FAST, verbose=1).fit(X)
    assert "epoch 1.00" in capfd.readouterr().err


# ---- bad input: one-line ValueErrors ---------------------------------------------------
def test_nan_and_inf_are_refused_in_one_line():
    X = np.random.default_rng(0).random((20, 3))
    X[4, 1] = np.nan
    with pytest.raises(
        ValueError,
        match=r"^X: expected finite values, found 1 NaN/inf \(first at index \(4, 1\)\)$",
    ):
        VAEEstimator(**FAST).fit(X)
    fitted = VAEEstimator(**FAST).fit(np.nan_to_num(X))
    X[4, 1] = np.inf
    with pytest.raises(ValueError, match=r"^X: expected finite values, found 1 NaN/inf"):
        fitted.transform(X)
    with pytest.raises(ValueError, match=r"^Z: expected finite values"):
        fitted.inverse_transform([[0.0, np.nan]])


def test_wrong_width_is_refused_by_every_method():
    fitted = VAEOutlierDetector(**FAST).fit(np.random.default_rng(0).random((20, 3)))
    wrong = np.random.default_rng(1).random((5, 4))
    for method in ("transform", "score_samples", "score", "decision_function", "predict"):
        with pytest.raises(
            ValueError, match="X has 4 features, but VAEOutlierDetector is expecting 3"
        ):
            getattr(fitted, method)(wrong)
    with pytest.raises(ValueError, match=r"Z has 3 columns, but VAEOutlierDetector is expecting 2"):
        fitted.inverse_transform(np.zeros((1, 3)))


def test_bernoulli_needs_values_in_the_unit_interval():
    X = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(ValueError, match=r"likelihood='bernoulli': X has values in \[-"):
        VAEEstimator(**FAST, likelihood="bernoulli").fit(X)
    fitted = VAEEstimator(**FAST).fit(np.abs(X) / np.abs(X).max())
    with pytest.raises(ValueError, match=r"X: values in .* expects values in \[0, 1\]"):
        fitted.transform(X)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"likelihood": "poisson"}, r"VAEEstimator.likelihood='poisson': expected one of"),
        ({"k": 0}, r"VAEEstimator.k=0: expected a number > 0"),
        ({"latent_dim": 0}, r"VAEConfig.latent_dim=0: expected a number > 0"),
        ({"optimizer": "sgd"}, r"TrainConfig.optimizer='sgd': expected one of"),
        ({"lr_schedule": "step"}, r"TrainConfig.lr_schedule='step': expected one of"),
        ({"verbose": -1}, r"VAEEstimator.verbose=-1: expected an integer >= 0"),
    ],
)
def test_bad_parameters_are_named_when_fit_starts(params, message):
    estimator = VAEEstimator(**{**FAST, **params})  # scikit-learn: no checks in __init__
    with pytest.raises(ValueError, match=message):
        estimator.fit(np.random.default_rng(0).random((10, 3)))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"contamination": 0.6}, r"contamination=0.6: expected .* in \(0, 0.5\]"),
        ({"anomaly_score": "iwae"}, r"VAEOutlierDetector.anomaly_score='iwae': expected one"),
    ],
)
def test_bad_detector_parameters(params, message):
    with pytest.raises(ValueError, match=message):
        VAEOutlierDetector(**{**FAST, **params}).fit(np.random.default_rng(0).random((10, 3)))


def test_dataframes_of_numbers_and_columns_named_when_not():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.random((20, 3)), columns=["a", "b", "c"])
    fitted = VAEEstimator(**FAST).fit(frame)
    np.testing.assert_array_equal(fitted.feature_names_in_, ["a", "b", "c"])
    with pytest.warns(UserWarning, match="valid feature names"):
        plain = fitted.transform(frame.to_numpy())
    np.testing.assert_array_equal(fitted.transform(frame), plain)
    assert list(fitted.get_feature_names_out()) == ["vaeestimator0", "vaeestimator1"]
    mixed = frame.assign(city=["x"] * 20, kind=pd.Categorical(["u", "v"] * 10))
    with pytest.raises(ValueError, match=r"non-numeric column\(s\) 'city', 'kind'"):
        VAEEstimator(**FAST).fit(mixed)
    with pytest.raises(ValueError, match=r"non-numeric column\(s\) 'city'"):
        fitted.transform(mixed.drop(columns="kind"))


def test_a_signal_during_fit_says_whether_anything_was_kept(tmp_path, monkeypatch, sigint_handled):
    """Ctrl-C during fit: with run_dir the run is checkpointed at that step and a later fit
    resumes it; without, the temporary run is gone, and the message says so."""
    import os
    import signal

    from aevb.training import Trainer, TrainingInterrupted

    original_step = Trainer._step

    def interrupted_step(self, x, bar):
        if self.state.examples == 10:
            os.kill(os.getpid(), signal.SIGINT)
        original_step(self, x, bar)

    X = np.random.default_rng(0).random((30, 4))
    settings = dict(FAST, epochs=2, batch_size=10, random_state=0)
    monkeypatch.setattr(Trainer, "_step", interrupted_step)
    with pytest.raises(KeyboardInterrupt, match=r"SIGINT after 20 examples; nothing was kept"):
        VAEEstimator(**settings).fit(X)
    with pytest.raises(TrainingInterrupted, match=r"SIGINT after 20 examples; checkpoint"):
        VAEEstimator(**settings, run_dir=tmp_path / "run").fit(X)
    monkeypatch.setattr(Trainer, "_step", original_step)
    resumed = VAEEstimator(**settings, run_dir=tmp_path / "run").fit(X)
    straight = VAEEstimator(**settings, run_dir=tmp_path / "straight").fit(X)
    np.testing.assert_array_equal(resumed.transform(X), straight.transform(X))
