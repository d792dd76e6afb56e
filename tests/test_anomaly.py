"""Anomaly scores, thresholds and labels (aevb.apps.anomaly): a closed form for the
reconstruction probability, the input-complexity term's known answers, the contamination
rate honoured on held-out data, outliers scored above inliers, the detector's file, and
bad input."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from aevb.apps import anomaly
from aevb.apps.anomaly import Detector, anomaly_scores, fit_detector
from aevb.data import load_dataset
from aevb.io import CheckpointError
from aevb.models import VAE, VAEConfig
from aevb.run import train
from aevb.training import TrainConfig

from helpers import ppca_vae


def test_reconstruction_probability_matches_its_closed_form():
    """Linear-Gaussian decoder, Gaussian q: E_q[N(x; Wz + b, s^2 I)] is
    N(x; W mu + b, s^2 I + W diag(var) W^T). The Monte Carlo log-mean of L draws must agree
    within 4 standard errors (delta method: sd of the mean weight over the mean weight)."""
    model, _ = ppca_vae(dim=5, latent=2, sigma=0.5, exact_posterior=False)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 5, generator=g, dtype=torch.double)
    n = 20000
    estimate = anomaly.reconstruction_log_probability(
        model, x, n_samples=n, generator=torch.Generator().manual_seed(2)
    )
    q = model.posterior(x)
    w, b = model.decoder_head.weight, model.decoder_head.bias
    for i in range(len(x)):
        cov = 0.25 * torch.eye(5, dtype=torch.double) + w @ torch.diag(q.logvar[i].exp()) @ w.T
        exact = torch.distributions.MultivariateNormal(w @ q.mean[i] + b, cov).log_prob(x[i])
        # the weights' spread, from fresh draws: sd(log-mean) ~ sd(w) / (mean(w) sqrt(n))
        z = q.mean[i] + q.std[i] * torch.randn(n, 2, generator=g, dtype=torch.double)
        log_w = torch.distributions.Normal(z @ w.T + b, 0.5).log_prob(x[i]).sum(-1)
        weights = torch.exp(log_w - log_w.max())
        tolerance = 4 * (weights.std() / weights.mean()).item() / math.sqrt(n)
        assert abs(estimate[i].item() - exact.item()) < tolerance + 1e-9


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory):
    """A small VAE trained on the digits' training split, and the dataset."""
    data = load_dataset("digits")
    torch.manual_seed(0)
    model = VAE(
        VAEConfig(
            input_dim=data.dim,
            latent_dim=8,
            hidden=(64,),
            init="default",
            image_shape=data.image_shape,
        )
    )
    config = TrainConfig(epochs=30, batch_size=50, optimizer="adam", lr=3e-3, seed=0)
    train(model, data, config, tmp_path_factory.mktemp("run") / "digits", quiet=True)
    return model.eval(), data


@pytest.mark.parametrize("score", anomaly.SCORES)
def test_threshold_honours_the_contamination_rate_on_held_out_data(digits_model, score):
    """Fitted on the validation split at 10%, the detector flags 10% of the unseen test
    split, within 4 standard deviations of the two binomial draws (reference quantile and
    test share)."""
    model, data = digits_model
    rate = 0.1
    detector = fit_detector(model, data.valid, score=score, contamination=rate, k=20)
    flagged = (detector.predict(model, data.test) == -1).mean()
    sd = math.sqrt(rate * (1 - rate) * (1 / len(data.valid) + 1 / len(data.test)))
    assert abs(flagged - rate) < 4 * sd, (score, flagged)


@pytest.mark.parametrize("score", [s for s in anomaly.SCORES if s != "nll-complexity"])
def test_obvious_outliers_score_above_inliers(digits_model, score):
    """Inverted digits (1 - x) and uniform noise score above every 99th-percentile
    normal digit, and AUROC against them is near 1. Not "nll-complexity": subtracting the
    PNG length (hundreds of nats, largest for noise) from the Bernoulli density of grey
    levels ranks such outliers as normal here (docs/anomaly.md)."""
    model, data = digits_model
    normal = data.test[:200]
    rng = np.random.default_rng(0)
    outliers = np.concatenate([1 - data.test[200:250], rng.random((50, data.dim), np.float32)])
    s_in = anomaly_scores(model, normal, score=score, k=20)
    s_out = anomaly_scores(model, outliers, score=score, k=20)
    assert s_out.min() > np.quantile(s_in, 0.99)
    labels = np.r_[np.zeros(len(s_in)), np.ones(len(s_out))]
    assert anomaly.evaluation(np.r_[s_in, s_out], labels.astype(bool))["auroc"] > 0.99


def test_scores_are_deterministic_and_match_the_bounds(digits_model):
    """The same seed gives the same scores; "elbo" is minus the lower bound, "nll" minus
    the importance-sampled log-likelihood, which is at least the ELBO on average."""
    model, data = digits_model
    x = data.test[:100]
    a = anomaly_scores(model, x, score="nll", k=50, seed=3)
    np.testing.assert_array_equal(a, anomaly_scores(model, x, score="nll", k=50, seed=3))
    elbo = anomaly_scores(model, x, score="elbo")
    assert a.mean() < elbo.mean()


