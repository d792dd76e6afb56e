"""Importance-sampled log-likelihood against the closed form of a linear-Gaussian model."""

import math

import torch

from aevb import evaluate as ev

from helpers import ppca_vae, tiny_vae


def test_is_estimate_is_exact_with_the_true_posterior():
    model, marginal = ppca_vae(exact_posterior=True)
    x = marginal.sample((40,))
    exact = marginal.log_prob(x)
    got = ev.log_likelihood(model, x, k=3, generator=torch.Generator().manual_seed(0))
    # q(z|x) = p(z|x) makes every importance weight equal p(x): zero variance
    torch.testing.assert_close(got, exact, atol=1e-6, rtol=0)


def test_is_estimate_improves_with_k_and_converges_within_its_predicted_bias():
    torch.manual_seed(0)
    model, marginal = ppca_vae(exact_posterior=False)
    x = marginal.sample((200,))
    exact = marginal.log_prob(x)
    gaps = {}
    for k in (1, 10, 100, 2000):
        est = ev.log_likelihood(
            model,
            x,
            k=k,
            batch_size=50,
            max_rows=20_000,
            generator=torch.Generator().manual_seed(k),
        )
        gaps[k] = est - exact
    means = {k: g.mean().item() for k, g in gaps.items()}
    assert means[1] < means[10] < means[100] < means[2000] <= 0.01, means
    # delta method: E[log mean_k w] - log p(x) ≈ -Var(w / p(x)) / (2k) for large k
    with torch.no_grad():
        from aevb.objectives import compute_terms

        t = compute_terms(model, x, n_samples=20_000, generator=torch.Generator().manual_seed(9))
        rel = torch.exp(t.log_weights - exact)  # w / p(x), mean 1
        predicted = -(rel.var(0) / (2 * 2000))
    residual = gaps[2000] - predicted
    se = residual.std() / math.sqrt(len(residual))
    assert abs(residual.mean().item()) < 4 * se + 1e-4, (residual.mean(), se)


def test_chunked_samples_combine_exactly():
    # one importance sample per chunk: the running logsumexp must still give log p(x)
    model, marginal = ppca_vae(exact_posterior=True)
    x = marginal.sample((20,))
    got = ev.log_likelihood(
        model, x, k=50, batch_size=20, max_rows=20, generator=torch.Generator().manual_seed(0)
    )
    torch.testing.assert_close(got, marginal.log_prob(x), atol=1e-6, rtol=0)
    model, marginal = ppca_vae(exact_posterior=False)
    one = ev.log_likelihood(
        model, x, k=400, max_rows=10_000, generator=torch.Generator().manual_seed(0)
    )
    many = ev.log_likelihood(
        model, x, k=400, batch_size=20, max_rows=20 * 7, generator=torch.Generator().manual_seed(1)
    )
    diff = one - many
    assert abs(diff.mean().item()) < 4 * diff.std().item() / math.sqrt(len(diff)) + 1e-6


def test_lower_bound_matches_mean_of_terms_and_stays_below_log_likelihood():
    model, marginal = ppca_vae(exact_posterior=False)
    x = marginal.sample((30,))
    lb = ev.lower_bound(model, x, n_samples=500, generator=torch.Generator().manual_seed(0))
    ll = ev.log_likelihood(model, x, k=500, generator=torch.Generator().manual_seed(1))
    assert lb.shape == (30,)
    assert lb.mean() < ll.mean() < marginal.log_prob(x).mean() + 0.01


def test_estimate_summary_and_bits_per_dim():
    e = ev.Estimate.of(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    assert e.mean == 2.5 and e.n == 4
    assert abs(e.stderr - math.sqrt(5 / 3) / 2) < 1e-12
    assert ev.bits_per_dim(-math.log(2) * 10, 10) == 1.0
    # 8-bit data scaled to [0,1]: log-density in [0,1] units minus D log 255
    assert abs(ev.bits_per_dim(0.0, 4, scale=256.0) - 8.0) < 1e-12


def test_active_units_and_kl_per_dim():
    model = tiny_vae(latent_dim=3, seed=0)
    with torch.no_grad():  # dimension 2 ignores x: inactive, and its KL is that of N(0,1)
        model.encoder_head.weight[2].zero_()
        model.encoder_head.bias[2] = 0.0
        model.encoder_head.weight[5].zero_()
        model.encoder_head.bias[5] = 0.0
        model.encoder_head.weight[:2] *= 20
    x = torch.rand(300, 6)
    count, variances = ev.active_units(model, x)
    assert variances.shape == (3,) and variances[2] == 0
    assert count == int((variances > 0.01).sum()) and count >= 1
    kl = ev.kl_per_dim(model, x)
    assert kl.shape == (3,) and abs(kl[2].item()) < 1e-6 and torch.all(kl[:2] > 0)


def test_mutual_information_is_zero_without_information_and_log_n_with_all():
    model = tiny_vae(latent_dim=2, hidden=(), seed=0)
    x = torch.rand(200, 6).round()
    with torch.no_grad():  # the encoder ignores x: q(z|x) = N(0, 1) for every x
        model.encoder_head.weight.zero_()
        model.encoder_head.bias.zero_()
    mi = ev.mutual_information(model, x, generator=torch.Generator().manual_seed(0))
    # the estimator's own noise: log q(z|x) - log q(z) averages to 0 with sd ~ 1/sqrt(N)
    assert abs(mi) < 0.05
    with torch.no_grad():  # distinct, very sharp posteriors: every z names its x
        model.encoder_head.bias[2:] = -12.0
    x = torch.eye(6)[torch.arange(200) % 6]  # 6 distinct inputs
    model.encoder_head.weight.data[:2] = torch.randn(2, 6) * 10
    mi = ev.mutual_information(model, x, generator=torch.Generator().manual_seed(0))
    assert abs(mi - math.log(6)) < 0.01  # I(x; z) = H(x) = log 6 for 6 equally likely x
