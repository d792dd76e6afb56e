"""MCEM: it learns a toy generative model, keeps its chains, and tunes its HMC step."""

import math
import re

import pytest
import torch

import aevb.baselines.mcem as mcem_module
from aevb import evaluate as ev
from aevb.baselines.mcem import MCEM, MCEMConfig, fit_mcem
from aevb.config import from_dict, to_dict
from aevb.marginal import log_marginal_hmc

from helpers import tiny_vae

N, D = 90, 12


pytestmark = pytest.mark.usefixtures("one_thread")


def toy_data() -> torch.Tensor:
    """N binary vectors: one of 3 random 12-pixel prototypes each, 10% of pixels flipped."""
    g = torch.Generator().manual_seed(0)
    prototypes = torch.bernoulli(torch.full((3, D), 0.5), generator=g)
    labels = torch.randint(0, 3, (N,), generator=g)
    flips = torch.bernoulli(torch.full((N, D), 0.1), generator=g)
    return (prototypes[labels] + flips) % 2


def toy_model():
    return tiny_vae(input_dim=D, latent_dim=2, hidden=(8,), seed=0)


def paired_se(diff: torch.Tensor) -> float:
    return diff.std().item() / math.sqrt(diff.numel())


def test_mcem_raises_the_marginal_likelihood_beyond_independent_pixels():
    x = toy_data()
    model = toy_model()
    encoder_before = [p.clone() for p in model.encoder.parameters()]
    ll_before = ev.log_likelihood(model, x, k=1000, generator=torch.Generator().manual_seed(1))
    MCEM(model, x, MCEMConfig(lr=0.1, batch_size=30)).run(2700)
    ll_after = ev.log_likelihood(model, x, k=1000, generator=torch.Generator().manual_seed(1))
    gain = ll_after - ll_before
    assert gain.mean() > 1.0 and gain.mean() > 10 * paired_se(gain), gain.mean()
    # the best model without latent variables: independent pixels at their frequencies;
    # beating it means the chains' z carry the prototype
    p = x.mean(0).clamp(1e-3, 1 - 1e-3)
    independent = (x * p.log() + (1 - x) * (1 - p).log()).sum(1)
    margin = ll_after - independent
    assert margin.mean() > 4 * paired_se(margin), (margin.mean(), paired_se(margin))
    # Appendix D's estimator, which ignores the (untrained) encoder, sees the same model
    hmc_est = log_marginal_hmc(model, x, generator=torch.Generator().manual_seed(2))
    assert (hmc_est - independent).mean() > 4 * paired_se(hmc_est - independent)
    # MCEM never touches the recognition model
    for before, after in zip(encoder_before, model.encoder.parameters(), strict=True):
        assert torch.equal(before, after)


def test_chain_states_persist_across_minibatches_and_epochs(monkeypatch):
    x = toy_data()
    run = MCEM(toy_model(), x, MCEMConfig(batch_size=40))
    initial = run.z.clone()
    calls = []
    real_hmc, real_step = mcem_module.hmc, run.step

    def recording_hmc(log_density, z0, **kwargs):
        out = real_hmc(log_density, z0, **kwargs)
        calls[-1] += (z0.clone(), out.z.clone())
        return out

    def recording_step(idx):
        calls.append((idx.clone(),))
        return real_step(idx)

    monkeypatch.setattr(mcem_module, "hmc", recording_hmc)
    monkeypatch.setattr(run, "step", recording_step)
    run.run(3 * N)  # three epochs, the last minibatch of each a remainder of 10
    assert run.examples_seen == 3 * N and run.epoch == 3
    state = initial.clone()
    for idx, z0, z1 in calls:
        # every chain starts where that example's chain last stopped
        assert torch.equal(z0, state[idx])
        state[idx] = z1
    assert torch.equal(state, run.z)
    assert (run.z != initial).any(1).all()  # every chain has moved


def test_step_size_adapts_toward_the_target_acceptance():
    x = toy_data()
    run = MCEM(toy_model(), x, MCEMConfig(batch_size=30, step_size=5.0, lr=0.1))
    run.run(30)
    first = run.acceptance_rate
    run.run(600)
    n1, r1 = run.examples_seen, run.acceptance_rate
    run.run(1200)
    n2, r2 = run.examples_seen, run.acceptance_rate
    late = (r2 * n2 - r1 * n1) / (n2 - n1)  # acceptance over the last 1200 proposals
    assert first < 0.5 < late < 1.0, (first, late)
    # the tuning's fixed point is E[accept] = 0.9; the binomial se over 1200 proposals
    # is about 0.01, and the step lags behind a posterior that narrows as the decoder
    # learns (0.87-0.89 over seeds 0-7), so 0.06 is 4 se plus that lag
    assert abs(late - 0.9) < 0.06, late
    assert 0.5 < run.acceptance_rate < 1.0


def test_fit_mcem_returns_a_curve_at_the_evaluation_points():
    x = toy_data()
    model = toy_model()

    def evaluate(m):
        g = torch.Generator().manual_seed(3)
        return {"log_px": ev.log_likelihood(m, x, k=200, generator=g).mean().item()}

    config = MCEMConfig(lr=0.1, batch_size=30)
    history = fit_mcem(model, x, config, points=[0, 300, 600, 900], evaluate=evaluate)
    assert [row["examples"] for row in history] == [0, 300, 600, 900]
    assert history[-1]["log_px"] > history[0]["log_px"] + 1.0
    assert math.isnan(history[0]["acceptance_rate"])
    assert all(0.5 < row["acceptance_rate"] <= 1.0 for row in history[1:])


def test_config_round_trips_and_bad_values_name_the_field():
    config = MCEMConfig(lr=0.05, batch_size=7)
    assert from_dict(MCEMConfig, to_dict(config)) == config
    for kwargs, message in (
        ({"lr": 0.0}, "MCEMConfig.lr=0.0"),
        ({"batch_size": 0}, "MCEMConfig.batch_size=0"),
        ({"n_leapfrog": 0}, "MCEMConfig.n_leapfrog=0"),
        ({"weight_decay": -1.0}, "MCEMConfig.weight_decay=-1.0"),
        ({"target_acceptance": 1.0}, "MCEMConfig.target_acceptance=1.0"),
        ({"jitter": 1.0}, "MCEMConfig.jitter=1.0"),
    ):
        with pytest.raises(ValueError, match=message):
            MCEMConfig(**kwargs)
    with pytest.raises(ValueError, match=r"x_train has shape \(12,\)"):
        MCEM(toy_model(), torch.zeros(D), MCEMConfig())
    for points in ([], [-1], [300, 0]):
        with pytest.raises(ValueError, match=re.escape(f"fit_mcem.points={points}")):
            fit_mcem(toy_model(), toy_data(), MCEMConfig(), points=points, evaluate=dict)