def test_detector_round_trips_through_json(digits_model, tmp_path):
    model, data = digits_model
    detector = fit_detector(model, data.valid, score="recon-prob", contamination=0.05, n_samples=3)
    detector.save(tmp_path)
    again = Detector.load(tmp_path)
    assert again == detector
    np.testing.assert_array_equal(
        again.predict(model, data.test), detector.predict(model, data.test)
    )
    # the reference percentiles place the reference's own threshold at 95%
    assert abs(detector.percentile_of(np.array([detector.threshold]))[0] - 95) < 1.0


def test_detector_file_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no anomaly.json"):
        Detector.load(tmp_path)
    (tmp_path / "anomaly.json").write_text(json.dumps({"detector": {"score": "x"}}))
    with pytest.raises(CheckpointError, match="not an aevb anomaly detector"):
        Detector.load(tmp_path)
    (tmp_path / "anomaly.json").write_text("{trunc")
    with pytest.raises(CheckpointError):
        Detector.load(tmp_path)


@pytest.mark.parametrize("rate", [0, -0.1, 0.51, 1.0, float("nan"), "0.1"])
def test_contamination_outside_its_range_is_refused(rate):
    with pytest.raises(ValueError, match=r"contamination=.*expected .* in \(0, 0.5\]"):
        anomaly.check_contamination(rate)


def test_labels_of_the_wrong_length_or_values_are_refused():
    with pytest.raises(ValueError, match=r"expected one label per example, \(3,\)"):
        anomaly.check_labels([0, 1], 3)
    with pytest.raises(ValueError, match="expected 0/1"):
        anomaly.check_labels([0, 2, 1], 3)
    np.testing.assert_array_equal(anomaly.check_labels([1, -1, 1], 3), [False, True, False])
    with pytest.raises(ValueError, match="both normal examples and anomalies"):
        anomaly.evaluation(np.zeros(3), np.zeros(3, bool))


def test_scores_refuse_rows_the_model_cannot_score(digits_model):
    model, data = digits_model
    bad = data.test[:5].copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        anomaly_scores(model, bad)
    with pytest.raises(ValueError, match="expected 64"):
        anomaly_scores(model, data.test[:5, :10])
    with pytest.raises(ValueError, match="score="):
        anomaly_scores(model, data.test[:5], score="mahalanobis")


def test_complexity_is_the_png_length_in_nats():
    """A constant image compresses to a few dozen bytes, uniform 8-bit noise to about its
    raw size (784 bytes) or more; L(x) is the PNG's bytes * 8 * ln 2 exactly, and the
    grey levels are rounded to 8 bits (k / 255 is lossless)."""
    rng = np.random.default_rng(0)
    constant = np.full((1, 784), 0.5)
    noise = rng.integers(0, 256, (1, 784)) / 255
    lengths = anomaly.complexity(np.concatenate([constant, noise]), (28, 28))
    nats_per_byte = 8 * math.log(2)
    assert lengths[0] < 100 * nats_per_byte
    assert lengths[1] > 784 * nats_per_byte
    buffer = io.BytesIO()
    pixels = np.rint(noise * 255).astype(np.uint8).reshape(28, 28)
    Image.fromarray(pixels).save(buffer, format="PNG", optimize=True, compress_level=9)
    assert lengths[1] == len(buffer.getvalue()) * nats_per_byte
    # (H, W, 1) is greyscale; (H, W, 3) is RGB
    assert anomaly.complexity(noise, (28, 28, 1))[0] == lengths[1]
    assert anomaly.complexity(rng.random((2, 48)), (4, 4, 3)).shape == (2,)
    with pytest.raises(ValueError, match=r"grey levels in \[0, 1\]"):
        anomaly.complexity(constant + 1, (28, 28))
    with pytest.raises(ValueError, match=r"expected rows \(N, 756\)"):
        anomaly.complexity(constant, (27, 28))


def test_nll_complexity_is_nll_minus_the_complexity(digits_model):
    """Serrà et al.'s score is exactly the "nll" score (same seed) minus L(x)."""
    model, data = digits_model
    x = data.test[:50]
    nll = anomaly_scores(model, x, score="nll", k=20, seed=4)
    corrected = anomaly_scores(model, x, score="nll-complexity", k=20, seed=4)
    np.testing.assert_array_equal(corrected, nll - anomaly.complexity(x, data.image_shape))


def test_nll_complexity_needs_an_image_model():
    """A tabular model (no image_shape) gets a ValueError naming what is missing, from
    anomaly_scores and from the scikit-learn detector alike."""
    from aevb.apps.estimator import VAEOutlierDetector

    model = VAE(
        VAEConfig(input_dim=4, latent_dim=2, likelihood="gaussian", gaussian_mean="identity")
    )
    x = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32)
    with pytest.raises(ValueError, match="no image_shape"):
        anomaly_scores(model, x, score="nll-complexity")
    detector = VAEOutlierDetector(anomaly_score="nll-complexity", epochs=1)
    with pytest.raises(ValueError, match="no image_shape"):
        detector.fit(x)
