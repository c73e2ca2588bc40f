"""Values across a step boundary: jupyter_mlk's bundles against plain parquet/npy I/O.

The anchor is the least a pipeline must do to hand a value to another process: write it
with pandas' ``to_parquet`` / numpy's ``save`` and read it back. Ours also pickles the
bundle, hashes it for content addressing and publishes it with a rename.

Usage: python bench/bench_values.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import median, table

from jupyter_mlk.pipeline.values import read_bundle, write_bundle
from jupyter_mlk.store.workspace import Workspace


def make_frame(n: int = 200_000) -> pd.DataFrame:
    i = np.arange(n, dtype=np.int64)
    return pd.DataFrame(
        {
            "id": i,
            "qty": ((i * 37) % 101).astype(np.int32),
            "price": (i % 400) * 0.25,
            "ratio": (((i * 13) % 64) / 8).astype(np.float32),
            "flag": (i % 3) == 0,
            "small": ((i % 250) - 125).astype(np.int8),
            "score": pd.Series(i % 1000, dtype="Int64").mask(i % 10 == 0),
            "day": (np.datetime64("2024-01-01") + (i % 366).astype("timedelta64[D]")).astype(
                "datetime64[ns]"
            ),
            "city": pd.Categorical.from_codes(
                i % 5, categories=["Oslo", "Lima", "Pune", "Kyiv", "Rome"]
            ),
            "grade": pd.Categorical.from_codes(
                (i * 7) % 3, categories=["low", "mid", "high"], ordered=True
            ),
        }
    )


def plain(frame: pd.DataFrame, signal: np.ndarray, work: Path) -> float:
    start = time.perf_counter()
    frame.to_parquet(work / "f.parquet", engine="pyarrow", compression=None)
    np.save(work / "s.npy", signal)
    back = pd.read_parquet(work / "f.parquet", engine="pyarrow")
    arr = np.load(work / "s.npy")
    elapsed = time.perf_counter() - start
    assert len(back) == len(frame) and arr.nbytes == signal.nbytes
    return elapsed


def ours(frame: pd.DataFrame, signal: np.ndarray, work: Path) -> float:
    ws = Workspace(work / "ws")
    start = time.perf_counter()
    digests = []
    for name, value in (("frame", frame), ("signal", signal)):
        tmp = ws.new_tmp()
        write_bundle({name: value}, tmp, step="make")
        digests.append(ws.commit_bundle(tmp))
    values: dict[str, object] = {}
    for digest in digests:
        values.update(read_bundle(ws.bundle_path(digest)))
    elapsed = time.perf_counter() - start
    assert values["frame"].dtypes.equals(frame.dtypes)  # type: ignore[attr-defined]
    assert np.array_equal(values["signal"], signal)  # type: ignore[arg-type]
    ws.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    frame = make_frame()
    signal = (np.arange(10_000_000) % 1000).astype(np.float32) * np.float32(0.25)
    base, mine = [], []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            base.append(plain(frame, signal, work))
            mine.append(ours(frame, signal, work))
            shutil.rmtree(work / "ws", ignore_errors=True)
    b, m = median(base), median(mine)
    print(f"200,000 x 10 DataFrame + 10M float32 array, write and read, median of {args.repeat}:")
    table(
        [
            ("plain to_parquet/np.save + read", f"{b:.3f}s", ""),
            ("jupyter_mlk bundles (+ hash, publish)", f"{m:.3f}s", f"{m / b:.2f}x (goal <= 1.5x)"),
        ]
    )


if __name__ == "__main__":
    main()
