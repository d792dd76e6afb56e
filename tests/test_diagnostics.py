"""Diagnostics of the code: the mutual information estimate and the collapse warning."""

import json
import math

import numpy as np
import pytest
import torch

from aevb import evaluate as ev
from aevb.cli import main
from aevb.diagnose import collapse_warning, training_trend
from aevb.io import save_model
from aevb.models import VAE, VAEConfig

from helpers import tiny_vae


def two_gaussians_model(m: float) -> VAE:
    """q(z|x) = N(+m, 1) for rows with x_0 = 1 and N(-m, 1) for rows with x_0 = 0."""
    model = tiny_vae(latent_dim=1, hidden=(), seed=0)
    with torch.no_grad():  # encoder head: (mean, logvar) = (2m x_0 - m, 0)
        model.encoder_head.weight.zero_()
        model.encoder_head.bias.zero_()
        model.encoder_head.weight[0, 0] = 2 * m
        model.encoder_head.bias[0] = -m
    return model


def test_mutual_information_matches_quadrature_for_two_gaussians():
    m, n = 1.0, 2000
    # I = KL(N(m,1) || (N(m,1) + N(-m,1)) / 2) by quadrature, and the sd of one term
    z = np.linspace(-m - 12, m + 12, 40001)
    p, p_minus = (np.exp(-((z - s) ** 2) / 2) / math.sqrt(2 * math.pi) for s in (m, -m))
    term = np.log(p) - np.log(0.5 * p + 0.5 * p_minus)
    exact = np.trapezoid(p * term, z)
    sd = math.sqrt(np.trapezoid(p * term**2, z) - exact**2)
    x = torch.zeros(n, 6)
    x[::2, 0] = 1  # half the rows of each kind
    mi = ev.mutual_information(
        two_gaussians_model(m), x, generator=torch.Generator().manual_seed(0)
    )
    assert 0.3 < exact < math.log(2)
    assert abs(mi - exact) < 4 * sd / math.sqrt(n)  # 4 standard errors (sd/sqrt(n) = 0.013)


def test_mutual_information_of_a_barely_trained_model_is_not_negative():
    torch.manual_seed(0)  # paper initialisation, N(0, 0.01^2): every q(z|x) nearly the same
    model = VAE(VAEConfig(input_dim=6, latent_dim=2, hidden=(8,), init="paper"))
    x = (torch.rand(200, 6, generator=torch.Generator().manual_seed(1)) < 0.5).float()
    values = [
        ev.mutual_information(model, x, generator=torch.Generator().manual_seed(s))
        for s in range(5)
    ]
    # the Monte Carlo average is -4.4e-05 with seed 0 (noise around a true value ~1e-5):
    # clipped to 0, the least mutual information there is
    assert values[0] == 0.0
    assert all(0.0 <= v < 1e-3 for v in values)


def history(bounds, *, every=100, valid=None):
    rows = [{"examples": every * (i + 1), "train_bound": b} for i, b in enumerate(bounds)]
    for row, v in zip(rows, valid or [], strict=False):
        row["valid_bound"] = v
    return rows


PLATEAU = [-200, -150, -120, -110, -104.6, -104.4, -104.2, -104.1, -104.05, -104.0]
RISING = [-200, -190, -180, -170, -160, -150, -140, -130, -120, -110]


def test_training_trend_reads_plateau_and_improvement():
    flat = training_trend(history(PLATEAU))
    assert not flat["improving"] and flat["split"] == "train"
    assert flat["recent"] == pytest.approx(0.6) and flat["total"] == pytest.approx(96.0)
    assert training_trend(history(RISING))["improving"]  # 40 nats at -110 in the last half
    # a very poor first evaluation does not hide later progress (31 nats at -49)
    steep_start = training_trend(history([-4000, -236, -111, -78, -49]))
    assert steep_start["improving"] and steep_start["recent"] < 0.1 * steep_start["total"]
    # the threshold is 1% of the bound: 0.9 nats at -100 in the second half is a plateau
    assert not training_trend(history([-300, -100.9, -100.5, -100.2, -100.0]))["improving"]
    assert training_trend(history([-300, -101.5, -101, -100.4, -100.0]))["improving"]
    assert training_trend(history([-200, -100]))["improving"]  # too short to see a plateau
    assert not training_trend(history([-100, -120, -130]))["improving"]  # never improved
    # the validation bound decides where every evaluation has one
    both = training_trend(history(RISING, valid=PLATEAU))
    assert both["split"] == "valid" and not both["improving"]


def test_collapse_warning_tells_under_training_from_collapse():
    assert collapse_warning(2, 4, history(PLATEAU)) is None  # half active: no warning
    collapsed = collapse_warning(0, 4, history(PLATEAU))
    assert "posterior collapse" in collapsed and "--kl-warmup" in collapsed
    for short in (history(RISING), history([-200, -100])):
        message = collapse_warning(0, 4, short)
        assert "under-trained rather than collapsed" in message and "train longer" in message
        assert "--kl-warmup" not in message
    unknown = collapse_warning(1, 4, None)
    assert "no training history" in unknown and "--kl-warmup" in unknown


@pytest.mark.parametrize(
    ("bounds", "expected", "absent"),
    [(PLATEAU, "posterior collapse", "under-trained"), (RISING, "under-trained", "--kl-warmup")],
)
def test_evaluate_reads_the_runs_history_before_advising(
    tmp_path, capsys, bounds, expected, absent
):
    model = VAE(VAEConfig(input_dim=64, latent_dim=4, hidden=(), init="default"))
    with torch.no_grad():  # an encoder that ignores its input: no dimension active
        model.encoder_head.weight.zero_()
    run = tmp_path / "run"
    save_model(model, run / "best")
    (run / "checkpoint").mkdir()
    state = {"examples": 1000, "history": history(bounds)}
    (run / "checkpoint" / "trainer.json").write_text(json.dumps({"data": "digits", "state": state}))
    argv = ["evaluate", str(run / "best"), "--data", "digits", "-k", "0", "--max-examples", "50"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "only 0 of 4 latent dimensions are active" in err
    assert expected in err and absent not in err
