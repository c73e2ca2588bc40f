"""The JupyterLab panel in a real browser: a real `jupyter lab`, Debian's chromium, Playwright.

The test opens binder/iris.ipynb, checks its steps in the sidebar, adds a cell and makes it
a new step through the cell tag form, runs the pipeline with a changed parameter, waits
for every step of the run view's graph to end, and opens a step's logs. Screenshots land
in tests/browser/artifacts/ (gitignored) for a person to look at.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# JupyterLab must not reach out for news or updates: there is no network here. The
# panel's fallback poll is off, so live states can only come from the server's events.
LAB_OVERRIDES = {
    "@jupyterlab/apputils-extension:notification": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    "jupyter-mlk:plugin": {"pollInterval": 0},
}

pytest.importorskip("playwright.sync_api", reason="needs the playwright package (the test extra)")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)",
    ),
]


@dataclass
class Lab:
    """A running `jupyter lab` and where it keeps its files."""

    url: str
    token: str
    root: Path
    log: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_up(lab: Lab, proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter lab exited early:\n{lab.log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(f"{lab.url}api/status?token={lab.token}", timeout=2):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    raise RuntimeError(f"jupyter lab did not answer in {timeout}s:\n{lab.log.read_text()[-4000:]}")


def _assert_panel_installed() -> None:
    from jupyter_core.paths import jupyter_path

    found = [Path(p) / "jupyter-mlk" for p in jupyter_path("labextensions")]
    if not any((p / "package.json").exists() for p in found):
        pytest.fail(
            "the JupyterLab panel is not installed: `pip install -e .` builds it "
            "(it needs Node.js; see the README), looked in " + ", ".join(str(p) for p in found)
        )


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    """A `jupyter lab` on 127.0.0.1 serving a copy of binder/iris.ipynb."""
    _assert_panel_installed()
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(REPO / "binder" / "iris.ipynb", root / "iris.ipynb")
    app_settings = tmp_path / "app-settings"
    app_settings.mkdir()
    (app_settings / "overrides.json").write_text(json.dumps(LAB_OVERRIDES))
    port, token = _free_port(), "mlk-browser-test"
    lab = Lab(f"http://127.0.0.1:{port}/", token, root, tmp_path / "lab.log")
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "PYTHONWARNINGS": "ignore",
    }
    env.pop("MLK_HOME", None)
    args = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--allow-root",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        f"--LabApp.app_settings_dir={app_settings}",
        f"--LabApp.user_settings_dir={tmp_path / 'user-settings'}",
        f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
    ]
    with lab.log.open("wb") as log:
        proc = subprocess.Popen(args, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_until_up(lab, proc)
        yield lab
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        ARTIFACTS.mkdir(exist_ok=True)
        shutil.copy(lab.log, ARTIFACTS / "jupyter-lab.log")


@pytest.fixture
def page(lab: Lab) -> Iterator[Any]:
    """A chromium page, 1440x900, that fails the test on any uncaught page error."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        page = context.new_page()
        page.set_default_timeout(60_000)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        try:
            yield page
        finally:
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "last.png"))
            browser.close()
        assert errors == [], f"uncaught errors in the page: {errors}"


def _shot(page: Any, name: str, selector: str | None = None) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    target = page.locator(selector) if selector else page
    target.screenshot(path=str(ARTIFACTS / name))


def _step_names(page: Any) -> list[str]:
    names: list[str] = page.locator(".jp-Mlk-step").evaluate_all(
        "nodes => nodes.map(n => n.dataset.step)"
    )
    return names


def _add_cell_after(page: Any, cell_index: int, code: str) -> None:
    """Adds a code cell below cell `cell_index` and types `code` into it."""
    cell = page.locator(".jp-Notebook .jp-Cell").nth(cell_index)
    cell.locator(".jp-InputPrompt").click()
    page.keyboard.press("Escape")
    page.keyboard.press("b")
    page.keyboard.press("Enter")
    page.keyboard.type(code)
    page.keyboard.press("Escape")


