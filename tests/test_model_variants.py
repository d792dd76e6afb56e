"""Every variant of the one VAE: one checkpoint format, sampling at temperature 0 and in
float64, a hierarchical VampPrior model from the CLI, and the settings a variant cannot
honour, refused before anything runs."""

import json
import math

import numpy as np
import pytest
import torch

from aevb import io as aevb_io
from aevb.cli import main
from aevb.data import Dataset
from aevb.evaluate import log_likelihood
from aevb.models import VAE, VAEConfig

from helpers import hvae

VARIANTS = {
    "paper": {},
    "mog": {"prior": "mog", "prior_components": 3},
    "vamp": {"prior": "vamp", "prior_components": 3},
    "hierarchical": {"upper_latents": (3,), "upper_hidden": (5,)},
    "hvae-vamp": {
        "upper_latents": (3,), "upper_hidden": (5,), "prior": "vamp",
        "latent_logvar_range": (-6.0, 2.0),
    },
    "top-down": {"upper_latents": (3, 2), "upper_hidden": (5,), "hierarchy": "top-down"},
    "gated-hvae-vamp": {
        "upper_latents": (3,), "upper_hidden": (5,), "hierarchy": "top-down",
        "activation": "gated", "prior": "vamp", "prior_components": 3,
    },
    "conv": {"body": "conv", "channels": (4,), "image_shape": (4, 4)},
    "conditional": {"condition_dim": 2},
    "top-down-conv-conditional": {
        "upper_latents": (3,), "upper_hidden": (5,), "hierarchy": "top-down", "body": "conv",
        "channels": (4,), "image_shape": (4, 4), "condition_dim": 2,
    },
    "gaussian-conv": {
        "body": "conv", "channels": (4,), "image_shape": (4, 4), "likelihood": "gaussian",
    },
}  # fmt: skip


@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_variant_saves_and_loads_through_the_same_checkpoint_format(name, tmp_path):
    torch.manual_seed(0)
    cfg = VAEConfig(input_dim=16, latent_dim=4, hidden=(8,), init="default", **VARIANTS[name])
    model = VAE(cfg)
    for p in model.parameters():  # move away from the initialisation
        p.data.add_(0.1 * torch.randn_like(p))
    aevb_io.save_model(model, tmp_path / "m")
    assert {f.name for f in (tmp_path / "m").iterdir()} == {"config.json", "model.safetensors"}
    loaded = aevb_io.load_model(tmp_path / "m")
    assert loaded.config == cfg
    kl = aevb_io.read_json(tmp_path / "m" / "config.json")["kl"]
    assert kl == (
        "closed form"
        if name in ("paper", "conv", "conditional", "gaussian-conv")
        else "monte carlo"
    )
    x = torch.rand(5, 16 + cfg.condition_dim).round()
    if cfg.condition_dim:
        x[:, 16:] = torch.eye(2)[[0, 1, 0, 1, 1]]
    g1, g2 = (torch.Generator().manual_seed(3) for _ in range(2))
    torch.testing.assert_close(
        log_likelihood(loaded, x, k=7, generator=g1), log_likelihood(model, x, k=7, generator=g2)
    )


@pytest.mark.parametrize("name", ["paper", "mog", "vamp", "hierarchical", "top-down"])
def test_temperature_zero_sampling_is_deterministic_for_every_prior(name):
    torch.manual_seed(0)
    cfg = VAEConfig(input_dim=16, latent_dim=4, hidden=(8,), init="default", **VARIANTS[name])
    model = VAE(cfg)
    a = model.sample(6, generator=torch.Generator().manual_seed(1), temperature=0.0)
    b = model.sample(6, generator=torch.Generator().manual_seed(2), temperature=0.0)
    c = model.sample(6, generator=torch.Generator().manual_seed(2), temperature=1.0)
    if name in ("paper", "hierarchical", "top-down"):  # one mode: every cold draw is the same image
        torch.testing.assert_close(a, b)
    else:  # mixtures: cold draws are component centres, so they come from a finite set
        centres = {tuple(r) for r in model.sample(500, temperature=0.0).round(decimals=5).tolist()}
        assert len(centres) <= cfg.prior_components
    assert not torch.allclose(b, c)


