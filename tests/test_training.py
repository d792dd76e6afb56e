"""Training: resume is lossless, non-finite values are caught, configs round-trip."""

import json
import os
import pickle
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from aevb import io as aevb_io
from aevb.config import from_dict, to_dict
from aevb.data import Dataset
from aevb.models import VAEConfig
from aevb.run import resume, train
from aevb.training import (
    STOP_SIGNALS,
    TrainConfig,
    Trainer,
    TrainingError,
    TrainingInterrupted,
)

from helpers import tiny_vae


def toy_data(n=300, d=6, seed=0) -> Dataset:
    rng = np.random.default_rng(seed)
    protos = rng.random((3, d)) < 0.5
    x = protos[rng.integers(0, 3, n)] ^ (rng.random((n, d)) < 0.1)
    x = x.astype(np.float32)
    return Dataset(
        name="toy",
        train=x[:200],
        valid=x[200:250],
        test=x[250:],
        image_shape=(2, 3),
        likelihood="bernoulli",
        labels={},
    )


def config(**kw) -> TrainConfig:
    base = dict(optimizer="adam", lr=0.01, batch_size=32, max_examples=1500, eval_every=320, seed=3)
    return TrainConfig(**{**base, **kw})


def params(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def step_calling(n: int, action):
    """A Trainer._step that calls ``action()`` before its ``n``-th step (counted in its
    attribute ``calls``)."""
    original = Trainer._step

    def step(self, x, bar):
        step.calls += 1
        if step.calls == n:
            action()
        original(self, x, bar)

    step.calls = 0
    return step


def assert_ends_as(run, result, straight_run, straight) -> None:
    """The resumed ``run`` ends where the uninterrupted ``straight_run`` ends: the same
    weights, bit for bit, and the same evaluations (their timings aside)."""
    a = aevb_io.load_model(straight_run / "checkpoint")
    b = aevb_io.load_model(run / "checkpoint")
    for k, v in params(a).items():
        assert torch.equal(v, params(b)[k]), k
    timeless = [{k: v for k, v in row.items() if k != "train_seconds"} for row in result.history]
    assert timeless == [
        {k: v for k, v in row.items() if k != "train_seconds"} for row in straight.history
    ]


def test_config_round_trips_through_json():
    for c in (
        TrainConfig(max_examples=10, patience=3),
        VAEConfig(input_dim=12, hidden=(4, 3), image_shape=(3, 4)),
    ):
        again = from_dict(type(c), json.loads(json.dumps(to_dict(c))))
        assert again == c


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match=r"TrainConfig.optimizer='sgd': expected one of"):
        TrainConfig(optimizer="sgd")
    with pytest.raises(ValueError, match=r"VAEConfig.latent_dim=0: expected a number > 0"):
        VAEConfig(input_dim=4, latent_dim=0)
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['bogus'\]"):
        from_dict(TrainConfig, {"bogus": 1})


def test_training_improves_the_bound_and_writes_a_run_folder(tmp_path):
    result = train(tiny_vae(), toy_data(), config(max_examples=4000), tmp_path / "run", quiet=True)
    first, last = result.history[0], result.history[-1]
    assert last["train_bound"] > first["train_bound"] + 0.5
    assert last["examples"] == result.examples == 4000  # the budget, exactly
    for name in (
        "checkpoint/model.safetensors",
        "checkpoint/config.json",
        "checkpoint/trainer.json",
        "checkpoint/trainer.safetensors",
        "best/config.json",
        "metrics.csv",
    ):
        assert (tmp_path / "run" / name).is_file(), name
    lines = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    assert len(lines) == len(result.history) + 1 and lines[0].startswith("examples,epoch")
    with pytest.raises(FileExistsError, match="already holds a training run"):
        train(tiny_vae(), toy_data(), config(), tmp_path / "run", quiet=True)


