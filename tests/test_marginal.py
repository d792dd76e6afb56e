"""Appendix D's HMC estimate of log p(x) against exact and importance-sampled values."""

import math

import pytest
import torch

from aevb import evaluate as ev
from aevb.marginal import log_marginal_hmc

from helpers import ppca_vae, tiny_vae

N = 50


pytestmark = pytest.mark.usefixtures("one_thread")


def ppca_data(exact_posterior: bool):
    """The linear-Gaussian model, N seeded draws x ~ p(x) ``(N, D)`` and their exact log p(x)."""
    model, marginal = ppca_vae(exact_posterior=exact_posterior)
    g = torch.Generator().manual_seed(0)
    eps = torch.randn(N, marginal.mean.shape[0], generator=g, dtype=torch.double)
    x = marginal.mean + eps @ marginal.scale_tril.T
    return model, x, marginal.log_prob(x)


def assert_unbiased_up_to_jensen(err):
    """Mean error within 4 standard errors plus the estimator's own bias allowance.

    The estimate is the log of an unbiased estimate of 1/p(x): by the delta method its
    mean errs upward by about half its variance, var/2. The allowance is twice that, to
    cover the dependence between the fitting and the scoring samples of one chain.
    """
    sd = err.std().item()
    se = sd / math.sqrt(err.numel())
    assert abs(err.mean().item()) < 4 * se + sd**2, (err.mean().item(), se, sd)


def test_estimate_matches_the_exact_log_likelihood():
    model, x, exact = ppca_data(exact_posterior=True)
    est = log_marginal_hmc(model, x, generator=torch.Generator().manual_seed(1))
    assert est.shape == (N,) and est.dtype == torch.double
    err = est - exact
    assert_unbiased_up_to_jensen(err)
    assert err.std() < 0.25, err.std()  # a good q: the per-example noise is small


def test_estimate_does_not_depend_on_the_encoder():
    # the same generative model with a deliberately wrong q(z|x): shifted and too wide
    good, x, exact = ppca_data(exact_posterior=True)
    bad, _, _ = ppca_data(exact_posterior=False)
    g = torch.Generator().manual_seed(2)
    from_bad = log_marginal_hmc(bad, x, generator=g)
    from_prior = log_marginal_hmc(good, x, start="prior", generator=g)
    for est in (from_bad, from_prior):
        assert_unbiased_up_to_jensen(est - exact)
    # whereas a one-sample importance estimate from that encoder is far off
    is_bad = ev.log_likelihood(bad, x, k=1, generator=torch.Generator().manual_seed(3))
    gap = (is_bad - exact).mean().item()
    assert gap < -10 * ((from_bad - exact).std().item() / math.sqrt(N)), gap


def test_estimate_agrees_with_importance_sampling_on_a_nonlinear_model():
    model = tiny_vae(input_dim=6, latent_dim=2, hidden=(8,), seed=3).double()
    with torch.no_grad():  # a decoder with some structure, so the posterior is not N(0, I)
        model.decoder[0].weight.mul_(3.0)
        model.decoder_head.weight.mul_(4.0)
    x = torch.bernoulli(torch.full((40, 6), 0.5), generator=torch.Generator().manual_seed(4))
    x = x.double()
    est = log_marginal_hmc(model, x, generator=torch.Generator().manual_seed(5))
    # in 2-D, importance sampling with 20,000 samples errs by about -0.003 nats on average
    # (measured against 200,000), far inside the tolerance; the comparison is paired
    ref = ev.log_likelihood(model, x, k=20_000, generator=torch.Generator().manual_seed(6))
    assert_unbiased_up_to_jensen(est - ref)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_draws": 1}, "n_draws=1"),
        ({"n_leapfrog": 0}, "n_leapfrog=0"),
        ({"thin": 0}, "thin=0"),
        ({"burn_in": -1}, "burn_in=-1"),
        ({"start": "encoder"}, "start='encoder'"),
        ({"jitter": 1.0}, "jitter=1.0"),
    ],
)
def test_bad_arguments_name_the_field(kwargs, message):
    model, x, _ = ppca_data(exact_posterior=True)
    with pytest.raises(ValueError, match=message):
        log_marginal_hmc(model, x, **kwargs)


def test_bad_data_shape_is_reported():
    model, x, _ = ppca_data(exact_posterior=True)
    with pytest.raises(ValueError, match=r"x has shape \(5,\)"):
        log_marginal_hmc(model, x[0])
