"""Molecules as SMILES strings: the MOSES benchmark, its filter tables, the user's SMILES files.

A molecule dataset is a list of strings per split (:class:`MoleculeData`), not float rows:
models tokenise it (:mod:`aevb.molecules.tokens`). ``aevb.data.load_dataset("moses")``
refuses with a pointer here, since every caller of that function expects rows of numbers.

The MOSES files are found (or downloaded) and checked by :mod:`aevb.data.registry`, like
every named dataset; reading all three splits takes about a second.

User files: ``.smi``/``.txt`` (one molecule per line, the SMILES first, anything after
white space ignored, as in the SMILES file format), or ``.csv`` with a ``SMILES`` column;
each may be gzip-compressed (``.gz``). Unparsable molecules are errors that name their
lines, unless the caller asks to skip them; then they are counted and reported
(:attr:`SmilesFile.skipped` and a warning), never dropped silently.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import os
import warnings
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aevb.data.errors import DataError, read_bytes
from aevb.data.registry import moses_file
from aevb.molecules.chem import MAX_SMILES_LENGTH, parse

SPLITS = ("train", "test", "test_scaffolds")
"""The MOSES splits: training set, test set, scaffold test set (scaffolds unseen in train)."""

MOSES_SIZES = {"train": 1_584_663, "test": 176_074, "test_scaffolds": 176_225}
"""Molecules per MOSES split, as published."""

SHOWN_LINES = 5
"""Line numbers an error or warning lists before "...", so that it stays one short line."""


@dataclass(frozen=True)
class MoleculeData:
    """The SMILES strings of a molecule dataset, per split.

    Attributes:
        name: the dataset's name (``"moses"``).
        train, test, test_scaffolds: SMILES strings as published, in file order; an empty
            list for a split that was not loaded.
    """

    name: str
    train: list[str] = field(default_factory=list, repr=False)
    test: list[str] = field(default_factory=list, repr=False)
    test_scaffolds: list[str] = field(default_factory=list, repr=False)

    def split(self, name: str) -> list[str]:
        """The SMILES of split ``name``; a :class:`DataError` for an unknown or unloaded one."""
        if name not in SPLITS:
            raise DataError(f"{self.name}: no split {name!r}; expected one of {list(SPLITS)}")
        smiles = getattr(self, name)
        if not smiles:
            raise DataError(f"{self.name}: split {name!r} was not loaded (pass it in splits=)")
        return smiles


def load_moses(
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    splits: Sequence[str] = SPLITS,
) -> MoleculeData:
    """The MOSES benchmark: 1,584,663 train, 176,074 test and 176,225 scaffold-test SMILES.

    The files are not shuffled: a contiguous slice is not a sample (the first 10,000
    training molecules have FCD/Test 5.2, 10,000 drawn at random 0.13), so draw subsets
    at random.

    Args:
        data_dir: folder holding ``moses/<file>``; default ``$AEVB_DATA_DIR``, else the
            user cache dir (:func:`aevb.data.resolve_data_dir`).
        download: fetch missing files from the MOSES repository.
        splits: the splits to read (the others stay empty), e.g. ``("test",)``.

    Raises:
        DataError: an unknown split; a file missing, failing its sha256 or malformed.
    """
    unknown = [s for s in splits if s not in SPLITS]
    if unknown:
        raise DataError(f"moses: unknown split {unknown[0]!r}; expected some of {list(SPLITS)}")
    parts = {s: moses_split(s, data_dir, download) for s in SPLITS if s in splits}
    return MoleculeData(name="moses", **parts)


def moses_split(
    split: str, data_dir: str | os.PathLike | None = None, download: bool = True
) -> list[str]:
    """The SMILES of one MOSES split (see :func:`load_moses`)."""
    name = f"{split}.csv.gz"
    text = gzip.decompress(moses_file(name, data_dir, download)).decode("ascii")
    lines = text.split("\n")
    if lines[0].rstrip("\r") != "SMILES":
        raise DataError(f"{name}: expected the header line SMILES, found {lines[0][:40]!r}")
    smiles = [s.rstrip("\r") for s in lines[1:]]
    if smiles and smiles[-1] == "":  # the newline that ends the last line
        smiles.pop()
    return smiles


def load_filters(
    data_dir: str | os.PathLike | None = None, download: bool = True
) -> list[tuple[str, str]]:
    """The structural alerts of the MOSES ``Filters`` metric as ``(name, SMARTS)`` pairs:
    the 22 medicinal-chemistry filters of ``mcf.csv`` (columns ``names,smarts``) then the
    480 PAINS of ``wehi_pains.csv`` (no header; SMARTS, then the name)."""
    mcf = _csv_rows(moses_file("mcf.csv", data_dir, download), "mcf.csv")
    if not mcf or mcf[0][:2] != ["names", "smarts"]:
        raise DataError("mcf.csv: expected the header names,smarts")
    pains = _csv_rows(moses_file("wehi_pains.csv", data_dir, download), "wehi_pains.csv")
    pairs = [(row[0], row[1]) for row in mcf[1:]] + [(row[1], row[0]) for row in pains]
    return [(name.strip(), smarts.strip()) for name, smarts in pairs]


def _csv_rows(data: bytes, name: str) -> list[list[str]]:
    rows = [row for row in csv.reader(io.StringIO(data.decode("utf-8"))) if row]
    short = next((i for i, row in enumerate(rows) if len(row) < 2), None)
    if short is not None:
        raise DataError(f"{name}: expected two columns, line {short + 1} has {len(rows[short])}")
    return rows


# ---- the user's files --------------------------------------------------------------------


@dataclass(frozen=True)
class SmilesFile:
    """Molecules read from a SMILES file.

    Attributes:
        smiles: the SMILES strings in file order (without the skipped ones).
        skipped: line numbers (from 1, the header counted) of unparsable molecules that
            were skipped; empty unless reading was asked to skip them.
        name: the file's name, for messages.
    """

    smiles: list[str] = field(repr=False)
    skipped: tuple[int, ...] = ()
    name: str = ""


def read_smiles(
    path: str | os.PathLike,
    *,
    column: str | None = None,
    check: bool = True,
    skip_invalid: bool = False,
) -> SmilesFile:
    """Read the molecules of a ``.smi``/``.txt``/``.csv`` file (each optionally ``.gz``).

    Args:
        path: the file. ``.smi``/``.txt``: one molecule per line, the SMILES before any
            white space (a first line ``SMILES`` is a header); every line is a molecule, so
            an empty line is an empty (invalid) one. ``.csv``: a header row and the column
            ``column``, by default the one named ``smiles`` in any case.
        column: the CSV column that holds the SMILES.
        check: parse every molecule with RDKit (set False to read generated samples,
            whose invalid molecules count in the metrics instead).
        skip_invalid: with ``check``, skip unparsable molecules with a warning that counts
            them, instead of raising.

    Raises:
        DataError: unreadable or not UTF-8; no molecules; a CSV without the column (the
            columns found are named); unparsable molecules, counted, with the first line
            numbers, unless ``skip_invalid``.
    """
    path = Path(path)
    name = path.name
    text = _read_text(path)
    suffix = Path(name.removesuffix(".gz")).suffix.lower()
    if suffix == ".csv":
        numbered = _csv_smiles(text, name, column)
    elif suffix in (".smi", ".txt", ".smiles"):
        if column is not None:
            raise DataError(f"{name}: column={column!r} is only for .csv files")
        numbered = _line_smiles(text, name)
    else:
        raise DataError(
            f"{name}: unknown SMILES file type {suffix or '(none)'!r}; expected .smi, .txt or "
            f".csv, optionally gzip-compressed (.gz)"
        )
    lines, smiles = [n for n, _ in numbered], [s for _, s in numbered]
    if not check:
        return SmilesFile(smiles, (), name)
    bad = [i for i, s in enumerate(smiles) if parse(s) is None]
    if not bad:
        return SmilesFile(smiles, (), name)
    where = _line_list([lines[i] for i in bad])
    count = f"{len(bad)} of {len(smiles)} molecules are not valid SMILES ({where})"
    long = sum(len(smiles[i]) > MAX_SMILES_LENGTH for i in bad)
    if long:
        count += f", {long} of them longer than {MAX_SMILES_LENGTH:,} characters"
    if not skip_invalid:
        raise DataError(f"{name}: {count}; skip them with skip_invalid=True (--skip-invalid)")
    if len(bad) == len(smiles):
        raise DataError(f"{name}: none of its {len(smiles)} molecules is valid SMILES ({where})")
    warnings.warn(f"{name}: skipped {count}", stacklevel=2)
    drop = set(bad)
    kept = [s for i, s in enumerate(smiles) if i not in drop]
    return SmilesFile(kept, tuple(lines[i] for i in bad), name)


def _read_text(path: Path) -> str:
    data = read_bytes(path)
    if path.name.endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"{path.name}: not a readable gzip file ({e})") from None
    data = data.removeprefix(codecs.BOM_UTF8)  # a byte-order mark (spreadsheet exports)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise DataError(f"{path.name}: not UTF-8 text (line {line})") from None


def _line_smiles(text: str, name: str) -> list[tuple[int, str]]:
    lines = text.split("\n")
    if lines[-1] == "":  # the newline that ends the last line
        lines.pop()
    numbered = [
        (i + 1, line.split(maxsplit=1)[0] if line.strip() else "") for i, line in enumerate(lines)
    ]
    if numbered and numbered[0][1].lower() == "smiles":
        numbered = numbered[1:]
    if not numbered:
        raise DataError(f"{name}: empty file, no molecules")
    return numbered


def _csv_smiles(text: str, name: str, column: str | None) -> list[tuple[int, str]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise DataError(f"{name}: empty file, no header row and no molecules") from None
    except csv.Error as e:
        raise DataError(f"{name}: not a CSV file ({e})") from None
    wanted = [
        i
        for i, h in enumerate(header)
        if (h == column if column else h.strip().lower() == "smiles")
    ]
    if not wanted:
        found = ", ".join(repr(h) for h in header)
        what = f"column {column!r}" if column else "SMILES column"
        raise DataError(f"{name}: no {what}; the columns are {found}")
    index = wanted[0]
    numbered: list[tuple[int, str]] = []
    try:
        for row in reader:
            if row or len(header) == 1:  # one column: a blank line is an empty SMILES
                numbered.append((reader.line_num, row[index].strip() if index < len(row) else ""))
    except csv.Error as e:
        raise DataError(f"{name}: malformed CSV at line {reader.line_num} ({e})") from None
    if not numbered:
        raise DataError(f"{name}: no molecules after the header row")
    return numbered


def _line_list(lines: Sequence[int]) -> str:
    """``"lines 3, 8, 9"`` or ``"lines 3, 8, 9, 12, 20, ..."`` (at most SHOWN_LINES numbers)."""
    shown = ", ".join(str(n) for n in lines[:SHOWN_LINES])
    more = ", ..." if len(lines) > SHOWN_LINES else ""
    return f"line{'s' if len(lines) > 1 else ''} {shown}{more}"
