"""A prior added in one place (aevb.priors.PRIORS) works everywhere: the worked example of
docs/architecture.md ("Add a prior in one file")."""

import math

import pytest
import torch

from aevb.io import load_model, save_model
from aevb.models import VAE, VAEConfig
from aevb.objectives import ELBOObjective, lower_bound
from aevb.priors import PRIORS


class LaplacePrior:
    """p(z) = prod_i Laplace(z_i; 0, 1/sqrt(2)): unit variance, heavier tails than N(0, I)."""

    def __init__(self, dim):
        self.dim, self.scale = dim, 1 / math.sqrt(2)

    def log_prob(self, z):  # (..., Nz) -> (...), nats
        return (-math.log(2 * self.scale) - z.abs() / self.scale).sum(-1)

    def sample(self, n=1, *, generator=None, device=None, temperature=1.0, dtype=None):
        u = torch.rand((n, self.dim), generator=generator, device=device, dtype=dtype) - 0.5
        return -temperature * self.scale * u.sign() * torch.log1p(-2 * u.abs())

    rsample = sample  # no parameters: the draws need no gradient


@pytest.fixture
def laplace(monkeypatch):
    monkeypatch.setitem(PRIORS, "laplace", lambda site: LaplacePrior(site.dim))


def test_a_registered_prior_trains_evaluates_samples_and_saves(laplace, tmp_path):
    torch.manual_seed(0)
    model = VAE(VAEConfig(input_dim=6, latent_dim=2, hidden=(8,), prior="laplace"))
    z = torch.randn(5, 2)
    want = torch.distributions.Laplace(0.0, 1 / math.sqrt(2)).log_prob(z).sum(-1)
    torch.testing.assert_close(model.prior.log_prob(z), want)
    x = torch.rand(4, 6).round()
    objective = ELBOObjective(estimator="auto", n_samples=2)
    assert objective.check(model) == {"estimator": "A"}  # no closed-form KL: Monte Carlo
    loss, metrics = ELBOObjective(estimator="A", n_samples=2)(model, x)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(metrics["bound"]).all()
    assert model.sample(3, generator=torch.Generator().manual_seed(1)).shape == (3, 6)
    loaded = load_model(save_model(model, tmp_path / "m"))
    g = torch.Generator
    torch.testing.assert_close(
        lower_bound(loaded, x, estimator="A", generator=g().manual_seed(2)),
        lower_bound(model, x, estimator="A", generator=g().manual_seed(2)),
    )


def test_an_unregistered_prior_is_refused_by_name():
    with pytest.raises(ValueError, match=r"VAEConfig.prior='laplace': expected one of"):
        VAEConfig(input_dim=6, prior="laplace")