@pytest.mark.parametrize("name", ["paper", "hierarchical", "mog", "vamp"])
def test_float64_models_sample_in_float64(name):
    cfg = VAEConfig(input_dim=16, latent_dim=4, hidden=(8,), **VARIANTS[name])
    x = VAE(cfg).double().sample(3, generator=torch.Generator().manual_seed(0))
    assert x.dtype == torch.float64 and x.shape == (3, 16)


def test_hvae_with_vamp_prior_from_the_cli_records_the_monte_carlo_kl(tmp_path, capsys):
    out = tmp_path / "hvae"
    args = ["train", "--out", str(out), "--prior", "vamp", "--prior-components", "7",
            "--latent-dim", "6", "--upper-latents", "3", "--upper-hidden", "16", "--hidden",
            "32", "--optimizer", "adam", "--lr", "0.003", "--epochs", "2", "--quiet",
            "--no-pictures", "--threads", "1", "--latent-logvar-range", "-6", "2",
            "--hierarchy", "top-down"]  # fmt: skip
    assert main(args) == 0
    meta = aevb_io.read_json(out / "checkpoint" / "trainer.json")
    assert meta["train_config"]["estimator"] == "A"  # Monte Carlo KL, written down
    history = meta["state"]["history"]
    assert all(math.isfinite(r["valid_bound"]) for r in history)
    model = aevb_io.load_model(out)
    assert model.config.prior == "vamp" and model.config.upper_latents == (3,)
    assert model.config.latent_logvar_range == (-6.0, 2.0)
    assert model.config.hierarchy == "top-down" and len(model.posterior_down) == 1
    assert model.prior.pseudo_inputs.shape == (7, 64)
    capsys.readouterr()
    assert main(["evaluate", str(out), "--k", "10"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["log_likelihood"]["mean"] > report["lower_bound"]["mean"] - 1.0
    assert "kl_per_dim" not in report  # no KL per dimension without a factorised prior
    assert main(["train", "--out", str(tmp_path / "b"), "--prior", "mog", "--estimator", "B",
                 "--epochs", "1", "--quiet", "--no-pictures"]) == 2  # fmt: skip
    assert not (tmp_path / "b").exists()  # refused before anything was written


def test_hmc_tools_refuse_models_with_more_than_p_x_given_z_and_p_z():
    from aevb.baselines import MCEM, MCEMConfig
    from aevb.marginal import log_marginal_hmc

    for model in (hvae(), VAE(VAEConfig(input_dim=12, latent_dim=2, condition_dim=2))):
        with pytest.raises(ValueError, match="one stochastic layer and no condition"):
            log_marginal_hmc(model, torch.rand(2, 12))
        with pytest.raises(ValueError, match="one stochastic layer and no condition"):
            MCEM(model, torch.rand(4, 12), MCEMConfig())


def test_settings_a_model_cannot_honour_are_refused_before_training(tmp_path):
    from aevb.baselines import MCEM, MCEMConfig
    from aevb.run import train
    from aevb.training import TrainConfig

    data = Dataset("toy", np.random.default_rng(0).random((20, 16)).round())
    mog = VAE(VAEConfig(input_dim=16, latent_dim=4, hidden=(8,), prior="mog"))
    with pytest.raises(ValueError, match="free bits need a closed-form KL"):
        train(mog, data, TrainConfig(free_bits=0.25, epochs=1), tmp_path / "fb")
    assert not (tmp_path / "fb").exists()
    vamp = VAE(VAEConfig(input_dim=16, latent_dim=4, hidden=(8,), prior="vamp"))
    with pytest.raises(ValueError, match="VampPrior"):
        MCEM(vamp, torch.rand(4, 16), MCEMConfig())
    labelled_model = VAE(VAEConfig(input_dim=6, latent_dim=2, hidden=(8,), condition_dim=3))
    with pytest.raises(ValueError, match="expected integers"):
        labelled_model.sample(2, condition=torch.tensor([0.0, 1.0]))
