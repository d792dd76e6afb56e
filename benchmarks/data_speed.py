"""Speed of the data layer on the real binarized MNIST training file (78 MB of text).

    .venv/bin/python benchmarks/data_speed.py [--data-dir ../shared/data]

Prints the seconds taken to parse the .amat file (target < 2 s), to load it again from the
compact cache (target < 0.2 s), and the whole ``load_dataset("binarized_mnist")`` cold and
warm. The cache goes to a temporary folder, removed afterwards.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from aevb.data import load_dataset
from aevb.data.amat import read_amat
from aevb.data.cache import load_source
from aevb.data.registry import BINARIZED_MNIST_FILES

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _best_of(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    source = BINARIZED_MNIST_FILES["train"]
    path = args.data_dir / source.folder / source.name
    with tempfile.TemporaryDirectory() as cache:
        os.environ["AEVB_CACHE_DIR"] = cache
        parse = _best_of(lambda: read_amat(path, rows=50000), args.repeats)
        cold = _best_of(lambda: load_dataset("binarized_mnist", args.data_dir), 1)
        cached = _best_of(lambda: load_source(source, args.data_dir, download=False), args.repeats)
        warm = _best_of(lambda: load_dataset("binarized_mnist", args.data_dir), args.repeats)
    print(f"parse binarized_mnist_train.amat (78 MB): {parse:.3f} s  (target < 2 s)")
    print(f"load it from the compact cache, sha256 checked: {cached:.3f} s  (target < 0.2 s)")
    print(f"load_dataset('binarized_mnist'), no cache (all three splits): {cold:.3f} s")
    print(f"load_dataset('binarized_mnist'), cached, as float32: {warm:.3f} s")


if __name__ == "__main__":
    main()
