"""The %mlk magic in a real IPython shell, acting on the notebook the kernel belongs to."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from jupyter_mlk.store.workspace import Workspace
from tests.conftest import case_dir


@pytest.fixture
def shell(workspace: Path) -> Iterator[InteractiveShell]:
    shutil.copy(case_dir("01-iris-pipeline") / "pipeline.ipynb", workspace / "iris.ipynb")
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "jupyter_mlk")
    ip.user_ns["__session__"] = str(workspace / "iris.ipynb")
    yield ip
    ip.user_ns.pop("__session__", None)


def test_graph_shows_a_table_and_a_mermaid_picture(shell: InteractiveShell) -> None:
    with capture_output() as captured:
        shell.run_line_magic("mlk", "graph")
    mimes = [o.data for o in captured.outputs]
    assert "<b>load</b>" in mimes[0]["text/html"]
    assert "load --> train" in mimes[1]["text/vnd.mermaid"]


@pytest.mark.slow
def test_run_from_the_magic_is_in_the_shared_history(
    shell: InteractiveShell, workspace: Path
) -> None:
    with capture_output() as captured:
        shell.run_line_magic("mlk", "run -p n_estimators=20 -p max_depth=2")
    html = captured.outputs[-1].data["text/html"]
    assert "SUCCEEDED" in html
    assert "accuracy=0.888889" in captured.stdout
    runs = Workspace(workspace).store.list_runs()
    assert runs[0]["state"] == "SUCCEEDED" and runs[0]["params"]["n_estimators"] == 20
    with capture_output() as captured:
        shell.run_line_magic("mlk", "runs")
    assert runs[0]["id"] in captured.outputs[0].data["text/html"]
    with capture_output() as captured:
        shell.run_line_magic("mlk", f"logs {runs[0]['id']} train")
    assert "RESULT train n_estimators=20 max_depth=2" in captured.stdout


def test_errors_are_usage_errors_without_a_traceback(shell: InteractiveShell) -> None:
    with pytest.raises(UsageError, match="unknown parameter 'nope'"):
        shell.run_line_magic("mlk", "run -p nope=1")
    with pytest.raises(UsageError, match="no run"):
        shell.run_line_magic("mlk", "logs r-missing")


def test_without_a_session_the_notebook_must_be_named(
    shell: InteractiveShell, workspace: Path
) -> None:
    shell.user_ns.pop("__session__")
    with pytest.raises(UsageError, match="--notebook PATH"):
        shell.run_line_magic("mlk", "graph")
    with capture_output() as captured:
        shell.run_line_magic("mlk", f"graph --notebook {workspace / 'iris.ipynb'}")
    assert "<b>train</b>" in captured.outputs[0].data["text/html"]


def test_compile_writes_the_yaml(shell: InteractiveShell, workspace: Path) -> None:
    with capture_output():
        shell.run_line_magic("mlk", f"compile -o {workspace / 'out.yaml'}")
    assert "pipelineInfo" in (workspace / "out.yaml").read_text()


@pytest.mark.slow
def test_sweep_from_the_magic_shows_the_table_and_the_plots(shell: InteractiveShell) -> None:
    with capture_output() as captured:
        shell.run_line_magic(
            "mlk",
            "sweep --param n_estimators=int:10:30 --objective accuracy "
            "--algorithm random --trials 2",
        )
    tables = [o.data["text/html"] for o in captured.outputs if "text/html" in o.data]
    assert "sweep s-" in tables[0] and "PENDING" in tables[0]
    assert "SUCCEEDED" in tables[-1] and "&#9733;" in tables[-1]  # updated live, best marked
    plot = captured.outputs[-1].data["application/vnd.vegalite.v5+json"]
    assert len(plot["hconcat"]) == 2 and len(plot["data"]["values"]) == 2
