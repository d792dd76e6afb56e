"""Molecule data: the MOSES files as published, the filter tables, the user's SMILES files."""

from __future__ import annotations

import gzip
import shutil

import pytest

from aevb.data import DataError, load_dataset
from aevb.data import registry as reg
from aevb.molecules import fraction_valid, load_filters, load_moses, parse, read_smiles
from aevb.molecules.chem import MAX_SMILES_LENGTH
from aevb.molecules.data import MOSES_SIZES


def test_moses_splits_have_the_published_sizes(shared_data):
    data = load_moses()
    assert {s: len(data.split(s)) for s in MOSES_SIZES} == MOSES_SIZES
    assert data.test[0] == "CC1C2CCC(C2)C1CN(CCO)C(=O)c1ccc(Cl)cc1"
    assert all(data.train[i] and "," not in data.train[i] for i in (0, -1))


def test_one_split_loads_alone_and_the_others_are_refused(shared_data):
    data = load_moses(splits=("test",))
    assert len(data.test) == MOSES_SIZES["test"] and data.train == []
    with pytest.raises(DataError, match=r"^moses: split 'train' was not loaded"):
        data.split("train")
    with pytest.raises(DataError, match=r"^moses: unknown split 'valid'"):
        load_moses(splits=("valid",))


def test_load_dataset_points_to_the_molecule_loader():
    with pytest.raises(
        DataError, match=r"^moses: a molecule dataset .*aevb\.molecules\.load_moses\(\)$"
    ):
        load_dataset("moses")


def test_registry_lists_the_public_files_and_their_sha256():
    source = reg.MOSES_FILES["train.csv.gz"]
    assert source.relative == "moses/train.csv.gz"
    assert source.urls[0] == (
        "https://media.githubusercontent.com/media/molecularsets/moses/master/moses/dataset/"
        "data/train.csv.gz"
    )
    assert source.sha256.startswith("786f0313")
    assert reg.MOSES_FILES["mcf.csv"].urls == (
        "https://raw.githubusercontent.com/molecularsets/moses/master/moses/metrics/mcf.csv",
    )


def test_a_corrupt_file_fails_its_sha256_and_a_missing_one_names_its_url(shared_data, tmp_path):
    (tmp_path / "moses").mkdir()
    data = bytearray((shared_data / "moses" / "test.csv.gz").read_bytes())
    data[-20] ^= 1
    (tmp_path / "moses" / "test.csv.gz").write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"^test\.csv\.gz: sha256 .* mismatch"):
        load_moses(tmp_path, download=False, splits=("test",))
    with pytest.raises(
        DataError, match=r"^test_scaffolds\.csv\.gz: not found .*media\.githubusercontent\.com"
    ):
        load_moses(tmp_path, download=False, splits=("test_scaffolds",))


def test_filter_tables_hold_the_mcf_then_the_pains_alerts(shared_data):
    alerts = load_filters()
    assert len(alerts) == 22 + 480
    assert alerts[0] == ("MCF1", "[#6]=&!@[#6]-[#6]#[#7]")
    assert alerts[22][0] == "<regId=anil_di_alk_F(14)>"
    assert all(smarts == smarts.strip() and smarts for _, smarts in alerts)


# ---- user files --------------------------------------------------------------------------

MOLECULES = ["CCO", "c1ccccc1", "CC(=O)Nc1ccc(O)cc1"]


def test_smi_file_with_names_and_a_header(tmp_path):
    path = tmp_path / "a.smi"
    path.write_text("SMILES name\n" + "".join(f"{s}\tmol{i}\n" for i, s in enumerate(MOLECULES)))
    read = read_smiles(path)
    assert read.smiles == MOLECULES and read.skipped == () and read.name == "a.smi"


def test_csv_and_gzip_files(tmp_path):
    rows = "id,Smiles,weight\n" + "".join(f"{i},{s},1.0\n" for i, s in enumerate(MOLECULES))
    (tmp_path / "a.csv").write_text(rows)
    assert read_smiles(tmp_path / "a.csv").smiles == MOLECULES
    (tmp_path / "a.csv.gz").write_bytes(gzip.compress(rows.encode()))
    assert read_smiles(tmp_path / "a.csv.gz").smiles == MOLECULES
    (tmp_path / "a.txt.gz").write_bytes(gzip.compress("\n".join(MOLECULES).encode()))
    assert read_smiles(tmp_path / "a.txt.gz").smiles == MOLECULES
    assert read_smiles(tmp_path / "a.csv", column="id", check=False).smiles == ["0", "1", "2"]


