"""A 16-trial sweep over a training-only parameter: jupyter_mlk against 16 papermill runs.

The anchor is what a user does without a sweep tool: papermill runs the whole notebook
once per parameter value, loading the data every time. Ours loads it once (the step is
cached for every later trial) and starts no kernel.

Usage: python bench/bench_sweep.py [--trials 16]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import MLK, notebook, table, timed, write

LOAD_S = 0.5  # the loading step's own compute


def cells() -> list[tuple[list[str], str]]:
    return [
        (["imports"], "import time\nimport numpy as np"),
        (["parameters"], "alpha = 1.0"),
        (["step:load"], f"time.sleep({LOAD_S})\ndata = np.arange(1000.0)"),
        (["step:train"], "score = float(-abs(np.log(alpha)) + data.mean() / 1000)"),
        (["metrics"], "score"),
    ]


def papermill_runs(work: Path, trials: int) -> float:
    import papermill

    path = write(work / "pm.ipynb", notebook([(t, s) for t, s in cells()]))
    start = time.perf_counter()
    for i in range(trials):
        papermill.execute_notebook(
            str(path),
            str(work / f"pm-{i}.ipynb"),
            progress_bar=False,
            parameters={"alpha": 0.1 + i * 0.1},
            log_output=False,
        )
    return time.perf_counter() - start


def ours(work: Path, trials: int) -> tuple[float, dict]:
    write(work / "nb.ipynb", notebook(cells()))
    elapsed, proc = timed(
        [
            *MLK,
            "sweep",
            "nb.ipynb",
            "--param",
            "alpha=double:0.1:2.0",
            "--objective",
            "score",
            "--algorithm",
            "random",
            "--trials",
            str(trials),
            "--parallel",
            "1",
            "--json",
        ],
        work,
    )
    return elapsed, json.loads(proc.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        pm = papermill_runs(work, args.trials)
        mine, sweep = ours(work, args.trials)
        from jupyter_mlk.store.workspace import Workspace

        store = Workspace(work).store
        loads = sum(
            1
            for t in sweep["trials"]
            for s in store.get_run(t["run_id"])["steps"]
            if s["name"] == "load" and s["state"] == "SUCCEEDED"
        )
        durations = [t["finished"] - t["started"] for t in sweep["trials"]]
    compute = LOAD_S / args.trials  # the load step's cost spread over the trials
    per_trial = (sum(durations) / len(durations)) - compute
    print(f"{args.trials}-trial sweep over a training parameter, wall seconds:")
    table(
        [
            (f"{args.trials} papermill runs", f"{pm:.2f}s", "one kernel and one data load each"),
            ("jupyter mlk sweep", f"{mine:.2f}s", f"{pm / mine:.1f}x faster"),
            ("load step executions", str(loads), "goal: 1"),
            (
                "overhead per trial",
                f"{per_trial:.3f}s",
                "goal <= 0.2 s (trial time minus compute)",
            ),
        ]
    )


if __name__ == "__main__":
    main()
