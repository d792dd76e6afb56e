"""Wake-sleep: each phase's gradient reaches only its own parameters, and it learns."""

import numpy as np
import torch

from aevb.baselines import WakeSleepObjective
from aevb.data import Dataset
from aevb.evaluate import lower_bound
from aevb.run import train
from aevb.training import TrainConfig

from helpers import tiny_vae


def test_wake_trains_the_decoder_and_sleep_the_encoder():
    model = tiny_vae(hidden=(5,))
    x = torch.rand(16, 6).round()
    loss, metrics = WakeSleepObjective()(model, x, torch.Generator().manual_seed(0))
    enc = [p for n, p in model.named_parameters() if n.startswith("encoder")]
    dec = [p for n, p in model.named_parameters() if n.startswith("decoder")]
    # the wake term alone: -mean log p(x, z) with z ~ q detached -> no encoder gradient
    g = torch.Generator().manual_seed(0)
    q = model.encode(x)
    z = q.rsample(1, generator=g).detach()
    wake = -(model.decode(z).log_prob(x) + model.prior.log_prob(z)).mean()
    wake_grads = torch.autograd.grad(wake, dec)
    all_grads = torch.autograd.grad(loss, enc + dec)
    for got, want in zip(all_grads[len(enc) :], wake_grads, strict=True):
        torch.testing.assert_close(got, want)  # the decoder sees exactly the wake gradient
    assert all(g.abs().sum() > 0 for g in all_grads[: len(enc)])  # the encoder: sleep only
    assert metrics["bound"].shape == (16,)


def test_wake_sleep_increases_the_bound_on_a_toy_problem(tmp_path):
    rng = np.random.default_rng(0)
    protos = rng.random((3, 12)) < 0.5
    x = (protos[rng.integers(0, 3, 400)] ^ (rng.random((400, 12)) < 0.05)).astype(np.float32)
    data = Dataset(
        name="toy", train=x[:300], valid=x[300:350], test=x[350:], likelihood="bernoulli"
    )
    torch.manual_seed(0)
    model = tiny_vae(input_dim=12, hidden=(16,))
    test = torch.as_tensor(data.test)
    before = lower_bound(model, test, n_samples=100, generator=torch.Generator().manual_seed(1))
    result = train(
        model,
        data,
        TrainConfig(
            algorithm="wake-sleep",
            optimizer="adam",
            lr=0.01,
            batch_size=50,
            max_examples=30_000,
            eval_every=3000,
        ),
        tmp_path / "ws",
        quiet=True,
    )
    after = lower_bound(model, test, n_samples=100, generator=torch.Generator().manual_seed(1))
    gain = after - before  # paired per test example
    se = gain.std() / len(gain) ** 0.5
    assert gain.mean() > 2.0 and gain.mean() > 10 * se, (gain.mean(), se)
    assert result.history[-1]["test_bound"] > result.history[0]["test_bound"]


def test_the_trainer_names_wake_sleep_without_importing_the_baselines():
    import subprocess
    import sys

    code = (
        "import sys; from aevb.training import TrainConfig; "
        "assert 'aevb.baselines' not in sys.modules; "
        "from aevb.objectives import make_objective; "
        "print(type(make_objective(TrainConfig(algorithm='wake-sleep', estimator='A'))).__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "WakeSleepObjective"
