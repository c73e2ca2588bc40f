"""Sweeps through the REST API, with their events."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

from jupyter_mlk.server.watcher import SWEEP_SCHEMA_ID
from tests.nbutil import write_notebook
from tests.server.test_handlers import check_op

pytestmark = pytest.mark.slow


async def test_a_sweep_started_from_the_api_runs_to_the_end(
    jp_fetch: Any, jp_serverapp: Any, jp_root_dir: Path
) -> None:
    events: list[dict[str, Any]] = []

    async def listener(logger: Any, schema_id: str, data: dict[str, Any]) -> None:
        events.append(data)

    jp_serverapp.event_logger.add_listener(schema_id=SWEEP_SCHEMA_ID, listener=listener)
    write_notebook(
        jp_root_dir / "nb.ipynb",
        [
            (["parameters"], "x = 1.0"),
            (["step:s"], "score = -(x - 0.5) ** 2"),
            (["metrics"], "score"),
        ],
    )
    body = {
        "path": "nb.ipynb",
        "objective": "score",
        "algorithm": "random",
        "max_trials": 3,
        "parallel": 1,
        "parameters": [
            {"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1"}}
        ],
    }
    resp = await jp_fetch("mlk", "api", "sweeps", method="POST", body=json.dumps(body))
    started = json.loads(resp.body)
    check_op(started, "/sweeps", "post", "201")
    deadline = time.time() + 90
    sweep: dict[str, Any] = {}
    while time.time() < deadline:
        resp = await jp_fetch("mlk", "api", "sweeps", started["id"])
        sweep = json.loads(resp.body)
        if sweep["state"] not in ("PENDING", "RUNNING"):
            break
        await asyncio.sleep(0.3)
    check_op(sweep, "/sweeps/{sweep_id}", "get", "200")
    assert sweep["state"] == "SUCCEEDED", sweep
    assert len(sweep["trials"]) == 3 and sweep["best"] is not None
    await asyncio.sleep(1.2)
    assert any(e["trial"] == -1 and e["state"] == "SUCCEEDED" for e in events), events
    assert any(e["trial"] >= 0 and e["state"] == "SUCCEEDED" for e in events)
    resp = await jp_fetch("mlk", "api", "sweeps")
    check_op(json.loads(resp.body), "/sweeps", "get", "200")


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (
            {
                "parameters": [
                    {
                        "name": "nope",
                        "parameterType": "int",
                        "feasibleSpace": {"min": "1", "max": "2"},
                    }
                ]
            },
            "nope",
        ),
        ({"algorithm": "pbt"}, "supported"),
        ({"objective": None}, "objectiveMetricName"),
    ],
)
async def test_bad_sweeps_are_400_naming_the_field(
    jp_fetch: Any, jp_root_dir: Path, change: dict[str, Any], needle: str
) -> None:
    write_notebook(jp_root_dir / "nb.ipynb", [(["parameters"], "x = 1"), (["step:s"], "y = x")])
    body = {
        "path": "nb.ipynb",
        "objective": "y",
        "parameters": [
            {"name": "x", "parameterType": "int", "feasibleSpace": {"min": "1", "max": "3"}}
        ],
        **change,
    }
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch("mlk", "api", "sweeps", method="POST", body=json.dumps(body))
    assert info.value.code == 400
    assert needle in json.loads(info.value.response.body)["message"]
