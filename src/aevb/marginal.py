"""The marginal likelihood estimator of the paper's Appendix D (used for its Figure 3).

For each datapoint x, with HMC on the posterior p(z|x) ∝ p(x|z) p(z):

1. draw L samples z_l from the posterior (after a burn-in that tunes the step size);
2. fit a density q(z) to them: here a full-covariance Gaussian;
3. draw L new samples z_l and estimate

       1 / p(x) ≈ (1/L) Σ_l q(z_l) / (p(z_l) p(x|z_l)),

   an unbiased estimate of 1/p(x) because E_{p(z|x)}[q(z) / p(x, z)] = 1 / p(x) for any
   normalised q. Its variance is finite when q has lighter tails than p(z|x), which a
   Gaussian fitted to the posterior's own samples usually has.

So log p(x) ≈ log L - logsumexp_l [log q(z_l) - log p(x, z_l)]. The log of an unbiased
estimate of 1/p(x) errs upward on average (Jensen), by about half its variance.

Unlike :func:`aevb.evaluate.log_likelihood` this never uses q(z|x), so it also scores
generative models trained without their encoder (MCEM); the encoder's mean only starts
the chains (``start="posterior"``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from aevb.deprecation import moved, renamed_kwargs
from aevb.hmc import adapt_step_size, hmc
from aevb.models.protocol import Model

CHAIN_STARTS = ("posterior", "prior")
"""Where :func:`log_marginal_hmc` starts its chains."""


@renamed_kwargs(n_samples="n_draws", init="start")
def log_marginal_hmc(
    model: Model,
    x: Tensor,
    *,
    n_draws: int = 50,
    n_leapfrog: int = 4,
    burn_in: int = 100,
    thin: int = 1,
    step_size: float = 0.1,
    target_acceptance: float = 0.9,
    adapt_rate: float = 0.25,
    jitter: float = 0.2,
    ridge: float = 1e-3,
    batch_size: int = 100,
    start: str = "posterior",
    generator: torch.Generator | None = None,
) -> Tensor:
    """Appendix D's estimate of log p(x) for every row of ``x`` ``(N, D)``: ``(N,)`` nats.

    One HMC chain per datapoint, run in batches of ``batch_size`` datapoints (vectorised).
    Each chain makes ``burn_in`` transitions in which its own step size is tuned toward
    ``target_acceptance`` (then frozen, so the kept samples come from a fixed, valid
    kernel), then ``2 * n_draws * thin`` transitions: every ``thin``-th state is kept,
    the first ``n_draws`` fit q(z), the next ``n_draws`` enter the estimate.

    Args:
        model: one stochastic layer, no condition; scored through ``log_joint``.
        n_draws: L, posterior samples per set (the paper: 50).
        n_leapfrog: leapfrog steps per HMC transition (the paper: 4).
        burn_in: transitions discarded at the start, used to tune the step size.
        thin: keep every ``thin``-th state (1 = every state).
        step_size: initial leapfrog step size of every chain.
        target_acceptance: the acceptance rate tuned for (the paper: about 0.9).
        adapt_rate: the tuning's rate, see :func:`aevb.hmc.adapt_step_size`.
        jitter: each transition's step is the chain's step times U(1 - jitter,
            1 + jitter); without it a chain whose step makes a trajectory close to a whole
            period in some direction stands still there, and q fitted to its samples is
            far too narrow or too wide (see :func:`aevb.hmc.hmc`).
        ridge: q's covariance is the samples' covariance with its diagonal scaled by
            ``1 + ridge`` (plus 1e-10 absolute): positive definite even when L <= Nz.
        batch_size: datapoints per batch of chains.
        start: "posterior" starts each chain at the encoder's mean E[q(z|x)]; "prior"
            starts them at draws from p(z).
        generator: the source of every random number (prior draws, momenta, accepts).

    Returns:
        ``(N,)`` estimates of log p(x), float64, on the CPU.
    """
    _check(n_draws, n_leapfrog, burn_in, thin, step_size, ridge, batch_size, start)
    if not 0.0 <= jitter < 1.0:
        raise ValueError(f"log_marginal_hmc: jitter={jitter}: expected a number in [0, 1)")
    if x.ndim != 2:
        raise ValueError(f"x has shape {tuple(x.shape)}: expected (N, D)")
    check_single_layer(model, "log_marginal_hmc")
    param = next(model.parameters())
    out = []
    for xb in x.split(batch_size):
        xb = xb.to(device=param.device, dtype=param.dtype)

        def log_joint(z: Tensor, xb: Tensor = xb) -> Tensor:  # log p(x, z), (..., B)
            return model.log_joint(xb, z)

        samples = _run_chains(
            log_joint,
            _initial_states(model, xb, start, generator),
            n_keep=2 * n_draws,
            thin=thin,
            burn_in=burn_in,
            n_leapfrog=n_leapfrog,
            step_size=step_size,
            target_acceptance=target_acceptance,
            adapt_rate=adapt_rate,
            jitter=jitter,
            generator=generator,
        )
        fit, test = samples[:n_draws], samples[n_draws:]
        q = _fit_gaussian(fit.double(), ridge)
        with torch.no_grad():
            log_pxz = log_joint(test).double()  # (L, B)
        log_ratio = q.log_prob(test.double()) - log_pxz  # log q(z) - log p(x, z), (L, B)
        out.append((math.log(n_draws) - torch.logsumexp(log_ratio, dim=0)).cpu())
    return torch.cat(out)


def _run_chains(
    log_joint: Callable[[Tensor], Tensor],
    z: Tensor,
    *,
    n_keep: int,
    thin: int,
    burn_in: int,
    n_leapfrog: int,
    step_size: float,
    target_acceptance: float,
    adapt_rate: float,
    jitter: float,
    generator: torch.Generator | None,
) -> Tensor:
    """HMC chains from ``z`` ``(B, Nz)``: ``n_keep`` kept states ``(n_keep, B, Nz)``.

    Each chain tunes its own step size during the burn-in and keeps it fixed afterwards.
    """
    eps = torch.full(z.shape[:1], step_size, dtype=z.dtype, device=z.device)
    for _ in range(burn_in):
        step = hmc(
            log_joint, z, step_size=eps, n_leapfrog=n_leapfrog, jitter=jitter, generator=generator
        )
        z = step.z
        eps = adapt_step_size(eps, step.accept_prob, target=target_acceptance, rate=adapt_rate)
    kept = []
    for t in range(n_keep * thin):
        z = hmc(
            log_joint, z, step_size=eps, n_leapfrog=n_leapfrog, jitter=jitter, generator=generator
        ).z
        if (t + 1) % thin == 0:
            kept.append(z)
    return torch.stack(kept)


def check_single_layer(model: Model, what: str) -> None:
    """HMC over z needs p(x, z) = p(x|z) p(z) with one latent layer and no condition."""
    if model.config.upper_latents or model.config.condition_dim:
        raise ValueError(
            f"{what}: expected a model with one stochastic layer and no condition "
            "(p(x, z) = p(x|z) p(z))"
        )


def _initial_states(
    model: Model, x: Tensor, start: str, generator: torch.Generator | None
) -> Tensor:
    """Chain starts ``(B, Nz)``: the encoder's mean, or draws from the prior."""
    if start == "posterior":
        with torch.no_grad():
            return model.encode(x).mean.detach()
    z = model.prior.sample(x.shape[0], generator=generator, device=x.device)
    return z.to(x.dtype)


