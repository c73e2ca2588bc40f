"""The local backend: a ``jupyter server`` process on a loopback port, pinned to GPUs.

Each server runs in its own session (process group) with a fresh token, listens on a free
port of 127.0.0.1, and sees only its GPUs through ``CUDA_VISIBLE_DEVICES`` (indices in PCI
bus order, with ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` so they mean what ``nvidia-smi`` shows).
Its output goes to ``.mlk/launches/<id>/server.log``.

Every process of a launch carries ``MLK_LAUNCH_ID`` in its environment. Kernels start in a
session of their own (jupyter_client does that), so a process-group kill alone would leave
them behind when the server dies hard; :meth:`LocalBackend.stop` also ends every process
that carries the tag.

Memory: ``RLIMIT_AS`` is applied to the server right after it starts and is inherited by
its kernels. It limits each process's address space, not their sum (that needs cgroups,
which an unprivileged process cannot create portably), and it is skipped when GPUs are
given, because CUDA reserves far more address space than it uses and would fail to
initialise under any useful limit. ``cpu`` is not enforced locally.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import psutil

from spawner.backend import Backend, HandleSink
from spawner.errors import LaunchTimeoutError, ProfileError, ServerExitedError
from spawner.events import EventSink, ProgressEvent, Stage
from spawner.gpus import GpuInventory, choose_gpus, discover_gpus
from spawner.request import LaunchRequest, format_memory
from spawner.state import LaunchRecord

logger = logging.getLogger(__name__)

TAG_ENV = "MLK_LAUNCH_ID"
POLL_INTERVAL = 0.05
STOP_GRACE = 5.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def python_for(environment: str) -> str:
    """The Python executable of an environment prefix or path; ours when empty.

    Raises:
        ProfileError: the environment has no Python.
    """
    if not environment:
        return sys.executable
    path = Path(environment).expanduser()
    candidates = [path] if path.is_file() else [path / "bin" / "python", path / "python.exe"]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise ProfileError(
        f"environment {environment!r} has no Python executable",
        "give a virtualenv or conda prefix (with bin/python) or a python path",
    )


def server_command(request: LaunchRequest, port: int, root_dir: str) -> list[str]:
    """The ``jupyter server`` command line for a request (unless it brings its own)."""
    if request.command:
        return list(request.command)
    argv = [
        python_for(request.environment),
        "-m",
        "jupyter_server",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.base_url={request.base_url}",
        f"--ServerApp.root_dir={root_dir}",
    ]
    if request.idle_timeout > 0:
        # A backstop for when no launcher process is around to cull: the server stops
        # itself once it has had no kernels and no activity for the idle timeout.
        argv.append(f"--ServerApp.shutdown_no_activity_timeout={int(request.idle_timeout)}")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        argv.append("--allow-root")
    return argv


def server_env(
    request: LaunchRequest, launch_id: str, token: str, gpus: list[str]
) -> dict[str, str]:
    """The environment of the server process: ours, the request's, token, GPUs and tag."""
    env = dict(os.environ)
    env.update(request.env)
    env["JUPYTER_TOKEN"] = token
    env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
    env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
    env[TAG_ENV] = launch_id
    return env


def _same_process(pid: int, create_time: float) -> psutil.Process | None:
    """The process ``pid`` if it is still the one started at ``create_time``."""
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - create_time) > 0.5 or proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except psutil.Error:
        return None


def tagged_processes(launch_id: str) -> list[psutil.Process]:
    """Every live process of this user whose environment carries the launch's tag."""
    found = []
    uid = os.getuid()
    for proc in psutil.process_iter():
        try:
            if proc.uids().real != uid or proc.status() == psutil.STATUS_ZOMBIE:
                continue
            if proc.environ().get(TAG_ENV) == launch_id:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# Servers outlive the call that started them. Their Popen objects are kept here until
# stop() reaps them, so none is garbage-collected while its process runs (which would
# warn, and would leave a zombie once the server exits).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


class _PortTakenError(Exception):
    """Another process bound the chosen port between our probe and the server's bind."""