@pytest.mark.parametrize(
    "optimizer, schedule",
    [
        ("adam", {}),
        ("adagrad", {}),
        ("adam", {"lr_schedule": "cosine", "lr_decay_start": 400, "lr_final": 0.1}),
    ],
)
def test_killed_run_resumes_to_the_same_parameters_bit_for_bit(
    tmp_path, monkeypatch, optimizer, schedule
):
    data = toy_data()
    straight = tiny_vae(seed=5)
    train(straight, data, config(optimizer=optimizer, **schedule), tmp_path / "a", quiet=True)

    original_step = Trainer._step
    calls = {"n": 0}

    def dying_step(self, x, bar):
        calls["n"] += 1
        if calls["n"] == 23:  # mid-epoch, after the checkpoint at 320 samples x 2
            raise KeyboardInterrupt
        original_step(self, x, bar)

    monkeypatch.setattr(Trainer, "_step", dying_step)
    with pytest.raises(KeyboardInterrupt):
        train(
            tiny_vae(seed=5),
            data,
            config(optimizer=optimizer, **schedule),
            tmp_path / "b",
            quiet=True,
        )
    monkeypatch.setattr(Trainer, "_step", original_step)
    saved = aevb_io.read_json(tmp_path / "b" / "checkpoint" / "trainer.json")
    assert 0 < saved["state"]["examples"] < 1500
    result = resume(tmp_path / "b", data, quiet=True)
    assert result.examples == 1500
    a = aevb_io.load_model(tmp_path / "a" / "checkpoint")
    b = aevb_io.load_model(tmp_path / "b" / "checkpoint")
    for k, v in params(a).items():
        assert torch.equal(v, params(b)[k]), k
    ta = aevb_io.load_tensors(tmp_path / "a" / "checkpoint" / "trainer.safetensors")
    tb = aevb_io.load_tensors(tmp_path / "b" / "checkpoint" / "trainer.safetensors")
    assert ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta)
    ha = [
        r["train_bound"]
        for r in aevb_io.read_json(tmp_path / "a" / "checkpoint" / "trainer.json")["state"][
            "history"
        ]
    ]
    hb = [r["train_bound"] for r in result.history]
    assert ha == hb


def test_checkpoints_between_evaluations_lose_less_and_change_nothing(tmp_path, monkeypatch):
    """checkpoint_every saves the checkpoint between evaluations, after the first minibatch
    that reaches each multiple of 100 (an epoch is 6 minibatches of 32 and one of 8):
    killed in its 23rd step, at 632 examples, the run has 600 saved (328, its first
    evaluation, without them), and resumed it ends where a run without them ends, bit
    for bit, with the same evaluations."""
    data = toy_data()
    straight = train(tiny_vae(seed=5), data, config(), tmp_path / "a", quiet=True)
    original_step = Trainer._step

    def kill() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "_step", step_calling(23, kill))
    with pytest.raises(KeyboardInterrupt):
        train(tiny_vae(seed=5), data, config(checkpoint_every=100), tmp_path / "b", quiet=True)
    monkeypatch.setattr(Trainer, "_step", original_step)
    saved = aevb_io.read_json(tmp_path / "b" / "checkpoint" / "trainer.json")
    assert saved["state"]["examples"] == 600
    assert [r["examples"] for r in saved["state"]["history"]] == [328]
    card = (tmp_path / "b" / "checkpoint" / "README.md").read_text()
    assert "No evaluation at these weights" in card  # not the bounds of 328 examples
    assert "No evaluation" not in (tmp_path / "a" / "checkpoint" / "README.md").read_text()
    result = resume(tmp_path / "b", data, quiet=True)
    assert_ends_as(tmp_path / "b", result, tmp_path / "a", straight)
    with pytest.raises(ValueError, match=r"TrainConfig.checkpoint_every=0: expected"):
        config(checkpoint_every=0)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_training_after_a_checkpoint_of_its_step(
    tmp_path, monkeypatch, signum, sigint_handled
):
    """SIGTERM or SIGINT, arriving in the 25th step (after 21 steps, three epochs of 200,
    and three more minibatches: 696 examples), lets that step finish, writes a checkpoint
    of it (728 examples, between the evaluations at 664 and 960) and raises
    TrainingInterrupted; resumed, the
    run ends where an uninterrupted run ends, bit for bit, with the same evaluations. The
    handlers are the caller's again afterwards."""
    data = toy_data()
    straight = train(tiny_vae(seed=5), data, config(), tmp_path / "a", quiet=True)
    original_step = Trainer._step
    # handled at once, in this thread, before the 25th step
    signalled_step = step_calling(25, lambda: os.kill(os.getpid(), signum))
    before = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    monkeypatch.setattr(Trainer, "_step", signalled_step)
    with pytest.raises(TrainingInterrupted) as stopped:
        train(tiny_vae(seed=5), data, config(), tmp_path / "b", quiet=True)
    monkeypatch.setattr(Trainer, "_step", original_step)
    assert {s: signal.getsignal(s) for s in STOP_SIGNALS} == before
    assert signalled_step.calls == 25  # no step after the signal's
    assert stopped.value.signum == signum and stopped.value.examples == 728
    assert stopped.value.checkpoint == tmp_path / "b" / "checkpoint"
    assert str(stopped.value).startswith(f"training stopped by {signum.name} after 728 examples")
    again = pickle.loads(pickle.dumps(stopped.value))  # as a worker process sends it back
    assert type(again) is TrainingInterrupted and str(again) == str(stopped.value)
    saved = aevb_io.read_json(tmp_path / "b" / "checkpoint" / "trainer.json")
    assert saved["state"]["examples"] == 728
    assert [r["examples"] for r in saved["state"]["history"]] == [328, 664]
    result = resume(tmp_path / "b", data, quiet=True)
    assert_ends_as(tmp_path / "b", result, tmp_path / "a", straight)


