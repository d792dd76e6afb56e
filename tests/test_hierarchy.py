"""Stochastic layers above z_1: both wirings (bottom-up, top-down), their terms as the chain
of conditionals, gradients, sampling, data-parallel noise and log-variance bounds."""

import pytest
import torch

from aevb import io as aevb_io
from aevb.distributions import StandardNormal
from aevb.evaluate import log_likelihood, lower_bound
from aevb.models import VAEConfig
from aevb.objectives import ELBOObjective, compute_terms, elbo_a

from helpers import hvae


def test_hierarchical_bound_is_finite_and_its_gradient_reaches_every_layer():
    torch.manual_seed(0)
    model = hvae(init="default")
    x = torch.rand(10, 12).round()
    loss, metrics = ELBOObjective(estimator="A", n_samples=3)(model, x)
    assert torch.isfinite(loss) and torch.isfinite(metrics["bound"]).all()
    loss.backward()
    for name, part in [
        ("encoder", model.encoder),
        ("decoder", model.decoder),
        ("q(z2|z1)", model.upward[0]),
        ("q(z3|z2)", model.upward[1]),
        ("p(z1|z2)", model.downward[0]),
        ("p(z2|z3)", model.downward[1]),
    ]:
        grads = [p.grad for p in part.parameters()]
        assert all(g is not None for g in grads), name
        assert sum(g.abs().sum().item() for g in grads) > 0, name


def test_hierarchical_terms_are_the_chain_of_conditionals():
    """log p(z) and log q(z|x) of the terms, rebuilt layer by layer by hand."""
    torch.manual_seed(1)
    model = hvae(init="default").double()
    x = torch.rand(3, 12, dtype=torch.float64).round()
    t = compute_terms(model, x, n_samples=2, generator=torch.Generator().manual_seed(0))
    z1, z2, z3 = t.layers
    assert t.z is z1
    assert z1.shape == (2, 3, 6) and z2.shape == (2, 3, 4) and z3.shape == (2, 3, 2)
    log_p = (
        StandardNormal(2).log_prob(z3)
        + model.downward[1](z3).log_prob(z2)
        + model.downward[0](z2).log_prob(z1)
    )
    log_q = (
        model.encode(x).log_prob(z1)
        + model.upward[0](z1).log_prob(z2)
        + model.upward[1](z2).log_prob(z3)
    )
    torch.testing.assert_close(t.log_pz, log_p)
    torch.testing.assert_close(t.log_qz_x, log_q)
    torch.testing.assert_close(elbo_a(t), (t.log_px_z + log_p - log_q).mean(0))


def test_top_down_terms_are_the_chain_of_conditionals():
    """Tomczak & Welling's wiring: q(z3|x) q(z2|x, z3) q(z1|x, z2), p(x|z1, z2, z3)."""
    torch.manual_seed(4)
    model = hvae(init="default", hierarchy="top-down").double()
    assert not model.upward and len(model.posterior_down) == 2
    x = torch.rand(3, 12, dtype=torch.float64).round()
    t = compute_terms(model, x, n_samples=2, generator=torch.Generator().manual_seed(0))
    z1, z2, z3 = t.layers
    assert t.z is z3 and z1.shape == (2, 3, 6) and z2.shape == (2, 3, 4) and z3.shape == (2, 3, 2)
    h = model.encoder(x).expand(2, -1, -1)
    log_q = (
        model.encode(x).log_prob(z3)
        + model.posterior_down[1](torch.cat([h, z3], -1)).log_prob(z2)
        + model.posterior_down[0](torch.cat([h, z2], -1)).log_prob(z1)
    )
    log_p = (
        StandardNormal(2).log_prob(z3)
        + model.downward[1](z3).log_prob(z2)
        + model.downward[0](z2).log_prob(z1)
    )
    log_px = model.decode_layers([z1, z2, z3]).log_prob(x)
    torch.testing.assert_close(t.log_qz_x, log_q)
    torch.testing.assert_close(t.log_pz, log_p)
    torch.testing.assert_close(t.log_px_z, log_px)
    # the decoder reads every layer: changing z3 alone changes p(x|z)
    moved = model.decode_layers([z1, z2, z3 + 1.0]).log_prob(x)
    assert not torch.allclose(moved, log_px)
    with pytest.raises(ValueError, match="2 layers given; a top-down model reads all 3"):
        model.decode_layers([z1, z2])
    # the encoder body runs once per call: its features travel with q(z3|x)
    calls = []
    handle = model.encoder.register_forward_hook(lambda *a: calls.append(1))
    compute_terms(model, x, n_samples=2)
    model.reconstruct(x)
    handle.remove()
    assert len(calls) == 2
    # a code from encode() decodes with the lower layers at their conditional means
    top = model.encode(x).mean
    z2_mean = model.downward[1](top).mean
    torch.testing.assert_close(
        model.decode(top).mean,
        model.decode_layers([model.downward[0](z2_mean).mean, z2_mean, top]).mean,
    )


