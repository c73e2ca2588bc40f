"""The serving verbs end to end: a detached server, predict, restart with `serve`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from jupyter_mlk.cli import main
from jupyter_mlk.serving import engine
from jupyter_mlk.store.workspace import Workspace


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any]:
    code = main(list(args))
    out = capsys.readouterr().out
    try:
        return code, json.loads(out)
    except ValueError:
        return code, out


def test_deploy_predict_list_restart_and_undeploy(
    workspace: Path, model_files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    ws = Workspace(workspace)
    try:
        code, dep = cli(capsys, "deploy", str(model_files["iris"]), "--name", "iris", "--json")
        assert code == 0 and dep["status"] == "RUNNING"
        server = engine.running_server(ws)
        assert server is not None and server["pid"] != os.getpid()
        assert server["host"] == "127.0.0.1"
        code, out = cli(capsys, "predict", "iris", "[[5.0, 3.4, 1.5, 0.2]]")
        assert (code, out) == (0, [0])
        code, listed = cli(capsys, "deployments", "--json")
        assert [d["name"] for d in listed] == ["iris"]
        assert listed[0]["versions"][0]["lineage"]["source"] == "file"

        # A machine restart: the server dies without cleaning up.
        os.kill(server["pid"], signal.SIGKILL)
        for _ in range(100):
            if engine.running_server(ws) is None:
                break
            time.sleep(0.05)
        code, listed = cli(capsys, "deployments", "--json")
        assert listed[0]["status"] == "STOPPED"
        assert main(["predict", "iris", "[[5.0, 3.4, 1.5, 0.2]]"]) == 1
        assert "jupyter mlk serve" in capsys.readouterr().err

        serve = subprocess.Popen(
            [sys.executable, "-m", "jupyter_mlk.cli", "serve"],
            cwd=workspace,
            env=dict(os.environ, MLK_HOME=str(workspace)),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            for _ in range(300):
                again = engine.running_server(ws)
                if again is not None and engine.get_deployment(ws, "iris")["status"] == "RUNNING":
                    break
                time.sleep(0.1)
            assert again is not None and again["port"] == server["port"]  # same URL as before
            code, out = cli(capsys, "predict", "iris", '{"instances": [[6.9, 3.1, 5.6, 2.2]]}')
            assert (code, out) == (0, [2])
            assert main(["serve"]) == 1  # one server per workspace
            assert "already running" in capsys.readouterr().err
            assert cli(capsys, "undeploy", "iris")[0] == 0
            assert cli(capsys, "deployments", "--json")[1] == []
        finally:
            serve.send_signal(signal.SIGINT)
            serve.communicate(timeout=30)
        assert engine.running_server(ws) is None
    finally:
        engine.stop_server(ws)
        ws.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["deploy", "nope.joblib", "--name", "x"], "neither a file"),
        (["deploy", "m.joblib", "--name", "Bad_Name"], "'bad-name'"),
        (["promote", "ghost"], "no deployment named 'ghost'"),
        (["predict", "ghost", "not json"], "not valid JSON"),
    ],
)
def test_errors_name_the_value_and_what_to_do(
    workspace: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(args) == 1
    assert message in capsys.readouterr().err


def test_canary_needs_a_current_version(
    workspace: Path, model_files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["deploy", str(model_files["iris"]), "--name", "iris", "--canary-percent", "10"])
    assert code == 1
    assert "deploy it first without --canary-percent" in capsys.readouterr().err
