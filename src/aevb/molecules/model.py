"""The sequence VAE on molecules: data rows from SMILES, training through the run folder,
and what a trained model does with molecules (sample, reconstruct, interpolate).

The model is :class:`aevb.models.SequenceVAE`: it knows token ids, not chemistry. This
module turns SMILES into its rows with a :class:`Vocabulary` and back. The vocabulary
travels in the model's ``config.json`` (``tokens``, ``tokenizer``, ``input_dim``), so a
saved model decodes on its own; a run folder also keeps it as ``vocabulary.json``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aevb import io as aevb_io
from aevb.data import DataError, Dataset
from aevb.models import SequenceVAE, SequenceVAEConfig
from aevb.molecules.chem import canonical, parse
from aevb.molecules.tokens import Vocabulary
from aevb.run import train_or_resume
from aevb.training import TrainConfig, TrainResult

VOCABULARY_FILE = "vocabulary.json"
"""The vocabulary's copy in a run folder (the model's config holds the same tokens)."""


def hold_out(
    smiles: Sequence[str], valid_size: int, train_size: int | None = None, seed: int = 0
) -> tuple[list[str], list[str]]:
    """A seeded random split of a corpus into training and validation molecules:
    ``valid_size`` held out, then ``train_size`` (default: all the others) for training.
    Random, not a slice: the MOSES files are not shuffled (:func:`load_moses`)."""
    n = len(smiles)
    if valid_size < 0 or valid_size >= n:
        raise ValueError(f"valid_size={valid_size}: expected 0 <= valid_size < {n} molecules")
    rest = n - valid_size
    if train_size is not None and not 0 < train_size <= rest:
        raise ValueError(
            f"train_size={train_size}: expected 1..{rest} (after {valid_size} held out)"
        )
    order = np.random.default_rng(seed).permutation(n)
    valid = [smiles[i] for i in order[:valid_size]]
    train = [smiles[i] for i in order[valid_size : valid_size + (train_size or rest)]]
    return train, valid


def encode_rows(vocab: Vocabulary, smiles: Sequence[str], chunk: int = 100_000) -> np.ndarray:
    """Token-id rows ``(N, vocab.max_length)`` float32, encoded a chunk at a time (a token
    list per molecule of 1.6M would take gigabytes)."""
    out = np.zeros((len(smiles), vocab.max_length), dtype=np.float32)
    for a in range(0, len(smiles), chunk):
        out[a : a + chunk] = vocab.encode(smiles[a : a + chunk])
    return out


def sequence_dataset(
    name: str, vocab: Vocabulary, train: Sequence[str], valid: Sequence[str] | None = None
) -> Dataset:
    """A :class:`~aevb.data.Dataset` of token-id rows ``(N, vocab.max_length)`` float32
    (categorical likelihood) from training and validation SMILES."""
    held = encode_rows(vocab, valid) if valid is not None and len(valid) else None
    return Dataset(name, encode_rows(vocab, train), valid=held, likelihood="categorical")


def new_model(vocab: Vocabulary, **fields: Any) -> SequenceVAE:
    """A fresh :class:`SequenceVAE` for ``vocab`` (its tokens, kind and length); ``fields``:
    any other :class:`SequenceVAEConfig` field."""
    config = SequenceVAEConfig(
        input_dim=vocab.max_length, tokens=vocab.tokens, tokenizer=vocab.kind, **fields
    )
    return SequenceVAE(config)


def vocabulary_of(model: SequenceVAE) -> Vocabulary:
    """The vocabulary a model was trained with (from its config)."""
    c = model.config
    return Vocabulary(c.tokenizer, c.tokens, c.input_dim)


def load_molecule_model(path: str | os.PathLike, device: str = "cpu") -> SequenceVAE:
    """A trained molecule model from a run folder (its best weights) or a model folder;
    a ``ValueError`` when the folder holds another kind of model."""
    model = aevb_io.load_model(path, device=device).eval()
    if not isinstance(model, SequenceVAE):
        raise ValueError(
            f"{path}: a {type(model).__name__}, not a molecule model (SequenceVAE); train one "
            "with aevb molecules train"
        )
    return model


def train_molecules(
    out: str | os.PathLike,
    data: Dataset,
    make: Callable[[], tuple[SequenceVAE, TrainConfig]] | None = None,
    **kwargs: Any,
) -> TrainResult:
    """Train (or resume) the run in ``out`` on token rows ``data``
    (:func:`aevb.run.train_or_resume`, which ``kwargs`` go to) and keep the vocabulary
    next to it as ``vocabulary.json``."""
    result = train_or_resume(out, data, make, **kwargs)
    model = aevb_io.load_model(out)
    vocabulary_of(model).save(Path(out) / VOCABULARY_FILE)
    return result


def _batches(n: int, size: int) -> list[tuple[int, int]]:
    return [(i, min(n, i + size)) for i in range(0, n, size)]


@torch.no_grad()
def sample_smiles(
    model: SequenceVAE,
    n: int,
    *,
    temperature: float = 1.0,
    greedy: bool = False,
    seed: int = 0,
    batch_size: int = 1000,
    token_temperature: float = 1.0,
) -> list[str]:
    """``n`` strings decoded from z ~ p(z) (standard deviation scaled by ``temperature``),
    token by token (drawn with the logits divided by ``token_temperature``, as the MOSES
    models' ``temp``, or the most likely one with ``greedy``). Invalid molecules are kept:
    the ``Valid`` metric counts them."""
    if n < 1:
        raise ValueError(f"n={n}: expected at least 1 molecule")
    if temperature <= 0:  # token_temperature: SequenceVAE.generate checks it
        raise ValueError(f"temperature={temperature}: expected > 0")
    vocab = vocabulary_of(model)
    gen = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
    out: list[str] = []
    for a, b in _batches(n, batch_size):
        ids = model.sample(
            b - a,
            generator=gen,
            temperature=temperature,
            greedy=greedy,
            token_temperature=token_temperature,
        )
        out += vocab.decode(ids.long().cpu().numpy())
    return out


@torch.no_grad()
def encode_smiles(model: SequenceVAE, smiles: Sequence[str], batch_size: int = 1000) -> np.ndarray:
    """Posterior means of molecules: ``(N, Nz)`` float32. A token outside the model's
    vocabulary is a :class:`~aevb.data.DataError` naming it."""
    vocab = vocabulary_of(model)
    rows = vocab.encode(smiles)
    device = next(model.parameters()).device
    means = [
        model.posterior(torch.as_tensor(rows[a:b], dtype=torch.float32, device=device)).mean
        for a, b in _batches(len(rows), batch_size)
    ]
    return torch.cat(means).cpu().numpy()


@torch.no_grad()
def decode_codes(model: SequenceVAE, z: np.ndarray, batch_size: int = 1000) -> list[str]:
    """Greedy decodings of codes ``(N, Nz)`` as strings."""
    vocab = vocabulary_of(model)
    p = next(model.parameters())
    out: list[str] = []
    for a, b in _batches(len(z), batch_size):
        zz = torch.as_tensor(z[a:b], dtype=p.dtype, device=p.device)
        out += vocab.decode(model.generate(zz, greedy=True).cpu().numpy())
    return out


@dataclass(frozen=True)
class Reconstruction:
    """How many molecules come back from their posterior mean by greedy decoding."""

    accuracy: float
    """Share of molecules whose decoding is the same molecule (canonical SMILES equal)."""
    valid: float
    """Share of decodings that are valid molecules."""
    n: int
    decoded: list[str]


def reconstruction_accuracy(
    model: SequenceVAE, smiles: Sequence[str], batch_size: int = 1000
) -> Reconstruction:
    """Encode each molecule to its posterior mean, decode greedily, compare canonical
    SMILES (exact match, stereochemistry included)."""
    decoded = decode_codes(model, encode_smiles(model, smiles, batch_size), batch_size)
    same = valid = 0
    for original, back in zip(smiles, decoded, strict=True):
        c = canonical(back)
        valid += c is not None
        same += c is not None and c == canonical(original)
    n = len(decoded)
    return Reconstruction(same / n, valid / n, n, decoded)


def interpolate(model: SequenceVAE, start: str, end: str, steps: int = 8) -> list[str]:
    """Greedy decodings of ``steps`` codes evenly spaced on the line between the posterior
    means of two molecules (the ends included)."""
    if steps < 2:
        raise ValueError(f"steps={steps}: expected at least 2 (the two ends)")
    for name, smiles in (("start", start), ("end", end)):
        if parse(smiles) is None:
            raise DataError(
                f"{name} {smiles!r}: not a valid molecule (RDKit cannot parse or sanitise "
                "it); expected a SMILES string"
            )
    a, b = encode_smiles(model, [start, end])
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
    return decode_codes(model, (1 - t) * a + t * b)
