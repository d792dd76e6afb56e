"""The sequence VAE (aevb.models.sequence): its p(x|z) is a distribution over rows, its draws
follow it, and it trains, logs its KL, saves and resumes through the same trainer."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from aevb.data import Dataset
from aevb.evaluate import log_likelihood
from aevb.io import load_model
from aevb.models import MODEL_CLASSES, SequenceVAE, SequenceVAEConfig
from aevb.models.protocol import Model
from aevb.models.sequence import BOS, EOS, PAD, RECURRENT, sequence_lengths
from aevb.run import resume, train
from aevb.training import TrainConfig

TOKENS = ("<pad>", "<bos>", "<eos>", "A", "B")


def tiny(d: int = 5, **kw) -> SequenceVAE:
    torch.manual_seed(0)
    fields = dict(latent_dim=3, embedding_dim=6, encoder_hidden=8, decoder_hidden=8)
    return SequenceVAE(SequenceVAEConfig(input_dim=d, tokens=TOKENS, **{**fields, **kw}))


def every_row(d: int, symbols=(EOS, 3, 4)) -> torch.Tensor:
    """Every row of length d: <bos>, tokens until <eos> (or the end), <pad> after."""
    rows = []
    for body in itertools.product(symbols, repeat=d - 1):
        row = [BOS]
        for s in body:
            row.append(s)
            if s == EOS:
                break
        row += [PAD] * (d - len(row))
        if row not in rows:
            rows.append(row)
    return torch.tensor(rows, dtype=torch.float32)


def toy_language(n: int, d: int = 8, seed: int = 0) -> np.ndarray:
    """Rows of 'A'*k 'B'*k (k = 1..3): a language a decoder learns quickly."""
    rng = np.random.default_rng(seed)
    out = np.zeros((n, d), dtype=np.float32)
    for i, k in enumerate(rng.integers(1, 4, n)):
        row = [BOS] + [3] * k + [4] * k + [EOS]
        out[i, : len(row)] = row
    return out


def test_it_is_a_model_and_registered():
    assert isinstance(tiny(), Model)
    assert MODEL_CLASSES["SequenceVAE"] is SequenceVAE


@pytest.mark.parametrize(
    "encoder, decoder", [("gru", "gru"), ("transformer", "gru"), ("lstm", "lstm")]
)
def test_p_x_given_z_sums_to_one_over_every_row(encoder, decoder):
    model = tiny(d=5, encoder=encoder, decoder=decoder).eval()
    rows = every_row(5)
    assert len(rows) == 1 + 2 + 4 + 8 + 16  # <eos> at step 1..4, or 4 tokens and no <eos>
    z = torch.randn(3, model.config.latent_dim, generator=torch.Generator().manual_seed(1))
    for zi in z:
        with torch.no_grad():
            logp = model.decode(zi.expand(len(rows), -1)).log_prob(rows)
        assert torch.logsumexp(logp.double(), 0).exp().item() == pytest.approx(1.0, abs=1e-5)


def test_rows_with_pad_or_bos_inside_have_probability_zero():
    model = tiny().eval()
    bad = torch.tensor([[BOS, 3, PAD, 4, EOS], [BOS, BOS, 3, EOS, PAD]], dtype=torch.float32)
    with torch.no_grad():
        assert torch.isneginf(model.decode(torch.zeros(2, 3)).log_prob(bad)).all()


@pytest.mark.parametrize("decoder", ["gru", "lstm"])
def test_draws_follow_the_probabilities_it_scores(decoder):
    """Frequencies of 20,000 draws at one z against exp(log p(x|z)): every row's count
    within 5 binomial standard deviations (plus one count for the rarest rows). Drawing
    carries the decoder's state token by token; scoring runs it over the whole row."""
    model = tiny(d=4, decoder=decoder).eval()
    z = torch.full((1, 3), 0.5)
    rows = every_row(4)
    with torch.no_grad():
        p = model.decode(z.expand(len(rows), -1)).log_prob(rows).double().exp()
        draws = model.decode(z).sample(20_000, generator=torch.Generator().manual_seed(0))
    draws = draws.reshape(-1, 4)
    n = len(draws)
    for row, pi in zip(rows, p, strict=True):
        count = (draws == row).all(1).sum().item()
        assert abs(count - n * pi.item()) <= 5 * math.sqrt(n * pi.item() * (1 - pi.item())) + 1


