"""The panel's Sweeps and Notebook servers sections in a real browser.

A tiny generated notebook (one float parameter, one metric) gets a 3-trial random sweep
started from the sweep form; the sweep view must show every trial ended, the best one
highlighted and both plots drawn by JupyterLab's vega renderer, and "use these values"
must fill the run form. Then a local notebook server is launched from the panel, seen
ready with its URL, and stopped. The fallback polls are off (LAB_OVERRIDES), so live
states come from the server's events. Screenshots land in tests/browser/artifacts/.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.browser.test_panel import Lab, _shot, _use_theme

# The fixtures of the panel test, re-exported so pytest finds them here.
from tests.browser.test_panel import lab as lab
from tests.browser.test_panel import page as page

# score peaks at x = 3; the sweep searches x in [0, 6].
NOTEBOOK = {
    "cells": [
        {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": "x = 1.0"},
        {
            "cell_type": "code",
            "metadata": {"tags": ["step:score"]},
            "source": 'score = 10 - (x - 3.0) ** 2\nprint(f"score={score}")',
        },
        {"cell_type": "code", "metadata": {"tags": ["metrics"]}, "source": "score"},
    ],
    "metadata": {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
    },
    "nbformat": 4,
    "nbformat_minor": 5,
}


def _write_notebook(lab: Lab) -> None:
    cells = [
        {**cell, "id": f"c{i}", "outputs": [], "execution_count": None}
        for i, cell in enumerate(NOTEBOOK["cells"])
    ]
    (lab.root / "tiny.ipynb").write_text(json.dumps({**NOTEBOOK, "cells": cells}))


def _open_panel(lab: Lab, page: Any) -> Any:
    page.goto(f"{lab.url}lab/tree/tiny.ipynb?token={lab.token}")
    page.locator(".jp-Notebook .jp-Cell").first.wait_for()
    page.locator('.jp-SideBar [data-id="jp-mlk-sidebar"]').click()
    sidebar = page.locator("#jp-mlk-sidebar")
    sidebar.wait_for()
    page.wait_for_function("document.querySelectorAll('.jp-Mlk-step').length === 1")
    return sidebar


def _collapse(sidebar: Any, *titles: str) -> None:
    """Collapses sidebar sections so the ones under test get the room."""
    for title in titles:
        sidebar.locator(".lm-AccordionPanel-title", has_text=title).click()


@pytest.mark.timeout(420)
def test_sweep_from_the_panel_finishes_with_best_trial_and_plots(lab: Lab, page: Any) -> None:
    _write_notebook(lab)
    sidebar = _open_panel(lab, page)
    _collapse(sidebar, "Cell tags", "Notebook servers")

    # The form is prefilled from the notebook: x searched, score the objective.
    sidebar.locator(".jp-Mlk-newSweep").click()
    form = page.locator(".jp-Mlk-sweepForm")
    form.wait_for()
    assert form.locator('input[name="x-searched"]').is_checked()
    assert form.locator('input[name="objective"]').input_value() == "score"
    form.locator('input[name="x-log"]').uncheck()
    form.locator('input[name="x-min"]').fill("0")
    form.locator('input[name="x-max"]').fill("6")
    form.locator('select[name="algorithm"]').select_option("random")
    form.locator('input[name="maxTrials"]').fill("3")
    form.locator('input[name="parallel"]').fill("1")
    _shot(page, "sweep-form.png")
    form.locator(".jp-Mlk-startSweep").click()

    view = page.locator(".jp-Mlk-sweepView")
    view.wait_for()
    page.wait_for_function(
        "['SUCCEEDED', 'FAILED', 'CANCELLED'].includes("
        "document.querySelector('.jp-Mlk-sweepView')?.dataset.state)",
        timeout=300_000,
    )
    states = view.locator(".jp-Mlk-trial").evaluate_all("rows => rows.map(r => r.dataset.state)")
    assert view.get_attribute("data-state") == "SUCCEEDED", states
    assert states == ["SUCCEEDED"] * 3
    best = view.locator(".jp-Mlk-trial.jp-mod-best")
    assert best.count() == 1
    view.locator(".jp-Mlk-bestSummary").wait_for()
    # Both plots are drawn by JupyterLab's vega renderer.
    for plot in (".jp-Mlk-objectivePlot", ".jp-Mlk-paramPlot"):
        view.locator(f"{plot} .vega-embed canvas, {plot} .vega-embed svg").first.wait_for()
    page.wait_for_timeout(500)
    _shot(page, "sweep-view.png")

    # The sweep is listed in the sidebar, ended, with its best trial.
    row = sidebar.locator(".jp-Mlk-sweepRow").first
    row.locator('.jp-Mlk-state[data-state="SUCCEEDED"]').wait_for()
    row.locator(".jp-Mlk-runMetrics").wait_for()
    _shot(page, "sweeps-section.png", "#jp-mlk-sidebar")

    # "Use these values" opens the run form with the best trial's x.
    best_x = best.locator("td").nth(2).inner_text()
    view.locator(".jp-Mlk-bestSummary .jp-Mlk-useValues").click()
    dialog = page.locator(".jp-Dialog")
    field = dialog.locator('input[name="jp-Mlk-param-x"]')
    field.wait_for()
    assert float(field.input_value()) == pytest.approx(float(best_x), rel=1e-3)
    _shot(page, "sweep-use-values.png", ".jp-Dialog-content")
    dialog.locator(".jp-Dialog-footer .jp-mod-reject").click()

    _use_theme(page, "JupyterLab Dark")
    page.locator(".lm-TabBar-tab", has_text="Sweep").first.click()
    page.wait_for_timeout(800)
    _shot(page, "sweep-view-dark.png")


@pytest.mark.timeout(300)
def test_local_server_launches_from_the_panel_and_stops(lab: Lab, page: Any) -> None:
    _write_notebook(lab)
    sidebar = _open_panel(lab, page)
    _collapse(sidebar, "Steps", "Cell tags", "Runs")
    section = sidebar.locator(".jp-Mlk-serversSection")

    # More GPUs than this machine has: refused with the launcher's own message.
    section.locator(".jp-Mlk-newServer").click()
    section.locator('input[name="server-name"]').fill("toobig")
    section.locator('select[name="server-backend"]').select_option("local")
    section.locator('input[name="server-gpus"]').fill("64")
    section.locator(".jp-Mlk-launchServer").click()
    # Either refused at once (a notification) or failed on launch (in the row); both
    # show the launcher's classified message as is.
    page.get_by_text("GPU(s) requested").first.wait_for(timeout=60_000)
    _shot(page, "server-refused.png", "#jp-mlk-sidebar")

    if section.locator(".jp-Mlk-launchForm").count() == 0:
        section.locator(".jp-Mlk-newServer").click()
    section.locator('input[name="server-name"]').fill("scratch")
    section.locator('select[name="server-backend"]').select_option("local")
    section.locator('input[name="server-gpus"]').fill("0")
    section.locator('input[name="server-idleTimeout"]').fill("30m")
    section.locator(".jp-Mlk-launchServer").click()
    row = section.locator(".jp-Mlk-serverRow[data-server='scratch']")
    row.wait_for()
    row.locator("[data-state='ready']").first.wait_for(timeout=120_000)
    link = row.locator(".jp-Mlk-openServer")
    assert (link.get_attribute("href") or "").startswith("http://127.0.0.1:")
    _shot(page, "server-ready.png", "#jp-mlk-sidebar")

    row.locator(".jp-Mlk-stopServer").click()
    row.wait_for(state="detached", timeout=60_000)
    section.locator(".jp-Mlk-check input").check()
    section.locator(".jp-Mlk-serverRow[data-server='scratch'][data-state='stopped']").wait_for()
    _shot(page, "server-stopped.png", "#jp-mlk-sidebar")
