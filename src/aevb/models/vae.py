"""The variational autoencoder of Kingma & Welling (2013), assembled from a config.

Read top to bottom, :class:`VAE` is the paper's model: an encoder body and a linear head
give the diagonal Gaussian q(z|x); z = mean + std * eps is drawn by reparameterisation
(:meth:`aevb.distributions.DiagonalGaussian.rsample`, called by the objectives); a decoder
body and a likelihood head give p(x|z); the prior p(z) is N(0, I). Its extensions are
options of the same class, each a part added where the code says "variant":

* bodies: MLP, or convolutions over the image (:mod:`aevb.networks`);
* likelihood heads: Bernoulli, or Gaussian with an output, learned or fixed variance
  (:mod:`aevb.distributions`);
* the prior over the top layer: N(0, I), a learned mixture or the VampPrior
  (:mod:`aevb.priors`);
* stochastic layers above z_1 (``upper_latents``), wired bottom-up (IWAE) or top-down
  (Tomczak & Welling's HVAE) (:mod:`aevb.models.hierarchy`);
* a condition (``condition_dim`` > 0): the last C columns of every data row are a label or
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
from aevb.data.validation import LIKELIHOODS
from aevb.distributions import (
    GAUSSIAN_MEANS,
    GAUSSIAN_VARIANCES,
    BernoulliHead,
    DiagonalGaussian,
    Distribution,
    GaussianHead,
    Shard,
    clamp_logvar,
)
from aevb.inputs import check_rows
from aevb.models import hierarchy
from aevb.models.hierarchy import HIERARCHIES
from aevb.models.protocol import Encoded
from aevb.networks import (
    DENSE_ACTIVATIONS,
    GATED,
    INIT_SCHEMES,
    MLP,
    ConvDecoder,
    ConvEncoder,
    initialise,
)
from aevb.priors import PRIORS, PriorSite, build_prior

BODIES = ("mlp", "conv")


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
    Welling's HVAE); see :mod:`aevb.models.hierarchy`."""
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
        check_choice(name, "init", self.init, INIT_SCHEMES)
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


def _networks(c: VAEConfig, per_value: int) -> tuple[nn.Module, nn.Module, nn.Module, nn.Module]:
    """The encoder body and its head (to the mean and log-variance of q), the decoder body
    and its head (to ``per_value`` parameters of p(x|z) per data value)."""
    # variant: a top-down hierarchy's decoder reads every layer; a condition joins z
    decoder_in = (sum(c.latent_sizes) if c.top_down else c.latent_dim) + c.condition_dim
    if c.body == "mlp":
        encoder = MLP(c.input_dim + c.condition_dim, c.hidden, c.activation)
        encoder_head = nn.Linear(encoder.out_dim, 2 * c.code_dim)
        decoder = MLP(decoder_in, tuple(reversed(c.hidden)), c.activation)
        return encoder, encoder_head, decoder, nn.Linear(decoder.out_dim, c.input_dim * per_value)
    # variant: convolutional bodies; a condition joins after the convolutions
    encoder = ConvEncoder(c.image_shape, c.channels, c.hidden, c.activation)
    encoder_head = nn.Linear(encoder.out_dim + c.condition_dim, 2 * c.code_dim)
    hidden = tuple(reversed(c.hidden))
    decoder = ConvDecoder(decoder_in, c.image_shape, c.channels, hidden, c.activation, per_value)
    return encoder, encoder_head, decoder, nn.Identity()


