"""Latent structure and bodies: hierarchical latents, convolutional bodies, conditioning,
and every variant through the one checkpoint format."""

import json
import math

import numpy as np
import pytest
import torch

from aevb import io as aevb_io
from aevb.cli import main
from aevb.data import DataError, Dataset, append_labels, load
from aevb.distributions import StandardNormal
from aevb.evaluate import log_likelihood, lower_bound
from aevb.models import VAE, VAEConfig
from aevb.networks import ConvDecoder, ConvEncoder
from aevb.objectives import ELBOObjective, compute_terms, elbo_a


def hvae(**kw) -> VAE:
    cfg = dict(input_dim=12, latent_dim=6, hidden=(16,), upper_latents=(4, 2), upper_hidden=(8,))
    return VAE(VAEConfig(**{**cfg, **kw}))


# --- hierarchy --------------------------------------------------------------------------


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
    log_px = model.decode([z1, z2, z3]).log_prob(x)
    torch.testing.assert_close(t.log_qz_x, log_q)
    torch.testing.assert_close(t.log_pz, log_p)
    torch.testing.assert_close(t.log_px_z, log_px)
    # the decoder reads every layer: changing z3 alone changes p(x|z)
    moved = model.decode([z1, z2, z3 + 1.0]).log_prob(x)
    assert not torch.allclose(moved, log_px)
    with pytest.raises(ValueError, match="2 layers given; a top-down model reads all 3"):
        model.decode([z1, z2])
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
        model.decode(top).mean, model.decode([model.downward[0](z2_mean).mean, z2_mean, top]).mean
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


# --- convolutional bodies ---------------------------------------------------------------


@pytest.mark.parametrize("shape", [(28, 28), (32, 32, 3), (64, 64, 3), (27, 21)])
def test_conv_bodies_fit_the_image_sizes(shape, one_thread):
    channels = (8, 8, 8, 8) if shape[0] == 64 else (8, 8)
    d = math.prod(shape)
    enc = ConvEncoder(shape, channels, (16,), "relu")
    dec = ConvDecoder(5, shape, tuple(reversed(channels)), (16,), "relu", per_pixel=2)
    assert enc(torch.rand(3, d)).shape == (3, 16)
    assert dec(torch.randn(4, 3, 5)).shape == (4, 3, 2 * d)


def test_conv_encoder_reads_rows_in_the_datas_channels_last_layout():
    shape = (4, 6, 3)
    enc = ConvEncoder(shape, (2,), (), "relu")
    img = torch.rand(1, 3, 4, 6)  # (N, C, H, W)
    row = img.permute(0, 2, 3, 1).reshape(1, -1)  # the data layout (H, W, C), row-major
    torch.testing.assert_close(enc(row), enc.convs(img).flatten(1))


def test_conv_decoder_writes_parameter_blocks_in_the_data_layout():
    dec = ConvDecoder(3, (4, 6, 3), (), (), "relu", per_pixel=2)
    z = torch.randn(2, 3)
    maps = dec.linear(z).reshape(2, 2, 3, 4, 6)  # (N, block, C, H, W) before any reordering
    expected = maps.permute(0, 1, 3, 4, 2).reshape(2, -1)
    torch.testing.assert_close(dec(z), expected)


def test_conv_vae_trains_from_the_cli(tmp_path):
    out = tmp_path / "conv"
    args = ["train", "--out", str(out), "--body", "conv", "--channels", "8", "16", "--hidden",
            "32", "--init", "default", "--optimizer", "adam", "--lr", "0.003", "--epochs", "3",
            "--latent-dim", "4", "--quiet", "--no-pictures", "--threads", "1"]  # fmt: skip
    assert main(args) == 0
    history = aevb_io.read_json(out / "checkpoint" / "trainer.json")["state"]["history"]
    assert history[-1]["train_bound"] > history[0]["train_bound"]
    assert aevb_io.load_model(out).config.body == "conv"


# --- conditional ------------------------------------------------------------------------


def labelled(n=40, d=6, classes=3, seed=0) -> Dataset:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    x = (rng.random((n, d)) < 0.2 + 0.2 * y[:, None]).astype(np.float32)
    return Dataset("toy", x[:30], x[30:], None, labels={"train": y[:30], "valid": y[30:]})


def test_append_labels_adds_one_hot_columns_and_refuses_unlabelled_data():
    data = append_labels(labelled())
    assert data.condition_dim == 3 and data.train.shape == (30, 9) and data.test is None
    np.testing.assert_array_equal(data.train[:, 6:].argmax(1), labelled().labels["train"])
    assert (data.train[:, 6:].sum(1) == 1).all()
    with pytest.raises(DataError, match="no class labels"):
        append_labels(Dataset("x", np.zeros((4, 2))))
    with pytest.raises(DataError, match=r"expected \[0, 2\)"):
        append_labels(labelled(), classes=2)