@pytest.mark.parametrize("token_temperature", [0.5, 2.0])
def test_token_temperature_draws_from_the_tempered_categorical(token_temperature):
    """Rows of one generated token (<bos> then <eos>, A or B): a draw at token temperature
    T follows p(x|z)^(1/T), normalised; 20,000 draws, counts within 5 binomial standard
    deviations."""
    model = tiny(d=2).eval()
    with torch.no_grad():  # far from uniform: <eos> likely, B unlikely
        model.decoder_head.bias.copy_(torch.tensor([0.0, 0.0, 1.5, 0.0, -1.5]))
    z = torch.full((1, 3), 0.5)
    rows = every_row(2)
    assert len(rows) == 3
    with torch.no_grad():
        p = model.decode(z.expand(3, -1)).log_prob(rows).double().exp()
        n = 20_000
        g = torch.Generator().manual_seed(1)
        draws = model.generate(z.expand(n, -1), False, g, token_temperature=token_temperature)
    tempered = p ** (1 / token_temperature)
    tempered /= tempered.sum()
    assert (tempered - p).abs().max() > 0.05  # the temperature matters here
    for row, q in zip(rows.long(), tempered, strict=True):
        count = (draws == row).all(1).sum().item()
        assert abs(count - n * q.item()) <= 5 * math.sqrt(n * q.item() * (1 - q.item())) + 1
    with pytest.raises(ValueError, match="token_temperature=0: expected a finite T > 0"):
        model.generate(z, False, token_temperature=0)
    # a vanishing temperature takes the most likely token, without overflow
    coldest = model.generate(z.expand(5, -1), False, g, token_temperature=1e-30)
    assert torch.equal(coldest, model.generate(z.expand(5, -1), True))


def test_shapes_with_a_sample_dimension_and_the_log_joint():
    model = tiny(d=8)
    x = torch.tensor(toy_language(4))
    z = torch.randn(7, 4, 3)
    assert model.decode(z).log_prob(x).shape == (7, 4)
    assert model.log_joint(x, z).shape == (7, 4)
    assert model.decode(z).sample(2).shape == (2, 7, 4, 8)
    assert model.encode(x).mean.shape == (4, 3)
    assert model.sample(5).shape == (5, 8)
    assert model.reconstruct(x).shape == (4, 8)


ROWS = [
    [BOS, 3, 4, 3, EOS, PAD, PAD],
    [BOS, EOS, PAD, PAD, PAD, PAD, PAD],
    [BOS, 4, 4, 3, 3, 4, EOS],
    [BOS, 3, EOS, PAD, PAD, PAD, PAD],
]


@pytest.mark.parametrize("encoder", ["gru", "lstm"])
def test_the_recurrent_encoder_reads_like_a_packed_bidirectional_one(encoder):
    # the reference: PyTorch's bidirectional GRU (LSTM) over packed rows, same weights
    model = tiny(d=7, encoder=encoder).eval()
    reference = RECURRENT[encoder](
        model.config.embedding_dim, model.config.encoder_hidden, batch_first=True,
        bidirectional=True,
    )  # fmt: skip
    for rnn, suffix in zip(model.encoder, ("", "_reverse"), strict=True):
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(reference, f"{name}_l0{suffix}").data = getattr(rnn, f"{name}_l0").data
    ids = torch.tensor(ROWS)
    lengths = sequence_lengths(ids)
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        model.embedding(ids), lengths, batch_first=True, enforce_sorted=False
    )
    with torch.no_grad():
        _, h = reference(packed)  # (2, B, H): forwards, backwards (an LSTM's: h, c)
        h = h[0] if encoder == "lstm" else h
        torch.testing.assert_close(model.read_both_ways(ids, lengths), torch.cat([h[0], h[1]], -1))


def test_deeper_gru_encoders_read_each_row_both_ways_and_nothing_after_eos():
    model = tiny(d=7, encoder_layers=2).eval()
    ids = torch.tensor(ROWS)
    lengths = sequence_lengths(ids)
    forwards, backwards = model.encoder
    with torch.no_grad():
        got = model.read_both_ways(ids, lengths)
        for i, n in enumerate(lengths.tolist()):  # one row at a time, no padding
            row = ids[i : i + 1, :n]
            ahead = forwards(model.embedding(row))[1][-1, 0]
            behind = backwards(model.embedding(row.flip(1)))[1][-1, 0]
            torch.testing.assert_close(got[i], torch.cat([ahead, behind]))
        changed = ids.clone()
        changed[3, 3:] = torch.tensor([3, 3, 3, 4])  # after row 3's <eos>
        torch.testing.assert_close(model.read_both_ways(changed, lengths), got)


