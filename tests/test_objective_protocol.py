"""The objective protocol: every registered objective checks its model once, returns a loss
and per-example metrics, evaluates and names its bound; a new one plugs in from one file."""

import inspect
import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from aevb import objectives, training
from aevb.data import Dataset
from aevb.evaluate import log_likelihood
from aevb.models import VAE, VAEConfig
from aevb.objectives import ELBOObjective, IWAEObjective, compute_terms, make_objective
from aevb.run import train
from aevb.training import TrainConfig

from helpers import tiny_vae

SETTINGS = {
    "elbo": TrainConfig(),
    "iwae": TrainConfig(objective="iwae", n_samples=3),
    "wake-sleep": TrainConfig(algorithm="wake-sleep"),
}


@pytest.mark.parametrize("name", SETTINGS)
def test_every_registered_objective_offers_the_protocol(name):
    model, x = tiny_vae(), torch.rand(7, 6).round()
    objective = make_objective(SETTINGS[name])
    assert objective.check(model) == {"estimator": "B"}  # "auto" resolved for this model
    objective = make_objective(TrainConfig(**{**vars(SETTINGS[name]), "estimator": "B"}))
    loss, metrics = objective(model, x, torch.Generator().manual_seed(0), None, 1.0)
    assert loss.shape == () and loss.requires_grad
    assert set(metrics) == {"bound", "reconstruction", "kl"}
    assert all(v.shape == (7,) and not v.requires_grad for v in metrics.values())
    bound = objective.bound(model, x, generator=torch.Generator().manual_seed(1))
    assert bound.shape == (7,) and bound.device.type == "cpu"
    assert objective.bound_name == ("iwae-k3" if name == "iwae" else "elbo")


def test_the_iwae_objective_is_evaluated_by_its_own_bound():
    model, x = tiny_vae(), torch.rand(9, 6).round()
    got = IWAEObjective(n_samples=5).bound(model, x, generator=torch.Generator().manual_seed(2))
    want = log_likelihood(model, x, k=5, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_each_rule_is_refused_by_its_objective_with_one_message():
    mog = VAE(VAEConfig(input_dim=6, latent_dim=2, hidden=(8,), prior="mog"))
    with pytest.raises(ValueError, match="free bits need a closed-form KL per dimension"):
        ELBOObjective(free_bits=0.5).check(mog)
    with pytest.raises(ValueError, match="estimator B needs a closed-form KL"):
        ELBOObjective(estimator="B").check(mog)
    assert ELBOObjective(estimator="auto").check(mog) == {"estimator": "A"}
    for extra in ({"beta": 2.0}, {"free_bits": 0.1}, {"kl_warmup_examples": 10}):
        with pytest.raises(ValueError, match=r"TrainConfig.objective='iwae': .* ELBO only"):
            TrainConfig(objective="iwae", **extra)
    conditional = VAE(VAEConfig(input_dim=6, latent_dim=2, hidden=(8,), condition_dim=2))
    for model in (mog, conditional):
        with pytest.raises(ValueError, match="supports the paper's model only"):
            make_objective(TrainConfig(algorithm="wake-sleep")).check(model)


def test_the_trainer_knows_no_objective_by_kind():
    source = inspect.getsource(training.Trainer)
    for word in ("analytic_kl", "wake", "iwae", "ELBOObjective", "free_bits >", "estimator="):
        assert word not in source, word


# The worked example of docs/architecture.md: a new objective in one file.
@dataclass(frozen=True)
class RenyiObjective:
    """The Rényi bound of order alpha (Li & Turner 2016) with L samples:
    1/(1 - alpha) log mean_l w_l^(1 - alpha); alpha = 0 is the IWAE bound, alpha -> 1 the
    ELBO."""

    n_samples: int = 1
    alpha: float = 0.5
    bound_name = "renyi"

    @classmethod
    def from_config(cls, config) -> "RenyiObjective":
        return cls(n_samples=config.n_samples)

    def check(self, model) -> dict:
        return {}

    def renyi(self, terms) -> torch.Tensor:
        scaled = (1 - self.alpha) * terms.log_weights
        return (torch.logsumexp(scaled, 0) - math.log(self.n_samples)) / (1 - self.alpha)

    def __call__(self, model, x, generator=None, shard=None, kl_weight=1.0):
        terms = compute_terms(model, x, n_samples=self.n_samples, generator=generator, shard=shard)
        bound = self.renyi(terms)
        metrics = {"bound": bound, "reconstruction": terms.reconstruction}
        metrics["kl"] = terms.kl_monte_carlo
        return -bound.mean(), {k: v.detach() for k, v in metrics.items()}

    def bound(self, model, x, generator=None):
        with torch.no_grad():
            return self.renyi(
                compute_terms(model, x, n_samples=self.n_samples, generator=generator)
            )


def test_a_new_objective_registers_in_one_place_and_trains_unchanged(tmp_path, monkeypatch):
    # what objectives.register("renyi") does, undone after the test
    monkeypatch.setitem(objectives._OBJECTIVES, "renyi", RenyiObjective.from_config)
    x = torch.rand(6, 6).round()
    terms = compute_terms(tiny_vae(), x, n_samples=4, generator=torch.Generator().manual_seed(0))
    iwae = torch.logsumexp(terms.log_weights, 0) - math.log(4)
    torch.testing.assert_close(RenyiObjective(4, alpha=0.0).renyi(terms), iwae)
    rng = np.random.default_rng(0)
    rows = (rng.random((120, 6)) < 0.3).astype(np.float32)
    data = Dataset("toy", train=rows[:100], valid=rows[100:], likelihood="bernoulli")
    config = TrainConfig(objective="renyi", n_samples=3, batch_size=20, max_examples=400)
    result = train(tiny_vae(), data, config, tmp_path / "renyi", quiet=True)
    state = training.aevb_io.read_json(tmp_path / "renyi" / "checkpoint" / "trainer.json")
    assert state["state"]["bound"] == "renyi" and result.examples == 400
    assert all(math.isfinite(row["valid_bound"]) for row in result.history)


def test_wake_sleep_refuses_the_settings_of_aevbs_bound():
    """objective, beta, free bits and warm-up shape AEVB's bound: wake-sleep has none."""
    from aevb.training import TrainConfig

    for extra in (
        {"objective": "iwae"},
        {"beta": 2.0},
        {"free_bits": 0.1},
        {"kl_warmup_examples": 5},
    ):
        with pytest.raises(ValueError, match="algorithm='wake-sleep'"):
            TrainConfig(algorithm="wake-sleep", **extra)
    TrainConfig(algorithm="wake-sleep")  # the defaults are fine