def test_conditional_sampling_respects_the_label_shape():
    model = VAE(VAEConfig(input_dim=6, latent_dim=2, hidden=(8,), condition_dim=3, init="default"))
    g = torch.Generator().manual_seed(0)
    by_label = model.sample(4, generator=g, condition=torch.tensor([0, 1, 2, 1]))
    assert by_label.shape == (4, 6)
    one_hot = torch.eye(3)[[0, 1, 2, 1]]
    again = model.sample(4, generator=torch.Generator().manual_seed(0), condition=one_hot)
    torch.testing.assert_close(by_label, again)
    assert not torch.allclose(by_label[0], by_label[2])  # the label reaches the decoder
    with pytest.raises(ValueError, match="expected labels"):
        model.sample(4)
    with pytest.raises(ValueError, match=r"expected \(4, 3\) or \(4,\)"):
        model.sample(4, condition=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"integers in \[0, 3\)"):
        model.sample(2, condition=torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="expected 6 \\+ 3 condition columns"):
        model.encode(torch.rand(2, 6))


def test_conditional_vae_trains_and_samples_by_class_from_the_cli(tmp_path):
    out = tmp_path / "cvae"
    args = ["train", "--out", str(out), "--conditional", "--hidden", "32", "--latent-dim",
            "2", "--optimizer", "adam", "--lr", "0.003", "--epochs", "2", "--quiet",
            "--threads", "1"]  # fmt: skip
    assert main(args) == 0
    assert (out / "samples.png").is_file() and (out / "manifold.png").is_file()
    model = aevb_io.load_model(out)
    assert model.config.condition_dim == 10 and model.config.input_dim == 64
    npy = tmp_path / "s.npy"
    assert main(["sample", str(out), "-n", "6", "--label", "3", "7", "--npy", str(npy),
                 "--out", str(tmp_path / "s.png")]) == 0  # fmt: skip
    assert np.load(npy).shape == (6, 64)
    assert main(["evaluate", str(out), "--k", "5"]) == 0
    assert main(["train", "--out", str(out), "--resume", "--epochs", "3", "--quiet",
                 "--no-pictures"]) == 0  # fmt: skip
    state = aevb_io.read_json(out / "checkpoint" / "trainer.json")["state"]
    assert state["samples"] == 3 * len(load("digits").train)


def test_gated_dense_layers_multiply_a_linear_map_by_a_sigmoid_gate():
    from aevb.networks import MLP

    torch.manual_seed(0)
    mlp = MLP(3, (4, 2), "gated")
    x = torch.randn(5, 3)
    h = x
    for linear in (mlp[0], mlp[2]):
        a, g = linear(h).chunk(2, dim=-1)
        h = a * torch.sigmoid(g)
    torch.testing.assert_close(mlp(x), h)
    assert mlp.out_dim == 2
    with pytest.raises(ValueError, match="gated.*expected body 'mlp'"):
        VAEConfig(input_dim=16, activation="gated", body="conv", image_shape=(4, 4))


def test_he_and_glorot_initialisations_draw_weights_of_their_variance():
    torch.manual_seed(0)
    model = VAE(VAEConfig(input_dim=400, latent_dim=8, hidden=(300,), init="he"))
    w = model.encoder[0].weight  # (300, 400): 120,000 draws from N(0, 2/400)
    # the sample variance of n normal draws has relative standard error sqrt(2/n) ~ 0.4%
    assert abs(w.var().item() / (2 / 400) - 1) < 5 * (2 / w.numel()) ** 0.5
    assert abs(w.mean().item()) < 5 * (2 / 400 / w.numel()) ** 0.5
    assert all((m.bias == 0).all() for m in model.modules() if isinstance(m, torch.nn.Linear))
    model = VAE(VAEConfig(input_dim=400, latent_dim=8, hidden=(300,), init="glorot"))
    w = model.encoder[0].weight  # U(-a, a), a = sqrt(6 / 700): variance a^2 / 3 = 2 / 700
    assert w.abs().max() <= (6 / 700) ** 0.5
    # the sample variance of n uniforms: relative standard error sqrt(0.8 / n) ~ 0.26%
    assert abs(w.var().item() / (2 / 700) - 1) < 5 * (0.8 / w.numel()) ** 0.5


def test_paper_initialisation_starts_a_learned_decoder_variance_at_one():
    cfg = VAEConfig(input_dim=6, latent_dim=2, hidden=(4,), likelihood="gaussian",
                    gaussian_variance="learned")  # fmt: skip
    torch.testing.assert_close(VAE(cfg).decoder_logvar.detach(), torch.zeros(6))


# --- one checkpoint format for every variant --------------------------------------------

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


@pytest.mark.parametrize("name", ["paper", "hierarchical", "mog", "vamp"])
def test_float64_models_sample_in_float64(name):
    cfg = VAEConfig(input_dim=16, latent_dim=4, hidden=(8,), **VARIANTS[name])
    x = VAE(cfg).double().sample(3, generator=torch.Generator().manual_seed(0))
    assert x.dtype == torch.float64 and x.shape == (3, 16)


def test_settings_a_model_cannot_honour_are_refused_before_training(tmp_path):
    from aevb.baselines import MCEM, MCEMConfig
    from aevb.training import TrainConfig, train

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


def test_append_labels_warns_when_an_unlabelled_split_is_left_out():
    data = labelled()
    data.labels.pop("valid")
    with pytest.warns(UserWarning, match="valid split has no labels"):
        out = append_labels(data)
    assert out.valid is None and out.train.shape == (30, 9)


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
