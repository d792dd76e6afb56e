"""Tokens of molecules and the vocabulary that turns them into integer arrays.

Three ways to cut a molecule into tokens (``kind``):

- ``"smiles"``: SMILES cut by the regular expression of Schwaller et al. (2019, the
  Molecular Transformer): a bracket atom (``[nH]``, ``[C@@H]``, ``[O-]``) is one token,
  as are ``Br``, ``Cl``, two-digit ring closures ``%10``, and every other atom, bond,
  branch and ring digit. The tokens joined give the SMILES back exactly.
- ``"chars"``: SMILES cut into characters (``Cl`` is two tokens).
- ``"selfies"``: the molecule written in SELFIES (Krenn et al. 2020, the ``selfies``
  package), one token per bracketed symbol; every sequence of SELFIES tokens decodes to
  a valid molecule, so decoding gives SMILES that RDKit parses. SELFIES does not keep
  the SMILES' atom order, so a round trip gives the same molecule, not the same string.

:class:`Vocabulary` maps tokens to integers: ``<pad>`` = 0, ``<bos>`` = 1, ``<eos>`` = 2,
then the corpus' tokens in sorted order. It is built from a corpus, encodes SMILES to a
fixed-length int64 array, decodes back to SMILES, and is saved as JSON (a run folder keeps
it next to the model). There is no unknown token: a token outside the vocabulary is an
error that names it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import selfies

from aevb.atomic import write_text
from aevb.data.errors import DataError, one_line, read_bytes

KINDS = ("smiles", "chars", "selfies")
"""The tokenisations: regex-atom SMILES, SMILES characters, SELFIES symbols."""

PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"
SPECIALS = (PAD, BOS, EOS)
"""The special tokens, ids 0, 1, 2 in every vocabulary."""

SMILES_REGEX = re.compile(
    r"(\[[^\]]+]|Br?|Cl?|N|O|S|P|F|I|b|c|n|o|s|p|\(|\)|\.|=|#|-|\+|\\|\/|:|~|@|\?|>|\*|\$|%[0-9]{2}|[0-9])"
)
"""The SMILES tokens of Schwaller et al. (2019), "Molecular Transformer", ACS Cent. Sci."""

FORMAT = "aevb.molecules.Vocabulary"
VERSION = 1


def smiles_tokens(smiles: str) -> list[str]:
    """The regex-atom tokens of ``smiles``; ``"".join(tokens) == smiles``.

    Raises:
        DataError: a character that starts no SMILES token (e.g. a space or ``X``).
    """
    tokens, end = [], 0
    for match in SMILES_REGEX.finditer(smiles):
        if match.start() != end:
            break
        tokens.append(match.group())
        end = match.end()
    if end != len(smiles):
        raise DataError(
            f"SMILES {smiles!r}: {smiles[end]!r} at position {end} starts no SMILES token"
        )
    return tokens


def selfies_tokens(smiles: str) -> list[str]:
    """The SELFIES symbols of the molecule ``smiles``.

    Raises:
        DataError: SELFIES cannot write the molecule (e.g. an atom above the valences
            SELFIES allows), or the SMILES does not parse.
    """
    try:
        return list(selfies.split_selfies(selfies.encoder(smiles)))
    except selfies.EncoderError as e:
        raise DataError(
            f"SMILES {smiles!r}: cannot be written in SELFIES ({one_line(e)})"
        ) from None


def tokenize(smiles: str, kind: str = "smiles") -> list[str]:
    """The tokens of ``smiles`` by ``kind`` (one of :data:`KINDS`)."""
    _check_kind(kind)
    if kind == "smiles":
        return smiles_tokens(smiles)
    if kind == "chars":
        return list(smiles)
    return selfies_tokens(smiles)


def detokenize(tokens: Iterable[str], kind: str = "smiles") -> str:
    """The SMILES that ``tokens`` of ``kind`` spell; for SELFIES, the decoded molecule's
    SMILES ("" when the symbols decode to nothing)."""
    _check_kind(kind)
    text = "".join(tokens)
    if kind != "selfies":
        return text
    try:
        return selfies.decoder(text)
    except selfies.DecoderError:  # unreachable for a vocabulary's own symbols
        return ""


@dataclass(frozen=True)
class Vocabulary:
    """Token <-> integer maps of one tokenisation, and the encoded length.

    Attributes:
        kind: the tokenisation, one of :data:`KINDS`.
        tokens: every token by id: :data:`SPECIALS` first, then the corpus' tokens sorted.
        max_length: length of an encoded molecule: ``<bos>``, the tokens, ``<eos>``, then
            ``<pad>`` up to this length; by default the longest in the corpus.
    """

    kind: str
    tokens: tuple[str, ...] = field(repr=False)
    max_length: int = 2

    def __post_init__(self) -> None:
        _check_kind(self.kind)
        if tuple(self.tokens[:3]) != SPECIALS:
            raise DataError(f"vocabulary: tokens must start with {list(SPECIALS)}")
        if len(set(self.tokens)) != len(self.tokens):
            raise DataError("vocabulary: a token is listed twice")
        if self.max_length < 2:
            raise DataError(f"vocabulary: max_length={self.max_length}, expected at least 2")
        object.__setattr__(self, "_ids", {t: i for i, t in enumerate(self.tokens)})

    @classmethod
    def build(
        cls, smiles: Iterable[str], kind: str = "smiles", max_length: int | None = None
    ) -> Vocabulary:
        """The vocabulary of a corpus: every token that its molecules use.

        Args:
            smiles: the corpus (e.g. the training SMILES).
            kind: the tokenisation, one of :data:`KINDS`.
            max_length: encoded length; default the longest molecule's tokens + 2.

        Raises:
            DataError: an empty corpus, a molecule the tokenisation cannot cut, or a
                ``max_length`` shorter than the longest molecule needs.
        """
        _check_kind(kind)
        return cls.from_tokens((tokenize(s, kind) for s in smiles), kind, max_length)

    @classmethod
    def from_tokens(
        cls, corpus: Iterable[Sequence[str]], kind: str, max_length: int | None = None
    ) -> Vocabulary:
        """:meth:`build` from molecules already cut into tokens of ``kind`` (a corpus that
        is tokenised once, for the vocabulary and :meth:`encode_tokens`; SELFIES
        encoding takes about half a millisecond a molecule)."""
        seen: set[str] = set()
        longest, count = 0, 0
        for tokens in corpus:
            seen.update(tokens)
            longest, count = max(longest, len(tokens)), count + 1
        if count == 0:
            raise DataError("vocabulary: the corpus is empty")
        if max_length is not None and max_length < longest + 2:
            raise DataError(
                f"max_length={max_length}: the corpus' longest molecule needs {longest + 2} "
                f"({longest} tokens, <bos> and <eos>)"
            )
        return cls(kind, SPECIALS + tuple(sorted(seen - set(SPECIALS))), max_length or longest + 2)

    def __len__(self) -> int:
        return len(self.tokens)

    def ids(self, tokens: Sequence[str]) -> list[int]:
        """The ids of ``tokens``; a :class:`DataError` naming the first unknown token."""
        try:
            return [self._ids[t] for t in tokens]  # type: ignore[attr-defined]
        except KeyError as e:
            raise DataError(
                f"token {e.args[0]!r} is not in the vocabulary ({self.kind}, {len(self)} "
                f"tokens); build the vocabulary from a corpus that contains it"
            ) from None

    def encode(self, smiles: Sequence[str], max_length: int | None = None) -> np.ndarray:
        """Token ids of each molecule, int64 ``(N, L)``: ``<bos>``, tokens, ``<eos>``, ``<pad>``...

        Args:
            smiles: N SMILES strings.
            max_length: L, default :attr:`max_length`.

        Raises:
            DataError: naming the molecule (index and SMILES) with a token outside the
                vocabulary (the token named), or too many tokens for L.
        """
        corpus = []
        for i, s in enumerate(smiles):
            try:
                corpus.append(tokenize(s, self.kind))
            except DataError as e:
                raise DataError(f"molecule {i}: {e}") from None
        return self.encode_tokens(corpus, max_length, smiles)

    def encode_tokens(
        self,
        corpus: Sequence[Sequence[str]],
        max_length: int | None = None,
        smiles: Sequence[str] | None = None,
    ) -> np.ndarray:
        """:meth:`encode` of molecules already cut into tokens; ``smiles``, when given,
        names the molecules in errors (else their tokens joined)."""
        length = max_length or self.max_length
        out = np.zeros((len(corpus), length), dtype=np.int64)  # <pad> is 0
        for i, tokens in enumerate(corpus):
            try:
                ids = self.ids(tokens)
                if len(ids) + 2 > length:
                    raise DataError(
                        f"{len(ids)} tokens, more than the {length - 2} that fit in length "
                        f"{length} with <bos> and <eos>"
                    )
            except DataError as e:
                name = smiles[i] if smiles is not None else "".join(tokens)
                raise DataError(f"molecule {i} ({name!r}): {e}") from None
            out[i, : len(ids) + 2] = [1, *ids, 2]
        return out

    def decode(self, ids: np.ndarray | Sequence[Sequence[int]]) -> list[str]:
        """The SMILES of each row of token ids ``(N, L)``.

        A row is read up to its first ``<eos>`` or ``<pad>``; ``<bos>`` is skipped wherever
        it is. SELFIES rows are decoded to the SMILES of their molecule.
        """
        rows = np.asarray(ids)
        if rows.ndim != 2:
            raise DataError(f"decode: expected ids of shape (N, L), found {rows.shape}")
        if rows.size and (rows.min() < 0 or rows.max() >= len(self)):
            raise DataError(
                f"decode: ids must lie in [0, {len(self)}), found {rows.min()}..{rows.max()}"
            )
        out = []
        for row in rows.tolist():
            tokens = []
            for i in row:
                if i in (0, 2):  # <pad>, <eos>
                    break
                if i != 1:
                    tokens.append(self.tokens[i])
            out.append(detokenize(tokens, self.kind))
        return out

    def to_dict(self) -> dict:
        """A JSON-ready dict (:meth:`from_dict` reads it back)."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "kind": self.kind,
            "max_length": self.max_length,
            "tokens": list(self.tokens),
        }

    @classmethod
    def from_dict(cls, d: dict, name: str = "vocabulary") -> Vocabulary:
        """The vocabulary of :meth:`to_dict`'s dict; ``name`` is used in errors."""
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise DataError(f'{name}: not an aevb vocabulary (no "format": "{FORMAT}")')
        if d.get("version") != VERSION:
            raise DataError(f"{name}: vocabulary version {d.get('version')!r}, expected {VERSION}")
        try:
            return cls(str(d["kind"]), tuple(str(t) for t in d["tokens"]), int(d["max_length"]))
        except KeyError as e:
            raise DataError(f"{name}: the vocabulary has no {e.args[0]!r}") from None
        except DataError as e:
            raise DataError(f"{name}: {e}") from None

    def save(self, path: str | os.PathLike) -> None:
        """Write the vocabulary as JSON (atomically)."""
        write_text(path, json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> Vocabulary:
        """Read a vocabulary written by :meth:`save`."""
        name = Path(path).name
        try:
            d = json.loads(read_bytes(path))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise DataError(f"{name}: not JSON ({one_line(e)})") from None
        return cls.from_dict(d, name)


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise DataError(f"kind={kind!r}: expected one of {list(KINDS)}")
