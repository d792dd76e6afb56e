"""The Python API checks the rows it is given as the CLI does: finite values, the width, the
range a likelihood can model; numpy arrays and other dtypes are converted."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aevb import evaluate as ev

from helpers import tiny_vae


def _rows(n=5, d=6, seed=0) -> torch.Tensor:
    return torch.rand(n, d, generator=torch.Generator().manual_seed(seed))


ENTRY_POINTS = {
    "encode": lambda m, x: m.encode(x),
    "reconstruct": lambda m, x: m.reconstruct(x),
    "lower_bound": lambda m, x: ev.lower_bound(m, x),
    "log_likelihood": lambda m, x: ev.log_likelihood(m, x, k=3),
    "posterior_means": lambda m, x: ev.posterior_means(m, x),
    "active_units": lambda m, x: ev.active_units(m, x),
    "kl_per_dim": lambda m, x: ev.kl_per_dim(m, x),
    "mutual_information": lambda m, x: ev.mutual_information(m, x),
}


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_rows_are_a_value_error_naming_count_and_row(entry, bad):
    x = _rows()
    x[3, 1] = bad
    x[4, 0] = bad
    with pytest.raises(
        ValueError,
        match=r"^x: expected finite values, found 2 NaN/inf in 2 row\(s\) \(first: row 3\)$",
    ):
        ENTRY_POINTS[entry](tiny_vae(), x)


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_bernoulli_rows_outside_0_1_are_a_value_error(entry):
    with pytest.raises(
        ValueError,
        match=r"^x: values in \[0, 255\], but the model's bernoulli likelihood expects values "
        r"in \[0, 1\]; scale them",
    ):
        ENTRY_POINTS[entry](tiny_vae(), torch.tensor([[0.0, 255.0, 1.0, 0.0, 0.5, 0.2]] * 3))


def test_gaussian_rows_need_0_1_only_under_a_sigmoid_mean():
    x = torch.randn(4, 6, generator=torch.Generator().manual_seed(0)) * 10
    identity = tiny_vae(likelihood="gaussian", gaussian_mean="identity")
    assert torch.isfinite(ev.lower_bound(identity, x)).all()
    with pytest.raises(ValueError, match=r"but the model's gaussian sigmoid mean expects values"):
        ev.lower_bound(tiny_vae(likelihood="gaussian", gaussian_mean="sigmoid"), x)


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_numpy_and_float64_rows_give_what_float32_tensors_give(entry):
    model = tiny_vae()
    x = _rows()

    def run(rows):
        torch.manual_seed(0)  # mutual_information draws from the global generator
        out = ENTRY_POINTS[entry](model, rows)
        if entry in ("encode",):
            return out.mean
        return out[1] if entry == "active_units" else out

    expected = run(x)
    for other in (x.numpy(), x.double(), x.numpy().astype(np.float64), x.tolist()):
        torch.testing.assert_close(run(other), expected)


def test_binary_integer_rows_are_accepted():
    model = tiny_vae()
    x = (_rows() > 0.5).to(torch.uint8)
    torch.testing.assert_close(
        ev.lower_bound(model, x, generator=torch.Generator().manual_seed(1)),
        ev.lower_bound(model, x.float(), generator=torch.Generator().manual_seed(1)),
    )


def test_encode_returns_the_models_dtype_for_a_double_model():
    model = tiny_vae().double()
    assert model.encode(_rows()).mean.dtype == torch.float64


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (torch.rand(2, 5), r"^x has 5 values per row: expected 6$"),
        (torch.rand(6), r"^x of shape \(6,\): expected 2-D rows \(N, 6\)$"),
        (torch.rand(0, 6), r"^x of shape \(0, 6\): expected at least one row$"),
        (np.array([["a", "b"]], dtype=object), r"^x of type ndarray: expected numbers"),
        (torch.rand(2, 6, dtype=torch.complex64), r"^x of dtype torch.complex64: expected real"),
    ],
)
def test_shape_and_type_errors_say_what_was_expected(x, message):
    with pytest.raises(ValueError, match=message):
        tiny_vae().encode(x)
    with pytest.raises(ValueError, match=message):
        ev.lower_bound(tiny_vae(), x)


def test_training_minibatches_skip_the_checks_that_encode_makes(monkeypatch):
    """The objectives score minibatches through VAE.posterior, so no per-step check (and no
    GPU synchronisation) is added to training; the public encode checks."""
    import aevb.models.vae
    from aevb.inputs import check_rows
    from aevb.objectives import compute_terms

    calls = []

    def counted(*args, **kwargs):
        calls.append(1)
        return check_rows(*args, **kwargs)

    monkeypatch.setattr(aevb.models.vae, "check_rows", counted)
    model = tiny_vae()
    compute_terms(model, _rows(), n_samples=2)
    assert calls == []
    model.encode(_rows())
    assert calls == [1]
