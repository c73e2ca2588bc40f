"""The panel's deploy action and Deployments section in a real browser.

The iris notebook is run with the CLI before the page opens (the panel lists CLI runs).
From that run's view, the `train` step's `model` value is deployed as `iris`; the
Deployments section must show it RUNNING with its URL and lineage, and "try it" must get
a prediction for the prefilled sample row. A second deploy as a 25% canary shows the
slider, which is moved with the keyboard (sent on release), then rolled back; finally the
deployment is undeployed. The workspace's inference server is stopped at the end whatever
happens. Screenshots land in tests/browser/artifacts/.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.test_panel import Lab, _shot

# The fixtures of the panel test, re-exported so pytest finds them here.
from tests.browser.test_panel import lab as lab
from tests.browser.test_panel import page as page


def _mlk(lab: Lab, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`jupyter mlk ARGS` in the Lab's root, the workspace the server extension uses."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    env.pop("MLK_HOME", None)
    return subprocess.run(
        [sys.executable, "-m", "jupyter_mlk.cli", *args],
        cwd=lab.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def iris_run(lab: Lab) -> Iterator[str]:
    """The id of a finished iris run; the inference server is stopped afterwards."""
    try:
        done = _mlk(lab, "run", "iris.ipynb", "--json")
        assert done.returncode == 0, done.stderr[-3000:]
        run = json.loads(done.stdout)
        assert run["state"] == "SUCCEEDED", run
        yield str(run["id"])
    finally:
        stopped = _mlk(lab, "serve", "--stop", timeout=60)
        assert stopped.returncode == 0, stopped.stderr[-2000:]


def _deploy_from_run_view(page: Any, name: str, canary: str = "") -> None:
    view = page.locator(".jp-Mlk-runView")
    output = view.locator(".jp-Mlk-stepOutputs [data-output='model']")
    output.wait_for()
    output.locator(".jp-Mlk-deployOutput").click()
    dialog = page.locator(".jp-Dialog")
    dialog.locator('input[name="deploy-name"]').fill(name)
    dialog.locator('input[name="deploy-canary"]').fill(canary)
    _shot(page, f"deploy-dialog{'-canary' if canary else ''}.png", ".jp-Dialog-content")
    dialog.locator(".jp-Dialog-footer .jp-mod-accept").click()
    dialog.wait_for(state="detached")


@pytest.mark.timeout(480)
def test_deploy_a_run_output_try_it_and_undeploy(lab: Lab, page: Any, iris_run: str) -> None:
    page.goto(f"{lab.url}lab/tree/iris.ipynb?token={lab.token}")
    page.locator(".jp-Notebook .jp-Cell").first.wait_for()
    page.locator('.jp-SideBar [data-id="jp-mlk-sidebar"]').click()
    sidebar = page.locator("#jp-mlk-sidebar")
    sidebar.wait_for()
    for title in ("Steps", "Cell tags", "Sweeps", "Notebook servers"):
        sidebar.locator(".lm-AccordionPanel-title", has_text=title).click()
    section = sidebar.locator(".jp-Mlk-deploymentsSection")
    section.locator(".jp-Mlk-empty", has_text="No deployments").wait_for()

    # The CLI's run is listed; its view offers the train step's values.
    sidebar.locator(f".jp-Mlk-runRow[data-run-id='{iris_run}']").click()
    view = page.locator(".jp-Mlk-runView")
    view.wait_for()
    view.locator(".jp-Mlk-node[data-step='train']").click()
    outputs = view.locator(".jp-Mlk-stepOutputs")
    outputs.wait_for()
    assert outputs.locator("[data-output]").evaluate_all(
        "nodes => nodes.map(n => n.dataset.output)"
    ) == ["model"]
    _shot(page, "deploy-run-view.png", ".jp-Mlk-stepDetails")

    _deploy_from_run_view(page, "iris")
    row = section.locator(".jp-Mlk-deploymentRow[data-deployment='iris']")
    row.wait_for(timeout=120_000)
    section.locator(
        ".jp-Mlk-deploymentRow[data-deployment='iris'][data-status='RUNNING']"
    ).wait_for(timeout=120_000)
    assert (
        row.locator(".jp-Mlk-deploymentUrl")
        .inner_text()
        .split()[-1]
        .startswith("http://127.0.0.1:")
    )
    lineage = row.locator(".jp-Mlk-lineage").inner_text()
    assert iris_run in lineage and "train/model" in lineage, lineage
    assert row.locator(".jp-Mlk-promote").count() == 0  # no canary yet

    # "Try it" with the prefilled row gets the model's prediction (a class index).
    row.locator(".jp-Mlk-tryIt").click()
    rows = row.locator(".jp-Mlk-tryItInput")
    assert json.loads(rows.input_value()) == [[5.1, 3.5, 1.4, 0.2]]
    row.locator(".jp-Mlk-sendTry").click()
    answer = row.locator(".jp-Mlk-tryItAnswer")
    answer.wait_for(timeout=60_000)
    assert json.loads(answer.inner_text())["predictions"] == [0]
    _shot(page, "deployment-try-it.png", "#jp-mlk-sidebar")

    # A bad body is refused before it is sent, saying what to send.
    rows.fill("[[5.1, 3.5")
    row.locator(".jp-Mlk-sendTry").click()
    row.locator(".jp-Mlk-formErrors", has_text="Not JSON").wait_for()

    # A second version as a 25% canary: a slider, promote and rollback.
    _deploy_from_run_view(page, "iris", canary="25")
    slider = row.locator("input[type='range']")
    slider.wait_for(timeout=120_000)
    assert slider.input_value() == "25"
    assert row.locator(".jp-Mlk-version[data-role='canary']").count() == 1
    slider.focus()
    page.keyboard.press("ArrowRight")  # 26, sent when the key is released
    row.locator(".jp-Mlk-canaryValue", has_text="26%").wait_for()
    page.wait_for_function(
        "document.querySelector(\"[data-deployment='iris'] input[type='range']\")"
        "?.disabled === false"
    )
    listed = json.loads(_mlk(lab, "deployments", "--json").stdout)
    split = {t["role"]: t["percent"] for t in listed[0]["traffic"]}
    assert split == {"stable": 74, "canary": 26}, listed
    _shot(page, "deployment-canary.png", "#jp-mlk-sidebar")
    row.locator(".jp-Mlk-rollback").click()
    slider.wait_for(state="detached", timeout=60_000)
    assert row.locator(".jp-Mlk-version").count() == 1

    # Undeploy, confirmed.
    row.locator(".jp-Mlk-undeploy").click()
    page.locator(".jp-Dialog .jp-Dialog-footer .jp-mod-warn").click()
    row.wait_for(state="detached", timeout=60_000)
    section.locator(".jp-Mlk-empty", has_text="No deployments").wait_for()
    _shot(page, "deployments-empty.png", "#jp-mlk-sidebar")
