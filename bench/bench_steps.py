"""Per-step overhead, cached re-runs and parallel branches: jupyter_mlk against papermill.

Anchors, run side by side in this one script:
- papermill running the whole notebook once in one kernel (the floor: no isolation);
- papermill running each step's notebook in a fresh kernel, one after another (Elyra's
  local runtime), with values passed through pickle files as its users do by hand.

Usage: python bench/bench_steps.py [--steps 10] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import MLK, median, notebook, table, timed, write

IMPORTS = (
    "import numpy as np\nimport pandas as pd\nfrom sklearn.linear_model import LinearRegression"
)


def light_pipeline(steps: int) -> list[tuple[list[str], str]]:
    cells: list[tuple[list[str], str]] = [(["imports"], IMPORTS), (["parameters"], "scale = 2")]
    cells.append((["step:s0"], "v0 = np.arange(100) * scale"))
    for i in range(1, steps):
        cells.append(
            ([f"step:s{i}"], f"v{i} = v{i - 1} + {i}\nprint('RESULT s{i}', int(v{i}.sum()))")
        )
    return cells


def papermill_single(cells: list[tuple[list[str], str]], work: Path) -> float:
    import papermill

    path = write(work / "single.ipynb", notebook([([], src) for _, src in cells]))
    start = time.perf_counter()
    papermill.execute_notebook(
        str(path),
        str(work / "single-out.ipynb"),
        progress_bar=False,
        kernel_name="python3",
        log_output=False,
    )
    return time.perf_counter() - start


def papermill_per_step(cells: list[tuple[list[str], str]], work: Path) -> float:
    """One fresh kernel per step; each step loads its input and saves its output by pickle."""
    import papermill

    head = [src for tags, src in cells if tags[0] in ("imports", "parameters")]
    steps = [src for tags, src in cells if tags[0].startswith("step:")]
    start = time.perf_counter()
    for i, src in enumerate(steps):
        load = f"import pickle\nv{i - 1} = pickle.load(open('v{i - 1}.pkl', 'rb'))" if i else ""
        save = f"import pickle\npickle.dump(v{i}, open('v{i}.pkl', 'wb'))"
        nb = notebook([([], c) for c in [*head, load, src, save] if c])
        path = write(work / f"step{i}.ipynb", nb)
        papermill.execute_notebook(
            str(path),
            str(work / f"step{i}-out.ipynb"),
            progress_bar=False,
            kernel_name="python3",
            cwd=str(work),
            log_output=False,
        )
    return time.perf_counter() - start


def ours(cells: list[tuple[list[str], str]], work: Path, *extra: str) -> tuple[float, dict]:
    path = write(work / "pipeline.ipynb", notebook(cells))
    elapsed, proc = timed([*MLK, "run", path.name, "--json", *extra], work)
    return elapsed, json.loads(proc.stdout)


def step_overheads(run: dict) -> list[float]:
    return [s["duration"] for s in run["steps"].values() if s["duration"] is not None]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    cells = light_pipeline(args.steps)
    single, per_step, mine, cached, overheads = [], [], [], [], []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            single.append(papermill_single(cells, work))
            per_step.append(papermill_per_step(cells, work))
            elapsed, run = ours(cells, work, "--no-cache")
            mine.append(elapsed)
            overheads += step_overheads(run)
            elapsed, run = ours(cells, work)
            assert all(s["state"] == "CACHED" for s in run["steps"].values()), run
            cached.append(elapsed)
    diamond = diamond_span()
    m_single, m_per, m_mine = median(single), median(per_step), median(mine)
    print(
        f"{args.steps}-step light notebook (pandas + scikit-learn imports), median of "
        f"{args.repeat}, wall seconds including process start:"
    )
    table(
        [
            ("papermill, one kernel (floor)", f"{m_single:.2f}s", ""),
            ("papermill, fresh kernel per step", f"{m_per:.2f}s", "Elyra's local runtime"),
            (
                "jupyter mlk run --no-cache",
                f"{m_mine:.2f}s",
                f"{m_mine / m_single:.2f}x the floor (goal <= 1.5x); "
                f"{m_per / m_mine:.1f}x faster than a kernel per step (goal >= 5x)",
            ),
            ("per-step time (median, no compute)", f"{median(overheads):.3f}s", "goal <= 0.1 s"),
            ("jupyter mlk run, all cached", f"{median(cached):.2f}s", "goal <= 0.3 s"),
            ("diamond middle layer (2 x 1 s, 2 cores)", f"{diamond:.2f}s", "goal <= 1.2 s"),
        ]
    )


def diamond_span() -> float:
    cells = [
        (["imports"], "import time"),
        (["step:a"], "base = 1"),
        (["step:b"], "time.sleep(1.0)\nleft = base"),
        (["step:c"], "time.sleep(1.0)\nright = base"),
        (["step:d"], "print(left + right)"),
    ]
    spans = []
    for _ in range(3):
        with tempfile.TemporaryDirectory() as tmp:
            _, run = ours(cells, Path(tmp), "--workers", "2")
            b, c = run["steps"]["b"], run["steps"]["c"]
            spans.append(max(b["finished"], c["finished"]) - min(b["started"], c["started"]))
    return median(spans)


if __name__ == "__main__":
    shutil.which("jupyter-mlk")
    main()
