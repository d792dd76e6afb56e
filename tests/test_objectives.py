"""Facts about the SGVB estimators A and B."""

import math

import torch

from aevb.objectives import ELBOObjective, compute_terms, elbo, elbo_a, elbo_b

from helpers import tiny_vae


def test_terms_shapes_and_consistency():
    model = tiny_vae()
    x = torch.rand(4, 6).round()
    t = compute_terms(model, x, n_samples=3, generator=torch.Generator().manual_seed(0))
    assert t.z.shape == (3, 4, 2)
    for v in (t.log_px_z, t.log_pz, t.log_qz_x):
        assert v.shape == (3, 4)
    assert t.kl.shape == (4,)
    torch.testing.assert_close(elbo_a(t), (t.log_px_z + t.log_pz - t.log_qz_x).mean(0))
    torch.testing.assert_close(elbo_b(t), t.log_px_z.mean(0) - t.kl)


def test_estimators_a_and_b_agree_in_expectation():
    model = tiny_vae(seed=1)
    x = torch.rand(5, 6).round()
    n = 50_000
    with torch.no_grad():
        t = compute_terms(model, x, n_samples=n, generator=torch.Generator().manual_seed(1))
    a_samples = t.log_weights.double()  # (n, B): estimator A with L = 1, n times
    b_samples = (t.log_px_z - t.kl).double()
    diff = a_samples - b_samples  # same z: differs only by log p(z) - log q(z|x) + KL
    se = diff.std(0) / math.sqrt(n)
    assert torch.all(diff.mean(0).abs() < 4 * se), (diff.mean(0), se)
    # and the two estimates of the ELBO themselves agree within their standard errors
    se_ab = torch.sqrt(a_samples.var(0) / n + b_samples.var(0) / n)
    assert torch.all((a_samples.mean(0) - b_samples.mean(0)).abs() < 4 * se_ab)
    # estimator B has lower variance (the paper's reason to prefer it)
    assert torch.all(b_samples.var(0) < a_samples.var(0))


def test_elbo_is_below_log_likelihood_of_linear_gaussian():
    from helpers import ppca_vae

    model, marginal = ppca_vae(exact_posterior=False)
    x = marginal.sample(
        (50,),
    )
    with torch.no_grad():
        t = compute_terms(model, x, n_samples=2000, generator=torch.Generator().manual_seed(2))
    assert torch.all(elbo(t, "B") < marginal.log_prob(x))


def test_objective_returns_minus_mean_elbo_and_detached_metrics():
    model = tiny_vae()
    x = torch.rand(8, 6).round()
    obj = ELBOObjective(estimator="B", n_samples=2)
    loss, metrics = obj(model, x, torch.Generator().manual_seed(0))
    t = compute_terms(model, x, n_samples=2, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(loss, -elbo_b(t).mean())
    assert loss.requires_grad and not metrics["bound"].requires_grad
    assert metrics["bound"].shape == (8,)
    torch.testing.assert_close(metrics["bound"].mean(), -loss.detach())
    torch.testing.assert_close(metrics["bound"], metrics["reconstruction"] - metrics["kl"])


class _ELBOSum(torch.nn.Module):
    """Wraps a VAE so that torch.func.functional_call can swap its parameters."""

    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, x):
        g = torch.Generator().manual_seed(0)  # the same eps on every call
        return elbo_b(compute_terms(self.vae, x, n_samples=2, generator=g)).sum()


def test_gradcheck_of_the_elbo_through_encoder_and_decoder():
    wrapper = _ELBOSum(tiny_vae(hidden=(3,)).double())
    x = torch.rand(2, 6, dtype=torch.double).round()
    names = ["vae.encoder_head.weight", "vae.decoder_head.weight"]
    state = dict(wrapper.named_parameters())
    inputs = tuple(state[n].detach().clone().requires_grad_(True) for n in names)

    def f(enc_w, dec_w):
        return torch.func.functional_call(wrapper, {names[0]: enc_w, names[1]: dec_w}, (x,))

    assert torch.autograd.gradcheck(f, inputs)
