"""``jupyter mlk launch | servers | stop`` end to end with the local backend."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jupyter_mlk.cli import main

pytestmark = pytest.mark.slow


def test_launch_list_and_stop_from_the_command_line(
    workspace: Path, no_gpu_path: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["launch", "--name", "cli box", "--memory", "3Gi", "--json"]) == 0
    launched = json.loads(capsys.readouterr().out)
    assert launched["state"] == "ready"
    assert launched["url_with_token"].startswith(launched["url"] + "?token=")

    assert main(["servers", "--json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert listed["name"] == "cli box" and listed["state"] == "ready"
    assert "token" not in json.dumps(listed)

    assert main(["launch", "--name", "cli box"]) == 1
    assert "already ready" in capsys.readouterr().err

    assert main(["stop", "cli box"]) == 0
    assert "stopped cli box" in capsys.readouterr().out
    assert main(["servers"]) == 0
    assert "no notebook servers" in capsys.readouterr().out
    assert main(["servers", "--all", "--json"]) == 0
    [stopped] = json.loads(capsys.readouterr().out)
    assert stopped["state"] == "stopped"


def test_user_errors_are_one_line_with_advice(
    workspace: Path, no_gpu_path: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["launch", "--gpus", "1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: 1 GPU(s) requested but this machine has none")
    assert "Traceback" not in err
    assert main(["launch", "--gpus", "1", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["code"] == "insufficient-gpu"
    assert main(["stop", "nothing-here"]) == 1
    assert "no server called 'nothing-here'" in capsys.readouterr().err
    assert main(["launch", "--profile", "huge"]) == 1
    assert "pick one of: cpu, gpu-1" in capsys.readouterr().err
