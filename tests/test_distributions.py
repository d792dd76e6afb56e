"""Facts about the distributions: closed forms against Monte Carlo and direct formulas."""

import math

import torch

from aevb.distributions import Bernoulli, DiagonalGaussian, StandardNormal


def test_gaussian_log_prob_matches_torch():
    g = torch.Generator().manual_seed(0)
    mean, logvar = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    v = torch.randn(7, 4, 3, generator=g)
    ref = torch.distributions.Normal(mean, torch.exp(0.5 * logvar)).log_prob(v).sum(-1)
    got = DiagonalGaussian(mean, logvar).log_prob(v)
    assert got.shape == (7, 4)
    torch.testing.assert_close(got, ref)


def test_standard_normal_log_prob():
    z = torch.tensor([[0.0, 0.0], [1.0, -2.0]])
    got = StandardNormal(2).log_prob(z)
    expected = torch.tensor([-math.log(2 * math.pi), -math.log(2 * math.pi) - 2.5])
    torch.testing.assert_close(got, expected)


def test_bernoulli_log_prob_is_stable_and_exact():
    logits = torch.tensor([[0.0, 100.0, -100.0]])
    x = torch.tensor([[1.0, 1.0, 0.0]])
    got = Bernoulli(logits).log_prob(x)
    torch.testing.assert_close(got, torch.tensor([math.log(0.5)]), atol=1e-6, rtol=0)
    # far in the wrong direction: -100 nats, not -inf
    bad = Bernoulli(logits).log_prob(torch.tensor([[1.0, 0.0, 0.0]]))
    torch.testing.assert_close(bad, torch.tensor([math.log(0.5) - 100.0]))


def test_analytic_kl_matches_monte_carlo_within_its_standard_error():
    g = torch.Generator().manual_seed(1)
    q = DiagonalGaussian(torch.randn(3, 5, generator=g), 0.5 * torch.randn(3, 5, generator=g))
    n = 200_000
    z = q.rsample(n, generator=g)
    per_sample = q.log_prob(z) - StandardNormal(5).log_prob(z)  # (n, 3)
    mc = per_sample.double().mean(0)
    se = per_sample.double().std(0) / math.sqrt(n)
    analytic = q.kl_standard_normal().double()
    assert analytic.shape == (3,)
    assert torch.all((mc - analytic).abs() < 4 * se), (mc, analytic, se)
    # the test has power: a KL off by 5% would fail it
    assert torch.all((mc - 1.05 * analytic).abs() > 4 * se)


def test_kl_is_zero_only_at_the_prior():
    zero = DiagonalGaussian(torch.zeros(2, 4), torch.zeros(2, 4)).kl_standard_normal()
    torch.testing.assert_close(zero, torch.zeros(2))
    assert DiagonalGaussian(torch.ones(1, 4), torch.zeros(1, 4)).kl_standard_normal() > 0


def test_reparameterised_gradient_is_unbiased():
    # d/dmu E[z^2] = 2 mu and d/dlogvar E[z^2] = exp(logvar), for z ~ N(mu, exp(logvar))
    mu = torch.tensor([0.7], requires_grad=True)
    logvar = torch.tensor([-0.4], requires_grad=True)
    n = 100_000
    z = DiagonalGaussian(mu, logvar).rsample(n, generator=torch.Generator().manual_seed(2))
    per_sample_grad_mu = 2 * z.detach()  # d z^2 / d mu for each draw
    (z**2).mean().backward()
    se = per_sample_grad_mu.std() / math.sqrt(n)
    assert abs(mu.grad.item() - 2 * 0.7) < 4 * se
    assert abs(logvar.grad.item() - math.exp(-0.4)) < 0.02


def test_gradcheck_through_the_reparameterisation():
    def f(mean, logvar):
        g = torch.Generator().manual_seed(3)  # same eps on every call
        return DiagonalGaussian(mean, logvar).rsample(4, generator=g).sin().sum()

    g = torch.Generator().manual_seed(4)
    mean = torch.randn(2, 3, dtype=torch.double, generator=g, requires_grad=True)
    logvar = torch.randn(2, 3, dtype=torch.double, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(f, (mean, logvar))
