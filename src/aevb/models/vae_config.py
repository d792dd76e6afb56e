"""The hyper-parameters of :class:`aevb.models.VAE`: one frozen dataclass, checked when it is
built and stored as a checkpoint's ``config.json``.

The field docstrings document each option twice over: their first paragraph is also the
help of the option ``aevb train`` generates for the field (:func:`aevb.config.field_summary`),
so it is one or two plain sentences; detail for API readers goes to a second paragraph.
"""

from __future__ import annotations

import dataclasses
import math

from aevb.config import check_choice, check_positive
from aevb.data.validation import ROW_LIKELIHOODS as LIKELIHOODS
from aevb.distributions import GAUSSIAN_MEANS, GAUSSIAN_VARIANCES
from aevb.models.hierarchy import HIERARCHIES
from aevb.networks import DENSE_ACTIVATIONS, GATED, INIT_SCHEMES
from aevb.priors import PRIORS

BODIES = ("mlp", "conv")


@dataclasses.dataclass(frozen=True)
class VAEConfig:
    """Every hyper-parameter of :class:`VAE`; ``config.json`` of a checkpoint holds it."""

    input_dim: int
    """Data dimension D (pixels for images)."""
    latent_dim: int = 20
    """Latent dimension Nz."""
    hidden: tuple[int, ...] = (500,)
    """Hidden layer widths of the encoder, reversed for the decoder; none at all makes both
    linear."""
    activation: str = "tanh"
    """Hidden activation: "tanh" (the paper), "relu", "elu", "gelu", "softplus",
    "leaky_relu", or "gated" (gated dense layers, as in Tomczak & Welling's VampPrior
    models; MLP bodies only)."""
    likelihood: str = "bernoulli"
    """The decoder's p(x|z): "bernoulli" (from logits; data in [0, 1]) or "gaussian"."""
    gaussian_variance: str = "output"
    """Gaussian p(x|z) only: "output" = the decoder outputs a log-variance per pixel (the
    paper's Frey Face decoder), "learned" = one learned log-variance per pixel, "fixed" =
    the variance gaussian_std^2."""
    gaussian_mean: str = "sigmoid"
    """Gaussian p(x|z) only: "sigmoid" squashes the mean into (0, 1) (the paper's; needs
    data in [0, 1]), or "identity" leaves it unbounded."""
    gaussian_std: float = 0.1
    """Gaussian p(x|z) with variance "fixed": its standard deviation."""
    min_logvar: float = -10.0
    """Floor on the decoder's Gaussian log-variance.

    It stops the likelihood diverging on pixels that never change (variance -> 0)."""
    init: str = "paper"
    """Initialisation: "paper" draws every weight and bias from N(0, init_std^2);
    "default" keeps PyTorch's; "he" draws weights from N(0, 2 / fan_in) and "glorot" from
    U(+-sqrt(6 / (fan_in + fan_out))), both with zero biases.

    "he" follows He et al. (2015) and Tomczak & Welling's code, "glorot" Glorot & Bengio
    (2010) and the IWAE paper."""
    init_std: float = 0.01
    """Standard deviation of init "paper" (we read the paper's N(0, 0.01) as std 0.01)."""
    image_shape: tuple[int, ...] | None = None
    """(H, W) or (H, W, C) when the data are images; pictures and body "conv" need it."""
    body: str = "mlp"
    """Encoder and decoder bodies: "mlp", or "conv" for images (stride-2 convolutions,
    then the hidden dense layers; init "default" suits it)."""
    channels: tuple[int, ...] = (32, 64)
    """Body "conv": channels of each stride-2 convolution of the encoder, each halving the
    image side (the decoder mirrors them)."""
    prior: str = "standard"
    """The prior p(z) over the top layer: "standard" N(0, I), "mog" (a learned mixture of
    Gaussians) or "vamp" (VampPrior); only "standard" has a closed-form KL, the others use
    the Monte Carlo KL."""
    prior_components: int = 500
    """Priors "mog" and "vamp": the number of mixture components K (pseudo-inputs of the
    VampPrior)."""
    upper_latents: tuple[int, ...] = ()
    """Sizes of the stochastic layers above z_1, bottom to top: e.g. 50 above a latent_dim
    of 100 is IWAE's 2-layer model; none at all is the one-layer VAE."""
    upper_hidden: tuple[int, ...] = (100, 100)
    """Hidden widths of the networks between stochastic layers (reversed downwards)."""
    hierarchy: str = "bottom-up"
    """Wiring of the upper latents: "bottom-up" is IWAE's q(z_1|x) q(z_2|z_1), p(x|z_1);
    "top-down" is Tomczak & Welling's HVAE, q(z_2|x) q(z_1|x, z_2), p(x|z_1, z_2).

    See :mod:`aevb.models.hierarchy`."""
    latent_logvar_range: tuple[float, float] | None = None
    """Bounds (low, high) on the log-variance of q(z_1|x) and of every Gaussian between
    stochastic layers, e.g. (-6, 2) as in Tomczak & Welling's code, which stabilises
    hierarchies with a VampPrior; None = unbounded (the paper).

    Without bounds, deep hierarchies with a VampPrior can drive a variance to zero and
    the Monte Carlo bound off to nonsense."""
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
