"""Local sweeps: Optuna driving real pipeline runs on this machine."""

from __future__ import annotations

import csv
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from jupyter_mlk.cli import main
from jupyter_mlk.store.workspace import Workspace
from tests.conftest import case_dir, expected
from tests.nbutil import process_alive as _alive
from tests.nbutil import write_notebook

pytestmark = pytest.mark.slow


def sweep_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = main(["sweep", *argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_the_case_sweep_finds_the_best_accuracy_and_loads_data_once(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(case_dir("01-iris-pipeline") / "pipeline.ipynb", workspace)
    shutil.copy(case_dir("10-sweep-spec") / "experiment.yaml", workspace)
    want = expected("10-sweep-spec")["runs"][0]
    code, sweep = sweep_json(capsys, "pipeline.ipynb", "--spec", "experiment.yaml")
    assert code == 0 and sweep["state"] == "SUCCEEDED", sweep
    trials = sweep["trials"]
    assert len(trials) == want["trials_total"]
    assert all(t["state"] == "SUCCEEDED" for t in trials)
    with open(case_dir("10-sweep-spec") / "accuracy_grid.csv") as fh:
        grid = {
            (int(r["n_estimators"]), int(r["max_depth"])): float(r["accuracy"])
            for r in csv.DictReader(fh)
        }
    for t in trials:
        n, d = t["params"]["n_estimators"], t["params"]["max_depth"]
        assert isinstance(n, int) and 10 <= n <= 100 and 2 <= d <= 8
        assert t["objective"] == pytest.approx(grid[(n, d)], abs=1e-9)
    # never more than parallelTrialCount at once
    events = sorted([(t["started"], 1) for t in trials] + [(t["finished"], -1) for t in trials])
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    assert peak <= 2
    assert sweep["best"]["objective"] >= want["best_accuracy_at_least"]
    runs = Workspace(workspace).store
    loads = [
        s
        for t in trials
        for s in runs.get_run(t["run_id"])["steps"]
        if s["name"] == "load" and s["state"] == "SUCCEEDED"
    ]
    assert len(loads) == 1, "the data loading step must run once for the whole sweep"
    for t in trials:
        run = runs.get_run(t["run_id"])
        assert run["params"]["accuracy_threshold"] == 0.9
    assert not (workspace / "model").exists(), "trials write into their own folders"


def test_a_sweep_from_flags_with_a_printed_objective(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_notebook(
        workspace / "nb.ipynb",
        [
            (["parameters"], "x = 1.0\nkind = 'a'"),
            (
                ["step:score"],
                "value = -(x - 0.3) ** 2 + (0.1 if kind == 'b' else 0)\n"
                "print(f'epoch=1 loss={-value:.6f} score={value}')",
            ),
        ],
    )
    code, sweep = sweep_json(
        capsys,
        "nb.ipynb",
        "--param",
        "x=double:0:1",
        "--param",
        "kind=categorical:a,b",
        "--objective",
        "score",
        "--algorithm",
        "random",
        "--trials",
        "4",
        "--parallel",
        "2",
    )
    assert code == 0, sweep
    assert len(sweep["trials"]) == 4
    for t in sweep["trials"]:
        x, kind = t["params"]["x"], t["params"]["kind"]
        assert t["objective"] == pytest.approx(-((x - 0.3) ** 2) + (0.1 if kind == "b" else 0))


def test_a_sweep_stops_failed_past_its_failure_budget(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_notebook(
        workspace / "nb.ipynb",
        [
            (["parameters"], "x = 1"),
            (["step:bad"], "print('no objective here', x)"),
        ],
    )
    code, sweep = sweep_json(
        capsys,
        "nb.ipynb",
        "--param",
        "x=int:1:9",
        "--objective",
        "score",
        "--trials",
        "8",
        "--max-failed",
        "1",
    )
    assert code == 1 and sweep["state"] == "FAILED"
    assert "more than maxFailedTrialCount 1" in sweep["reason"]
    failed = [t for t in sweep["trials"] if t["state"] == "FAILED"]
    assert len(failed) == 2 and len(sweep["trials"]) < 8
    assert failed[0]["error"] == "objective score was not reported"


def test_a_goal_ends_the_sweep_early(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_notebook(
        workspace / "nb.ipynb",
        [
            (["parameters"], "x = 1"),
            (["step:s"], "score = x"),
            (["metrics"], "score"),
        ],
    )
    code, sweep = sweep_json(
        capsys,
        "nb.ipynb",
        "--param",
        "x=int:5:9",
        "--objective",
        "score",
        "--target",
        "5",
        "--trials",
        "20",
    )
    assert code == 0 and "goal" in sweep["reason"] and len(sweep["trials"]) == 1


SLOW = [
    (["parameters"], "x = 1.0"),
    (
        ["step:s"],
        "import os, time\nopen(f'pid-{os.getpid()}', 'w').close()\ntime.sleep(60)\nscore = x",
    ),
    (["metrics"], "score"),
]


def _start_sweep(workspace: Path) -> subprocess.Popen[str]:
    write_notebook(workspace / "nb.ipynb", SLOW)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter_mlk.cli",
            "sweep",
            "nb.ipynb",
            "--param",
            "x=double:0:1",  # never two equal trials, which would share one cached step
            "--objective",
            "score",
            "--trials",
            "4",
            "--parallel",
            "2",
        ],
        cwd=workspace,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        if len(list(workspace.glob(".mlk/sweeps/*/trial-*/pid-*"))) == 2:
            return proc
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(proc.communicate()[1])


def test_cancel_stops_every_trial_and_leaves_no_process(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    proc = _start_sweep(workspace)
    pids = [int(p.name.split("-")[1]) for p in workspace.glob(".mlk/sweeps/*/trial-*/pid-*")]
    assert main(["cancel", _latest_sweep(workspace)]) == 0
    proc.communicate(timeout=30)
    for pid in pids:
        deadline = time.time() + 5
        while _alive(pid) and time.time() < deadline:
            time.sleep(0.05)
        assert not _alive(pid)
    capsys.readouterr()
    assert main(["show", _latest_sweep(workspace), "--json"]) == 0
    sweep = json.loads(capsys.readouterr().out)
    assert sweep["state"] == "CANCELLED"
    assert {t["state"] for t in sweep["trials"]} <= {"CANCELLED"}


def _latest_sweep(workspace: Path) -> str:
    from jupyter_mlk.tuning.store import SweepStore

    return str(SweepStore(workspace).list_sweeps()[0]["id"])


def test_an_interrupted_sweep_can_be_resumed(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    proc = _start_sweep(workspace)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.communicate(timeout=30)
    sweep_id = _latest_sweep(workspace)
    capsys.readouterr()
    assert main(["show", sweep_id, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["state"] == "FAILED" and "--resume" in shown["reason"]
    write_notebook(
        workspace / "nb.ipynb",
        [(["parameters"], "x = 1.0"), (["step:s"], "score = x"), (["metrics"], "score")],
    )
    code = main(["sweep", "--resume", sweep_id, "--json"])
    resumed = json.loads(capsys.readouterr().out)
    assert code == 0 and resumed["state"] == "SUCCEEDED"
    assert len([t for t in resumed["trials"] if t["state"] == "SUCCEEDED"]) == 2


def test_a_sweep_where_no_trial_reports_the_objective_is_failed(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_notebook(workspace / "nb.ipynb", [(["parameters"], "x = 1"), (["step:s"], "y = x")])
    code, sweep = sweep_json(
        capsys, "nb.ipynb", "--param", "x=int:1:3", "--objective", "score", "--trials", "1"
    )
    assert code == 1 and sweep["state"] == "FAILED"
    assert "no trial reported the objective score" in sweep["reason"]
