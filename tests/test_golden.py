"""Golden numbers, pinned to 1e-4 nats: seeded tiny models' bounds on a fixed input, model and
run folders written by an earlier version (loaded, evaluated, resumed), a short seeded run.

The expected numbers were computed once with the code of commit 2bea3cf. They may change only
with a reason in the commit message that changes them: a refactor that moves them has changed
the random draws at initialisation, the noise of the estimators, or the arithmetic.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from aevb.data import load
from aevb.evaluate import log_likelihood, lower_bound
from aevb.io import load_model
from aevb.models import VAE, VAEConfig
from aevb.run import resume, train
from aevb.training import TrainConfig

FIXTURES = Path(__file__).parent / "fixtures"

VARIANTS = {
    "paper": {},
    "paper-default-init": {"init": "default"},
    "gaussian": {"likelihood": "gaussian", "init": "default"},
    "vamp-top-down": {
        "upper_latents": (2,), "upper_hidden": (6,), "hierarchy": "top-down", "prior": "vamp",
        "prior_components": 3, "init": "default",
    },
    "mog-bottom-up": {
        "upper_latents": (2,), "upper_hidden": (6,), "prior": "mog", "prior_components": 3,
        "init": "default",
    },
    "conv": {"body": "conv", "channels": (4,), "image_shape": (4, 4), "init": "default"},
}  # fmt: skip

# (estimator B = "auto" with L = 4, estimator A with L = 4, log p(x) by IS with k = 64):
# means over the 6 rows of inputs(name), each draw from a generator seeded with 1.
EXPECTED = {
    "paper": (-11.09821605682373, -11.10102367401123, -11.098350524902344),
    "paper-default-init": (-11.789730072021484, -11.80084228515625, -11.4813871383667),
    "gaussian": (-16.206085205078125, -16.189172744750977, -16.017681121826172),
    "vamp-top-down": (-13.41720199584961, -13.41720199584961, -11.268038749694824),
    "mog-bottom-up": (-12.441448211669922, -12.441448211669922, -11.611104011535645),
    "conv": (-11.138763427734375, -11.147845268249512, -11.029799461364746),
}

# The checkpoints in tests/fixtures/checkpoints/<name> are `aevb.io.save_model` of
# seeded(name), written by the same commit: loading them must give the same numbers.
SAVED = ["paper", "gaussian", "vamp-top-down", "mog-bottom-up", "conv"]

# A run folder (checkpoint/, best/, metrics.csv) of the paper's model trained on digits for
# 300 training examples, written by the same commit (which called the count "samples"), and
# the (train, valid, test) bounds after 300 and 600 examples.
RUN = FIXTURES / "digits-run"
RUN_MODEL = VAEConfig(input_dim=64, latent_dim=2, hidden=(16,))
AFTER_300 = (-42.0058455657959, -42.037718620300296, -41.9894539642334)
AFTER_600 = (-36.37894840240479, -36.478112449646, -36.2055198097229)


def seeded(name: str) -> VAE:
    torch.manual_seed(0)
    return VAE(VAEConfig(input_dim=16, latent_dim=3, hidden=(10,), **VARIANTS[name]))


def inputs(name: str) -> torch.Tensor:
    """6 rows of 16 values in [0, 1], binarised except for the Gaussian model."""
    x = torch.rand(6, 16, generator=torch.Generator().manual_seed(0))
    return x if name == "gaussian" else x.round()


def bounds(model: VAE, x: torch.Tensor) -> tuple[float, float, float]:
    def g() -> torch.Generator:
        return torch.Generator().manual_seed(1)

    with torch.no_grad():
        b = lower_bound(model, x, n_samples=4, generator=g())
        a = lower_bound(model, x, estimator="A", n_samples=4, generator=g())
        ll = log_likelihood(model, x, k=64, generator=g())
    return b.mean().item(), a.mean().item(), ll.mean().item()


def final_bounds(history: list[dict[str, float]]) -> tuple[float, float, float]:
    last = history[-1]
    return last["train_bound"], last["valid_bound"], last["test_bound"]


@pytest.mark.parametrize("name", list(VARIANTS))
def test_seeded_model_gives_the_golden_bounds(name, one_thread):
    assert bounds(seeded(name), inputs(name)) == pytest.approx(EXPECTED[name], abs=1e-4)


@pytest.mark.parametrize("name", SAVED)
def test_checkpoint_of_an_earlier_version_loads_and_gives_the_golden_bounds(name, one_thread):
    model = load_model(FIXTURES / "checkpoints" / name)
    assert model.config == seeded(name).config
    assert bounds(model, inputs(name)) == pytest.approx(EXPECTED[name], abs=1e-4)


def test_short_seeded_training_run_reaches_the_golden_bounds(tmp_path):
    """Six Adagrad steps of the paper's model on digits (RUN's settings); bit-exact on the
    CPU across runs and thread counts when the numbers were computed."""
    torch.manual_seed(0)
    model = VAE(RUN_MODEL)
    config = TrainConfig(max_examples=300, batch_size=50, eval_max_examples=100)
    result = train(model, load("digits"), config, tmp_path / "run", quiet=True)
    assert result.examples == 300
    assert final_bounds(result.history) == pytest.approx(AFTER_300, abs=1e-4)


def test_run_folder_of_an_earlier_version_resumes_to_the_golden_bounds(tmp_path):
    """RUN, written by that commit after 300 training examples, resumed to 600: the same
    numbers as an uninterrupted run of 600 gave then."""
    shutil.copytree(RUN, tmp_path / "run")
    assert load_model(tmp_path / "run").config == RUN_MODEL
    result = resume(tmp_path / "run", load("digits"), max_examples=600, quiet=True)
    assert [row["examples"] for row in result.history] == [300, 600]
    assert final_bounds(result.history[:1]) == pytest.approx(AFTER_300, abs=1e-4)
    assert final_bounds(result.history) == pytest.approx(AFTER_600, abs=1e-4)