def test_sequence_lengths_count_up_to_the_first_eos():
    ids = torch.tensor([[BOS, 3, EOS, PAD], [BOS, EOS, PAD, PAD], [BOS, 3, 4, 3]])
    assert sequence_lengths(ids).tolist() == [3, 2, 4]


def test_encode_refuses_what_is_not_a_token_id():
    model = tiny()
    expected = r"x\[0, 2\] = 5: expected token ids, whole numbers in \[0, 5\)"
    with pytest.raises(ValueError, match=expected):
        model.encode([[BOS, 3, 5, EOS, PAD]])
    with pytest.raises(ValueError, match=r"expected token ids"):
        model.encode([[BOS, 3.5, 4, EOS, PAD]])
    with pytest.raises(ValueError, match="expected 5"):
        model.encode([[BOS, 3, EOS]])


def test_bad_configs_are_one_line_errors():
    with pytest.raises(ValueError, match="<pad>, <bos>, <eos>"):
        SequenceVAEConfig(input_dim=5, tokens=("A", "B", "C", "D"))
    with pytest.raises(ValueError, match="word_dropout"):
        SequenceVAEConfig(input_dim=5, tokens=TOKENS, word_dropout=1.0)
    with pytest.raises(ValueError, match="encoder='rnn': expected one of"):
        SequenceVAEConfig(input_dim=5, tokens=TOKENS, encoder="rnn")
    with pytest.raises(ValueError, match="decoder='transformer': expected one of"):
        SequenceVAEConfig(input_dim=5, tokens=TOKENS, decoder="transformer")


def test_word_dropout_acts_in_training_only():
    model = tiny(d=8, word_dropout=0.5)
    x = torch.tensor(toy_language(16))
    z = torch.zeros(16, 3)
    model.eval()
    with torch.no_grad():
        a, b = model.decode(z).log_prob(x), model.decode(z).log_prob(x)
        assert torch.equal(a, b)
        model.train()
        torch.manual_seed(0)
        c = model.decode(z).log_prob(x)
    assert not torch.equal(a, c)


def test_a_non_sequence_dataset_is_refused():
    with pytest.raises(Exception, match="token ids"):
        from aevb.data.validation import validate_for_likelihood

        validate_for_likelihood(np.array([[0.5, 1.0]]), "categorical", "toy")


def toy_run(tmp_path, name: str, encoder="gru", word_dropout=0.0, epochs=30, **fields):
    x = toy_language(600)
    data = Dataset("toy", x[:500], valid=x[500:], likelihood="categorical")
    model = tiny(d=8, encoder=encoder, latent_dim=2, decoder_hidden=16, encoder_hidden=16,
                 word_dropout=word_dropout)  # fmt: skip
    config = TrainConfig(epochs=epochs, batch_size=50, lr=1e-2, eval_every=5000, seed=0, **fields)
    return train(model, data, config, tmp_path / name), torch.tensor(x[500:])


def test_a_collapsed_model_is_visible_in_the_logs(tmp_path, capsys):
    """The toy language (entropy log 3 nats) is learnt as well without z: the plain ELBO
    leaves the posterior collapsed, and every log line says so (KL ~ 0, 0/2 active)."""
    result, _ = toy_run(tmp_path, "plain")
    logs = [line for line in capsys.readouterr().err.splitlines() if line.startswith("examples")]
    assert logs and all(" nats, 0/2 active" in line for line in logs[1:])
    last = result.history[-1]
    assert last["valid_bound"] > -1.6  # it learnt the language: entropy log 3 = 1.10 nats
    assert last["active_units"] == 0 and last["kl"] < 0.05


@pytest.mark.parametrize("encoder", ["gru", "transformer"])
def test_free_bits_and_word_dropout_make_it_use_z(tmp_path, capsys, encoder):
    """With free bits (1 nat per dimension) and word dropout the same model puts the
    language's log 3 nats in z: it reconstructs the held-out rows. Its importance-sampled
    -log p(x) cannot beat the entropy (it bounds the cross-entropy from above); it is
    larger, as free KL makes q broader than needed."""
    result, valid = toy_run(tmp_path, encoder, encoder, 0.5, epochs=60, free_bits=1.0)
    last = result.history[-1]
    assert last["active_units"] >= 1 and last["kl"] > 0.5
    assert f"{last['active_units']:.0f}/2 active" in capsys.readouterr().err
    best = load_model(tmp_path / encoder)
    assert (best.reconstruct(valid) == valid).all(1).float().mean() > 0.95
    nll = -log_likelihood(best, valid, k=50, batch_size=100).mean().item()
    assert math.log(3) - 0.1 < nll < 3.0


