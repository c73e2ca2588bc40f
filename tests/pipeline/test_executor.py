"""The local executor's behaviour: cancel, failures, conditions, values, dead runs."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from jupyter_mlk.cli import main
from jupyter_mlk.store.workspace import Workspace
from tests.nbutil import process_alive as _alive
from tests.nbutil import write_notebook

pytestmark = pytest.mark.slow


def _run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = main([*argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


SLOW_STEP = (
    "import os, subprocess, time\n"
    "child = subprocess.Popen(['sleep', '120'])\n"
    "with open('pids.txt', 'a') as fh:\n"
    "    fh.write(f'{os.getpid()} {child.pid}\\n')\n"
    "time.sleep(120)\n"
    "{name} = 1\n"
)


def _slow_notebook(path: Path) -> Path:
    return write_notebook(
        path,
        [
            (["step:left"], SLOW_STEP.replace("{name}", "left")),
            (["step:right"], SLOW_STEP.replace("{name}", "right")),
            (["step:join"], "print(left + right)"),
        ],
    )


def _start_run(workspace: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter_mlk.cli", "run", "slow.ipynb", "--workers", "2"],
        cwd=workspace,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        pids = workspace / "pids.txt"
        if pids.exists() and len(pids.read_text().splitlines()) == 2:
            return proc
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("the slow steps never started: " + proc.communicate()[1])


def _pids(workspace: Path) -> list[int]:
    return [
        int(p) for line in (workspace / "pids.txt").read_text().splitlines() for p in line.split()
    ]


@pytest.mark.parametrize("how", ["ctrl-c", "cancel-command"])
def test_cancel_stops_every_step_process_and_their_children(
    how: str, workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _slow_notebook(workspace / "slow.ipynb")
    proc = _start_run(workspace)
    if how == "ctrl-c":
        proc.send_signal(signal.SIGINT)
    else:
        run_id = Workspace(workspace).store.list_runs()[0]["id"]
        assert main(["cancel", run_id]) == 0
        assert "CANCELLED" in capsys.readouterr().out
    proc.communicate(timeout=30)
    assert proc.returncode != 0
    for pid in _pids(workspace):
        deadline = time.time() + 5
        while _alive(pid) and time.time() < deadline:
            time.sleep(0.05)
        assert not _alive(pid), f"process {pid} survived the cancel"
    _, run = _run_json(capsys, "show", "latest")
    assert run["state"] == "CANCELLED"
    assert {s["state"] for s in run["steps"].values()} == {"CANCELLED"}
    assert run["steps"]["join"]["started"] is None


def test_a_run_whose_process_died_is_failed_with_the_reason(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _slow_notebook(workspace / "slow.ipynb")
    proc = _start_run(workspace)
    proc.kill()  # no chance to clean up: as if the machine went down
    proc.wait(timeout=30)
    for pid in _pids(workspace):  # the step processes follow their executor
        deadline = time.time() + 10
        while _alive(pid) and time.time() < deadline:
            time.sleep(0.05)
        assert not _alive(pid), f"process {pid} outlived its executor"
    proc.communicate(timeout=30)
    _, run = _run_json(capsys, "show", "latest")
    assert run["state"] == "FAILED"
    assert "exited without finishing" in run["error"]


def test_independent_branch_finishes_when_another_fails(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_notebook(
        workspace / "nb.ipynb",
        [
            (["step:a"], "x = 1"),
            (["step:bad"], "raise RuntimeError('boom')\ny = x"),
            (["step:after_bad"], "print(y)"),
            (["step:good"], "import time\ntime.sleep(0.5)\nz = x + 1\nprint('RESULT z', z)"),
        ],
    )
    code, run = _run_json(capsys, "run", "nb.ipynb")
    assert code == 1 and run["state"] == "FAILED"
    states = {n: s["state"] for n, s in run["steps"].items()}
    assert states == {
        "a": "SUCCEEDED",
        "bad": "FAILED",
        "after_bad": "CANCELLED",
        "good": "SUCCEEDED",
    }
    assert run["steps"]["bad"]["error"]["evalue"] == "boom"


def test_a_step_starts_as_soon_as_its_own_inputs_are_ready(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_notebook(
        workspace / "nb.ipynb",
        [
            (["step:slow"], "import time\ntime.sleep(1.5)\ns = 1"),
            (["step:fast"], "f = 1"),
            (["step:after_fast"], "g = f + 1"),
            (["step:end"], "print(s + g)"),
        ],
    )
    code, run = _run_json(capsys, "run", "nb.ipynb", "--workers", "2")
    assert code == 0
    steps = run["steps"]
    assert steps["after_fast"]["started"] < steps["slow"]["finished"]


def test_false_condition_skips_the_step_and_what_needs_it(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_notebook(
        workspace / "nb.ipynb",
        [
            (["parameters"], "threshold = 0.9"),
            (["step:evaluate"], "accuracy = 0.5"),
            (["step:deploy", "if:accuracy>=threshold"], "deployed = True"),
            (["step:notify"], "print(deployed)"),
            (["metrics"], "accuracy"),
        ],
    )
    code, run = _run_json(capsys, "run", "nb.ipynb")
    assert code == 0 and run["state"] == "SUCCEEDED"
    assert run["steps"]["deploy"]["state"] == "SKIPPED"
    assert run["steps"]["notify"]["state"] == "SKIPPED"
    code, run = _run_json(capsys, "run", "nb.ipynb", "-p", "threshold=0.4")
    assert run["steps"]["deploy"]["state"] == "SUCCEEDED"
    assert run["steps"]["evaluate"]["state"] == "CACHED"


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        ("gen = (i for i in range(3))", "generator"),
        ("import threading\ngen = threading.Lock()", "lock"),
        ("gen = open('nb.ipynb')", "TextIOWrapper"),
    ],
)
def test_a_value_that_cannot_cross_fails_its_step_naming_it(
    source: str, kind: str, workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_notebook(
        workspace / "nb.ipynb",
        [
            (["step:make"], source),
            (["step:use"], "print(gen)"),
        ],
    )
    code, run = _run_json(capsys, "run", "nb.ipynb")
    assert code == 1
    make = run["steps"]["make"]
    assert make["state"] == "FAILED" and make["outputs"] == {}
    message = make["error"]["evalue"]
    assert "'gen'" in message and kind in message and "functions cell" in message
    assert run["steps"]["use"]["state"] == "CANCELLED"


def test_magics_and_shell_lines_run_in_steps(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_notebook(
        workspace / "nb.ipynb",
        [
            (
                ["step:shell"],
                "files = !ls\n%time n = len(files)\nword = 'hello'\n!echo RESULT $word",
            ),
            (["step:use"], "print('RESULT n', n >= 1)"),
        ],
    )
    code, run = _run_json(capsys, "run", "nb.ipynb")
    assert code == 0, run
    shell_out = Path(run["steps"]["shell"]["stdout"]).read_text()
    assert "RESULT hello" in shell_out
    assert "RESULT n True" in Path(run["steps"]["use"]["stdout"]).read_text()


def test_the_users_notebook_is_never_modified(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_notebook(workspace / "nb.ipynb", [(["step:a"], "print('hi')")])
    before = path.read_bytes()
    assert _run_json(capsys, "run", "nb.ipynb")[0] == 0
    assert path.read_bytes() == before


def test_figures_are_kept_and_matplotlib_inline_works(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_notebook(
        workspace / "nb.ipynb",
        [
            (["imports"], "%matplotlib inline\nimport matplotlib.pyplot as plt"),
            (["step:plot"], "plt.plot([1, 2])\nplt.show()\nx = 1"),
        ],
    )
    code, run = _run_json(capsys, "run", "nb.ipynb")
    assert code == 0, run
    nb = json.loads(Path(run["steps"]["plot"]["notebook"]).read_text())
    outputs = [o for c in nb["cells"] for o in c["outputs"]]
    assert any("image/png" in o.get("data", {}) for o in outputs)


def test_a_function_from_an_earlier_step_updates_globals_for_later_steps(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_notebook(
        workspace / "nb.ipynb",
        [
            (["step:a"], "counter = 0\ndef bump():\n    global counter\n    counter += 1"),
            (["step:b"], "bump()\nbump()"),
            (["step:c"], "print('RESULT counter', counter)"),
        ],
    )
    code, run = _run_json(capsys, "run", "nb.ipynb")
    assert code == 0, run
    assert "RESULT counter 2" in Path(run["steps"]["c"]["stdout"]).read_text()


def test_two_runs_at_once_in_one_workspace_do_not_clobber_each_other(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_notebook(
        workspace / "nb.ipynb",
        [
            (["parameters"], "n = 1"),
            (["step:a"], "import time\ntime.sleep(0.5)\nvalues = list(range(n))"),
            (["step:b"], "print('RESULT', sum(values))"),
        ],
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "jupyter_mlk.cli", "run", "nb.ipynb", "-p", f"n={n}", "--json"],
            cwd=workspace,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in (10, 20)
    ]
    outs = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    results = sorted(Path(o["steps"]["b"]["stdout"]).read_text().strip() for o in outs)
    assert results == ["RESULT 190", "RESULT 45"]
    runs = Workspace(workspace).store.list_runs()
    assert sorted(r["state"] for r in runs) == ["SUCCEEDED", "SUCCEEDED"]


def test_a_deploy_tagged_step_deploys_the_model_it_reads(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from jupyter_mlk.serving import list_deployments, predict, stop_server

    write_notebook(
        workspace / "nb.ipynb",
        [
            (
                ["imports"],
                "from sklearn.datasets import load_iris\n"
                "from sklearn.tree import DecisionTreeClassifier",
            ),
            (["parameters"], "threshold = 0.5"),
            (
                ["step:train"],
                "X, y = load_iris(return_X_y=True)\n"
                "model = DecisionTreeClassifier(random_state=0).fit(X, y)\n"
                "accuracy = float(model.score(X, y))",
            ),
            (["step:deploy", "if:accuracy>=threshold", "deploy:iris-tree"], "print('deploying')"),
        ],
    )
    try:
        code, run = _run_json(capsys, "run", "nb.ipynb")
        assert code == 0, run
        ws = Workspace(workspace)
        deployments = list_deployments(ws)
        assert [d["name"] for d in deployments] == ["iris-tree"]
        assert deployments[0]["versions"][0]["lineage"]["step"] == "train"
        answer = predict(ws, "iris-tree", [[5.1, 3.5, 1.4, 0.2]])
        assert answer["predictions"] == [0]
        code, run = _run_json(capsys, "run", "nb.ipynb", "-p", "threshold=2")
        assert run["steps"]["deploy"]["state"] == "SKIPPED"
    finally:
        stop_server(Workspace(workspace))


def test_deploy_needs_a_model_the_step_reads(workspace: Path) -> None:
    from jupyter_mlk.notebook.graph import build_graph

    graph = build_graph(
        write_notebook(
            workspace / "nb.ipynb",
            [(["step:a"], "clf = 1"), (["step:b", "deploy:x"], "print(clf)")],
        )
    )
    assert any("deploy:x:VARIABLE" in e.message for e in graph.errors)
    graph = build_graph(
        write_notebook(
            workspace / "nb.ipynb",
            [(["step:a"], "clf = 1"), (["step:b", "deploy:x:clf"], "print(clf)")],
        )
    )
    assert not graph.errors and graph.step("b").resources.deploy_variable == "clf"