def test_a_second_signal_interrupts_at_once(tmp_path, monkeypatch, sigint_handled):
    """A second SIGINT while the step that the first one stops after is still running:
    KeyboardInterrupt there, not a checkpoint of that step."""
    original_step = Trainer._step
    calls = {"n": 0}

    def twice_signalled_step(self, x, bar):
        calls["n"] += 1
        if calls["n"] == 3:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
        original_step(self, x, bar)

    monkeypatch.setattr(Trainer, "_step", twice_signalled_step)
    with pytest.raises(KeyboardInterrupt) as stopped:
        train(tiny_vae(seed=5), toy_data(), config(), tmp_path / "c", quiet=True)
    assert type(stopped.value) is KeyboardInterrupt
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert not (tmp_path / "c" / "checkpoint").exists()  # the first evaluation is at 328


def test_a_signal_in_the_last_step_or_an_ignored_one_lets_the_run_finish(
    tmp_path, monkeypatch, sigint_handled
):
    """SIGTERM in the step that meets the budget: the run is done, nothing is raised. An
    ignored SIGINT (a job a script started with &) stays ignored."""
    original_step = Trainer._step
    data = toy_data()

    def step_signalling_at(examples, signum):
        def step(self, x, bar):
            if self.state.examples + x.shape[0] >= examples:
                os.kill(os.getpid(), signum)
            original_step(self, x, bar)

        return step

    monkeypatch.setattr(Trainer, "_step", step_signalling_at(1500, signal.SIGTERM))
    result = train(tiny_vae(seed=5), data, config(), tmp_path / "a", quiet=True)
    assert result.examples == 1500 and result.history[-1]["examples"] == 1500
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        monkeypatch.setattr(Trainer, "_step", step_signalling_at(700, signal.SIGINT))
        result = train(tiny_vae(seed=5), data, config(), tmp_path / "b", quiet=True)
        assert result.examples == 1500
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


SECOND_SIGTERM_SCRIPT = """
import os, signal, sys
sys.path.insert(0, sys.argv[1])
from helpers import tiny_vae
from test_training import config, toy_data
from aevb.run import train
from aevb.training import Trainer

original_step = Trainer._step

def step(self, x, bar):
    if self.state.examples == 64:
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)
    original_step(self, x, bar)

Trainer._step = step
train(tiny_vae(seed=5), toy_data(), config(), sys.argv[2], quiet=True)
"""


