"""Notebook servers through the REST API: profiles, launch with live progress, stop."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

from jupyter_mlk.server.launches import LAUNCH_SCHEMA_ID
from tests.server.test_handlers import check_op

pytestmark = pytest.mark.slow


async def test_launch_progress_and_stop(
    jp_fetch: Any, jp_serverapp: Any, jp_root_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[dict[str, Any]] = []

    async def listener(logger: Any, schema_id: str, data: dict[str, Any]) -> None:
        events.append(data)

    jp_serverapp.event_logger.add_listener(schema_id=LAUNCH_SCHEMA_ID, listener=listener)
    resp = await jp_fetch("mlk", "api", "servers")
    listed = json.loads(resp.body)
    check_op(listed, "/servers", "get", "200")
    assert {p["name"] for p in listed["profiles"]} >= {"cpu", "gpu-1"}

    resp = await jp_fetch(
        "mlk",
        "api",
        "servers",
        method="POST",
        body=json.dumps({"name": "scratch", "memory": "2Gi"}),
    )
    assert resp.code == 202
    deadline = time.time() + 90
    while time.time() < deadline and not any(e["stage"] in ("ready", "failed") for e in events):
        await asyncio.sleep(0.2)
    stages = [e["stage"] for e in events]
    assert "ready" in stages, events
    assert stages.index("started") < stages.index("ready")
    resp = await jp_fetch("mlk", "api", "servers")
    server = next(s for s in json.loads(resp.body)["servers"] if s["name"] == "scratch")
    assert server["state"] == "ready" and server["url"].startswith("http://127.0.0.1:")
    resp = await jp_fetch(
        "mlk", "api", "servers", "scratch", "open", follow_redirects=False, raise_error=False
    )
    assert resp.code == 302
    location = resp.headers["Location"]
    assert location.startswith(server["url"].rstrip("/") + "/lab?token=")
    assert "token" not in json.dumps(server)
    resp = await jp_fetch("mlk", "api", "servers", "scratch", "stop", method="POST", body="{}")
    stopped = json.loads(resp.body)
    check_op(stopped, "/servers/{name}/stop", "post", "200")
    assert stopped["state"] == "stopped"


async def test_a_gpu_launch_on_a_machine_without_gpus_is_a_400(
    jp_fetch: Any, jp_serverapp: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[dict[str, Any]] = []

    async def listener(logger: Any, schema_id: str, data: dict[str, Any]) -> None:
        events.append(data)

    jp_serverapp.event_logger.add_listener(schema_id=LAUNCH_SCHEMA_ID, listener=listener)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    await jp_fetch(
        "mlk", "api", "servers", method="POST", body=json.dumps({"name": "gpu", "gpus": 4})
    )
    deadline = time.time() + 30
    while time.time() < deadline and not any(e["stage"] == "failed" for e in events):
        await asyncio.sleep(0.2)
    failed = [e for e in events if e["stage"] == "failed"]
    assert failed and "GPU" in failed[-1]["message"]
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch("mlk", "api", "servers", method="POST", body=json.dumps({"gpus": 1}))
    assert info.value.code == 400