def test_the_moses_file_reads_as_a_user_file(shared_data, tmp_path):
    shutil.copy(shared_data / "moses" / "test.csv.gz", tmp_path)
    read = read_smiles(tmp_path / "test.csv.gz", check=False)
    assert read.smiles == load_moses(splits=("test",)).test


def test_unparsable_lines_are_counted_with_their_line_numbers(tmp_path):
    lines = ["CCO", "C1CC", "c1ccccc1", "", "xyz", "N", "C(", "O", "Q", "C", "[Zz]"]
    path = tmp_path / "bad.smi"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        DataError,
        match=r"^bad\.smi: 6 of 11 molecules are not valid SMILES \(lines 2, 4, 5, 7, 9, \.\.\.\); "
        r"skip them with skip_invalid=True \(--skip-invalid\)$",
    ):
        read_smiles(path)
    with pytest.warns(UserWarning, match=r"^bad\.smi: skipped 6 of 11 molecules .*lines 2, 4"):
        read = read_smiles(path, skip_invalid=True)
    assert read.smiles == ["CCO", "c1ccccc1", "N", "O", "C"]
    assert read.skipped == (2, 4, 5, 7, 9, 11)
    assert read_smiles(path, check=False).smiles == lines  # generated samples: kept as is


def test_csv_line_numbers_count_the_header(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("SMILES\nCCO\nC1CC\n")
    with pytest.raises(DataError, match=r"^bad\.csv: 1 of 2 molecules .*\(line 3\)"):
        read_smiles(path)
    path.write_text("SMILES\nC1CC\nxx\n")
    with pytest.raises(DataError, match=r"^bad\.csv: none of its 2 molecules is valid"):
        read_smiles(path, skip_invalid=True)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("e.smi", b"", r"^e\.smi: empty file, no molecules$"),
        ("e.csv", b"", r"^e\.csv: empty file, no header row and no molecules$"),
        ("h.csv", b"SMILES\n", r"^h\.csv: no molecules after the header row$"),
        (
            "c.csv",
            b"id,mol,q\n1,CCO,2\n",
            r"^c\.csv: no SMILES column; the columns are 'id', 'mol', 'q'$",
        ),
        ("x.sdf", b"CCO\n", r"^x\.sdf: unknown SMILES file type '\.sdf'"),
        ("z.smi.gz", b"CCO\n", r"^z\.smi\.gz: not a readable gzip file"),
        ("u.smi", b"CC\xff\n", r"^u\.smi: not UTF-8 text \(line 1\)$"),
    ],
)
def test_bad_files_have_one_line_errors(tmp_path, name, content, message):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_smiles(tmp_path / name)


def test_a_byte_order_mark_is_not_part_of_the_header(tmp_path):
    """Spreadsheets export UTF-8 CSV with a byte-order mark; the column is still found."""
    (tmp_path / "bom.csv").write_bytes("SMILES\nCCO\nc1ccccc1\n".encode("utf-8-sig"))
    assert read_smiles(tmp_path / "bom.csv").smiles == ["CCO", "c1ccccc1"]


def test_a_giant_smiles_is_refused_not_a_crash(tmp_path):
    """RDKit parses a chain of 30,000 carbons but its SMILES writer then overflows the
    stack (a segmentation fault): such strings are not taken as molecules."""
    giant = "C" * 30_000
    assert parse(giant) is None and parse("C" * MAX_SMILES_LENGTH) is not None
    (tmp_path / "g.smi").write_text(f"CCO\n{giant}\n")
    with pytest.raises(
        DataError, match=r"\(line 2\), 1 of them longer than 1,000 characters; skip them"
    ):
        read_smiles(tmp_path / "g.smi")
    assert fraction_valid(["CCO", giant]) == 0.5


def test_a_named_column_that_is_missing_is_named(tmp_path):
    (tmp_path / "c.csv").write_text("SMILES\nCCO\n")
    with pytest.raises(DataError, match=r"^c\.csv: no column 'smi'; the columns are 'SMILES'$"):
        read_smiles(tmp_path / "c.csv", column="smi")
