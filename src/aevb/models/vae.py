"""The variational autoencoder of Kingma & Welling (2013), assembled from a config.

The first part of :class:`VAE` is the paper's model, top to bottom: an encoder body and a
linear head give the diagonal Gaussian q(z|x); z = mean + std * eps is drawn by
reparameterisation (:meth:`aevb.distributions.DiagonalGaussian.rsample`, called by the
objectives); a decoder body and a likelihood head give p(x|z); the prior p(z) is N(0, I).
Its extensions are options of the same class, each a part from its own module, added in
a marked section below and reached from the paper's code by a line marked "variant":

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

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aevb.deprecation import deprecated, moved
from aevb.distributions import (
    BernoulliHead,
    DiagonalGaussian,
    Distribution,
    GaussianHead,
    Shard,
    clamp_logvar,
)
from aevb.inputs import check_rows
from aevb.models import hierarchy
from aevb.models.protocol import Encoded
from aevb.models.vae_config import VAEConfig
from aevb.networks import MLP, ConvDecoder, ConvEncoder, initialise
from aevb.priors import PriorSite, build_prior


class VAE(nn.Module):
    """x -> q(z|x) -> z -> p(x|z), with a prior p(z) (see the module docstring).

    Shapes: a data row ``x`` is ``(B, D + C)`` (C = ``condition_dim``, usually 0); z is
    ``(..., Nz)`` (a leading sample dimension is allowed).
    """

    config_class = VAEConfig

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.config = c = config
        # p(x|z) from the decoder's output: Bernoulli (logits) or Gaussian
        if c.likelihood == "bernoulli":
            self.likelihood_head = BernoulliHead()
        else:
            self.likelihood_head = GaussianHead(
                c.gaussian_mean, c.gaussian_variance, c.min_logvar, c.gaussian_std
            )
        per_value = self.likelihood_head.outputs_per_value
        if c.body == "conv":  # variant: convolutional bodies
            self._add_conv_networks(per_value)
        else:  # x -> MLP -> linear -> (mean, log-variance) of q; z -> MLP -> linear -> p(x|z)
            self.encoder = MLP(c.input_dim + c.condition_dim, c.hidden, c.activation)
            self.encoder_head = nn.Linear(self.encoder.out_dim, 2 * c.code_dim)
            self.decoder = MLP(self._decoder_width(), tuple(reversed(c.hidden)), c.activation)
            self.decoder_head = nn.Linear(self.decoder.out_dim, c.input_dim * per_value)
        # variants: a Gaussian likelihood's own log-variance, stochastic layers above z_1
        self._add_decoder_logvar()
        self.upward, self.posterior_down, self.downward = self._upper_layers()
        initialise(self, c.init, c.init_std)  # the paper: every parameter ~ N(0, 0.01^2)
        if isinstance(self.decoder_logvar, nn.Parameter):  # variant: a learned variance
            nn.init.zeros_(self.decoder_logvar)  # starts at 1 under every scheme
        # built last: the initialisation covers the networks, not the prior
        self.prior = build_prior(c.prior, self._prior_site())  # the paper: N(0, I)

    def encode(self, x: Tensor | np.ndarray) -> DiagonalGaussian:
        """q(z|x) for rows ``x`` ``(B, D + C)``: batch shape ``(B,)``, ``config.code_dim`` wide
        (z_1, or z_L of a top-down hierarchy). ``x`` may be any array of any dtype and
        device: it is converted, and rows the model cannot score are refused with a
        ``ValueError`` (:func:`aevb.inputs.check_rows`)."""
        return self.posterior(check_rows(self, x, device=next(self.parameters()).device))

    def posterior(self, x: Tensor) -> DiagonalGaussian:
        """:meth:`encode` without its checks, for rows already of the model's dtype and device:
        the objectives call it on every minibatch, where a check would cost a pass over the
        data (and a GPU synchronisation) per step."""
        return self.encoded(x).q

    def encoded(self, x: Tensor) -> Encoded:
        """:meth:`posterior` with the encoder body's output ``(B, F)`` it was computed from."""
        self.separate_condition(x)  # refuses rows of another width
        h = self.encoder(x)
        mean, logvar = self.encoder_head(h).chunk(2, dim=-1)
        q = DiagonalGaussian(mean, clamp_logvar(logvar, self.config.latent_logvar_range))
        return Encoded(q, h)

    def decode(self, z: Tensor, condition: Tensor | None = None) -> Distribution:
        """p(x|z) for a code z ``(..., code_dim)`` as :meth:`encode` gives: batch shape
        ``(...)``, event size D. A conditional model needs ``condition`` ``(B, C)``."""
        if self.config.top_down:  # variant: z is z_L, the layers below at their prior means
            return self.decode_layers(hierarchy.lower_means(self.downward, z), condition)
        return self._likelihood(z, condition)

    def _likelihood(self, h: Tensor, condition: Tensor | None) -> Distribution:
        """p(x|z) from what the decoder reads, ``h`` ``(..., F)``: z in the paper's model."""
        out = self.decoder_head(self.decoder(self._with_condition(h, condition)))
        return self.likelihood_head(out, self.decoder_logvar)

    def log_joint(self, x: Tensor, z: Tensor | Sequence[Tensor]) -> Tensor:
        """log p(x, z) = log p(x|z) + log p(z) in nats, for rows ``x`` ``(B, D + C)`` and z
        ``(..., B, Nz)``: ``(..., B)``. A hierarchy's z is every layer [z_1, ..., z_L]."""
        if not isinstance(z, Tensor) or self.config.upper_latents:  # variant
            return self._log_joint_layers(x, z)
        pixels, condition = self.separate_condition(x)
        return self.decode(z, condition).log_prob(pixels) + self.prior.log_prob(z)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        temperature: float = 1.0,
        condition: Tensor | Sequence[int] | None = None,
    ) -> Tensor:
        """Means of p(x|z) for ``n`` draws z ~ p(z): ``(n, D)``. ``temperature`` scales the
        standard deviation of the prior (and of every p(z_l|z_{l+1})); a conditional model
        needs ``condition``: class labels ``(n,)`` or vectors ``(n, C)``."""
        y = self.as_condition(condition, n)
        p = next(self.parameters())
        z = self.prior.sample(
            n, generator=generator, device=p.device, temperature=temperature, dtype=p.dtype
        )
        if self.config.upper_latents:  # variant: z is z_L, the layers below drawn from it
            below = hierarchy.sample_below(
                self.downward, z, generator=generator, temperature=temperature
            )
            return self.decode_layers(below, y).mean
        return self.decode(z, y).mean

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
        inferred from: ``(B, D)`` for rows ``(B, D + C)`` (checked as by :meth:`encode`)."""
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

    # -- variant: convolutional bodies (aevb.networks) -----------------------------------

    def _add_conv_networks(self, per_value: int) -> None:
        """Stride-2 convolutions over the image; a condition joins after them."""
        c = self.config
        conv = (c.image_shape, c.channels)
        self.encoder = ConvEncoder(*conv, c.hidden, c.activation, extra=c.condition_dim)
        self.encoder_head = nn.Linear(self.encoder.out_dim, 2 * c.code_dim)
        hidden = tuple(reversed(c.hidden))
        self.decoder = ConvDecoder(self._decoder_width(), *conv, hidden, c.activation, per_value)
        self.decoder_head = nn.Identity()  # the transposed convolutions give p's parameters

    # -- variant: a Gaussian likelihood with its own log-variance per value ---------------

    def _add_decoder_logvar(self) -> None:
        """``decoder_logvar`` ``(D,)``: a parameter ("learned"), a constant ("fixed"), or None
        (a Bernoulli, or a decoder that outputs the log-variance)."""
        logvar = self.likelihood_head.initial_logvar(self.config.input_dim)
        if logvar is not None and self.config.gaussian_variance == "learned":
            self.decoder_logvar = nn.Parameter(logvar)
        else:
            self.register_buffer("decoder_logvar", logvar)

    # -- variant: a prior other than N(0, I) (aevb.priors) -------------------------------

    def _prior_site(self) -> PriorSite:
        """What :func:`aevb.priors.build_prior` builds the prior over the top layer from."""
        c = self.config
        unit_interval = c.likelihood == "bernoulli"
        return PriorSite(
            c.latent_sizes[-1], c.prior_components, c.input_dim, self._encode_top, unit_interval
        )

    def _encode_top(self, x: Tensor) -> DiagonalGaussian:
        """q over the top layer given pseudo-inputs ``x`` ``(K, D)``, for a VampPrior: the
        posterior itself, or bottom-up the means passed up through the upward layers."""
        return hierarchy.pass_means_up(self.posterior(x), self.upward)

    # -- variant: stochastic layers above z_1 (aevb.models.hierarchy) ----------------------

    def _upper_layers(self) -> tuple[nn.ModuleList, nn.ModuleList, nn.ModuleList]:
        """``upward``, ``posterior_down`` and ``downward`` (empty for one layer)."""
        c = self.config
        return hierarchy.stacks(
            c.latent_sizes,
            top_down=c.top_down,
            features=self.encoder_head.in_features,
            hidden=c.upper_hidden,
            activation=c.activation,
            logvar_range=c.latent_logvar_range,
        )

    def _decoder_width(self) -> int:
        """What the decoder reads: z_1, or every layer of a top-down hierarchy; and y."""
        c = self.config
        return (sum(c.latent_sizes) if c.top_down else c.latent_dim) + c.condition_dim

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

    def _log_joint_layers(self, x: Tensor, z: Tensor | Sequence[Tensor]) -> Tensor:
        """:meth:`log_joint` for every layer [z_1, ..., z_L] (a hierarchy's z)."""
        layers = [z] if isinstance(z, Tensor) else list(z)
        if len(layers) != (n := len(self.config.latent_sizes)):
            raise ValueError(
                f"log_joint: {len(layers)} layers given, the model has {n} (z_1, ..., z_L)"
            )
        pixels, condition = self.separate_condition(x)
        log_px_z = self.decode_layers(layers, condition).log_prob(pixels)
        return log_px_z + self.log_prior(layers[0], layers[1:])

    # -- variant: a condition y in the last C columns of every data row -------------------

    def _with_condition(self, h: Tensor, condition: Tensor | None) -> Tensor:
        """The decoder's input ``(..., F)`` with the condition ``(B, C)`` appended (broadcast
        over a leading sample dimension); unchanged for a model that is not conditional."""
        if not self.config.condition_dim:
            return h
        if condition is None:
            raise ValueError(
                f"conditional model: decode needs a condition of "
                f"{self.config.condition_dim} values per row"
            )
        condition = condition.to(h.dtype).expand(*h.shape[:-1], condition.shape[-1])
        return torch.cat([h, condition], dim=-1)

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

    # -- deprecated names (CHANGELOG.md), removed in a later release ----------------------

    def split(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """Deprecated: :meth:`separate_condition`."""
        deprecated("VAE.split", "VAE.separate_condition")
        return self.separate_condition(x)

    def features(self, x: Tensor) -> Tensor:
        """Deprecated: ``encoded(x).features``, the encoder body's output ``(B, F)``."""
        deprecated("VAE.features(x)", "VAE.encoded(x).features")
        return self.encoded(x).features


__getattr__ = moved(
    __name__,
    {
        "BODIES": "aevb.models.vae_config.BODIES",
        "LIKELIHOODS": "aevb.data.validation.ROW_LIKELIHOODS",
        "GAUSSIAN_MEANS": "aevb.distributions.GAUSSIAN_MEANS",
        "GAUSSIAN_VARIANCES": "aevb.distributions.GAUSSIAN_VARIANCES",
        "INITS": "aevb.networks.INIT_SCHEMES",
        "HIERARCHIES": "aevb.models.hierarchy.HIERARCHIES",
    },
)
