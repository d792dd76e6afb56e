"""The variational autoencoder of Kingma & Welling (2013), assembled from a config.

Encoder: MLP body, then one linear head giving the mean and log-variance of the
diagonal Gaussian q(z|x). Decoder: MLP body (hidden sizes reversed), then a head giving
the parameters of p(x|z). Prior: N(0, I).
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import Tensor, nn

from aevb.config import check_choice, check_positive
from aevb.distributions import Bernoulli, DiagonalGaussian, StandardNormal
from aevb.networks import ACTIVATIONS, MLP

LIKELIHOODS = ("bernoulli", "gaussian")
GAUSSIAN_VARIANCES = ("output", "learned", "fixed")
GAUSSIAN_MEANS = ("sigmoid", "identity")
INITS = ("paper", "default")


@dataclasses.dataclass(frozen=True)
class VAEConfig:
    """Every hyper-parameter of :class:`VAE`; ``config.json`` of a checkpoint holds it."""

    input_dim: int
    """Data dimension D (pixels for images)."""
    latent_dim: int = 20
    """Latent dimension Nz."""
    hidden: tuple[int, ...] = (500,)
    """Hidden layer widths of the encoder; the decoder uses them reversed. () is linear."""
    activation: str = "tanh"
    """Hidden activation: tanh (the paper), relu, elu, gelu, softplus, leaky_relu."""
    likelihood: str = "bernoulli"
    """p(x|z): "bernoulli" (logits; data in [0,1]) or "gaussian"."""
    gaussian_variance: str = "output"
    """Gaussian only: "output" = the decoder outputs a log-variance per pixel (the paper's
    Frey Face decoder), "learned" = one learned log-variance per pixel, "fixed"."""
    gaussian_mean: str = "sigmoid"
    """Gaussian only: "sigmoid" squashes the mean into (0, 1) (the paper), or "identity"."""
    gaussian_std: float = 0.1
    """Gaussian only, variance "fixed": the standard deviation of p(x|z)."""
    min_logvar: float = -10.0
    """Floor on the decoder's Gaussian log-variance: stops the likelihood diverging on
    pixels that never change (variance -> 0)."""
    init: str = "paper"
    """"paper": every weight and bias ~ N(0, init_std^2); "default": PyTorch's init."""
    init_std: float = 0.01
    """Standard deviation for init "paper" (we read the paper's N(0, 0.01) as std 0.01)."""
    image_shape: tuple[int, ...] | None = None
    """(H, W) or (H, W, C) when the data are images; used only for pictures."""

    def __post_init__(self) -> None:
        name = "VAEConfig"
        check_positive(name, "input_dim", self.input_dim)
        check_positive(name, "latent_dim", self.latent_dim)
        for h in self.hidden:
            check_positive(name, "hidden", h)
        check_choice(name, "activation", self.activation, ACTIVATIONS)
        check_choice(name, "likelihood", self.likelihood, LIKELIHOODS)
        check_choice(name, "gaussian_variance", self.gaussian_variance, GAUSSIAN_VARIANCES)
        check_choice(name, "gaussian_mean", self.gaussian_mean, GAUSSIAN_MEANS)
        check_positive(name, "gaussian_std", self.gaussian_std)
        check_choice(name, "init", self.init, INITS)
        check_positive(name, "init_std", self.init_std)
        if self.image_shape is not None and math.prod(self.image_shape) != self.input_dim:
            raise ValueError(
                f"VAEConfig.image_shape={self.image_shape}: expected a shape with "
                f"input_dim={self.input_dim} elements"
            )


class VAE(nn.Module):
    """x -> q(z|x) -> z -> p(x|z), with prior p(z) = N(0, I).

    Shapes: x is ``(B, D)``; z is ``(..., Nz)`` (a leading sample dimension is allowed).
    """

    config_class = VAEConfig

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.encoder = MLP(c.input_dim, c.hidden, c.activation)
        self.encoder_head = nn.Linear(self.encoder.out_dim, 2 * c.latent_dim)
        self.decoder = MLP(c.latent_dim, tuple(reversed(c.hidden)), c.activation)
        per_pixel_logvar = c.likelihood == "gaussian" and c.gaussian_variance == "output"
        self.decoder_head = nn.Linear(
            self.decoder.out_dim, c.input_dim * (2 if per_pixel_logvar else 1)
        )
        if c.likelihood == "gaussian" and c.gaussian_variance == "learned":
            self.decoder_logvar = nn.Parameter(torch.zeros(c.input_dim))
        elif c.likelihood == "gaussian" and c.gaussian_variance == "fixed":
            fixed = torch.full((c.input_dim,), 2.0 * math.log(c.gaussian_std))
            self.register_buffer("decoder_logvar", fixed)
        self.prior = StandardNormal(c.latent_dim)
        if c.init == "paper":
            for p in self.parameters():
                nn.init.normal_(p, 0.0, c.init_std)
            if c.likelihood == "gaussian" and c.gaussian_variance == "learned":
                nn.init.zeros_(self.decoder_logvar)

    def encode(self, x: Tensor) -> DiagonalGaussian:
        """q(z|x) for ``x`` of shape ``(B, D)``: a Gaussian with batch shape ``(B,)``."""
        mean, logvar = self.encoder_head(self.encoder(x)).chunk(2, dim=-1)
        return DiagonalGaussian(mean, logvar)

    def decode(self, z: Tensor) -> Bernoulli | DiagonalGaussian:
        """p(x|z) for ``z`` of shape ``(..., Nz)``: batch shape ``(...)``, event size D."""
        out = self.decoder_head(self.decoder(z))
        if self.config.likelihood == "bernoulli":
            return Bernoulli(out)
        if self.config.gaussian_variance == "output":
            out, logvar = out.chunk(2, dim=-1)
        else:
            logvar = self.decoder_logvar
        mean = torch.sigmoid(out) if self.config.gaussian_mean == "sigmoid" else out
        return DiagonalGaussian(mean, logvar.clamp(min=self.config.min_logvar))

    def kl_to_prior(self, q: DiagonalGaussian) -> Tensor | None:
        """KL(q(z|x) || p(z)) in closed form, ``(B,)``; None when the prior has none."""
        return q.kl_standard_normal()

    def kl_to_prior_per_dim(self, q: DiagonalGaussian) -> Tensor | None:
        """KL(q(z_i|x) || p(z_i)) per dimension in closed form, ``(B, Nz)``."""
        return q.kl_standard_normal_per_dim()

    @torch.no_grad()
    def sample(
        self, n: int, *, generator: torch.Generator | None = None, temperature: float = 1.0
    ) -> Tensor:
        """Means of p(x|z) for ``n`` draws z from the prior: ``(n, D)``.

        ``temperature`` scales the prior's standard deviation (1 = the model itself).
        """
        device = next(self.parameters()).device
        z = self.prior.sample(n, generator=generator, device=device, temperature=temperature)
        return self.decode(z).mean

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """Mean of p(x|z) at z = E[q(z|x)]: ``(B, D)``."""
        return self.decode(self.encode(x).mean).mean
