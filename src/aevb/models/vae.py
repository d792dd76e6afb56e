"""The variational autoencoder of Kingma & Welling (2013), assembled from a config, and
its common extensions as options of the same class.

* Encoder: a body (MLP, or convolutions for images), then one linear head giving the mean
  and log-variance of the diagonal Gaussian q(z_1|x) (q(z_L|x) in a top-down hierarchy).
* Decoder: the mirrored body, then a head giving the parameters of p(x|z_1) (p(x|z_1,
  ..., z_L) in a top-down hierarchy).
* Prior over the top layer: N(0, I) (the paper), a learned Gaussian mixture, or the
  VampPrior (see :mod:`aevb.priors`).
* Hierarchy (``upper_latents``): more stochastic layers above z_1, wired one of two ways
  (``hierarchy``). "bottom-up", IWAE's 2-layer model (Burda et al. 2015):
  q(z_1|x) q(z_2|z_1) ... and p(z_L) ... p(z_1|z_2) p(x|z_1). "top-down", the HVAE of
  Tomczak & Welling (2017): q(z_L|x) q(z_{L-1}|x, z_L) ... q(z_1|x, z_2) and
  p(z_L) ... p(z_1|z_2) p(x|z_1, ..., z_L); every inference step sees x (through the
  encoder body, shared by all layers) and the decoder sees every layer.
* Condition (``condition_dim`` > 0): the last C columns of every data row are a label or
  side vector y; the encoder sees (x, y), the decoder (z, y) (Sohn et al. 2015).

With the defaults it is exactly the paper's model.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aevb.config import check_choice, check_positive
from aevb.distributions import Bernoulli, DiagonalGaussian, Shard, standard_normal
from aevb.inputs import check_rows
from aevb.models.layers import GaussianLayer, clamp_logvar
from aevb.networks import DENSE_ACTIVATIONS, GATED, MLP, ConvDecoder, ConvEncoder
from aevb.priors import PRIORS, build_prior

BODIES = ("mlp", "conv")
LIKELIHOODS = ("bernoulli", "gaussian")
GAUSSIAN_VARIANCES = ("output", "learned", "fixed")
GAUSSIAN_MEANS = ("sigmoid", "identity")
INITS = ("paper", "default", "he", "glorot")
HIERARCHIES = ("bottom-up", "top-down")


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
    """Hidden activation: tanh (the paper), relu, elu, gelu, softplus, leaky_relu, or
    "gated" (gated dense layers, as in Tomczak & Welling's VampPrior models; MLP only)."""
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
    """"paper": every weight and bias ~ N(0, init_std^2); "default": PyTorch's init;
    "he": weights ~ N(0, 2 / fan_in) and zero biases (He et al. 2015; Tomczak & Welling's
    code); "glorot": weights ~ U(+-sqrt(6 / (fan_in + fan_out))) and zero biases (Glorot &
    Bengio 2010; the IWAE paper)."""
    init_std: float = 0.01
    """Standard deviation for init "paper" (we read the paper's N(0, 0.01) as std 0.01)."""
    image_shape: tuple[int, ...] | None = None
    """(H, W) or (H, W, C) when the data are images; pictures and body "conv" need it."""
    body: str = "mlp"
    """Encoder/decoder bodies: "mlp", or "conv" (stride-2 convolutions over the image,
    then the ``hidden`` dense layers; images only)."""
    channels: tuple[int, ...] = (32, 64)
    """Body "conv": channels of the encoder's convolutions (the decoder mirrors them);
    each one halves the image side."""
    prior: str = "standard"
    """p(z) over the top layer: "standard" N(0, I), "mog" (learned mixture of
    Gaussians) or "vamp" (VampPrior). Only "standard" has a closed-form KL."""
    prior_components: int = 500
    """Priors "mog" and "vamp": number of components K (pseudo-inputs for "vamp")."""
    upper_latents: tuple[int, ...] = ()
    """Sizes of the stochastic layers above z_1 (bottom to top), e.g. (50,) with
    latent_dim=100 for IWAE's 2-layer model. () is the one-layer VAE."""
    upper_hidden: tuple[int, ...] = (100, 100)
    """Hidden widths of the networks between stochastic layers (reversed downwards)."""
    hierarchy: str = "bottom-up"
    """With ``upper_latents``: "bottom-up" (IWAE's stack) or "top-down" (Tomczak &
    Welling's HVAE); see the module docstring."""
    latent_logvar_range: tuple[float, float] | None = None
    """Bounds (low, high) on the log-variance of q(z_1|x) and of every Gaussian between
    stochastic layers, e.g. (-6, 2) as in Tomczak & Welling's code; None = unbounded (the
    paper). Without bounds, deep hierarchies with a VampPrior can drive a variance to
    zero and the Monte Carlo bound off to nonsense."""
    condition_dim: int = 0
    """C > 0 makes a conditional VAE: each data row ends with C condition columns (e.g.
    a one-hot label) that the encoder and decoder both receive."""

    def __post_init__(self) -> None:
        name = "VAEConfig"
        check_positive(name, "input_dim", self.input_dim)
        check_positive(name, "latent_dim", self.latent_dim)
        for h in self.hidden:
            check_positive(name, "hidden", h)
        check_choice(name, "activation", self.activation, DENSE_ACTIVATIONS)
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
        check_choice(name, "body", self.body, BODIES)
        if self.body == "conv" and self.image_shape is None:
            raise ValueError("VAEConfig.body='conv': expected image data (image_shape is None)")
        if self.body == "conv" and self.activation == GATED:
            raise ValueError(
                "VAEConfig: activation 'gated' is for dense bodies: expected body 'mlp'"
            )
        for c in self.channels:
            check_positive(name, "channels", c)
        check_choice(name, "prior", self.prior, PRIORS)
        check_positive(name, "prior_components", self.prior_components)
        for d in (*self.upper_latents, *self.upper_hidden):
            check_positive(name, "upper_latents/upper_hidden", d)
        check_choice(name, "hierarchy", self.hierarchy, HIERARCHIES)
        r = self.latent_logvar_range
        if r is not None and not (len(r) == 2 and r[0] < r[1]):
            raise ValueError(f"VAEConfig.latent_logvar_range={r}: expected (low, high), low < high")
        if self.condition_dim < 0:
            raise ValueError(f"VAEConfig.condition_dim={self.condition_dim}: expected >= 0")
        if self.condition_dim and self.prior == "vamp":
            raise ValueError(
                "VAEConfig: prior 'vamp' with condition_dim > 0 is not supported: pseudo-"
                "inputs carry no condition; use prior 'standard' or 'mog'"
            )

    @property
    def latent_sizes(self) -> tuple[int, ...]:
        """Sizes of every stochastic layer, bottom (z_1) to top."""
        return (self.latent_dim, *self.upper_latents)

    @property
    def top_down(self) -> bool:
        """Whether inference starts at the top layer (a "top-down" hierarchy)."""
        return self.hierarchy == "top-down" and bool(self.upper_latents)

    @property
    def code_dim(self) -> int:
        """Size of the layer :meth:`VAE.encode` infers from x alone: z_1, or z_L when
        the hierarchy is top-down."""
        return self.latent_sizes[-1] if self.top_down else self.latent_dim

    @property
    def analytic_kl(self) -> bool:
        """Whether KL(q || p) has a closed form (one layer and the standard normal prior);
        otherwise training and evaluation use its Monte Carlo estimate (estimator A)."""
        return self.prior == "standard" and not self.upper_latents


class VAE(nn.Module):
    """x -> q(z|x) -> z -> p(x|z), with a prior p(z) (see the module docstring).

    Shapes: a data row ``x`` is ``(B, D + C)`` (C = ``condition_dim``, usually 0); z_1 is
    ``(..., Nz)`` (a leading sample dimension is allowed).
    """

    config_class = VAEConfig

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        per_pixel_logvar = c.likelihood == "gaussian" and c.gaussian_variance == "output"
        params_per_pixel = 2 if per_pixel_logvar else 1
        sizes = c.latent_sizes
        decoder_in = sum(sizes) if c.top_down else c.latent_dim  # top-down: p(x|z_1..z_L)
        if c.body == "conv":
            self.encoder = ConvEncoder(c.image_shape, c.channels, c.hidden, c.activation)
            self.encoder_head = nn.Linear(self.encoder.out_dim + c.condition_dim, 2 * c.code_dim)
            self.decoder = ConvDecoder(
                decoder_in + c.condition_dim,
                c.image_shape,
                c.channels,
                tuple(reversed(c.hidden)),
                c.activation,
                params_per_pixel,
            )
            self.decoder_head = nn.Identity()
        else:
            self.encoder = MLP(c.input_dim + c.condition_dim, c.hidden, c.activation)
            self.encoder_head = nn.Linear(self.encoder.out_dim, 2 * c.code_dim)
            self.decoder = MLP(
                decoder_in + c.condition_dim, tuple(reversed(c.hidden)), c.activation
            )
            self.decoder_head = nn.Linear(self.decoder.out_dim, c.input_dim * params_per_pixel)
        if c.likelihood == "gaussian" and c.gaussian_variance == "learned":
            self.decoder_logvar = nn.Parameter(torch.zeros(c.input_dim))
        elif c.likelihood == "gaussian" and c.gaussian_variance == "fixed":
            fixed = torch.full((c.input_dim,), 2.0 * math.log(c.gaussian_std))
            self.register_buffer("decoder_logvar", fixed)
        up, down = c.upper_hidden, tuple(reversed(c.upper_hidden))
        bounds = c.latent_logvar_range
        features = self.encoder_head.in_features
        # inference between layers: bottom-up q(z_{i+2}|z_{i+1}) in ``upward``, or
        # top-down q(z_{i+1}|x, z_{i+2}) in ``posterior_down`` (the other list is empty)
        self.upward = nn.ModuleList(
            GaussianLayer(sizes[i], up, sizes[i + 1], c.activation, bounds)
            for i in range(0 if c.top_down else len(sizes) - 1)
        )
        self.posterior_down = nn.ModuleList(
            GaussianLayer(features + sizes[i + 1], up, sizes[i], c.activation, bounds)
            for i in range(len(sizes) - 1 if c.top_down else 0)
        )
        self.downward = nn.ModuleList(
            GaussianLayer(sizes[i + 1], down, sizes[i], c.activation, bounds)
            for i in range(len(sizes) - 1)
        )
        if c.init == "paper":
            for p in self.parameters():
                nn.init.normal_(p, 0.0, c.init_std)
            if c.likelihood == "gaussian" and c.gaussian_variance == "learned":
                nn.init.zeros_(self.decoder_logvar)
        elif c.init in ("he", "glorot"):
            for m in self.modules():
                if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
                    if c.init == "he":
                        nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                    else:
                        nn.init.xavier_uniform_(m.weight)
                    nn.init.zeros_(m.bias)
        # built last: the paper's initialisation covers the networks, not the prior
        self.prior = build_prior(
            c.prior,
            sizes[-1],
            components=c.prior_components,
            input_dim=c.input_dim,
            encode=self.posterior if c.top_down else self._encode_top,
            unit_interval=c.likelihood == "bernoulli",
        )

    # -- inference -------------------------------------------------------------------

    def split(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """Data rows ``(..., D + C)`` -> pixels ``(..., D)`` and condition ``(..., C)`` or None."""
        d, c = self.config.input_dim, self.config.condition_dim
        if x.shape[-1] != d + c:
            extra = f" + {c} condition columns" if c else ""
            raise ValueError(f"data rows have {x.shape[-1]} values: expected {d}{extra}")
        return (x[..., :d], x[..., d:]) if c else (x, None)

    def features(self, x: Tensor) -> Tensor:
        """The encoder body's output for rows ``x`` ``(B, D + C)``: ``(B, F)``."""
        if self.config.body == "conv":
            pixels, condition = self.split(x)
            h = self.encoder(pixels)
            return h if condition is None else torch.cat([h, condition], dim=-1)
        self.split(x)  # shape check
        return self.encoder(x)

    def encode(self, x: Tensor | np.ndarray) -> DiagonalGaussian:
        """q(z_1|x) (top-down hierarchy: q(z_L|x)) for rows ``x`` ``(B, D + C)``: a
        Gaussian with batch shape ``(B,)`` over ``config.code_dim`` dimensions.

        ``x`` may be a numpy array or a tensor of any dtype and device: it is converted to
        the model's. A ``ValueError`` says what is wrong with rows the model cannot score
        (NaN/inf, another width, values outside [0, 1] for a Bernoulli likelihood); see
        :func:`aevb.inputs.check_rows`. :meth:`posterior` is the same without the checks.
        """
        return self.posterior(check_rows(self, x, device=next(self.parameters()).device))

    def posterior(self, x: Tensor) -> DiagonalGaussian:
        """:meth:`encode` without its input checks, for rows ``x`` ``(B, D + C)`` already of
        the model's dtype and device: the objectives call it on every minibatch, where a
        check would cost a pass over the data (and a GPU synchronisation) per step.

        A top-down model's posterior also carries ``features``, the encoder body's output
        ``(B, F)``, which :meth:`infer_layers` reuses for the lower layers.
        """
        h = self.features(x)
        mean, logvar = self.encoder_head(h).chunk(2, dim=-1)
        q = DiagonalGaussian(mean, clamp_logvar(logvar, self.config.latent_logvar_range))
        if self.config.top_down:
            q.features = h
        return q

    def infer_layers(
        self,
        x: Tensor,
        z: Tensor,
        *,
        generator: torch.Generator | None = None,
        shard: Shard | None = None,
        sample: bool = True,
        features: Tensor | None = None,
    ) -> tuple[list[Tensor], Tensor | float]:
        """Every stochastic layer, given draws ``z`` ``(L, B, N)`` from :meth:`encode`'s
        posterior for rows ``x`` ``(B, D + C)``.

        Bottom-up, z is z_1 and z_2..z_L are drawn from q(z_{l+1}|z_l); top-down, z is z_L
        and z_{L-1}..z_1 are drawn from q(z_l|x, z_{l+1}). Returns the layers in model
        order [z_1, ..., z_L] (each ``(L, B, N_l)``, reparameterised) and the sum of the
        log q of the layers drawn here, ``(L, B)`` (0.0 for a one-layer model). With
        ``sample=False`` each layer is its conditional mean and the log q is 0.0.
        ``features`` ``(B, F)``: the encoder body's output for ``x`` when already computed
        (the ``features`` of a top-down :meth:`encode`), else computed here.
        """
        log_q: Tensor | float = 0.0

        def draw(q: DiagonalGaussian) -> Tensor:
            nonlocal log_q
            if not sample:
                return q.mean
            eps = standard_normal(z.shape[0], q.mean[0], generator=generator, shard=shard)
            v = q.mean + q.std * eps
            log_q = log_q + q.log_prob(v)
            return v

        chain = [z]
        if self.config.top_down:
            h = self.features(x) if features is None else features
            h = h.to(z.dtype).expand(z.shape[0], -1, -1)  # (L, B, F)
            for layer in reversed(self.posterior_down):
                chain.insert(0, draw(layer(torch.cat([h, chain[0]], dim=-1))))
        else:
            for layer in self.upward:
                chain.append(draw(layer(chain[-1])))
        return chain, log_q

    def _encode_top(self, x: Tensor) -> DiagonalGaussian:
        """q over the top layer given ``x`` ``(K, D)``, passing means up (VampPrior of a
        bottom-up hierarchy; a top-down one uses :meth:`posterior` itself)."""
        q = self.posterior(x)
        for layer in self.upward:
            q = layer(q.mean)
        return q

    # -- generation --------------------------------------------------------------------

    def decode(
        self, z: Tensor | Sequence[Tensor], condition: Tensor | None = None
    ) -> Bernoulli | DiagonalGaussian:
        """p(x|z): batch shape ``(...)``, event size D.

        ``z`` is either every layer [z_1, ..., z_L] (each ``(..., N_l)``), or a code
        ``(..., config.code_dim)`` as :meth:`encode` gives: z_1, or for a top-down
        hierarchy z_L, whose lower layers are then set to the means of p(z_l|z_{l+1}).
        A bottom-up decoder reads z_1 only. ``condition`` ``(B, C)`` is required by a
        conditional model; it broadcasts against a leading sample dimension of ``z``.
        """
        if isinstance(z, Tensor):
            z = self._lower_means(z) if self.config.top_down else [z]
        elif self.config.top_down and len(z) != len(self.config.latent_sizes):
            raise ValueError(
                f"decode: {len(z)} layers given; a top-down model reads all "
                f"{len(self.config.latent_sizes)} (z_1, ..., z_L) or a code of its top layer"
            )
        z = torch.cat(list(z), dim=-1) if self.config.top_down else z[0]
        if self.config.condition_dim:
            if condition is None:
                raise ValueError(
                    f"conditional model: decode needs a condition of "
                    f"{self.config.condition_dim} values per row"
                )
            condition = condition.to(z.dtype).expand(*z.shape[:-1], condition.shape[-1])
            z = torch.cat([z, condition], dim=-1)
        out = self.decoder_head(self.decoder(z))
        if self.config.likelihood == "bernoulli":
            return Bernoulli(out)
        if self.config.gaussian_variance == "output":
            out, logvar = out.chunk(2, dim=-1)
        else:
            logvar = self.decoder_logvar
        mean = torch.sigmoid(out) if self.config.gaussian_mean == "sigmoid" else out
        return DiagonalGaussian(mean, logvar.clamp(min=self.config.min_logvar))

    def _lower_means(self, top: Tensor) -> list[Tensor]:
        """[z_1, ..., z_L] from z_L ``(..., N_L)``, each lower layer at the mean of
        p(z_l|z_{l+1})."""
        chain = [top]
        for layer in reversed(self.downward):
            chain.insert(0, layer(chain[0]).mean)
        return chain

    def log_prior(self, z: Tensor, upper: Sequence[Tensor] = ()) -> Tensor:
        """log p(z_1, ..., z_L) = log p(z_L) + sum_l log p(z_l | z_{l+1}): ``(...)``."""
        chain = [z, *upper]
        total = self.prior.log_prob(chain[-1])
        for i, layer in enumerate(self.downward):
            total = total + layer(chain[i + 1]).log_prob(chain[i])
        return total

    def log_joint(self, x: Tensor, z: Tensor | Sequence[Tensor]) -> Tensor:
        """log p(x, z) = log p(x|z) + log p(z) in nats, for rows ``x`` ``(B, D + C)``: ``(..., B)``.

        ``z`` is z_1 ``(..., B, Nz)`` of a one-layer model (a leading sample dimension is
        allowed), or every layer [z_1, ..., z_L], each ``(..., B, N_l)``.
        """
        layers = [z] if isinstance(z, Tensor) else list(z)
        if len(layers) != len(self.config.latent_sizes):
            raise ValueError(
                f"log_joint: {len(layers)} layers given, the model has "
                f"{len(self.config.latent_sizes)} (z_1, ..., z_L)"
            )
        pixels, condition = self.split(x)
        log_px_z = self.decode(layers, condition).log_prob(pixels)
        return log_px_z + self.log_prior(layers[0], layers[1:])

    def generative_parameters(self) -> list[nn.Parameter]:
        """The parameters of p(x|z) and p(z) (decoder, its variance, the generative stack
        and the prior), in :meth:`parameters` order: all but the inference networks'."""
        inference = (self.encoder, self.encoder_head, self.upward, self.posterior_down)
        skip = {id(p) for m in inference for p in m.parameters()}
        return [p for p in self.parameters() if id(p) not in skip]

    def kl_to_prior(self, q: DiagonalGaussian) -> Tensor | None:
        """KL(q(z|x) || p(z)) in closed form, ``(B,)``; None when the model has none."""
        return q.kl_standard_normal() if self.config.analytic_kl else None

    def kl_to_prior_per_dim(self, q: DiagonalGaussian) -> Tensor | None:
        """KL(q(z_i|x) || p(z_i)) per dimension in closed form, ``(B, Nz)``, or None."""
        return q.kl_standard_normal_per_dim() if self.config.analytic_kl else None

    def as_condition(self, condition: Tensor | Sequence[int] | None, n: int) -> Tensor | None:
        """A condition ``(n, C)`` from class labels ``(n,)`` (one-hot) or vectors ``(n, C)``."""
        c = self.config.condition_dim
        if not c:
            if condition is not None:
                raise ValueError("this model is not conditional: expected no condition")
            return None
        if condition is None:
            raise ValueError(f"conditional model: expected labels or {c}-value conditions")
        param = next(self.parameters())
        y = torch.as_tensor(condition, device=param.device)
        if y.dim() == 1 and y.is_floating_point():
            raise ValueError(f"class labels of dtype {y.dtype}: expected integers")
        if y.dim() == 1:
            if y.numel() and (y.min() < 0 or y.max() >= c):
                raise ValueError(f"labels {y.tolist()[:10]}: expected integers in [0, {c})")
            y = F.one_hot(y, c).float()
        if y.shape != (n, c):
            raise ValueError(f"condition of shape {tuple(y.shape)}: expected ({n}, {c}) or ({n},)")
        return y.to(param.dtype)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        temperature: float = 1.0,
        condition: Tensor | Sequence[int] | None = None,
    ) -> Tensor:
        """Means of p(x|z) for ``n`` draws from the prior (top-down through the layers):
        ``(n, D)``.

        ``temperature`` scales the standard deviation of the prior and of every
        p(z_l | z_{l+1}) (1 = the model itself). A conditional model needs ``condition``:
        class labels ``(n,)`` or condition vectors ``(n, C)``.
        """
        y = self.as_condition(condition, n)
        param = next(self.parameters())
        device, dtype = param.device, param.dtype
        chain = [
            self.prior.sample(
                n, generator=generator, device=device, temperature=temperature, dtype=dtype
            )
        ]
        for layer in reversed(self.downward):
            p = layer(chain[0])
            eps = torch.randn(p.mean.shape, generator=generator, device=device, dtype=dtype)
            chain.insert(0, p.mean + temperature * p.std * eps)
        return self.decode(chain, y).mean

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """Mean of p(x|z) with every layer at its posterior mean given the layer it is
        inferred from: ``(B, D)`` for rows ``(B, D + C)`` (checked and converted as by
        :meth:`encode`)."""
        x = check_rows(self, x, device=next(self.parameters()).device)
        q = self.posterior(x)
        chain, _ = self.infer_layers(
            x, q.mean[None], sample=False, features=getattr(q, "features", None)
        )
        return self.decode([v[0] for v in chain], self.split(x)[1]).mean
