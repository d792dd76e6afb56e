"""Network bodies and their initialisation: gated dense layers, a convolutional encoder's
extra columns, He and Glorot draws, the paper's initialisation of a learned decoder variance."""

import pytest
import torch

from aevb.models import VAE, VAEConfig


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


def test_a_conv_encoder_appends_the_extra_columns_after_its_convolutions():
    from aevb.networks import ConvEncoder

    torch.manual_seed(0)
    plain, extra = (
        ConvEncoder((4, 4), (2,), (5,), "relu"),
        ConvEncoder((4, 4), (2,), (5,), "relu", 3),
    )
    extra.load_state_dict(plain.state_dict())  # the same parameters: the extra columns add none
    x = torch.rand(2, 7, 16 + 3)  # rows of pixels then a condition, with a sample dimension
    assert extra.out_dim == plain.out_dim + 3 == 8
    torch.testing.assert_close(extra(x), torch.cat([plain(x[..., :16]), x[..., 16:]], dim=-1))


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
