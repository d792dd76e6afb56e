"""The one interface of distributions and models: every distribution samples, scores and
(where it can) reparameterises the same way; ``VAE.log_joint`` is log p(x|z) + log p(z);
``generative_parameters`` is exactly the decoder's and the prior's; VAE is a ``Model``."""

from __future__ import annotations

import pytest
import torch

from aevb.distributions import Bernoulli, DiagonalGaussian, StandardNormal
from aevb.models import VAE, VAEConfig
from aevb.models.protocol import Model, ModelConfig
from aevb.priors import GaussianMixturePrior

from helpers import hvae, tiny_vae


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _vamp() -> VAE:
    return VAE(VAEConfig(input_dim=6, latent_dim=3, hidden=(8,), prior="vamp", prior_components=4))


def distributions():
    """(name, distribution, batch shape, event size, reparameterisable)."""
    g = _gen(1)
    mean, logvar = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    return [
        ("gaussian", DiagonalGaussian(mean, logvar), (4,), 3, True),
        ("bernoulli", Bernoulli(torch.randn(4, 3, generator=g)), (4,), 3, False),
        ("standard", StandardNormal(3), (), 3, True),
        ("mog", GaussianMixturePrior(3, 5), (), 3, False),
        ("vamp", _vamp().prior, (), 3, False),
        ("gaussian decoder", tiny_vae(likelihood="gaussian").decode(mean[:, :2]), (4,), 6, True),
    ]


@pytest.mark.parametrize("name, dist, batch, d, reparam", distributions())
def test_every_distribution_samples_and_scores_the_same_way(name, dist, batch, d, reparam):
    draws = dist.sample(5, generator=_gen())
    assert draws.shape == (5, *batch, d), name
    assert not draws.requires_grad
    torch.testing.assert_close(dist.sample(5, generator=_gen()), draws)  # seeded
    assert dist.log_prob(draws).shape == (5, *batch)
    assert dist.sample(generator=_gen()).shape == (1, *batch, d)  # n defaults to 1
    if reparam:
        assert dist.rsample(5, generator=_gen()).shape == (5, *batch, d)
    else:
        with pytest.raises(NotImplementedError, match="no reparameterised draws: use sample"):
            dist.rsample(5, generator=_gen())


def test_gaussian_sample_is_rsample_detached_and_rsample_carries_gradients():
    mean = torch.zeros(2, 3, requires_grad=True)
    q = DiagonalGaussian(mean, torch.zeros(2, 3))
    z = q.rsample(4, generator=_gen(2))
    assert z.requires_grad
    torch.testing.assert_close(q.sample(4, generator=_gen(2)), z.detach(), rtol=0, atol=0)


def test_bernoulli_single_draw_is_the_plain_bernoulli_draw():
    # wake-sleep's fantasies: the same numbers as torch.bernoulli on the probabilities
    p = Bernoulli(torch.randn(7, 5, generator=_gen(3)))
    want = torch.bernoulli(p.mean, generator=_gen(4))
    torch.testing.assert_close(p.sample(1, generator=_gen(4))[0], want, rtol=0, atol=0)
    draws = p.sample(2, generator=_gen(4))
    assert not torch.equal(draws[0], draws[1])  # independent draws, not copies


@pytest.mark.parametrize("kw", [{}, {"prior": "mog", "prior_components": 3}])
def test_log_joint_is_log_likelihood_plus_log_prior(kw):
    model = tiny_vae(**kw).double()
    x = torch.rand(5, 6, generator=_gen(5), dtype=torch.double).round()
    z = torch.randn(3, 5, 2, generator=_gen(6), dtype=torch.double)  # (L, B, Nz)
    want = model.decode(z).log_prob(x) + model.prior.log_prob(z)
    got = model.log_joint(x, z)
    assert got.shape == (3, 5)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    torch.testing.assert_close(model.log_joint(x, z[0]), want[0], rtol=0, atol=0)


def test_log_joint_of_a_conditional_model_decodes_with_the_rows_condition():
    model = tiny_vae(condition_dim=2).double()
    x = torch.rand(4, 6, dtype=torch.double).round()
    y = torch.eye(2, dtype=torch.double)[[0, 1, 1, 0]]
    z = torch.randn(4, 2, dtype=torch.double)
    want = model.decode(z, y).log_prob(x) + model.prior.log_prob(z)
    torch.testing.assert_close(model.log_joint(torch.cat([x, y], -1), z), want)


@pytest.mark.parametrize("hierarchy", ["bottom-up", "top-down"])
def test_log_joint_of_a_hierarchy_takes_every_layer(hierarchy):
    model = hvae(hierarchy=hierarchy).double()
    x = torch.rand(3, 12, dtype=torch.double).round()
    layers = [torch.randn(2, 3, n, dtype=torch.double) for n in (6, 4, 2)]
    want = model.decode_layers(layers).log_prob(x) + model.log_prior(layers[0], layers[1:])
    torch.testing.assert_close(model.log_joint(x, layers), want)
    with pytest.raises(ValueError, match="log_joint: 1 layers given, the model has 3"):
        model.log_joint(x, layers[0])


def _ids(params) -> set[int]:
    return {id(p) for p in params}


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"prior": "mog", "prior_components": 3, "likelihood": "gaussian"},
        {"likelihood": "gaussian", "gaussian_variance": "learned"},
    ],
)
def test_generative_parameters_are_the_decoder_and_the_prior(kw):
    model = tiny_vae(**kw)
    want = [*model.decoder.parameters(), *model.decoder_head.parameters()]
    want += [*model.prior.parameters()] if kw.get("prior") else []
    want += [model.decoder_logvar] if kw.get("gaussian_variance") == "learned" else []
    got = model.generative_parameters()
    assert len(got) == len(want) and _ids(got) == _ids(want)
    order = [id(p) for p in model.parameters() if id(p) in _ids(got)]
    assert [id(p) for p in got] == order  # parameters() order: the optimiser's state order


@pytest.mark.parametrize("hierarchy", ["bottom-up", "top-down"])
def test_generative_parameters_of_a_hierarchy_leave_out_every_inference_network(hierarchy):
    model = hvae(hierarchy=hierarchy, prior="vamp", prior_components=3)
    inference = [model.encoder, model.encoder_head, model.upward, model.posterior_down]
    generative = [model.decoder, model.decoder_head, model.downward, model.prior]
    got = _ids(model.generative_parameters())
    assert got == _ids(p for m in generative for p in m.parameters())
    assert not got & _ids(p for m in inference for p in m.parameters())


def test_the_vae_and_its_config_satisfy_the_model_protocol():
    model = tiny_vae()
    assert isinstance(model, Model)
    assert isinstance(model.config, ModelConfig)
    assert not isinstance(torch.nn.Linear(2, 2), Model)
