"""Convolutional encoder and decoder bodies: image sizes, the data's channels-last layout, and
training one from the CLI."""

import math

import pytest
import torch

from aevb import io as aevb_io
from aevb.cli import main
from aevb.networks import ConvDecoder, ConvEncoder


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