class LocalBackend(Backend):
    """Servers as processes on this machine (see the module docstring for limits)."""

    name = "local"

    def __init__(self, inventory: GpuInventory | None = None) -> None:
        self._inventory = inventory

    @property
    def inventory(self) -> GpuInventory:
        """The GPUs present, discovered once per backend instance."""
        if self._inventory is None:
            self._inventory = discover_gpus()
        return self._inventory

    def allocate(self, request: LaunchRequest, held: set[str]) -> list[str]:
        """Choose free GPUs among those present (see :func:`spawner.gpus.choose_gpus`)."""
        chosen = choose_gpus(self.inventory, request.gpus, request.gpu_kind, held)
        return [gpu.index for gpu in chosen]

    def run(
        self,
        record: LaunchRecord,
        request: LaunchRequest,
        token: str,
        emit: EventSink,
        save_handle: HandleSink,
    ) -> str:
        """Start ``jupyter server`` and wait until its API answers (one retry on a port race)."""
        for attempt in (1, 2):
            port = request.port or free_port()
            gpu_text = ",".join(record.gpus) if record.gpus else "none"
            emit(ProgressEvent(Stage.SCHEDULED, f"port {port} on 127.0.0.1, GPUs: {gpu_text}"))
            proc, handle = self._spawn(record, request, token, port)
            save_handle(handle)
            emit(ProgressEvent(Stage.STARTED, f"jupyter server started as process {proc.pid}"))
            try:
                return self._wait_ready(proc, handle, request)
            except _PortTakenError:
                if attempt == 2 or request.port:
                    raise ServerExitedError(
                        f"port {port} was taken by another process", "launch again"
                    ) from None
                logger.info("launch %s: port %s taken, retrying on another", record.id, port)
        raise AssertionError("unreachable")

    def _spawn(
        self, record: LaunchRecord, request: LaunchRequest, token: str, port: int
    ) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
        run_dir = Path(record.handle.get("run_dir", "."))
        log_path = run_dir / "server.log"
        root_dir = request.root_dir or os.getcwd()
        argv = server_command(request, port, root_dir)
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=server_env(request, record.id, token, record.gpus),
                cwd=root_dir,
                start_new_session=True,
            )
        _CHILDREN[proc.pid] = proc
        memory_note = self._limit_memory(proc.pid, request, record.gpus)
        handle = {
            **record.handle,
            "pid": proc.pid,
            "create_time": psutil.Process(proc.pid).create_time(),
            "port": port,
            "url": f"http://127.0.0.1:{port}{request.base_url}",
            "log": str(log_path),
            "memory_limit": memory_note,
        }
        logger.info("launch %s: process %s on port %s (%s)", record.id, proc.pid, port, argv[0])
        return proc, handle

    @staticmethod
    def _limit_memory(pid: int, request: LaunchRequest, gpus: list[str]) -> str:
        if request.memory is None:
            return "none requested"
        if gpus:
            logger.warning(
                "memory limit %s not enforced: CUDA needs unlimited address space; "
                "watch usage with nvidia-smi and top",
                format_memory(request.memory),
            )
            return "not enforced with GPUs (RLIMIT_AS breaks CUDA)"
        import resource

        try:
            resource.prlimit(pid, resource.RLIMIT_AS, (request.memory, request.memory))
        except (OSError, AttributeError, ValueError) as exc:
            logger.warning("memory limit not applied to %s: %s", pid, exc)
            return f"not enforced: {exc}"
        return f"RLIMIT_AS {format_memory(request.memory)} per process"

    def _wait_ready(
        self, proc: subprocess.Popen[bytes], handle: dict[str, Any], request: LaunchRequest
    ) -> str:
        url = str(handle["url"])
        deadline = time.monotonic() + request.start_timeout
        while time.monotonic() < deadline:
            code = proc.poll()
            if code is not None:
                tail = _log_tail(Path(handle["log"]))
                if "already in use" in tail or "Address already in use" in tail:
                    raise _PortTakenError()
                raise ServerExitedError(
                    f"the server exited with status {code} before it was ready; log tail:\n{tail}",
                    f"fix the error above (full log: {handle['log']})",
                )
            if _answers(url + "api"):
                return url
            time.sleep(POLL_INTERVAL)
        raise LaunchTimeoutError(
            f"the server process {proc.pid} runs but did not answer {url}api within "
            f"{request.start_timeout:.0f}s; log tail:\n{_log_tail(Path(handle['log']))}",
            "raise start_timeout if the environment is slow to import",
        )

    def is_alive(self, record: LaunchRecord) -> bool:
        """Whether the recorded server process (same pid and start time) still runs."""
        pid, created = record.handle.get("pid"), record.handle.get("create_time")
        if pid is None:
            return False
        if _same_process(int(pid), float(created or 0)) is not None:
            return True
        child = _CHILDREN.pop(int(pid), None)
        if child is not None:
            child.poll()  # collect the exit status, so no zombie stays behind
        return False

    def stop(self, record: LaunchRecord, delete_volume: bool = False) -> None:
        """End the server, its process group and every process tagged with the launch id."""
        pid, created = record.handle.get("pid"), record.handle.get("create_time")
        server = _same_process(int(pid), float(created or 0)) if pid is not None else None
        victims: dict[int, psutil.Process] = {p.pid: p for p in tagged_processes(record.id)}
        if server is not None:
            with contextlib.suppress(psutil.Error):
                victims.update({p.pid: p for p in server.children(recursive=True)})
            victims[server.pid] = server
            # SIGTERM first: jupyter server then shuts its kernels down cleanly.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(server.pid, signal.SIGTERM)
            with contextlib.suppress(psutil.Error):
                server.wait(STOP_GRACE)
        alive = [p for p in victims.values() if p.is_running()]
        for proc in alive:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        psutil.wait_procs(alive, timeout=STOP_GRACE)
        if server is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(server.pid, signal.SIGKILL)
        child = _CHILDREN.pop(int(pid), None) if pid is not None else None
        if child is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(STOP_GRACE)
        logger.info("launch %s: stopped (%d processes)", record.id, len(victims))


# Loopback servers must never be reached through an HTTP proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _answers(url: str) -> bool:
    """Whether ``url`` answers 200 right now (connection refused means not yet)."""
    try:
        with _OPENER.open(url, timeout=2) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False
