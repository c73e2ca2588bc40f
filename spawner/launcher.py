"""The launcher: resolve a request, start a server on a backend, follow it, stop it, cull it.

One :class:`Launcher` per process. It keeps every launch in the workspace's SQLite store
(:mod:`spawner.state`), so ``jupyter mlk servers`` in another shell, the server extension
and a restarted Hub all see the same servers.
"""

from __future__ import annotations

import getpass
import logging
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from spawner.activity import fetch_activity, idle_seconds
from spawner.backend import Backend
from spawner.config import LauncherConfig, load_launcher_config
from spawner.errors import (
    ClassifiedLaunchError,
    ProfileError,
    ServerExistsError,
    ServerNotFoundError,
)
from spawner.events import EventSink, ProgressEvent, Stage, ignore_event
from spawner.request import LaunchRequest, resolve_request
from spawner.slugs import multi_slug
from spawner.state import LaunchRecord, LaunchStore, workspace_dir

logger = logging.getLogger(__name__)


def launch_id(owner: str, name: str) -> str:
    """The stable, collision-free id (and Kubernetes name) of ``owner``'s server ``name``."""
    return multi_slug(["mlk", owner, name])


class Launcher:
    """Start, list, stop and cull notebook servers of one workspace.

    Args:
        workspace: where ``.mlk/`` lives; ``$MLK_HOME`` or the current directory if None.
        config: launcher settings; read from the Jupyter config path when None.
        backends: backend instances by name, to replace the defaults (tests, the Hub).
    """

    def __init__(
        self,
        workspace: Path | None = None,
        config: LauncherConfig | None = None,
        backends: Mapping[str, Backend] | None = None,
    ) -> None:
        self.workspace = workspace or workspace_dir()
        self.config = config or load_launcher_config(self.workspace)
        self.store = LaunchStore(self.workspace)
        self._backends: dict[str, Backend] = dict(backends or {})
        self._lock = threading.Lock()

    def backend(self, name: str) -> Backend:
        """The backend called ``name``, created on first use (Kubernetes loads lazily)."""
        with self._lock:
            if name not in self._backends:
                self._backends[name] = self._make_backend(name)
            return self._backends[name]

    def _make_backend(self, name: str) -> Backend:
        if name == "local":
            from spawner.local import LocalBackend

            return LocalBackend()
        if name == "kubernetes":
            from spawner.kube.backend import KubernetesBackend

            return KubernetesBackend.from_config(self.config)
        raise ProfileError(f"backend {name!r} is unknown", "use local or kubernetes")

    def resolve(
        self,
        name: str,
        owner: str | None = None,
        profile: str = "",
        overrides: Mapping[str, Any] | None = None,
    ) -> LaunchRequest:
        """Build a fresh request from the configured profiles (see :func:`resolve_request`)."""
        values = {"backend": self.config.default_backend, **dict(overrides or {})}
        return resolve_request(
            name, owner or getpass.getuser(), self.config.profiles, profile, values
        )

    def launch(self, request: LaunchRequest, on_event: EventSink = ignore_event) -> LaunchRecord:
        """Start a server and return its record once it is ready.

        Args:
            request: a resolved request (see :meth:`resolve`).
            on_event: called with every progress event, from this thread.

        Returns:
            The ready record; its ``url`` plus :meth:`token` opens the server.

        Raises:
            ClassifiedLaunchError: the server cannot start; the record is kept as failed
                and everything the launch created, except a workspace volume, is removed.
        """
        backend = self.backend(request.backend)
        self.refresh(request.backend)
        started = time.monotonic()
        record = LaunchRecord(
            id=launch_id(request.owner, request.name),
            name=request.name,
            owner=request.owner,
            backend=request.backend,
            state="starting",
            stage=Stage.REQUESTED.value,
            request=request.to_public_dict(),
        )
        try:
            record = self.store.reserve(record, lambda held: backend.allocate(request, held))
        except ServerExistsError:
            raise
        except ClassifiedLaunchError as exc:
            # Refused before anything started: keep the refusal so `servers --all` and
            # the panel can show why.
            self.store.save(
                replace(
                    record,
                    state="failed",
                    stage="failed",
                    error=str(exc),
                    error_code=exc.code,
                    stopped_at=time.time(),
                )
            )
            raise
        record = replace(record, handle={"run_dir": str(self.store.run_dir(record.id))})
        token = secrets.token_hex(24)
        self.store.write_token(record.id, token)
        self.store.save(record)

        def emit(event: ProgressEvent) -> None:
            self.store.add_event(record.id, event)
            logger.info("launch %s: %s: %s", record.id, event.stage.value, event.message)
            on_event(event)

        def save_handle(handle: dict[str, Any]) -> None:
            nonlocal record
            record = replace(record, handle=handle, url=str(handle.get("url", record.url)))
            self.store.save(record)

        emit(ProgressEvent(Stage.REQUESTED, f"{request.backend} launch of {request.name!r}"))
        try:
            url = backend.run(record, request, token, emit, save_handle)
        except BaseException as exc:
            self._fail(record, backend, exc, emit)
            raise
        record = replace(record, state="ready", stage="ready", url=url, ready_at=time.time())
        self.store.save(record)
        elapsed = time.monotonic() - started
        emit(ProgressEvent(Stage.READY, f"ready at {url} after {elapsed:.1f}s"))
        return replace(record, stage="ready")

    def _fail(
        self, record: LaunchRecord, backend: Backend, exc: BaseException, emit: EventSink
    ) -> None:
        code = exc.code if isinstance(exc, ClassifiedLaunchError) else "internal"
        message = str(exc) or type(exc).__name__
        emit(ProgressEvent(Stage.FAILED, message, detail={"code": code}))
        current = self.store.get(record.id)
        try:
            backend.stop(current, delete_volume=False)
        except Exception:
            logger.exception("launch %s: cleanup after failure failed", record.id)
        self.store.save(
            replace(
                current,
                state="failed",
                stage="failed",
                error=message,
                error_code=code,
                stopped_at=time.time(),
            )
        )

    def token(self, record: LaunchRecord) -> str:
        """The server's token (kept in a 0600 file, never in the database)."""
        return self.store.read_token(record.id)

    def get(self, name: str, owner: str | None = None) -> LaunchRecord:
        """The latest launch of ``owner`` (default: this user) called ``name``, or by id.

        Raises:
            ServerNotFoundError: no such launch.
        """
        record = self.store.find(owner or getpass.getuser(), name)
        if record is None:
            try:
                return self.store.get(name)
            except ServerNotFoundError:
                raise ServerNotFoundError(
                    f"no server called {name!r}", "jupyter mlk servers lists the known ones"
                ) from None
        return record

    def refresh(self, backend: str = "") -> list[LaunchRecord]:
        """Mark active launches whose server is gone as stopped; return all records.

        Args:
            backend: only check launches of this backend (all when empty).
        """
        result = []
        for record in self.store.list():
            if record.is_active and backend in ("", record.backend):
                record = self._refresh_one(record)
            result.append(record)
        return result

    def _refresh_one(self, record: LaunchRecord) -> LaunchRecord:
        found = set(record.handle) - {"run_dir"}
        if record.state == "starting" and not found:
            # Another process may be between reserving and starting this launch; only a
            # launch older than its start timeout plus a margin is certainly abandoned.
            limit = float(record.request.get("start_timeout") or 300) + 60
            if time.time() - record.created_at < limit:
                return record
            alive = False
        else:
            try:
                alive = self.backend(record.backend).is_alive(record)
            except ClassifiedLaunchError as exc:
                logger.warning("launch %s: state unknown: %s", record.id, exc)
                return record
        if alive:
            return record
        record = replace(
            record,
            state="stopped",
            stage="stopped",
            error=record.error or "the server ended on its own",
            stopped_at=time.time(),
        )
        self.store.save(record)
        logger.info("launch %s: found ended", record.id)
        return record

    def poll(self, record: LaunchRecord) -> bool:
        """Whether the server of ``record`` still runs."""
        return record.is_active and self.backend(record.backend).is_alive(record)

    def stop(
        self, record: LaunchRecord, delete_volume: bool = False, reason: str = ""
    ) -> LaunchRecord:
        """Stop a server; ``delete_volume`` also deletes the workspace volume it created."""
        self.backend(record.backend).stop(record, delete_volume=delete_volume)
        stopped = replace(
            record,
            state="stopped",
            stage="stopped",
            error=reason or record.error,
            stopped_at=time.time(),
        )
        self.store.save(stopped)
        self.store.add_event(record.id, ProgressEvent(Stage.STOPPED, reason or "stopped"))
        logger.info("launch %s: stopped%s", record.id, f" ({reason})" if reason else "")
        return stopped

    def cull_idle(self, now: float | None = None) -> list[LaunchRecord]:
        """Stop every ready server idle for longer than its ``idle_timeout``.

        A server that cannot be reached (a pod URL outside the cluster, a Hub server) is
        left alone; JupyterHub deployments cull with jupyterhub-idle-culler instead.

        Returns:
            The records of the servers that were stopped.
        """
        now = time.time() if now is None else now
        culled = []
        for record in self.store.list(include_stopped=False):
            timeout = float(record.request.get("idle_timeout") or 0)
            if record.state != "ready" or timeout <= 0 or not record.url:
                continue
            activity = fetch_activity(record.url, self.token(record))
            if activity is None:
                continue
            idle = idle_seconds(activity, record.ready_at or record.created_at, now)
            if idle >= timeout:
                reason = f"culled after {idle:.0f}s without activity (idle_timeout {timeout:.0f}s)"
                culled.append(self.stop(record, reason=reason))
        return culled


class IdleCuller:
    """A daemon thread that calls :meth:`Launcher.cull_idle` every ``interval`` seconds."""

    def __init__(self, launcher: Launcher, interval: float | None = None) -> None:
        self.launcher = launcher
        self.interval = interval or launcher.config.cull_interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="mlk-idle-culler", daemon=True)

    def start(self) -> None:
        """Start culling in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop culling and wait for the thread to end."""
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.launcher.cull_idle()
            except Exception:
                logger.exception("idle culling pass failed; trying again in %ss", self.interval)