@pytest.mark.timeout(600)
def test_iris_panel_tags_runs_and_shows_logs(lab: Lab, page: Any) -> None:
    page.goto(f"{lab.url}lab/tree/iris.ipynb?token={lab.token}")
    page.locator(".jp-Notebook .jp-MarkdownOutput h1").first.wait_for()
    page.locator('.jp-SideBar [data-id="jp-mlk-sidebar"]').click()
    sidebar = page.locator("#jp-mlk-sidebar")
    sidebar.wait_for()

    # The notebook's steps, in order, with nothing wrong.
    page.wait_for_function("document.querySelectorAll('.jp-Mlk-step').length === 4")
    assert _step_names(page) == ["load", "train", "evaluate", "deploy"]
    assert page.locator(".jp-Mlk-problem-error").count() == 0
    train = page.locator('.jp-Mlk-step[data-step="train"]')
    assert "n_estimators" in train.inner_text()
    train.click()
    page.locator(".jp-Cell.jp-Mlk-stepCell").first.wait_for()
    assert page.locator(".jp-Cell.jp-Mlk-stepCell").count() == 1
    page.locator(".jp-Notebook .jp-MarkdownOutput h2").first.wait_for()
    _shot(page, "panel.png")

    # A new cell after evaluate becomes the new step "report".
    _add_cell_after(page, 8, 'summary = f"accuracy={accuracy:.3f}"\nprint(summary)')
    editor = sidebar.locator(".jp-Mlk-cellSection")
    editor.locator(".jp-Mlk-stepSelect").select_option(label="New step…")
    editor.locator(".jp-Mlk-newStepName").fill("report")
    editor.locator(".jp-Mlk-createStep").click()
    page.wait_for_function("document.querySelectorAll('.jp-Mlk-step').length === 5")
    assert _step_names(page) == ["load", "train", "evaluate", "report", "deploy"]
    assert "step:report" in editor.locator(".jp-Mlk-rawTags").inner_text()
    report = page.locator('.jp-Mlk-step[data-step="report"]')
    assert "accuracy" in report.inner_text()
    _shot(page, "panel-tagged.png", "#jp-mlk-sidebar")

    # Run with a typed parameter; the notebook is saved first.
    sidebar.locator('.jp-Toolbar [data-command="mlk:run-pipeline"]').click()
    dialog = page.locator(".jp-Dialog")
    dialog.locator('input[name="jp-Mlk-param-n_estimators"]').fill("20")
    _shot(page, "run-dialog.png", ".jp-Dialog-content")
    dialog.locator(".jp-Dialog-footer .jp-mod-accept").click()

    view = page.locator(".jp-Mlk-runView")
    view.wait_for()
    page.wait_for_function(
        "['SUCCEEDED', 'FAILED', 'CANCELLED'].includes("
        "document.querySelector('.jp-Mlk-runView')?.dataset.state)",
        timeout=300_000,
    )
    states = dict(
        page.locator(".jp-Mlk-node").evaluate_all(
            "nodes => nodes.map(n => [n.dataset.step, n.dataset.state])"
        )
    )
    assert view.get_attribute("data-state") == "SUCCEEDED", states
    assert set(states) == {"load", "train", "evaluate", "report", "deploy"}
    assert all(state == "SUCCEEDED" for name, state in states.items() if name != "deploy")
    assert states["deploy"] in ("SUCCEEDED", "SKIPPED")  # its condition may be false
    assert page.locator(".jp-Mlk-edge").count() >= 4
    assert "n_estimators" in view.locator(".jp-Mlk-runHeader").inner_text()

    # A step's logs.
    view.locator('.jp-Mlk-node[data-step="train"]').click()
    stdout = view.locator(".jp-Mlk-stepDetails .jp-Mlk-stdout")
    stdout.wait_for()
    page.wait_for_function(
        "document.querySelector('.jp-Mlk-stdout')?.textContent.includes('trained 20 trees')"
    )
    _shot(page, "run-view.png")

    # The run is in the history, finished.
    row = sidebar.locator(".jp-Mlk-runRow").first
    row.locator('.jp-Mlk-state[data-state="SUCCEEDED"]').wait_for()
    assert (lab.root / "iris.ipynb").read_text().count("step:report") == 1

    # The step's executed notebook opens next to the others.
    view.locator(".jp-Mlk-openNotebook").click()
    output_tab = page.locator(".lm-TabBar-tab", has_text="iris.train.")
    output_tab.wait_for()
    assert list(lab.root.glob("iris.train.*.ipynb"))

    # Compile saves the Kubeflow Pipelines YAML next to the notebook.
    page.locator(".lm-TabBar-tab", has_text="iris.ipynb").first.click()
    sidebar.locator('.jp-Toolbar [data-command="mlk:compile-pipeline"]').click()
    page.get_by_text("Saved the Kubeflow pipeline to").first.wait_for(timeout=120_000)
    assert "pipelineSpec" in (lab.root / "iris.yaml").read_text() or (
        "deploymentSpec" in (lab.root / "iris.yaml").read_text()
    )

    # The same views follow the dark theme.
    _use_theme(page, "JupyterLab Dark")
    _shot(page, "run-view-dark.png")


def _use_theme(page: Any, theme: str) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text="Settings").click()
    page.locator(".lm-Menu-itemLabel", has_text="Theme").first.hover()
    page.locator(".lm-Menu-itemLabel").get_by_text(theme, exact=True).click()
    page.wait_for_function(
        f"document.body.dataset.jpThemeName === {json.dumps(theme)}", timeout=30_000
    )
    page.wait_for_timeout(500)  # the theme's stylesheet applies after the attribute
