"""Names renamed or moved by the restructuring keep working for a release: each warns with
a DeprecationWarning that names its replacement, and does what the new name does."""

import importlib
import re

import pytest
import torch

import aevb.baselines.mcem as mcem
from aevb import priors
from aevb.marginal import log_marginal_hmc
from aevb.models import VAE, VAEConfig

from helpers import tiny_vae

MOVED = [
    ("aevb.models.vae", "BODIES", "aevb.models.vae_config", "BODIES"),
    ("aevb.models.vae", "LIKELIHOODS", "aevb.data.validation", "ROW_LIKELIHOODS"),
    ("aevb.models.vae", "GAUSSIAN_MEANS", "aevb.distributions", "GAUSSIAN_MEANS"),
    ("aevb.models.vae", "GAUSSIAN_VARIANCES", "aevb.distributions", "GAUSSIAN_VARIANCES"),
    ("aevb.models.vae", "INITS", "aevb.networks", "INIT_SCHEMES"),
    ("aevb.models.vae", "HIERARCHIES", "aevb.models.hierarchy", "HIERARCHIES"),
    ("aevb.models.layers", "GaussianLayer", "aevb.models.hierarchy", "GaussianLayer"),
    ("aevb.models.layers", "clamp_logvar", "aevb.distributions", "clamp_logvar"),
]


def warns_naming(new: str):
    return pytest.warns(DeprecationWarning, match=f"use {re.escape(new)}$")


@pytest.mark.parametrize(("old_module", "old", "new_module", "new"), MOVED)
def test_a_moved_name_is_its_new_self_with_a_warning(old_module, old, new_module, new):
    with warns_naming(f"{new_module}.{new}"):
        got = getattr(importlib.import_module(old_module), old)
    assert got is getattr(importlib.import_module(new_module), new)


def test_a_name_that_never_existed_is_still_refused():
    with pytest.raises(ImportError, match="NOPE"):
        from aevb.models.vae import NOPE  # noqa: F401


def test_training_names_moved_to_run_still_resolve():
    training, run = importlib.import_module("aevb.training"), importlib.import_module("aevb.run")
    for name in ("train", "resume", "train_or_resume", "spent_budget", "writer_lock"):
        assert getattr(training, name) is getattr(run, name)


def test_vae_split_and_features():
    model = tiny_vae(condition_dim=2)
    x = torch.cat([torch.rand(3, 6), torch.eye(2)[[0, 1, 0]]], dim=1)
    with warns_naming("VAE.separate_condition"):
        pixels, condition = model.split(x)
    assert torch.equal(pixels, x[:, :6]) and torch.equal(condition, x[:, 6:])
    with warns_naming("VAE.encoded(x).features"):
        features = model.features(x)
    assert torch.equal(features, model.encoded(x).features)


def test_fixed_prior_takes_the_prior_or_the_model():
    model = tiny_vae(prior="mog", prior_components=3)
    for arg in (model, model.prior):
        with warns_naming("aevb.priors.fixed_components(model.prior)"):
            context = priors.fixed_prior(arg)
        with context:
            assert model.prior._fixed is not None
        assert model.prior._fixed is None


def test_build_prior_with_the_old_keywords():
    with warns_naming("build_prior(name, PriorSite(dim, ...))"):
        prior = priors.build_prior(
            "mog", 3, components=4, input_dim=6, encode=None, unit_interval=True
        )
    assert isinstance(prior, priors.GaussianMixturePrior) and prior.means.shape == (4, 3)


def test_mcem_old_names():
    model, x = tiny_vae(), torch.rand(20, 6).round()
    with warns_naming("model.generative_parameters()"):
        assert mcem.generative_parameters(model) == model.generative_parameters()
    run = mcem.MCEM(model, x, mcem.MCEMConfig(batch_size=10))
    with warns_naming("MCEM.run(n_examples=)"):
        run.run(n_samples=10)
    with warns_naming("MCEM.examples_seen"):
        assert run.samples_seen == run.examples_seen == 10


def test_fit_mcem_with_a_budget_evaluates_every_eval_every():
    x = torch.rand(20, 6).round()
    with warns_naming("fit_mcem(points=[0, every, ..., budget])"):
        history = mcem.fit_mcem(
            tiny_vae(),
            x,
            mcem.MCEMConfig(batch_size=10),
            budget=50,
            eval_every=20,
            evaluate=lambda model: {},
        )
    assert [row["examples"] for row in history] == [0, 20, 40, 50]


def test_log_marginal_hmc_n_samples():
    model, x = tiny_vae(), torch.rand(2, 6).round()
    kw = dict(n_leapfrog=2, burn_in=2)
    with warns_naming("log_marginal_hmc(n_draws=)"):
        old = log_marginal_hmc(
            model, x, n_samples=4, generator=torch.Generator().manual_seed(0), **kw
        )
    new = log_marginal_hmc(model, x, n_draws=4, generator=torch.Generator().manual_seed(0), **kw)
    assert torch.equal(old, new)


def test_log_marginal_hmc_init_is_start():
    """``init`` means weight initialisation (VAEConfig.init); chains have a ``start``."""
    import aevb.marginal

    model, x = tiny_vae(), torch.rand(2, 6).round()
    kw = dict(n_draws=4, n_leapfrog=2, burn_in=2)
    with warns_naming("log_marginal_hmc(start=)"):
        old = log_marginal_hmc(
            model, x, init="prior", generator=torch.Generator().manual_seed(0), **kw
        )
    new = log_marginal_hmc(
        model, x, start="prior", generator=torch.Generator().manual_seed(0), **kw
    )
    assert torch.equal(old, new)
    with warns_naming("aevb.marginal.CHAIN_STARTS"):
        assert aevb.marginal.INITS == ("posterior", "prior")


def test_no_warning_from_the_current_names(recwarn):
    model = VAE(VAEConfig(input_dim=4, latent_dim=2, hidden=(3,)))
    model.separate_condition(torch.rand(2, 4))
    with priors.fixed_components(model.prior):
        pass
    assert not [w for w in recwarn if issubclass(w.category, DeprecationWarning)]
