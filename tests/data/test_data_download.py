"""Finding, downloading and verifying files, with the network replaced by local copies."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from aevb.data import DataError, load_dataset, resolve_cache_dir, resolve_data_dir, sources
from aevb.data.cache import cache_path
from aevb.data.registry import FREY_FACE_FILE

T10K = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def _serve(monkeypatch, files: dict[str, Path], calls: list[str]) -> None:
    """Answer each URL with a copy of the local file of the same name; unknown URLs fail."""

    def fetch(url: str, dest: Path, timeout: float = 0.0) -> None:
        calls.append(url)
        name = url.rsplit("/", 1)[-1]
        if name not in files:
            raise OSError(f"no route to host for {url}")
        shutil.copyfile(files[name], dest)

    monkeypatch.setattr(sources, "fetch_url", fetch)


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_data_dir_and_cache_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("AEVB_CACHE_DIR", str(tmp_path / "c"))
    assert resolve_cache_dir() == tmp_path / "c"
    assert resolve_data_dir() == tmp_path / "c"
    monkeypatch.setenv("AEVB_DATA_DIR", str(tmp_path / "d"))
    assert resolve_data_dir() == tmp_path / "d"
    assert resolve_data_dir(tmp_path / "e") == tmp_path / "e"
    monkeypatch.delenv("AEVB_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert resolve_cache_dir() == tmp_path / "x" / "aevb"


def test_missing_file_with_download_disabled_names_file_folders_and_url(tmp_path):
    with pytest.raises(DataError) as e:
        load_dataset("frey_face", data_dir=tmp_path / "data", download=False)
    message = str(e.value)
    assert "\n" not in message
    folder = tmp_path / "data" / "frey_face"
    assert message.startswith(f"frey_rawface.mat: not found in {folder} and ")
    assert "download=False" in message
    assert "https://cs.nyu.edu/~roweis/data/frey_rawface.mat" in message
    assert "AEVB_DATA_DIR" in message


def test_download_is_verified_and_written_into_the_data_dir(tmp_path, shared_data, monkeypatch):
    calls: list[str] = []
    _serve(monkeypatch, {n: shared_data / "mnist" / n for n in T10K}, calls)
    data = load_dataset("mnist_test", data_dir=tmp_path / "data")
    assert data.test.shape == (10000, 784)
    assert calls == [f"https://ossci-datasets.s3.amazonaws.com/mnist/{n}" for n in T10K]
    assert _names(tmp_path / "data" / "mnist") == sorted(T10K)  # no temporary files left
    for name in T10K:
        assert (tmp_path / "data" / "mnist" / name).read_bytes() == (
            shared_data / "mnist" / name
        ).read_bytes()
    load_dataset("mnist_test", data_dir=tmp_path / "data")  # found now: no second download
    assert len(calls) == 2


def test_second_url_is_tried_when_the_first_fails(tmp_path, shared_data, monkeypatch):
    calls: list[str] = []
    _serve(monkeypatch, {n: shared_data / "mnist" / n for n in T10K}, calls)
    real_fetch = sources.fetch_url

    def first_mirror_down(url: str, dest: Path, timeout: float = 0.0) -> None:
        if "amazonaws" in url:
            calls.append(url)
            raise OSError("timed out")
        real_fetch(url, dest)

    monkeypatch.setattr(sources, "fetch_url", first_mirror_down)
    data = load_dataset("mnist_test", data_dir=tmp_path)
    assert data.labels["test"][:4].tolist() == [7, 2, 1, 0]
    assert calls[1] == "http://yann.lecun.com/exdb/mnist/t10k-images-idx3-ubyte.gz"


def test_mismatching_download_leaves_no_file_behind(tmp_path, shared_data, monkeypatch):
    wrong = {n: shared_data / "mnist" / "t10k-labels-idx1-ubyte.gz" for n in T10K}
    _serve(monkeypatch, wrong, [])
    with pytest.raises(DataError) as e:
        load_dataset("mnist_test", data_dir=tmp_path)
    message = str(e.value)
    assert message.startswith("t10k-images-idx3-ubyte.gz: not found in ")
    assert (
        "t10k-images-idx3-ubyte.gz: md5 mismatch: expected 9fb629c4189551a2d022fa330f9573f3, "
        "found ec29112dd5afa0611ce80d1b7f02629c"
    ) in message
    assert "\n" not in message
    assert _names(tmp_path / "mnist") == []


def test_unreachable_urls_are_all_named(tmp_path, monkeypatch):
    _serve(monkeypatch, {}, [])
    with pytest.raises(DataError) as e:
        load_dataset("mnist_test", data_dir=tmp_path)
    message = str(e.value)
    assert "download failed" in message
    for mirror in (
        "https://ossci-datasets.s3.amazonaws.com/mnist",
        "http://yann.lecun.com/exdb/mnist",
    ):
        assert f"{mirror}/t10k-images-idx3-ubyte.gz: no route to host" in message


def test_download_goes_to_the_cache_when_the_data_dir_is_not_writable(
    tmp_path, shared_data, isolated, monkeypatch
):
    blocker = tmp_path / "read_only_data"
    blocker.write_text("a file where a folder should be")  # nothing can be created below it
    _serve(monkeypatch, {"frey_rawface.mat": shared_data / "frey_face" / "frey_rawface.mat"}, [])
    data = load_dataset("frey_face", data_dir=blocker)
    assert data.train.shape == (1565, 560)
    assert (isolated / "frey_face" / "frey_rawface.mat").is_file()
    assert cache_path(FREY_FACE_FILE).is_file()


def test_download_checked_by_decoded_checksum(tmp_path, monkeypatch):
    bad = tmp_path / "bad.mat"
    scipy.io.savemat(bad, {"ff": np.zeros((560, 1965), np.uint8)})
    _serve(monkeypatch, {"frey_rawface.mat": bad}, [])
    with pytest.raises(DataError, match=r"frey_rawface\.mat: sha256 of the decoded uint8 array"):
        load_dataset("frey_face", data_dir=tmp_path / "data")
    assert _names(tmp_path / "data" / "frey_face") == []
    assert not cache_path(FREY_FACE_FILE).exists()