class VAE(nn.Module):
    """x -> q(z|x) -> z -> p(x|z), with a prior p(z) (see the module docstring).

    Shapes: a data row ``x`` is ``(B, D + C)`` (C = ``condition_dim``, usually 0); z_1 is
    ``(..., Nz)`` (a leading sample dimension is allowed).
    """

    config_class = VAEConfig

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.config = c = config
        if c.likelihood == "bernoulli":
            self.likelihood_head = BernoulliHead()
        else:
            self.likelihood_head = GaussianHead(
                c.gaussian_mean, c.gaussian_variance, c.min_logvar, c.gaussian_std
            )
        self.encoder, self.encoder_head, self.decoder, self.decoder_head = _networks(
            c, self.likelihood_head.outputs_per_value
        )
        # variant: a Gaussian likelihood's log-variance per pixel, unless the decoder outputs it
        logvar = self.likelihood_head.initial_logvar(c.input_dim)
        learned = logvar is not None and c.gaussian_variance == "learned"
        if learned:
            self.decoder_logvar = nn.Parameter(logvar)
        else:
            self.register_buffer("decoder_logvar", logvar)
        # variant: stochastic layers above z_1 (empty lists for the one-layer model)
        self.upward, self.posterior_down, self.downward = hierarchy.stacks(
            c.latent_sizes,
            top_down=c.top_down,
            features=self.encoder_head.in_features,
            hidden=c.upper_hidden,
            activation=c.activation,
            logvar_range=c.latent_logvar_range,
        )
        initialise(self, c.init, c.init_std)
        if learned:
            nn.init.zeros_(self.decoder_logvar)  # a unit variance under every scheme
        # built last: the initialisation covers the networks, not the prior
        site = PriorSite(
            c.latent_sizes[-1],
            c.prior_components,
            c.input_dim,
            self._encode_top,
            unit_interval=c.likelihood == "bernoulli",
        )
        self.prior = build_prior(c.prior, site)

    # -- the paper's model ---------------------------------------------------------------

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
        check would cost a pass over the data (and a GPU synchronisation) per step."""
        return self.encoded(x).q

    def encoded(self, x: Tensor) -> Encoded:
        """:meth:`posterior` with the encoder body's output it was computed from, which
        :meth:`infer_layers` reuses for a top-down hierarchy's lower layers."""
        pixels, condition = self.separate_condition(x)
        if self.config.body == "conv":  # variant: a condition joins after the convolutions
            h = self.encoder(pixels)
            h = h if condition is None else torch.cat([h, condition], dim=-1)
        else:
            h = self.encoder(x)
        mean, logvar = self.encoder_head(h).chunk(2, dim=-1)
        q = DiagonalGaussian(mean, clamp_logvar(logvar, self.config.latent_logvar_range))
        return Encoded(q, h)

    def decode(self, z: Tensor, condition: Tensor | None = None) -> Distribution:
        """p(x|z) for a code z ``(..., config.code_dim)`` as :meth:`encode` gives: batch shape
        ``(...)``, event size D. ``condition`` ``(B, C)`` is required by a conditional model;
        it broadcasts against a leading sample dimension of ``z``."""
        if self.config.top_down:  # variant: z is z_L, the lower layers at their prior means
            return self.decode_layers(hierarchy.lower_means(self.downward, z), condition)
        return self._likelihood(z, condition)

    def _likelihood(self, h: Tensor, condition: Tensor | None) -> Distribution:
        """p(x|z) from the decoder's input ``h`` ``(..., F)``, the condition appended."""
        if self.config.condition_dim:  # variant: the decoder reads (z, y)
            if condition is None:
                raise ValueError(
                    f"conditional model: decode needs a condition of "
                    f"{self.config.condition_dim} values per row"
                )
            condition = condition.to(h.dtype).expand(*h.shape[:-1], condition.shape[-1])
            h = torch.cat([h, condition], dim=-1)
        return self.likelihood_head(self.decoder_head(self.decoder(h)), self.decoder_logvar)

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
        pixels, condition = self.separate_condition(x)
        log_px_z = self.decode_layers(layers, condition).log_prob(pixels)
        return log_px_z + self.log_prior(layers[0], layers[1:])

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
        layers = hierarchy.sample_layers(
            self.prior,
            self.downward,
            n,
            generator=generator,
            device=param.device,
            dtype=param.dtype,
            temperature=temperature,
        )
        return self.decode_layers(layers, y).mean

    # -- what evaluation, pictures and the baselines read -------------------------------

    def kl_to_prior(self, q: DiagonalGaussian) -> Tensor | None:
        """KL(q(z|x) || p(z)) in closed form, ``(B,)``; None when the model has none."""
        return q.kl_standard_normal() if self.config.analytic_kl else None

    def kl_to_prior_per_dim(self, q: DiagonalGaussian) -> Tensor | None:
        """KL(q(z_i|x) || p(z_i)) per dimension in closed form, ``(B, Nz)``, or None."""
        return q.kl_standard_normal_per_dim() if self.config.analytic_kl else None

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """Mean of p(x|z) with every layer at its posterior mean given the layer it is
        inferred from: ``(B, D)`` for rows ``(B, D + C)`` (checked and converted as by
        :meth:`encode`)."""
        x = check_rows(self, x, device=next(self.parameters()).device)
        q, features = self.encoded(x)
        chain, _ = self.infer_layers(x, q.mean[None], sample=False, features=features)
        return self.decode_layers([v[0] for v in chain], self.separate_condition(x)[1]).mean

    def generative_parameters(self) -> list[nn.Parameter]:
        """The parameters of p(x|z) and p(z) (decoder, its variance, the generative stack
        and the prior), in :meth:`parameters` order: all but the inference networks'."""
        inference = (self.encoder, self.encoder_head, self.upward, self.posterior_down)
        skip = {id(p) for m in inference for p in m.parameters()}
        return [p for p in self.parameters() if id(p) not in skip]

    # -- variant: stochastic layers above z_1 (aevb.models.hierarchy) ----------------------

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
        """Every layer [z_1, ..., z_L] given draws ``z`` ``(L, B, N)`` from :meth:`encode`'s
        posterior for rows ``x`` ``(B, D + C)``, and the log q of the layers drawn here:
        see :func:`aevb.models.hierarchy.infer_layers`. ``features``: the encoder body's
        output for ``x`` (:meth:`encoded`), computed here when not given."""
        if self.config.top_down and features is None:
            features = self.encoded(x).features
        return hierarchy.infer_layers(
            self.upward,
            self.posterior_down,
            z,
            features,
            generator=generator,
            shard=shard,
            sample=sample,
        )

    def decode_layers(
        self, layers: Sequence[Tensor], condition: Tensor | None = None
    ) -> Distribution:
        """p(x|z_1, ..., z_L) from every layer, each ``(..., N_l)``, as :meth:`decode`: a
        bottom-up decoder reads z_1, a top-down one every layer."""
        if not self.config.top_down:
            return self._likelihood(layers[0], condition)
        if len(layers) != (n := len(self.config.latent_sizes)):
            raise ValueError(
                f"decode_layers: {len(layers)} layers given; a top-down model reads all "
                f"{n} (z_1, ..., z_L)"
            )
        return self._likelihood(torch.cat(list(layers), dim=-1), condition)

    def log_prior(self, z: Tensor, upper: Sequence[Tensor] = ()) -> Tensor:
        """log p(z_1, ..., z_L) = log p(z_L) + sum_l log p(z_l | z_{l+1}): ``(...)``."""
        return hierarchy.log_prior(self.prior, self.downward, [z, *upper])

    def _encode_top(self, x: Tensor) -> DiagonalGaussian:
        """q over the top layer given pseudo-inputs ``x`` ``(K, D)``, for a VampPrior: the
        posterior itself, or bottom-up the means passed up through the upward layers."""
        return hierarchy.pass_means_up(self.posterior(x), self.upward)

    # -- variant: a condition y in the last C columns of every data row -------------------

    def separate_condition(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """Data rows ``(..., D + C)`` -> pixels ``(..., D)`` and condition ``(..., C)`` or None."""
        d, c = self.config.input_dim, self.config.condition_dim
        if x.shape[-1] != d + c:
            extra = f" + {c} condition columns" if c else ""
            raise ValueError(f"data rows have {x.shape[-1]} values: expected {d}{extra}")
        return (x[..., :d], x[..., d:]) if c else (x, None)

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
