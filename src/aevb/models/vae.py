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
from aevb.networks import (
    MLP,
    ConvDecoder,
    ConvEncoder,
    initialise,
)
from aevb.priors import PriorSite, build_prior


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
        "LIKELIHOODS": "aevb.data.validation.LIKELIHOODS",
        "GAUSSIAN_MEANS": "aevb.distributions.GAUSSIAN_MEANS",
        "GAUSSIAN_VARIANCES": "aevb.distributions.GAUSSIAN_VARIANCES",
        "INITS": "aevb.networks.INIT_SCHEMES",
        "HIERARCHIES": "aevb.models.hierarchy.HIERARCHIES",
    },
)
