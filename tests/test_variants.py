"""ELBO variants: IWAE, beta, free bits, KL warm-up, all from the same per-example terms."""

import math

import pytest
import torch

from aevb.objectives import ELBOObjective, compute_terms, elbo_a, iwae_bound, kl_term
from aevb.training import TrainConfig, kl_weight

from helpers import ppca_vae, tiny_vae


def test_iwae_with_one_sample_is_exactly_the_elbo():
    model = tiny_vae()
    x = torch.rand(7, 6).round()
    t = compute_terms(model, x, n_samples=1, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(iwae_bound(t), elbo_a(t), rtol=0, atol=0)


def test_iwae_bound_increases_with_k_in_expectation_and_stays_below_log_px():
    model, marginal = ppca_vae(exact_posterior=False)
    x = marginal.sample((20,))
    exact = marginal.log_prob(x).mean().item()
    g = torch.Generator().manual_seed(0)
    means, ses = {}, {}
    with torch.no_grad():
        for k in (1, 5, 50):
            reps = torch.stack(
                [
                    iwae_bound(compute_terms(model, x, n_samples=k, generator=g)).mean()
                    for _ in range(400)
                ]
            )
            means[k], ses[k] = reps.mean().item(), reps.std().item() / math.sqrt(len(reps))
    for a, b in ((1, 5), (5, 50)):
        assert means[b] - means[a] > 4 * math.hypot(ses[a], ses[b]), (means, ses)
    assert means[50] < exact + 4 * ses[50]


def test_beta_scales_the_kl_and_the_metrics_stay_the_elbo():
    model = tiny_vae()
    x = torch.rand(9, 6).round()
    plain, m1 = ELBOObjective()(model, x, torch.Generator().manual_seed(0))
    beta, m2 = ELBOObjective(beta=4.0)(model, x, torch.Generator().manual_seed(0))
    rec, kl = m1["reconstruction"].mean(), m1["kl"].mean()
    torch.testing.assert_close(plain, -(rec - kl))
    torch.testing.assert_close(beta, -(rec - 4.0 * kl))
    torch.testing.assert_close(m1["bound"], m2["bound"])  # reported: the ELBO itself


def test_kl_warmup_weight_and_schedule():
    assert kl_weight(0, 1000) == 0.0 and kl_weight(250, 1000) == 0.25
    assert kl_weight(5000, 1000) == 1.0 and kl_weight(10, 0) == 1.0
    model = tiny_vae()
    x = torch.rand(9, 6).round()
    half, m = ELBOObjective()(model, x, torch.Generator().manual_seed(0), None, 0.5)
    torch.testing.assert_close(half, -(m["reconstruction"].mean() - 0.5 * m["kl"].mean()))


def test_free_bits_floor_each_dimension():
    model = tiny_vae(latent_dim=3)
    x = torch.rand(9, 6).round()
    t = compute_terms(model, x, generator=torch.Generator().manual_seed(0))
    per_dim = t.kl_per_dim.mean(0)
    lam = per_dim.max().item() + 1.0  # above every dimension's KL: the penalty is flat
    assert kl_term(t, free_bits=lam).item() == pytest.approx(3 * lam)
    torch.testing.assert_close(kl_term(t), t.kl.mean())  # no free bits: the plain KL
    # flat penalty: no gradient reaches the encoder through the KL any more
    loss, _ = ELBOObjective(free_bits=lam)(model, x, torch.Generator().manual_seed(0))
    terms = compute_terms(model, x, generator=torch.Generator().manual_seed(0))
    rec_only = -terms.reconstruction.mean()
    g1 = torch.autograd.grad(loss, model.encoder_head.weight)[0]
    g2 = torch.autograd.grad(rec_only, model.encoder_head.weight)[0]
    torch.testing.assert_close(g1, g2)


def test_free_bits_per_group_floor_the_sum_over_each_group():
    model = tiny_vae(latent_dim=3)
    x = torch.rand(9, 6).round()
    t = compute_terms(model, x, generator=torch.Generator().manual_seed(0))
    per_dim = t.kl_per_dim.mean(0)
    groups = torch.stack([per_dim[:2].sum(), per_dim[2:].sum()])  # sizes 2 and 1
    lam = (groups.min() + groups.max()).item() / 2  # floors one group, not the other
    expected = groups.clamp(min=lam).sum()
    torch.testing.assert_close(kl_term(t, free_bits=lam, group=2), expected)
    assert kl_term(t, free_bits=lam, group=2).item() != pytest.approx(groups.sum().item())
    with pytest.raises(ValueError, match="free_bits_group"):
        TrainConfig(free_bits_group=0)


def test_variant_settings_are_validated_and_recorded(tmp_path):
    with pytest.raises(ValueError, match="apply to the ELBO only"):
        TrainConfig(objective="iwae", beta=2.0)
    with pytest.raises(ValueError, match=r"TrainConfig.free_bits=-1.0: expected >= 0"):
        TrainConfig(free_bits=-1.0)
    from aevb.cli import main
    from aevb.io import read_json

    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--data",
                "digits",
                "--hidden",
                "8",
                "--latent-dim",
                "2",
                "--objective",
                "iwae",
                "--samples",
                "5",
                "--max-examples",
                "600",
                "--out",
                str(out),
                "--quiet",
                "--no-pictures",
            ]
        )
        == 0
    )
    saved = read_json(out / "checkpoint" / "trainer.json")["train_config"]
    assert saved["objective"] == "iwae" and saved["n_samples"] == 5
    assert (
        main(
            [
                "train",
                "--data",
                "digits",
                "--kl-warmup",
                "2ep",
                "--beta",
                "0.5",
                "--free-bits",
                "0.1",
                "--hidden",
                "8",
                "--max-examples",
                "600",
                "--out",
                str(tmp_path / "b"),
                "--quiet",
                "--no-pictures",
            ]
        )
        == 0
    )
    saved = read_json(tmp_path / "b" / "checkpoint" / "trainer.json")["train_config"]
    assert saved["kl_warmup_examples"] == 2 * 1497 and saved["beta"] == 0.5
