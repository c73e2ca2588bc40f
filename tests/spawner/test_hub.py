"""The JupyterHub Spawner: the spawn form, and start/progress/poll/stop through a real Hub.

The Hub runs as a subprocess with this repository's :class:`spawner.hub.MlkSpawner`, the
dummy authenticator and an in-memory proxy (configurable-http-proxy, a Node package, is
not installed here; the proxy only routes browser traffic, which this test does not use).
Everything else is real: the Hub's REST API, its spawn and poll loops, its progress
event stream, and ``jupyterhub-singleuser`` started by the launcher's local backend.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from spawner.hub import MlkSpawner
from spawner.local import free_port
from spawner.state import LaunchStore

REPO = Path(__file__).resolve().parents[2]
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

HUB_CONFIG = """
import sys
sys.path.insert(0, {repo!r})
from jupyterhub.proxy import Proxy

class MemoryProxy(Proxy):
    should_start = False
    routes = {{}}

    async def add_route(self, routespec, target, data):
        self.routes[routespec] = {{"routespec": routespec, "target": target, "data": data}}

    async def delete_route(self, routespec):
        self.routes.pop(routespec, None)

    async def get_all_routes(self):
        return dict(self.routes)

c.JupyterHub.proxy_class = MemoryProxy
c.JupyterHub.bind_url = "http://127.0.0.1:{public}"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{hub}"
c.JupyterHub.db_url = "sqlite:///{tmp}/hub.sqlite"
c.JupyterHub.cookie_secret_file = "{tmp}/cookie_secret"
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.spawner_class = "spawner.hub.MlkSpawner"
c.MlkSpawner.workspace = "{tmp}"
c.MlkSpawner.profiles = [
    {{"name": "small", "display_name": "Small", "memory": "3Gi", "default": True}},
    {{"name": "tiny", "display_name": "Tiny", "memory": "2Gi", "env": {{"PROFILE": "tiny"}}}},
]
# Answer the spawn request at once (202) so the test reads progress while it happens.
c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 0}}
c.Spawner.poll_interval = 1
c.Spawner.start_timeout = 90
c.Spawner.http_timeout = 60
c.JupyterHub.services = [{{"name": "tester", "api_token": {token!r}}}]
c.JupyterHub.load_roles = [
    {{"name": "tester", "scopes": ["admin:users", "admin:servers", "read:users"],
      "services": ["tester"]}}
]
"""


class Hub:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.token = secrets.token_hex(16)
        self.port = free_port()
        config = HUB_CONFIG.format(
            repo=str(REPO), public=free_port(), hub=self.port, tmp=tmp, token=self.token
        )
        (tmp / "jupyterhub_config.py").write_text(config)
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
        env.pop("MLK_HOME", None)
        self.log = open(tmp / "hub.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(tmp / "jupyterhub_config.py")],
            cwd=tmp,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.api = f"http://127.0.0.1:{self.port}/hub/api"

    def request(self, path: str, method: str = "GET", body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.api + path,
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        with OPENER.open(req, timeout=60) as response:
            text = response.read()
            return json.loads(text) if text else None

    def wait_up(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.tmp / "hub.log").read_text()
            try:
                self.request("/")
                return
            except (urllib.error.URLError, OSError):
                time.sleep(0.3)
        raise AssertionError("hub did not start: " + (self.tmp / "hub.log").read_text())

    def wait_user(self, predicate: Any, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            user = self.request("/users/alice")
            if predicate(user):
                return user  # type: ignore[no-any-return]
            time.sleep(0.3)
        raise AssertionError(f"user never reached the state: {user}")

    def progress(self) -> list[dict[str, Any]]:
        req = urllib.request.Request(
            self.api + "/users/alice/server/progress",
            headers={"Authorization": f"token {self.token}"},
        )
        events = []
        with OPENER.open(req, timeout=90) as response:
            for raw in response:
                line = raw.decode().strip()
                if line.startswith("data:"):
                    event = json.loads(line[5:])
                    events.append(event)
                    if event.get("ready") or event.get("failed"):
                        break
        return events

    def stop(self) -> None:
        with_tree = psutil.Process(self.proc.pid).children(recursive=True)
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        for child in with_tree:
            if child.is_running():
                child.kill()
        self.log.close()


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    instance = Hub(tmp_path)
    try:
        instance.wait_up()
        yield instance
    finally:
        instance.stop()


def test_the_spawn_form_lists_profiles_and_keeps_only_the_choice() -> None:
    spawner = MlkSpawner(
        profiles=[{"name": "gpu-1", "display_name": "1 <GPU>", "description": "A100"}]
    )
    assert 'value="gpu-1"' in spawner.options_form
    assert "1 &lt;GPU&gt;" in spawner.options_form
    assert spawner.options_from_form({"profile": ["gpu-1"], "gpus": ["8"]}) == {"profile": "gpu-1"}


@pytest.mark.slow
def test_a_real_hub_starts_polls_and_stops_servers_through_the_launcher(hub: Hub) -> None:
    hub.request("/users/alice", "POST", {})
    hub.request("/users/alice/server", "POST", {"profile": "tiny"})
    events = hub.progress()
    messages = [e.get("message", "") for e in events]
    for stage in ("requested:", "scheduled:", "started:", "ready:"):
        assert any(m.startswith(stage) for m in messages), messages
    assert events[-1].get("ready") is True

    user = hub.wait_user(lambda u: u["servers"].get("", {}).get("ready"))
    assert user["servers"][""]["url"] == "/user/alice/"
    store = LaunchStore(hub.tmp)
    [record] = [r for r in store.list() if r.owner == "alice" and r.state == "ready"]
    assert record.request["profile"] == "tiny" and record.request["env"].count("PROFILE") == 1
    assert "JUPYTERHUB_API_TOKEN" in record.request["env"]
    server = psutil.Process(record.handle["pid"])
    assert "jupyterhub-singleuser" in " ".join(server.cmdline())
    with OPENER.open(f"{record.url}api", timeout=10) as response:
        assert response.status == 200

    # The Hub's poll loop notices a server that died.
    os.killpg(record.handle["pid"], signal.SIGKILL)
    hub.wait_user(lambda u: "" not in u["servers"], timeout=30)

    # A second spawn with another profile gets a fresh request: nothing from "tiny" stays.
    # (An empty body would make the Hub reuse the previous user options.)
    hub.request("/users/alice/server", "POST", {"profile": "small"})
    hub.progress()
    hub.wait_user(lambda u: u["servers"].get("", {}).get("ready"))
    [again] = [r for r in store.list() if r.owner == "alice" and r.state == "ready"]
    assert again.request["profile"] == "small" and "PROFILE" not in again.request["env"]
    pid = again.handle["pid"]

    hub.request("/users/alice/server", "DELETE")
    hub.wait_user(lambda u: "" not in u["servers"])
    psutil.wait_procs([psutil.Process(pid)], timeout=10) if psutil.pid_exists(pid) else None
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert store.get(again.id).state == "stopped"
