"""Priors: mixture of Gaussians and VampPrior against direct computations."""

import math

import pytest
import torch

from aevb.distributions import DiagonalGaussian, StandardNormal
from aevb.models import VAE, VAEConfig
from aevb.objectives import ELBOObjective, compute_terms, resolve_estimator
from aevb.priors import GaussianMixturePrior, mixture_log_prob


def direct_mixture(z, means, logvars, weights):
    """log sum_k w_k N(z; mu_k, var_k), one component at a time."""
    per = torch.stack(
        [DiagonalGaussian(means[k], logvars[k]).log_prob(z) for k in range(len(weights))], -1
    )
    return torch.logsumexp(per + weights.log(), -1)


def test_mixture_log_prob_matches_the_direct_sum_over_components():
    g = torch.Generator().manual_seed(0)
    means, logvars = torch.randn(7, 3, generator=g), torch.randn(7, 3, generator=g)
    w = torch.rand(7, generator=g) + 0.1
    w = w / w.sum()
    z = 2 * torch.randn(5, 4, 3, generator=g, dtype=torch.float64)
    fast = mixture_log_prob(z, means.double(), logvars.double(), w.double().log())
    torch.testing.assert_close(
        fast, direct_mixture(z, means.double(), logvars.double(), w.double())
    )


def test_one_component_mixture_at_zero_is_the_standard_normal():
    prior = GaussianMixturePrior(4, 1)
    with torch.no_grad():
        prior.means.zero_()
    z = torch.randn(10, 4, dtype=torch.float64)
    torch.testing.assert_close(
        prior.double().log_prob(z), StandardNormal(4).log_prob(z), rtol=0, atol=1e-12
    )


def test_vamp_prior_is_the_average_of_the_encoders_posteriors_at_the_pseudo_inputs():
    model = VAE(VAEConfig(input_dim=6, latent_dim=3, hidden=(8,), prior="vamp", prior_components=5))
    model.double()
    u = model.prior.pseudo_inputs.detach().clamp(0, 1)
    q = model.encode(u)  # the same encoder, applied by hand
    z = torch.randn(2, 9, 3, dtype=torch.float64)
    expected = direct_mixture(z, q.mean, q.logvar, torch.full((5,), 0.2, dtype=torch.float64))
    torch.testing.assert_close(model.prior.log_prob(z), expected)
    torch.testing.assert_close(model.log_prior(z), expected)


def test_vamp_prior_of_a_hierarchy_is_over_the_top_layer():
    cfg = VAEConfig(
        input_dim=6, latent_dim=4, upper_latents=(2,), upper_hidden=(5,), hidden=(8,),
        prior="vamp", prior_components=3,
    )  # fmt: skip
    model = VAE(cfg).double()
    q_top = model.upward[0](model.encode(model.prior.pseudo_inputs.clamp(0, 1)).mean)
    z2 = torch.randn(7, 2, dtype=torch.float64)
    w = torch.full((3,), 1 / 3, dtype=torch.float64)
    torch.testing.assert_close(
        model.prior.log_prob(z2), direct_mixture(z2, q_top.mean, q_top.logvar, w)
    )


def test_vamp_prior_of_a_top_down_hierarchy_mixes_the_encoders_own_posteriors():
    """Tomczak & Welling's HVAE: p(z_2) = (1/K) sum_k q(z_2|u_k), q(z_2|x) the encoder."""
    cfg = VAEConfig(
        input_dim=6, latent_dim=4, upper_latents=(2,), upper_hidden=(5,), hidden=(8,),
        prior="vamp", prior_components=3, hierarchy="top-down",
    )  # fmt: skip
    model = VAE(cfg).double()
    q_top = model.encode(model.prior.pseudo_inputs.clamp(0, 1))
    assert q_top.mean.shape == (3, 2)
    z2 = torch.randn(7, 2, dtype=torch.float64)
    w = torch.full((3,), 1 / 3, dtype=torch.float64)
    torch.testing.assert_close(
        model.prior.log_prob(z2), direct_mixture(z2, q_top.mean, q_top.logvar, w)
    )


@pytest.mark.parametrize("prior", ["mog", "vamp"])
def test_mixture_priors_sample_their_own_density(prior):
    """Draws from p(z) have the mixture's mean and variance (tolerance: 5 standard errors)."""
    model = VAE(VAEConfig(input_dim=6, latent_dim=2, hidden=(8,), prior=prior, prior_components=4))
    if prior == "mog":
        p = model.prior
        means, logvars, w = p.means, p.logvars, p.logits.softmax(-1)
    else:
        q = model.prior.posteriors()
        means, logvars, w = q.mean, q.logvar, torch.full((4,), 0.25)
    means, var, w = means.detach(), logvars.detach().exp(), w.detach()
    mean = (w[:, None] * means).sum(0)
    second = (w[:, None] * (var + means**2)).sum(0)
    total_var = second - mean**2
    n = 40_000
    z = model.prior.sample(n, generator=torch.Generator().manual_seed(1))
    assert z.shape == (n, 2)
    se = (total_var / n).sqrt()
    assert ((z.mean(0) - mean).abs() < 5 * se).all(), (z.mean(0), mean, se)
    # variance of the sample variance ~ (m4 - var^2) / n; a loose bound: 10 * var * sqrt(2/n)
    assert ((z.var(0) - total_var).abs() < 10 * total_var * math.sqrt(2 / n)).all()


