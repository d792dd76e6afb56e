"""HMC leaves its target invariant, accepts everything for tiny steps, and tunes its step."""

import math

import pytest
import torch

from aevb.hmc import adapt_step_size, hmc

MU = torch.tensor([1.0, -2.0, 0.5], dtype=torch.double)
SIGMA = torch.tensor([0.5, 1.0, 2.0], dtype=torch.double)  # non-isotropic on purpose
CHAINS = 4000


pytestmark = pytest.mark.usefixtures("one_thread")


def log_gauss(z):
    """Unnormalised log N(z; MU, diag(SIGMA^2)), ``(B,)``."""
    return -0.5 * (((z - MU) / SIGMA) ** 2).sum(-1)


def exact_draws(n, seed):
    g = torch.Generator().manual_seed(seed)
    return MU + SIGMA * torch.randn(n, 3, generator=g, dtype=torch.double)


def run_chains(z, *, transitions, step_size, n_leapfrog=5, seed=1):
    g = torch.Generator().manual_seed(seed)
    rates = []
    for _ in range(transitions):
        out = hmc(log_gauss, z, step_size=step_size, n_leapfrog=n_leapfrog, generator=g)
        z = out.z
        rates.append(out.acceptance_rate)
    return z, sum(rates) / len(rates)


def assert_moments_match(z):
    """Mean and variance of n independent chains against the target, 4 standard errors.

    se(mean) = sigma / sqrt(n); se(variance) = sigma^2 sqrt(2 / (n - 1)) for Gaussian draws.
    """
    n = z.shape[0]
    mean_err = (z.mean(0) - MU).abs()
    assert (mean_err < 4 * SIGMA / math.sqrt(n)).all(), mean_err
    var_err = (z.var(0) - SIGMA**2).abs()
    assert (var_err < 4 * SIGMA**2 * math.sqrt(2 / (n - 1))).all(), var_err


def test_hmc_leaves_a_gaussian_invariant_and_moves():
    z0 = exact_draws(CHAINS, seed=0)
    # step 0.45 against the narrowest sd 0.5: an integration error large enough that a
    # wrong integrator or Metropolis ratio would show up as a biased variance; 3 steps
    # turn no dimension through a whole period (which would leave it where it was)
    z, rate = run_chains(z0, transitions=20, step_size=0.45, n_leapfrog=3)
    assert 0.3 < rate < 0.99, rate
    assert_moments_match(z)
    # the chains really moved: the end state is far less correlated with the start than
    # a sampler that stood still (correlation 1) would be
    corr = torch.stack([torch.corrcoef(torch.stack([z0[:, d], z[:, d]]))[0, 1] for d in range(3)])
    assert (corr < 0.5).all(), corr


def test_hmc_converges_from_a_bad_start():
    z0 = (MU + 3 * SIGMA).expand(CHAINS, 3).clone()
    z, _ = run_chains(z0, transitions=60, step_size=0.4, n_leapfrog=10)
    assert_moments_match(z)


def test_acceptance_is_one_for_a_tiny_step_and_drops_for_a_huge_one():
    z0 = exact_draws(500, seed=2)
    g = torch.Generator().manual_seed(0)
    tiny = hmc(log_gauss, z0, step_size=1e-3, n_leapfrog=4, generator=g)
    # leapfrog's energy error is O(step^2): about 1e-6 here
    assert tiny.acceptance_rate == 1.0
    assert (tiny.accept_prob > 1 - 1e-4).all()
    huge = hmc(log_gauss, z0, step_size=3.0, n_leapfrog=4, generator=g)
    assert huge.acceptance_rate < 0.2, huge.acceptance_rate
    assert torch.equal(huge.z[~huge.accepted], z0[~huge.accepted])  # rejected chains stay


def test_per_chain_step_sizes_act_per_chain():
    z0 = exact_draws(400, seed=3)
    step = torch.cat([torch.full((200,), 1e-3), torch.full((200,), 3.0)]).double()
    out = hmc(log_gauss, z0, step_size=step, n_leapfrog=4, generator=torch.Generator())
    assert out.accepted[:200].all()
    assert out.accepted[200:].float().mean() < 0.2


def test_a_diverging_trajectory_is_rejected():
    def cliff(z):  # nan beyond z_0 = 0: a trajectory that leaves the domain
        return torch.where(z[:, 0] < 0, -0.5 * (z**2).sum(-1), torch.full_like(z[:, 0], math.nan))

    z0 = torch.full((50, 2), -0.5, dtype=torch.double)
    out = hmc(cliff, z0, step_size=2.0, n_leapfrog=3, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(out.z).all()
    assert (out.accept_prob[~out.accepted] < 1).all()


@pytest.mark.parametrize("per_chain", [True, False])
def test_adaptation_moves_acceptance_to_the_target(per_chain):
    z = exact_draws(400, seed=4)
    g = torch.Generator().manual_seed(5)
    step = torch.full((400,), 3.0, dtype=torch.double) if per_chain else 3.0
    first = None
    probs = []
    for t in range(300):
        out = hmc(log_gauss, z, step_size=step, n_leapfrog=4, generator=g)
        z = out.z
        first = out.acceptance_rate if first is None else first
        step = adapt_step_size(step, out.accept_prob, target=0.9, rate=0.2)
        if t >= 200:
            probs.append(out.accept_prob.mean().item())
    late = sum(probs) / len(probs)
    assert first < 0.2
    # at the fixed point E[accept] = target; 0.05 leaves room for the step's fluctuation
    assert abs(late - 0.9) < 0.05, late


def test_adapt_step_size_direction_and_types():
    assert adapt_step_size(0.1, 1.0) > 0.1
    assert adapt_step_size(0.1, 0.0) < 0.1
    assert adapt_step_size(0.1, 0.9) == pytest.approx(0.1)
    per_chain = adapt_step_size(torch.tensor([0.1, 0.1]), torch.tensor([True, False]))
    assert per_chain[0] > 0.1 > per_chain[1]
    glob = adapt_step_size(torch.tensor(0.1), torch.tensor([True, False]))
    assert glob.ndim == 0
    assert adapt_step_size(1e-6, 0.0) == 1e-6  # clamped at min_step


def test_bad_inputs_name_the_problem():
    z = torch.zeros(3, 2)
    g = torch.Generator()
    with pytest.raises(ValueError, match="n_leapfrog=0"):
        hmc(log_gauss, z, step_size=0.1, n_leapfrog=0, generator=g)
    with pytest.raises(ValueError, match=r"step_size has shape \(2,\)"):
        hmc(log_gauss, z, step_size=torch.ones(2), n_leapfrog=1, generator=g)
    with pytest.raises(ValueError, match="step sizes > 0"):
        hmc(log_gauss, z, step_size=0.0, n_leapfrog=1, generator=g)
    with pytest.raises(ValueError, match=r"z0 has shape \(2,\)"):
        hmc(log_gauss, torch.zeros(2), step_size=0.1, n_leapfrog=1, generator=g)
    with pytest.raises(ValueError, match=r"log_density returned shape \(\)"):
        hmc(lambda v: v.sum(), z, step_size=0.1, n_leapfrog=1, generator=g)
    with pytest.raises(ValueError, match="target=1.5"):
        adapt_step_size(0.1, 0.5, target=1.5)