def test_a_second_sigterm_ends_the_process_as_sigterm_does(tmp_path):
    tests = str(Path(__file__).parent)
    script = tmp_path / "twice.py"
    script.write_text(SECOND_SIGTERM_SCRIPT)
    cmd = [sys.executable, str(script), tests, str(tmp_path / "run")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGTERM, proc.stderr
    assert not (tmp_path / "run" / "checkpoint").exists()


def test_resume_can_extend_the_budget(tmp_path):
    data = toy_data()
    train(tiny_vae(), data, config(max_examples=640), tmp_path / "r", quiet=True)
    result = resume(tmp_path / "r", data, max_examples=1280, quiet=True)
    assert result.examples == 1280 == result.history[-1]["examples"]


def test_resume_without_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(aevb_io.CheckpointError, match="no checkpoint/ to resume from"):
        resume(tmp_path / "nothing", toy_data())


def test_nonfinite_loss_stops_with_the_step_and_the_term(tmp_path):
    model = tiny_vae()
    with torch.no_grad():
        model.decoder_head.bias[0] = float("nan")
    with pytest.raises(TrainingError, match=r"non-finite loss \(bound, reconstruction.*step 1 "):
        train(model, toy_data(), config(), tmp_path / "nan", quiet=True)


def test_nonfinite_updates_can_be_skipped_and_are_counted(tmp_path, monkeypatch):
    from aevb.objectives import ELBOObjective

    original = ELBOObjective.__call__
    calls = {"n": 0}

    def sometimes_inf(self, model, x, *args):
        loss, metrics = original(self, model, x, *args)
        calls["n"] += 1
        if calls["n"] % 5 == 0:
            loss = loss * float("inf")
        return loss, metrics

    monkeypatch.setattr(ELBOObjective, "__call__", sometimes_inf)
    result = train(
        tiny_vae(),
        toy_data(),
        config(nonfinite="skip", max_examples=640),
        tmp_path / "skip",
        quiet=True,
    )
    assert result.skipped == 4  # 20 steps, every 5th bad
    assert all(torch.isfinite(p).all() for p in aevb_io.load_model(tmp_path / "skip").parameters())


def test_an_impossible_validation_bound_never_selects_the_best_checkpoint(tmp_path, monkeypatch):
    """A bound above 0 nats on binary data is numerical breakdown, not a better model."""
    original = Trainer.evaluate
    calls = {"n": 0}

    def breaks_down_later(self):
        row = original(self)
        calls["n"] += 1
        if calls["n"] >= 3:
            row["valid_bound"] = 354.0
        return row

    monkeypatch.setattr(Trainer, "evaluate", breaks_down_later)
    out = tmp_path / "broken"
    with pytest.warns(RuntimeWarning, match=r"\+354.00 nats .* impossible"):
        train(tiny_vae(), toy_data(), config(max_examples=1280, eval_every=320), out, quiet=True)
    state = aevb_io.read_json(out / "checkpoint" / "trainer.json")["state"]
    history = state["history"]
    assert [r["valid_bound"] for r in history][2:] == [354.0, 354.0]
    best = max(history[:2], key=lambda r: r["valid_bound"])
    assert state["best_valid"] == best["valid_bound"] < 0
    assert state["best_examples"] == best["examples"]
    kept = aevb_io.load_model(out / "best").state_dict()
    last = aevb_io.load_model(out / "checkpoint").state_dict()
    assert any(not torch.equal(kept[k], last[k]) for k in kept)  # best/ is not the last


def test_resuming_a_run_whose_bounds_were_of_another_kind_restarts_best(tmp_path):
    """An IWAE run evaluated by the ELBO (before IWAE runs were scored by their own bound)
    or with an impossible best: the restored best is dropped, the next evaluation wins."""
    data, out = toy_data(), tmp_path / "old"
    cfg = config(objective="iwae", n_samples=5, max_examples=640, eval_every=320)
    train(tiny_vae(), data, cfg, out, quiet=True)
    meta_path = out / "checkpoint" / "trainer.json"
    meta = aevb_io.read_json(meta_path)
    assert meta["state"]["bound"] == "iwae-k5"
    del meta["state"]["bound"]  # as written before the field existed: "elbo"
    meta["state"]["best_valid"] = 0.0  # higher than any bound the resumed run will see
    meta_path.write_text(json.dumps(meta))
    with pytest.warns(RuntimeWarning, match="not comparable"):
        resume(out, data, max_examples=960, quiet=True)
    state = aevb_io.read_json(meta_path)["state"]
    assert state["bound"] == "iwae-k5" and state["best_examples"] == 960
    assert state["best_valid"] == state["history"][-1]["valid_bound"] < 0


def test_an_iwae_run_is_evaluated_and_selected_by_the_iwae_bound(tmp_path):
    from aevb.evaluate import log_likelihood, lower_bound

    data, out = toy_data(), tmp_path / "iwae"
    cfg = config(objective="iwae", n_samples=5, max_examples=640, eval_every=320)
    train(tiny_vae(), data, cfg, out, quiet=True)
    last = aevb_io.read_json(out / "checkpoint" / "trainer.json")["state"]["history"][-1]
    model = aevb_io.load_model(out / "checkpoint")
    valid = torch.as_tensor(data.valid)
    gen = torch.Generator().manual_seed(cfg.seed + 7919)
    iwae = log_likelihood(model, valid, k=5, generator=gen).double().mean().item()
    assert last["valid_bound"] == pytest.approx(iwae, abs=1e-4)
    gen.manual_seed(cfg.seed + 7919)
    elbo = lower_bound(model, valid, n_samples=5, generator=gen).double().mean().item()
    assert iwae > elbo + 0.01  # the tighter bound, not the ELBO


def test_early_stopping_stops_after_patience(tmp_path):
    result = train(
        tiny_vae(),
        toy_data(),
        config(lr=0.5, patience=1, max_examples=50_000, eval_every=200),
        tmp_path / "es",
        quiet=True,
    )
    assert result.stopped_early and result.examples < 50_000


def test_clip_grad_norm_limits_the_update(tmp_path):
    data = toy_data()
    model = tiny_vae(seed=1)
    before = params(model)
    train(
        model,
        data,
        config(optimizer="adagrad", lr=1.0, clip_grad_norm=1e-6, max_examples=32),
        tmp_path / "clip",
        quiet=True,
    )
    after = params(aevb_io.load_model(tmp_path / "clip" / "checkpoint"))
    # Adagrad's first step is lr * g / |g| per coordinate whatever the scale of g, so use the
    # accumulator: it holds the squared clipped gradient, which must be tiny
    state = aevb_io.load_tensors(tmp_path / "clip" / "checkpoint" / "trainer.safetensors")
    sums = [v for k, v in state.items() if k.endswith(".sum")]
    assert sums and sum(float(s.sum()) for s in sums) <= 1e-12 * 1.0001
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_metrics_go_to_tensorboard_when_it_is_installed(tmp_path, monkeypatch):
    import sys
    import types

    written = []

    class FakeWriter:
        def __init__(self, logdir):
            written.append(("dir", logdir))

        def add_scalar(self, tag, value, step):
            written.append((tag, step))

        def close(self):
            written.append(("closed", None))

    fake = types.ModuleType("torch.utils.tensorboard")
    fake.SummaryWriter = FakeWriter
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", fake)
    train(tiny_vae(), toy_data(), config(max_examples=640), tmp_path / "tb", quiet=True)
    assert written[0] == ("dir", str(tmp_path / "tb" / "tensorboard"))
    assert ("train_bound", 640) in written and ("valid_bound", 328) in written
    assert written[-1] == ("closed", None)


def test_gaussian_decoder_trains_on_frey_face(tmp_path):
    from aevb.data import load_dataset
    from aevb.evaluate import bits_per_dim, log_likelihood
    from aevb.models import VAE

    data = load_dataset("frey_face")
    torch.manual_seed(0)
    model = VAE(
        VAEConfig(
            input_dim=data.dim,
            latent_dim=5,
            hidden=(100,),
            likelihood="gaussian",
            image_shape=data.image_shape,
        )
    )
    result = train(
        model,
        data,
        TrainConfig(optimizer="adagrad", lr=0.02, epochs=3),
        tmp_path / "frey",
        quiet=True,
    )
    bounds = [r["test_bound"] for r in result.history]
    assert bounds[-1] > bounds[0]  # continuous data: densities, so bounds can be positive
    x = torch.as_tensor(data.test[:20])
    ll = log_likelihood(model, x, k=20).mean().item()
    assert np.isfinite(ll) and np.isfinite(bits_per_dim(ll, data.dim, scale=255.0))


def test_bf16_autocast_trains_to_a_bound_close_to_fp32(tmp_path):
    data = toy_data()
    bounds = {}
    for precision in ("fp32", "bf16"):
        result = train(
            tiny_vae(seed=2),
            data,
            config(precision=precision, max_examples=3000),
            tmp_path / precision,
            quiet=True,
        )
        bounds[precision] = result.history[-1]["test_bound"]
        assert result.history[-1]["train_bound"] > result.history[0]["train_bound"]
    # bf16 keeps ~3 significant digits in the matrix products; on a 6-pixel problem whose
    # bound is a few nats, the two runs end within a tenth of a nat of each other
    assert abs(bounds["bf16"] - bounds["fp32"]) < 0.1, bounds


def test_compiled_step_trains_like_the_eager_one(tmp_path):
    data = toy_data()
    ends = {}
    for compiled in (False, True):
        result = train(
            tiny_vae(seed=4),
            data,
            config(compile=compiled, max_examples=640),
            tmp_path / str(compiled),
            quiet=True,
        )
        ends[compiled] = result.history[-1]["train_bound"]
    # same seed and noise; compiled kernels may round differently
    assert abs(ends[True] - ends[False]) < 1e-3, ends


def test_log_spaced_evaluations(tmp_path):
    result = train(
        tiny_vae(),
        toy_data(),
        config(max_examples=20_000, eval_every=1000, eval_per_decade=2, batch_size=50),
        tmp_path / "log",
        quiet=True,
    )
    points = [int(r["examples"]) for r in result.history]
    # 1000, ~3162, 10000, ~31623 capped by the budget: whole batches at or after each point
    assert points == [1000, 3200, 10000, 20000], points


@pytest.mark.parametrize("caller_flushes", [False, True])
def test_training_flushes_denormals_while_it_steps_and_restores_the_callers_mode(
    tmp_path, monkeypatch, caller_flushes
):
    if not torch.set_flush_denormal(True):
        pytest.skip("this CPU cannot flush denormals")
    from aevb import training

    seen = []
    step = Trainer._step

    def spying_step(self, *args, **kwargs):
        seen.append(training.denormals_flushed())
        return step(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "_step", spying_step)
    torch.set_flush_denormal(caller_flushes)
    try:
        train(tiny_vae(), toy_data(), config(max_examples=64), tmp_path / "run", quiet=True)
        assert seen and all(seen)  # optimiser steps run with subnormals flushed
        assert training.denormals_flushed() == caller_flushes
        # the caller's own arithmetic (Python floats here) keeps its subnormals
        assert (sys.float_info.min * 0.5 > 0) == (not caller_flushes)
    finally:
        torch.set_flush_denormal(False)


def test_bucketed_order_sorts_each_pool_into_minibatches_and_shuffles_them():
    from aevb.training import bucketed_order

    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(3, 60, (1000,), generator=g)
    perm = torch.randperm(1000, generator=g)
    order = bucketed_order(perm, lengths, batch_size=32, pool=4, generator=g)
    assert torch.equal(order.sort().values, torch.arange(1000))  # a permutation
    # the same minibatches (as sets of rows) as sorting each pool of 128 rows and cutting
    expected = []
    for pool in perm.split(128):
        ranked = pool[torch.sort(lengths[pool], stable=True).indices]
        expected += [frozenset(b.tolist()) for b in ranked.split(32)]
    full = [frozenset(b.tolist()) for b in order[: 31 * 32].split(32)]
    assert sorted(map(sorted, full)) == sorted(map(sorted, expected[:31]))
    assert set(order[31 * 32 :].tolist()) == expected[31]  # the partial one, last
    # shuffled: the minibatches do not come pool by pool in sorted order
    assert full != expected[:31]

    def spread(batches):  # of lengths within each minibatch, summed
        return sum(int(lengths[list(b)].max() - lengths[list(b)].min()) for b in batches)

    # a quarter of a pool spans about a quarter of the lengths; a random minibatch most
    assert spread(full) < 0.4 * spread(perm[: 31 * 32].split(32))


def test_a_negative_bucket_pool_is_refused():
    with pytest.raises(ValueError, match="bucket_pool=-1: expected >= 0"):
        TrainConfig(bucket_pool=-1)