def test_temperature_scales_the_spread_of_mixture_components():
    prior = GaussianMixturePrior(3, 1)
    cold = prior.sample(20_000, generator=torch.Generator().manual_seed(0), temperature=0.5)
    # one component: N(mu, 0.25 I); the sample std has standard error 0.5 / sqrt(2n)
    assert ((cold.std(0) - 0.5).abs() < 5 * 0.5 / math.sqrt(2 * 20_000)).all()
    torch.testing.assert_close(cold.mean(0), prior.means[0].detach(), atol=0.02, rtol=0)


def test_non_standard_priors_use_the_monte_carlo_kl():
    model = VAE(VAEConfig(input_dim=6, latent_dim=3, hidden=(8,), prior="mog", prior_components=2))
    assert not model.config.analytic_kl
    assert resolve_estimator(model, "auto") == "A"
    with pytest.raises(ValueError, match="closed-form KL"):
        resolve_estimator(model, "B")
    x = torch.rand(4, 6).round()
    t = compute_terms(model, x, n_samples=3, generator=torch.Generator().manual_seed(0))
    assert t.kl is None
    loss, metrics = ELBOObjective(estimator="A")(model, x)
    loss.backward()
    assert model.prior.means.grad is not None and model.prior.means.grad.abs().sum() > 0
    torch.testing.assert_close(metrics["kl"], metrics["reconstruction"] - metrics["bound"])


def test_mixture_kl_monte_carlo_matches_a_large_sample_estimate():
    """E_q[log q - log p] from Terms agrees with an independent 200k-sample estimate."""
    torch.manual_seed(0)
    model = VAE(
        VAEConfig(input_dim=5, latent_dim=2, hidden=(4,), prior="mog", init="default")
    ).double()
    x = torch.rand(1, 5, dtype=torch.float64).round()
    q = model.encode(x)
    z = q.rsample(200_000, generator=torch.Generator().manual_seed(2))
    values = (q.log_prob(z) - model.prior.log_prob(z))[:, 0]
    reference, se = values.mean().item(), values.std().item() / math.sqrt(len(values))
    t = compute_terms(model, x, n_samples=20_000, generator=torch.Generator().manual_seed(3))
    se_small = values.std().item() / math.sqrt(20_000)
    assert abs(t.kl_monte_carlo.item() - reference) < 5 * math.hypot(se, se_small)


def test_mixture_density_stays_exact_for_narrow_components_and_under_bf16_autocast():
    """VampPrior-like components (K = 500, Nz = 40, std 0.05): the expanded quadratic form
    cancels large terms, so it must not run in low precision."""
    g = torch.Generator().manual_seed(0)
    means = torch.randn(500, 40, generator=g)
    logvars = torch.full((500, 40), -6.0)
    log_w = torch.full((500,), -math.log(500))
    z = means[:8] + 0.05 * torch.randn(8, 40, generator=g)  # near a component, as in training
    exact = direct_mixture(z.double(), means.double(), logvars.double(), log_w.double().exp())
    torch.testing.assert_close(mixture_log_prob(z, means, logvars, log_w).double(), exact)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_autocast = mixture_log_prob(z, means, logvars, log_w)
    torch.testing.assert_close(under_autocast.double(), exact, atol=1e-3, rtol=0)


def test_importance_sampling_encodes_the_pseudo_inputs_once_and_scores_the_same(monkeypatch):
    from aevb.evaluate import log_likelihood
    from aevb.priors import VampPrior

    torch.manual_seed(0)
    model = VAE(VAEConfig(input_dim=6, latent_dim=3, hidden=(8,), prior="vamp", prior_components=5))
    x = torch.rand(7, 6).round()
    plain = model.prior.log_prob
    chunks = []

    def unfixed(self, z):  # what log_prob computed before: components every call
        chunks.append(z.shape[0])
        return plain(z) if self._fixed is None else mixture_log_prob(z, *self.components())

    calls = {"n": 0}
    original = VampPrior.components

    def counted(self):
        calls["n"] += 1
        return original(self)

    monkeypatch.setattr(VampPrior, "components", counted)
    fast = log_likelihood(model, x, k=40, max_rows=70, generator=torch.Generator().manual_seed(1))
    assert calls["n"] == 1  # 4 chunks of 10 samples, one encoding of the pseudo-inputs
    monkeypatch.setattr(VampPrior, "log_prob", unfixed)
    slow = log_likelihood(model, x, k=40, max_rows=70, generator=torch.Generator().manual_seed(1))
    assert chunks == [10, 10, 10, 10] and calls["n"] == 2 + 4
    torch.testing.assert_close(fast, slow)
    assert model.prior._fixed is None  # nothing left behind after evaluation


def test_fixed_components_refuse_to_be_used_with_gradients_on():
    model = VAE(VAEConfig(input_dim=6, latent_dim=3, hidden=(8,), prior="vamp", prior_components=5))
    z = torch.randn(4, 3)
    with model.prior.fixed():
        with torch.no_grad():
            inside = model.prior.log_prob(z)
        with pytest.raises(RuntimeError, match="fixed.*gradients are on"):
            model.prior.log_prob(z)
    torch.testing.assert_close(inside, model.prior.log_prob(z).detach())