def test_top_down_bound_reaches_every_part_and_saves(tmp_path):
    torch.manual_seed(5)
    model = hvae(init="default", hierarchy="top-down", prior="vamp", prior_components=3)
    x = torch.rand(10, 12).round()
    loss, metrics = ELBOObjective(estimator="A", n_samples=3)(model, x)
    assert torch.isfinite(loss) and torch.isfinite(metrics["bound"]).all()
    loss.backward()
    parts = [model.encoder, model.encoder_head, model.decoder, model.prior, *model.downward]
    for part in [*parts, *model.posterior_down]:
        grads = [p.grad for p in part.parameters()]
        assert all(g is not None for g in grads) and sum(g.abs().sum() for g in grads) > 0
    assert model.sample(4, generator=torch.Generator().manual_seed(0)).shape == (4, 12)
    assert model.reconstruct(x).shape == (10, 12)
    aevb_io.save_model(model, tmp_path / "m")
    again = aevb_io.load_model(tmp_path / "m")
    assert again.config.hierarchy == "top-down"
    g = torch.Generator().manual_seed(1)
    torch.testing.assert_close(
        again.sample(3, generator=g), model.sample(3, generator=g.manual_seed(1))
    )


def test_hierarchical_is_estimate_lies_above_the_elbo():
    torch.manual_seed(2)
    model = hvae(init="default")
    x = torch.rand(30, 12).round()
    g = torch.Generator().manual_seed(0)
    elbo = lower_bound(model, x, n_samples=200, generator=g).mean().item()
    ll = log_likelihood(model, x, k=200, generator=g).mean().item()
    assert ll > elbo
    samples = model.sample(5, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (5, 12) and ((samples >= 0) & (samples <= 1)).all()


def test_hierarchical_noise_of_data_parallel_shards_is_the_noise_of_the_whole_batch():
    """Each process draws the global batch's noise for every layer and keeps its rows,
    so two shards reproduce one process exactly."""
    from aevb.distributions import Shard

    torch.manual_seed(3)
    model = hvae(init="default")
    x = torch.rand(6, 12).round()
    full = compute_terms(model, x, n_samples=2, generator=torch.Generator().manual_seed(0))
    parts = [
        compute_terms(
            model, x[a:b], n_samples=2, generator=torch.Generator().manual_seed(0),
            shard=Shard(a, b, 6),
        )
        for a, b in ((0, 4), (4, 6))
    ]  # fmt: skip
    torch.testing.assert_close(torch.cat([p.z for p in parts], 1), full.z)
    for layer in range(3):
        torch.testing.assert_close(
            torch.cat([p.layers[layer] for p in parts], 1), full.layers[layer]
        )
    torch.testing.assert_close(torch.cat([p.log_weights for p in parts], 1), full.log_weights)


def test_latent_logvar_range_bounds_every_latent_gaussian():
    model = hvae(init="default", latent_logvar_range=(-1.0, 0.5))
    for p in model.parameters():
        p.data.mul_(50.0)  # push every log-variance far outside the bounds
    x = torch.rand(8, 12).round()
    t = compute_terms(model, x, generator=torch.Generator().manual_seed(0))
    logvars = [
        t.posterior.logvar,
        model.upward[0](t.z).logvar,
        model.downward[0](t.layers[1]).logvar,
    ]
    for lv in logvars:
        assert lv.min() >= -1.0 and lv.max() <= 0.5
    assert (t.posterior.logvar == 0.5).any() or (t.posterior.logvar == -1.0).any()
    with pytest.raises(ValueError, match="latent_logvar_range"):
        VAEConfig(input_dim=4, latent_logvar_range=(1.0, -1.0))
