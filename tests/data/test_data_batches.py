"""In-memory minibatches: each row once per epoch, reproducible with a seeded generator."""

from __future__ import annotations

import pytest
import torch

from aevb.data import iterate_minibatches


def _epoch(x, batch_size, seed, **kw):
    return list(
        iterate_minibatches(x, batch_size, generator=torch.Generator().manual_seed(seed), **kw)
    )


def test_every_row_once_per_epoch():
    x = torch.arange(103, dtype=torch.float32).unsqueeze(1).repeat(1, 3)
    batches = _epoch(x, 10, seed=0)
    assert [len(b) for b in batches] == [10] * 10 + [3]
    seen = torch.cat(batches)[:, 0]
    assert sorted(seen.tolist()) == list(range(103))
    assert seen.tolist() != list(range(103))  # shuffled


def test_drop_last_and_no_shuffle():
    x = torch.arange(25).unsqueeze(1)
    assert [len(b) for b in _epoch(x, 10, 0, drop_last=True)] == [10, 10]
    ordered = list(iterate_minibatches(x, 10, generator=None, shuffle=False))
    assert torch.equal(torch.cat(ordered), x)


def test_seeded_generator_reproduces_the_order_and_epochs_differ():
    x = torch.randn(50, 4)
    a, b = _epoch(x, 7, seed=5), _epoch(x, 7, seed=5)
    assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))
    g = torch.Generator().manual_seed(5)
    first = torch.cat(list(iterate_minibatches(x, 7, generator=g)))
    second = torch.cat(list(iterate_minibatches(x, 7, generator=g)))
    assert not torch.equal(first, second)


def test_batch_size_must_be_positive():
    with pytest.raises(ValueError, match=r"^batch_size=0: expected a positive integer$"):
        next(iterate_minibatches(torch.zeros(3, 1), 0, generator=None))