def _fit_gaussian(samples: Tensor, ridge: float) -> torch.distributions.MultivariateNormal:
    """A full-covariance Gaussian per chain from ``samples`` ``(L, B, Nz)``: batch ``(B,)``.

    Mean and unbiased covariance of the L samples; the diagonal is scaled by ``1 + ridge``
    and 1e-10 added, so a chain with L <= Nz samples (or a stuck one) still gives a
    positive-definite matrix.
    """
    n = samples.shape[0]
    mean = samples.mean(0)
    centred = samples - mean
    cov = torch.einsum("lbi,lbj->bij", centred, centred) / max(n - 1, 1)
    diag = torch.diagonal(cov, dim1=-2, dim2=-1)
    cov = cov + torch.diag_embed(ridge * diag + 1e-10)
    return torch.distributions.MultivariateNormal(mean, covariance_matrix=cov)


def _check(n_draws, n_leapfrog, burn_in, thin, step_size, ridge, batch_size, start) -> None:
    """Raise ``ValueError`` naming the first out-of-range argument."""
    for name, value in (
        ("n_draws", n_draws),
        ("n_leapfrog", n_leapfrog),
        ("thin", thin),
        ("step_size", step_size),
        ("batch_size", batch_size),
    ):
        if not value > 0:
            raise ValueError(f"log_marginal_hmc: {name}={value!r}: expected a number > 0")
    if n_draws < 2:
        raise ValueError(f"log_marginal_hmc: n_draws={n_draws}: expected at least 2")
    if burn_in < 0 or ridge < 0:
        raise ValueError(f"log_marginal_hmc: burn_in={burn_in}, ridge={ridge}: expected >= 0")
    if start not in CHAIN_STARTS:
        raise ValueError(f"log_marginal_hmc: start={start!r}: expected one of {list(CHAIN_STARTS)}")


__getattr__ = moved("aevb.marginal", {"INITS": "aevb.marginal.CHAIN_STARTS"})
