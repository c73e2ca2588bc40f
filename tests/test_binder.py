"""Binder: a fresh virtual environment built exactly as binder/ says runs every demo."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow
DEMOS = sorted(p.name for p in (REPO / "binder").glob("*.ipynb"))


@pytest.fixture(scope="module")
def binder_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("binder") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    done = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", "-r", "binder/requirements.txt"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return venv


def test_binder_installs_the_extensions(binder_env: Path) -> None:
    server = subprocess.run(
        [str(binder_env / "bin" / "jupyter"), "server", "extension", "list"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "jupyter_mlk" in server.stdout + server.stderr
    lab = subprocess.run(
        [str(binder_env / "bin" / "jupyter"), "labextension", "list"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "jupyter-mlk" in lab.stdout + lab.stderr


@pytest.mark.parametrize("demo", DEMOS)
def test_every_demo_notebook_runs_headless(binder_env: Path, demo: str, tmp_path: Path) -> None:
    work = tmp_path / "binder"
    shutil.copytree(REPO / "binder", work, ignore=shutil.ignore_patterns(".mlk", "model"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLK_")}
    done = subprocess.run(
        [
            str(binder_env / "bin" / "jupyter"),
            "nbconvert",
            "--to",
            "notebook",
            "--execute",
            "--ExecutePreprocessor.timeout=600",
            demo,
            "--output",
            f"executed-{demo}",
        ],
        cwd=work,
        env={**env, "MLK_HOME": str(work)},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    executed = json.loads((work / f"executed-{demo}").read_text())
    errors = [
        o for c in executed["cells"] for o in c.get("outputs", []) if o["output_type"] == "error"
    ]
    assert not errors, errors
    from jupyter_mlk.serving import running_server
    from jupyter_mlk.store.workspace import Workspace

    assert running_server(Workspace(work)) is None, "a demo left a model server running"
