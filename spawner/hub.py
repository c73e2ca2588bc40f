"""A JupyterHub Spawner on top of the launcher: local processes or Kubernetes pods.

Configure it in ``jupyterhub_config.py``::

    c.JupyterHub.spawner_class = "spawner.hub.MlkSpawner"
    c.MlkSpawner.backend = "kubernetes"
    c.MlkSpawner.profiles = [{"name": "gpu-1", "display_name": "1 GPU", "gpus": 1}]
    c.LauncherConfig.namespace = "jupyterhub-users"

The spawn form lists the profiles; a user's choice is resolved into a fresh request at
every start, so nothing set for one spawn (a profile's image, GPUs, env) survives into the
next. ``progress()`` yields the launcher's real stages. Idle culling of Hub servers is the
job of jupyterhub-idle-culler: the launcher's own culler needs the server token, which the
Hub does not hand out.
"""

from __future__ import annotations

import asyncio
import dataclasses
import html
import os
from pathlib import Path
from typing import Any

from jupyterhub.spawner import Spawner
from traitlets import Dict, Enum, List, Unicode, default

from spawner.config import DEFAULT_PROFILES, LauncherConfig
from spawner.errors import ServerNotFoundError
from spawner.events import STAGE_PROGRESS, ProgressEvent, Stage
from spawner.launcher import Launcher
from spawner.local import free_port


class MlkSpawner(Spawner):  # type: ignore[misc]  # JupyterHub ships no type information
    """Spawn each user's server through :class:`spawner.launcher.Launcher`."""

    backend = Enum(["local", "kubernetes"], default_value="local", help="Where servers run.").tag(
        config=True
    )

    profiles = List(
        Dict(),
        default_value=DEFAULT_PROFILES,
        help="Profiles offered in the spawn form (same keys as LauncherConfig.profiles).",
    ).tag(config=True)

    workspace = Unicode(
        "",
        help="Directory whose .mlk/ keeps launch records; the Hub's working directory if empty.",
    ).tag(config=True)

    _launchers: dict[str, Launcher] = {}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._events: asyncio.Queue[ProgressEvent] | None = None
        self.launch_id = ""

    @default("options_form")
    def _options_form_default(self) -> str:
        rows = []
        for index, profile in enumerate(self.profiles):
            name = html.escape(str(profile.get("name", "")))
            title = html.escape(str(profile.get("display_name", name)))
            text = html.escape(str(profile.get("description", "")))
            checked = " checked" if profile.get("default") or (index == 0) else ""
            rows.append(
                f'<label><input type="radio" name="profile" value="{name}"{checked}> '
                f"<strong>{title}</strong> {text}</label><br>"
            )
        return "\n".join(rows)

    def options_from_form(self, formdata: dict[str, list[str]]) -> dict[str, str]:
        """Keep only the chosen profile name from the submitted form."""
        return {"profile": (formdata.get("profile") or [""])[0]}

    @property
    def launcher(self) -> Launcher:
        """One launcher per workspace, shared by every spawner of this Hub."""
        root = Path(self.workspace or os.getcwd())
        key = str(root)
        if key not in self._launchers:
            config = LauncherConfig(config=self.config)
            config.profiles = list(self.profiles)
            self._launchers[key] = Launcher(root, config)
        return self._launchers[key]

    @property
    def events(self) -> asyncio.Queue[ProgressEvent]:
        """The queue between the launching thread and :meth:`progress`."""
        if self._events is None:
            self._events = asyncio.Queue()
        return self._events

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore the launch id after a Hub restart."""
        super().load_state(state)
        self.launch_id = str(state.get("launch_id", ""))

    def get_state(self) -> dict[str, Any]:
        """Persist the launch id in the Hub database."""
        state: dict[str, Any] = super().get_state()
        if self.launch_id:
            state["launch_id"] = self.launch_id
        return state

    def clear_state(self) -> None:
        """Forget the launch once the server is gone."""
        super().clear_state()
        self.launch_id = ""

    def _request(self) -> Any:
        overrides: dict[str, Any] = {"backend": self.backend}
        if self.backend == "local":
            self.ip, self.port = "127.0.0.1", free_port()
            overrides["port"] = self.port
        else:
            self.ip, self.port = "0.0.0.0", 8888
        request = self.launcher.resolve(
            self.name or "default",
            owner=self.user.name,
            profile=str(self.user_options.get("profile", "")),
            overrides=overrides,
        )
        args = list(self.get_args())
        if self.backend == "local" and hasattr(os, "geteuid") and os.geteuid() == 0:
            args.append("--allow-root")
        return dataclasses.replace(
            request,
            env={**request.env, **self.get_env()},
            command=(*self.cmd, *args),
            base_url=self.server.base_url if self.server else "/",
            start_timeout=float(self.start_timeout),
        )

    async def start(self) -> Any:
        """Launch through the launcher in a thread; return where the Hub finds the server."""
        request = self._request()
        loop = asyncio.get_running_loop()
        self._events = asyncio.Queue()
        queue = self._events

        def on_event(event: ProgressEvent) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, event)

        try:
            record = await asyncio.to_thread(self.launcher.launch, request, on_event)
        except Exception:
            self.launch_id = ""
            raise
        self.launch_id = record.id
        if self.backend == "local":
            return (self.ip, self.port)
        return record.url

    async def progress(self) -> Any:
        """Yield the launcher's stages as JupyterHub progress events until ready or failed."""
        while True:
            event = await self.events.get()
            yield {
                "progress": STAGE_PROGRESS[event.stage],
                "message": f"{event.stage.value}: {event.message}",
            }
            if event.stage in (Stage.READY, Stage.FAILED):
                return

    async def poll(self) -> int | None:
        """``None`` while the server runs, 0 once it is gone."""
        if not self.launch_id:
            return 0
        try:
            record = self.launcher.store.get(self.launch_id)
        except ServerNotFoundError:
            return 0
        alive = await asyncio.to_thread(self.launcher.poll, record)
        return None if alive else 0

    async def stop(self, now: bool = False) -> None:
        """Stop the server; its workspace volume is kept."""
        if not self.launch_id:
            return
        try:
            record = self.launcher.store.get(self.launch_id)
        except ServerNotFoundError:
            return
        await asyncio.to_thread(self.launcher.stop, record)