@pytest.mark.parametrize("bucket_pool", [0, 3])
def test_a_killed_run_resumes_to_the_same_weights(tmp_path, bucket_pool):
    x = toy_language(200)
    data = Dataset("toy", x, likelihood="categorical")
    config = TrainConfig(
        batch_size=20, lr=1e-2, eval_every=100, max_examples=400, seed=3, bucket_pool=bucket_pool
    )
    train(tiny(d=8, word_dropout=0.2), data, config, tmp_path / "once")
    half = TrainConfig(**{**config.__dict__, "max_examples": 120})  # killed mid-epoch
    train(tiny(d=8, word_dropout=0.2), data, half, tmp_path / "twice")
    torch.manual_seed(123)  # a new process: word dropout's global generator is elsewhere
    resume(tmp_path / "twice", data, max_examples=400)
    a = load_model(tmp_path / "once" / "checkpoint").state_dict()
    b = load_model(tmp_path / "twice" / "checkpoint").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_bucketed_minibatches_hold_rows_of_one_length_and_cover_the_epoch(monkeypatch, tmp_path):
    """With bucket_pool, each minibatch of the toy language (rows of 4, 6 or 8 tokens)
    comes from a pool sorted by length, so it runs to far fewer padded positions than
    plainly shuffled ones; each epoch still sees every row once."""
    from aevb.training import Trainer

    x = toy_language(300)
    lengths = sequence_lengths(torch.tensor(x))
    seen: dict[int, list[torch.Tensor]] = {}
    step = Trainer._step

    def spying_step(self, batch, bar):
        seen.setdefault(self.config.bucket_pool, []).append(batch.clone())
        return step(self, batch, bar)

    monkeypatch.setattr(Trainer, "_step", spying_step)
    for pool in (0, 5):
        config = TrainConfig(batch_size=20, lr=1e-2, epochs=2, seed=1, bucket_pool=pool)
        train(tiny(d=8), Dataset("toy", x, likelihood="categorical"), config, tmp_path / f"{pool}")
    padded = {}
    for pool, batches in seen.items():
        assert len(batches) == 30 and all(b.shape == (20, 8) for b in batches)
        for epoch in (batches[:15], batches[15:]):  # every row once: the same multiset
            rows = torch.cat(epoch)
            assert sorted(map(tuple, rows.tolist())) == sorted(map(tuple, x.tolist()))
        padded[pool] = sum(int(sequence_lengths(b).max()) * len(b) for b in batches)
    # a pool of 100 rows sorted by length mixes lengths in at most 2 of its 5 minibatches
    mixed = [b for b in seen[5] if sequence_lengths(b).unique().numel() > 1]
    assert len(mixed) <= 2 * 2 * 3  # 2 per pool, 3 pools an epoch, 2 epochs
    assert padded[5] < padded[0]
    assert padded[5] <= int(lengths.sum()) * 2 * 1.15


def test_bucket_pool_needs_a_model_with_lengths(tmp_path):
    from helpers import tiny_vae

    data = Dataset("bits", np.zeros((10, 6), dtype=np.float32), likelihood="bernoulli")
    with pytest.raises(ValueError, match="no lengths to group by"):
        train(tiny_vae(), data, TrainConfig(bucket_pool=4, max_examples=10), tmp_path / "r")


def test_after_a_cut_minibatch_a_resumed_bucketed_run_gets_back_in_step(monkeypatch, tmp_path):
    """A budget of 130 cuts the 7th minibatch of 20 to 10 rows; resumed, the next minibatch
    has 10 rows, so later ones are again whole minibatches of the bucketed order."""
    from aevb.training import Trainer

    x = toy_language(200)
    data = Dataset("toy", x, likelihood="categorical")
    sizes = []
    step = Trainer._step

    def spying_step(self, batch, bar):
        sizes.append(len(batch))
        return step(self, batch, bar)

    monkeypatch.setattr(Trainer, "_step", spying_step)
    config = TrainConfig(batch_size=20, lr=1e-2, max_examples=130, seed=3, bucket_pool=3)
    train(tiny(d=8), data, config, tmp_path / "run")
    resume(tmp_path / "run", data, max_examples=200)
    assert sizes == [20] * 6 + [10] + [10] + [20] * 3
