"""Small models with known answers, shared by several test files."""

from __future__ import annotations

import math

import torch

from aevb.models import VAE, VAEConfig


def tiny_vae(input_dim=6, latent_dim=2, hidden=(8,), likelihood="bernoulli", seed=0, **kw) -> VAE:
    torch.manual_seed(seed)
    return VAE(
        VAEConfig(
            input_dim=input_dim,
            latent_dim=latent_dim,
            hidden=hidden,
            likelihood=likelihood,
            init="default",
            **kw,
        )
    )


def hvae(**kw) -> VAE:
    """A three-layer model (z_1: 6, z_2: 4, z_3: 2) of 12 inputs; ``kw`` overrides the config."""
    cfg = dict(input_dim=12, latent_dim=6, hidden=(16,), upper_latents=(4, 2), upper_hidden=(8,))
    return VAE(VAEConfig(**{**cfg, **kw}))


def ppca_vae(dim=5, latent=2, sigma=0.5, seed=0, exact_posterior=True):
    """A linear-Gaussian VAE x = W z + b + sigma * eps whose log p(x) is known in closed form.

    W has orthogonal columns, so the true posterior is a diagonal Gaussian and a linear
    encoder can represent it exactly. Returns (model, marginal) where ``marginal`` is the
    exact p(x) = N(b, W W^T + sigma^2 I) as a torch distribution.
    """
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(dim, latent, generator=g, dtype=torch.double))
    w = q * torch.tensor([2.0, 1.0], dtype=torch.double)[:latent]  # orthogonal columns
    b = torch.randn(dim, generator=g, dtype=torch.double)
    model = VAE(
        VAEConfig(
            input_dim=dim,
            latent_dim=latent,
            hidden=(),
            likelihood="gaussian",
            gaussian_variance="fixed",
            gaussian_mean="identity",
            gaussian_std=sigma,
            init="default",
        )
    ).double()
    # exact posterior: Sigma = (I + W^T W / s^2)^-1 (diagonal), mu = Sigma W^T (x - b) / s^2
    wtw = (w * w).sum(0)
    post_var = 1.0 / (1.0 + wtw / sigma**2)
    enc_w = (post_var[:, None] * w.T) / sigma**2
    enc_b = -enc_w @ b
    with torch.no_grad():
        model.decoder_head.weight.copy_(w)
        model.decoder_head.bias.copy_(b)
        model.encoder_head.weight.zero_()
        model.encoder_head.weight[:latent].copy_(enc_w)
        model.encoder_head.bias[:latent].copy_(enc_b)
        model.encoder_head.bias[latent:].copy_(torch.log(post_var))
        if not exact_posterior:  # a deliberately wrong posterior: shifted and too wide
            model.encoder_head.bias[:latent] += 0.5
            model.encoder_head.bias[latent:] += 0.7
    cov = w @ w.T + sigma**2 * torch.eye(dim, dtype=torch.double)
    marginal = torch.distributions.MultivariateNormal(b, covariance_matrix=cov)
    return model, marginal


def log_sum_exp_mean(values: torch.Tensor) -> float:
    return (torch.logsumexp(values, 0) - math.log(values.shape[0])).item()
