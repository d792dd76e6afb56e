"""Hamiltonian Monte Carlo (Duane et al. 1987; Neal 2011) on latent variables.

One call makes one HMC transition for a batch of independent chains: fresh momenta
p ~ N(0, I) (identity mass matrix), ``n_leapfrog`` leapfrog steps of size ``step_size``
along the gradient of the log-density, then a Metropolis accept/reject per chain. The
paper uses it for the MCEM baseline (10 leapfrog steps) and for the marginal likelihood
estimator of its Appendix D (4 leapfrog steps), with the step size tuned for about 90%
acceptance: :func:`adapt_step_size` does the tuning.

Shapes: ``B`` chains, ``Nz`` latent dimensions; states are ``(B, Nz)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class HMCResult:
    """The outcome of one HMC transition of ``B`` chains.

    Attributes:
        z: ``(B, Nz)`` new states (the proposal where accepted, the old state elsewhere).
        accepted: ``(B,)`` bool, whether each chain's proposal was accepted.
        accept_prob: ``(B,)`` Metropolis acceptance probabilities min(1, exp(-dH)), 0 where
            the trajectory diverged; a less noisy signal than ``accepted`` for tuning.
        acceptance_rate: the fraction of chains that accepted.
    """

    z: Tensor
    accepted: Tensor
    accept_prob: Tensor
    acceptance_rate: float


def hmc(
    log_density: Callable[[Tensor], Tensor],
    z0: Tensor,
    *,
    step_size: Tensor | float,
    n_leapfrog: int,
    jitter: float = 0.0,
    generator: torch.Generator | None = None,
) -> HMCResult:
    """One HMC transition for each of ``B`` independent chains.

    Args:
        log_density: maps states ``(B, Nz)`` to unnormalised log-densities ``(B,)``, one
            per chain, each depending only on its own row (e.g. log p(x_i, z_i)).
        z0: ``(B, Nz)`` current states.
        step_size: leapfrog step size, a scalar or one per chain ``(B,)``.
        n_leapfrog: leapfrog steps per transition (>= 1).
        jitter: each chain's step is multiplied by a fresh draw from
            U(1 - jitter, 1 + jitter), in [0, 1). A fixed step can make a trajectory
            close to a whole period in some direction (a Gaussian one of sd s does so
            when the step is near s * sqrt(2) with 4 leapfrog steps), so that the chain
            stands still there; a random step breaks the period (Neal 2011)
            and, drawn independently of the state, keeps the target invariant.
        generator: source of the momenta, the jitter and the accept/reject uniforms.

    Returns:
        :class:`HMCResult`; its tensors are detached from any graph.
    """
    if z0.ndim != 2:
        raise ValueError(f"z0 has shape {tuple(z0.shape)}: expected (chains, latent_dim)")
    if n_leapfrog < 1:
        raise ValueError(f"n_leapfrog={n_leapfrog}: expected at least 1")
    if not 0.0 <= jitter < 1.0:
        raise ValueError(f"jitter={jitter}: expected a number in [0, 1)")
    eps = _per_chain(step_size, z0)
    z0 = z0.detach()
    if jitter > 0:
        u = torch.rand((z0.shape[0], 1), generator=generator, device=z0.device, dtype=z0.dtype)
        eps = eps * (1.0 + jitter * (2.0 * u - 1.0))
    p0 = torch.randn(z0.shape, generator=generator, device=z0.device, dtype=z0.dtype)
    logp0, grad = _value_and_grad(log_density, z0)
    z = z0
    p = p0 + 0.5 * eps * grad  # half step for the momentum, full steps in between
    for step in range(n_leapfrog):
        z = z + eps * p
        logp, grad = _value_and_grad(log_density, z)
        if step < n_leapfrog - 1:
            p = p + eps * grad
    p = p + 0.5 * eps * grad
    # H = -log density + |p|^2 / 2; accept with probability min(1, exp(H0 - H))
    log_ratio = (logp - 0.5 * (p * p).sum(-1)) - (logp0 - 0.5 * (p0 * p0).sum(-1))
    # a trajectory that diverged (nan) is rejected
    log_ratio = torch.nan_to_num(log_ratio, nan=-torch.inf, posinf=torch.inf, neginf=-torch.inf)
    u = torch.rand(log_ratio.shape, generator=generator, device=z0.device, dtype=z0.dtype)
    accepted = torch.log(u) < log_ratio
    z_new = torch.where(accepted[:, None], z, z0)
    accept_prob = torch.exp(log_ratio.clamp(max=0.0))
    return HMCResult(
        z=z_new,
        accepted=accepted,
        accept_prob=accept_prob,
        acceptance_rate=accepted.float().mean().item(),
    )


def adapt_step_size(
    step_size: Tensor | float,
    acceptance: Tensor | float,
    *,
    target: float = 0.9,
    rate: float = 0.1,
    min_step: float = 1e-6,
    max_step: float = 10.0,
) -> Tensor | float:
    """Nudge step sizes toward a target acceptance: ``step * exp(rate * (acc - target))``.

    Too many acceptances lengthen the step, too few shorten it; at ``acc = target`` it is
    a fixed point. Per chain (``step_size`` and ``acceptance`` of shape ``(B,)``) or
    global (scalars, or a scalar step and a per-chain acceptance that is averaged).
    ``acceptance`` may be bool indicators or probabilities in [0, 1]. The result is
    clamped to ``[min_step, max_step]`` so one bad stretch cannot collapse or blow up.

    Returns a float for a float ``step_size``, else a tensor of its shape.
    """
    if not 0.0 < target < 1.0:
        raise ValueError(f"target={target}: expected an acceptance rate in (0, 1)")
    if rate <= 0:
        raise ValueError(f"rate={rate}: expected a number > 0")
    acc = torch.as_tensor(acceptance).double()
    if isinstance(step_size, Tensor):
        if step_size.ndim == 0 and acc.ndim > 0:
            acc = acc.mean()
        factor = torch.exp(rate * (acc.to(step_size.device) - target)).to(step_size.dtype)
        return (step_size * factor).clamp(min_step, max_step)
    new = float(step_size) * torch.exp(rate * (acc.mean() - target)).item()
    return min(max(new, min_step), max_step)


def _per_chain(step_size: Tensor | float, z: Tensor) -> Tensor:
    """Step sizes as a ``(B, 1)`` or scalar tensor that broadcasts against ``z`` (B, Nz)."""
    eps = torch.as_tensor(step_size, dtype=z.dtype, device=z.device)
    if eps.ndim == 0:
        bad = not eps.item() > 0
    elif eps.shape == z.shape[:1]:
        bad = not bool((eps > 0).all())
        eps = eps[:, None]
    else:
        raise ValueError(
            f"step_size has shape {tuple(eps.shape)}: expected a scalar or ({z.shape[0]},)"
        )
    if bad:
        raise ValueError("step_size: expected step sizes > 0")
    return eps


def _value_and_grad(log_density: Callable[[Tensor], Tensor], z: Tensor) -> tuple[Tensor, Tensor]:
    """log_density(z) ``(B,)`` and its gradient with respect to z ``(B, Nz)``, detached."""
    with torch.enable_grad():
        z = z.detach().requires_grad_(True)
        value = log_density(z)
        if value.shape != z.shape[:1]:
            raise ValueError(
                f"log_density returned shape {tuple(value.shape)}: expected ({z.shape[0]},)"
            )
        (grad,) = torch.autograd.grad(value.sum(), z)
    return value.detach(), grad
