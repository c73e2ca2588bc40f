"""REST handlers for notebook servers (the launcher): list, launch with progress, stop.

A launch goes on in a worker thread; its staged progress events are announced on
jupyter-server's event bus (``https://jupyter-mlk.org/events/launch``), so the panel shows
them live without polling, and the request returns at once with the record.
"""

from __future__ import annotations

import asyncio
import getpass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jupyter_server.auth.decorator import authorized
from tornado import web

from jupyter_mlk.server.handlers import MlkHandler

LAUNCH_SCHEMA_ID = "https://jupyter-mlk.org/events/launch"
LAUNCH_SCHEMA_PATH = Path(__file__).parent / "event_schemas" / "launch.yaml"
_FIELDS = {
    "profile": str,
    "backend": str,
    "image": str,
    "environment": str,
    "cpu": str,
    "memory": str,
    "gpus": int,
    "gpu_kind": str,
    "idle_timeout": str,
}


def _launcher(settings: dict[str, Any]) -> Any:
    from spawner import Launcher

    launcher = settings.get("mlk_launcher")
    if launcher is None:
        launcher = Launcher(Path(settings["mlk_workspace"]))
        settings["mlk_launcher"] = launcher
    return launcher


def _launch_error(exc: Exception) -> web.HTTPError:
    from spawner import LaunchError

    if isinstance(exc, LaunchError):
        return web.HTTPError(400, str(exc))
    raise exc


class ServersHandler(MlkHandler):
    """List notebook servers and profiles, or launch one."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        launcher = _launcher(self.settings)
        records = await self.in_thread(launcher.refresh)
        keys = ("name", "description", "gpus", "gpu_kind", "memory", "cpu", "backend", "default")
        profiles = [
            {
                **{k: p[k] for k in keys if k in p},
                "display_name": p.get("display_name", p.get("name")),
            }
            for p in launcher.config.profiles
        ]
        base = self.base_url.rstrip("/")
        servers = []
        for record in records:
            data = record.to_dict()
            if record.state == "ready" and record.backend == "local":
                data["open_url"] = f"{base}/mlk/api/servers/{quote(record.name, safe='')}/open"
            servers.append(data)
        self.reply({"servers": servers, "profiles": profiles})

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.body()
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise web.HTTPError(400, "give the server a 'name'")
        overrides: dict[str, Any] = {}
        for key, kind in _FIELDS.items():
            if body.get(key) in (None, ""):
                continue
            if not isinstance(body[key], kind) or isinstance(body[key], bool):
                what = "a whole number" if kind is int else "text"
                raise web.HTTPError(400, f"'{key}' must be {what}")
            overrides[key] = body[key]
        profile = overrides.pop("profile", "")
        launcher = _launcher(self.settings)
        try:
            request = launcher.resolve(name.strip(), getpass.getuser(), profile, overrides)
        except Exception as exc:
            raise _launch_error(exc) from None
        logger = self.serverapp.event_logger
        assert logger is not None
        loop = asyncio.get_running_loop()

        def announce(event: Any) -> None:
            data = {"name": request.name, **event.to_dict()}
            loop.call_soon_threadsafe(
                lambda: logger.emit(schema_id=LAUNCH_SCHEMA_ID, data=_event_data(data))
            )

        def run() -> None:
            try:
                launcher.launch(request, on_event=announce)
            except Exception as exc:  # the error is in the record and in the last event
                announce_error(exc)

        def announce_error(exc: Exception) -> None:
            data = {"name": request.name, "stage": "failed", "message": str(exc)}
            loop.call_soon_threadsafe(
                lambda: logger.emit(schema_id=LAUNCH_SCHEMA_ID, data=_event_data(data))
            )

        loop.run_in_executor(None, run)
        self.reply({"name": request.name, "state": "starting"}, status=202)


def _event_data(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": str(data.get("name", "")),
        "stage": str(data.get("stage", "")),
        "message": str(data.get("message", "")),
    }


class StopServerHandler(MlkHandler):
    """Stop a notebook server."""

    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        launcher = _launcher(self.settings)
        try:
            record = await self.in_thread(launcher.get, name)
            stopped = await self.in_thread(launcher.stop, record)
        except Exception as exc:
            from spawner import ServerNotFoundError

            if isinstance(exc, ServerNotFoundError):
                raise web.HTTPError(404, str(exc)) from None
            raise _launch_error(exc) from None
        self.reply(stopped.to_dict())


class OpenServerHandler(MlkHandler):
    """Send the browser to a ready local server with its token (the token never appears in
    the API's JSON; this redirect serves the server's own, authenticated user)."""

    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        launcher = _launcher(self.settings)
        try:
            record = await self.in_thread(launcher.get, name)
        except Exception as exc:
            from spawner import ServerNotFoundError

            if isinstance(exc, ServerNotFoundError):
                raise web.HTTPError(404, str(exc)) from None
            raise
        if record.state != "ready" or not record.url:
            raise web.HTTPError(409, f"server {name!r} is {record.state}, not ready")
        self.set_header("Cache-Control", "no-store")
        self.set_header("Referrer-Policy", "no-referrer")
        token = launcher.token(record) if record.backend == "local" else ""
        # JupyterLab, not the server's bare landing page, when the server has it
        target = record.url.rstrip("/") + ("/lab" if _has_lab() else "/")
        self.redirect(f"{target}?token={token}" if token else target)


def _has_lab() -> bool:
    import importlib.util

    return importlib.util.find_spec("jupyterlab") is not None


ROUTES: list[tuple[str, type[MlkHandler]]] = [
    (r"/mlk/api/servers", ServersHandler),
    (r"/mlk/api/servers/(?P<name>[^/]+)/stop", StopServerHandler),
    (r"/mlk/api/servers/(?P<name>[^/]+)/open", OpenServerHandler),
]
