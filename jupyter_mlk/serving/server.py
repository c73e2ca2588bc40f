"""The local inference server: one process per workspace hosting every local deployment.

Built on tornado; the protocol handling is in :mod:`~jupyter_mlk.serving.protocol` and the
batching and canary split in :mod:`~jupyter_mlk.serving.runtime`. The server follows the
deployment tables of the workspace database: it polls their generation (and is poked by
the CLI for an immediate update), loads new versions in a background thread while the
current ones keep serving, then swaps the routing table in one assignment.

This module is the only part of the serving engine that imports tornado; the engine
starts it as a separate process (``python -m jupyter_mlk.serving.server``) or runs it in
the foreground (``jupyter mlk serve``).
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import fcntl
import logging
import os
import signal
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import tornado.httpserver
import tornado.netutil
import tornado.web

from jupyter_mlk import __version__
from jupyter_mlk.errors import ServingError
from jupyter_mlk.serving import protocol
from jupyter_mlk.serving.formats import load_model
from jupyter_mlk.serving.runtime import LoadedVersion, PredictError, Route
from jupyter_mlk.serving.state import DeploymentStore
from jupyter_mlk.store.db import process_start
from jupyter_mlk.store.workspace import Workspace

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5
DRAIN_SECONDS = 10.0


class InferenceServer:
    """Routing table, loaded versions and reconciliation with the workspace database."""

    def __init__(self, ws: Workspace, host: str, port: int) -> None:
        self.ws = ws
        self.host = host
        self.port = port
        self.store = DeploymentStore(ws.state / "mlk.db")
        self.routes: dict[str, Route] = {}
        self.loaded: dict[tuple[str, int], LoadedVersion] = {}
        self.failed: dict[tuple[str, int], str] = {}
        self.ready = False
        self._lock = asyncio.Lock()
        self._predictors = ThreadPoolExecutor(
            max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="mlk-predict"
        )
        self._loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlk-load")
        self._seen_generation = -1

    @property
    def url(self) -> str:
        shown = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        if ":" in shown:
            shown = f"[{shown}]"
        return f"http://{shown}:{self.port}"

    # ---- reconciliation -----------------------------------------------------------------
    async def poll(self) -> None:
        """Reconcile whenever another process changed the deployments."""
        while True:
            try:
                if self.store.generation() != self._seen_generation:
                    await self.reconcile()
            except Exception:
                log.exception("reconciling the deployments failed; retrying")
            await asyncio.sleep(POLL_SECONDS)

    async def reconcile(self) -> int:
        """Load what the database asks for, then swap the routing table; return generation."""
        async with self._lock:
            generation = self.store.generation()
            deployments = [d for d in self.store.all() if d["backend"] == "local"]
            wanted: dict[tuple[str, int], dict[str, Any]] = {}
            for dep in deployments:
                by_number = {v["version"]: v for v in dep["versions"]}
                for number in (dep["stable_version"], dep["canary_version"]):
                    if number is not None and number in by_number:
                        wanted[(dep["name"], number)] = by_number[number]
            for key, row in wanted.items():
                if key not in self.loaded and key not in self.failed:
                    await self._load(key, row)
            self._swap(deployments)
            self.loaded = {k: v for k, v in self.loaded.items() if k in wanted}
            self.failed = {k: v for k, v in self.failed.items() if k in wanted}
            self._seen_generation = generation
            self.store.set_server(applied=generation)
            self.ready = True
            return generation

    async def _load(self, key: tuple[str, int], row: dict[str, Any]) -> None:
        name, number = key
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        try:
            model = await loop.run_in_executor(
                self._loader, load_model, Path(row["path"]), row["variable"]
            )
        except Exception as exc:  # recorded for the deployer to report; keep serving
            message = str(exc) if isinstance(exc, ServingError) else f"{type(exc).__name__}: {exc}"
            self.failed[key] = message
            self.store.set_status(name, number, "FAILED", message)
            log.warning("deployment %s v%s failed to load: %s", name, number, message)
            return
        self.loaded[key] = LoadedVersion(name, number, model, self._predictors)
        self.store.set_status(name, number, "RUNNING")
        log.info(
            "deployment %s v%s loaded (%s) in %.2fs",
            name,
            number,
            model.format,
            time.monotonic() - started,
        )

    def _swap(self, deployments: list[dict[str, Any]]) -> None:
        routes: dict[str, Route] = {}
        for dep in deployments:
            name = dep["name"]
            old = self.routes.get(name)
            stable = self.loaded.get((name, dep["stable_version"]))
            if stable is None and old is not None:
                stable = old.stable  # the new version is not loaded: keep serving the old
            canary = None
            if dep["canary_version"] is not None:
                canary = self.loaded.get((name, dep["canary_version"]))
            if stable is None:
                continue
            route = Route(stable, canary, int(dep["canary_percent"] or 0))
            if old is not None:
                route._count = old._count
            routes[name] = route
            if dep.get("url") != self.url + f"/v1/models/{name}":
                self.store.set_url(name, self.url + f"/v1/models/{name}")
        self.routes = routes  # one assignment: a request sees the old table or the new

    def route(self, name: str) -> Route:
        """The route of a deployment.

        Raises:
            RequestError: the deployment is unknown (404) or still loading (503).
        """
        route = self.routes.get(name)
        if route is not None:
            return route
        if self.store.find(name) is not None:
            failed = [m for (n, _), m in self.failed.items() if n == name]
            if failed:
                raise protocol.RequestError(f"model {name!r} failed to load: {failed[0]}", 503)
            raise protocol.RequestError(f"model {name!r} is loading; retry shortly", 503)
        known = ", ".join(sorted(self.routes)) or "none"
        raise protocol.RequestError(
            f"model {name!r} is not deployed on this server (deployed: {known}); "
            "`jupyter mlk deploy MODEL --name NAME` deploys one",
            404,
        )

    def in_flight(self) -> int:
        return sum(v.in_flight for v in self.loaded.values())

    def close(self) -> None:
        self._predictors.shutdown(wait=False)
        self._loader.shutdown(wait=False)


# ---- HTTP -----------------------------------------------------------------------------------
class _Handler(tornado.web.RequestHandler):
    """JSON in, JSON out; every error becomes ``{"error": "..."}``."""

    server: InferenceServer

    def initialize(self, server: InferenceServer) -> None:
        self.server = server

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Server", f"jupyter-mlk/{__version__}")

    def send_json(self, body: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(protocol.dumps(body))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, protocol.RequestError):
            status_code, message = exc.status, str(exc)
        elif isinstance(exc, PredictError):
            message = str(exc)
        elif isinstance(exc, tornado.web.HTTPError):
            message = exc.log_message or self._reason
        elif status_code >= 500:
            message = "internal error in the inference server; its log has the details"
        else:
            message = self._reason
        self.set_status(status_code)
        self.finish(protocol.dumps({"error": message}))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, (protocol.RequestError, tornado.web.HTTPError, PredictError)):
            return  # the caller's error, or already logged where it was decided
        super().log_exception(typ, value, tb)


class RootHandler(_Handler):
    def get(self) -> None:
        self.send_json({"status": "alive"})


class LiveHandler(_Handler):
    def get(self) -> None:
        self.send_json({"live": True})


class ReadyHandler(_Handler):
    def get(self) -> None:
        ready = self.server.ready
        self.send_json({"ready": ready}, 200 if ready else 503)


class ServerMetadataHandler(_Handler):
    def get(self) -> None:
        self.send_json({"name": "jupyter-mlk", "version": __version__, "extensions": []})


class V1ListHandler(_Handler):
    def get(self) -> None:
        self.send_json({"models": sorted(self.server.routes)})


class V1ModelHandler(_Handler):
    def get(self, name: str) -> None:
        self.server.route(name)
        self.send_json({"name": name, "ready": True})


class V1PredictHandler(_Handler):
    async def post(self, name: str) -> None:
        version = self.server.route(name).pick()
        payload = protocol.parse_json(self.request.body)
        item = protocol.v1_input(payload, version.model, name)
        predictions = await version.predict(item)
        self.set_header("X-Mlk-Model-Version", str(version.version))
        self.send_json(protocol.v1_response(predictions))


class V2ModelHandler(_Handler):
    def get(self, name: str) -> None:
        route = self.server.route(name)
        self.send_json(_v2_metadata(name, route))


class V2ModelReadyHandler(_Handler):
    def get(self, name: str) -> None:
        self.server.route(name)
        self.send_json({"name": name, "ready": True})


class V2InferHandler(_Handler):
    async def post(self, name: str) -> None:
        version = self.server.route(name).pick()
        payload = protocol.parse_json(self.request.body, protocol._V2_SHAPE)
        tensors = protocol.v2_tensors(payload)
        item = protocol.v2_input(tensors, version.model, name)
        predictions = await version.predict(item)
        self.set_header("X-Mlk-Model-Version", str(version.version))
        body = protocol.v2_response(
            predictions, name, str(version.version), protocol.request_id(payload)
        )
        self.send_json(body)


class ReconcileHandler(_Handler):
    async def post(self) -> None:
        if self.request.remote_ip not in ("127.0.0.1", "::1"):
            raise protocol.RequestError("reconcile is only taken from this machine", 403)
        applied = await self.server.reconcile()
        self.send_json({"applied": applied})


class NotFoundHandler(_Handler):
    def prepare(self) -> None:
        raise protocol.RequestError(
            f"no endpoint {self.request.path}; see /v1/models/NAME:predict and "
            "/v2/models/NAME/infer",
            404,
        )


def _v2_metadata(name: str, route: Route) -> dict[str, Any]:
    model = route.stable.model
    if model.feature_names:
        inputs = [{"name": f, "datatype": "FP64", "shape": [-1]} for f in model.feature_names]
    else:
        inputs = [{"name": "input-0", "datatype": "FP64", "shape": [-1, model.n_features or -1]}]
    classes = getattr(model.obj, "classes_", None)
    out_type = "FP64"
    if classes is not None:
        import numpy as np

        out_type = protocol.v2_datatype(np.asarray(classes))
    return {
        "name": name,
        "versions": [str(v.version) for v in route.versions()],
        "platform": model.format,
        "inputs": inputs,
        "outputs": [{"name": "output-0", "datatype": out_type, "shape": [-1]}],
    }


def make_app(server: InferenceServer, access_log: bool = False) -> tornado.web.Application:
    """The tornado application with the V1 and V2 routes."""
    kw = {"server": server}
    name = r"([^/:]+)"
    routes: list[Any] = [
        (r"/", RootHandler, kw),
        (r"/v1/models", V1ListHandler, kw),
        (rf"/v1/models/{name}", V1ModelHandler, kw),
        (rf"/v1/models/{name}:predict", V1PredictHandler, kw),
        (r"/v2", ServerMetadataHandler, kw),
        (r"/v2/health/live", LiveHandler, kw),
        (r"/v2/health/ready", ReadyHandler, kw),
        (rf"/v2/models/{name}", V2ModelHandler, kw),
        (rf"/v2/models/{name}/ready", V2ModelReadyHandler, kw),
        (rf"/v2/models/{name}/infer", V2InferHandler, kw),
        (r"/_mlk/reconcile", ReconcileHandler, kw),
    ]
    settings: dict[str, Any] = {
        "default_handler_class": NotFoundHandler,
        "default_handler_args": kw,
        "compress_response": False,
    }
    if not access_log:
        settings["log_function"] = lambda handler: None
    return tornado.web.Application(routes, **settings)


# ---- process ------------------------------------------------------------------------------
def _lock(ws: Workspace) -> Any:
    """Hold the workspace's server lock for the life of this process.

    Raises:
        ServingError: another server holds it.
    """
    path = ws.state / "serving" / "server.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(path, "a+")  # noqa: SIM115 - held open until the process exits
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        fh.close()
        row = DeploymentStore(ws.state / "mlk.db").server()
        raise ServingError(
            f"an inference server for this workspace is already running (pid {row['pid']}, "
            f"http://{row['host']}:{row['port']}); use it, or stop it first "
            "(`jupyter mlk serve --stop`)"
        ) from exc
    return fh


def _bind(host: str, port: int | None, recorded: int | None) -> list[socket.socket]:
    if port is not None:
        try:
            return tornado.netutil.bind_sockets(port, host)
        except OSError as exc:
            raise ServingError(
                f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port"
            ) from exc
    if recorded:
        try:
            return tornado.netutil.bind_sockets(recorded, host)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            log.warning("port %s (used before) is taken; deployments move to a new port", recorded)
    return tornado.netutil.bind_sockets(0, host)


async def serve_until(
    ws: Workspace,
    host: str,
    port: int | None,
    access_log: bool = False,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve in the running event loop until ``stop`` is set (default: SIGTERM or SIGINT)."""
    store = DeploymentStore(ws.state / "mlk.db")
    sockets = _bind(host, port, store.server().get("port"))
    actual = sockets[0].getsockname()[1]
    server = InferenceServer(ws, host, actual)
    http = tornado.httpserver.HTTPServer(make_app(server, access_log), xheaders=False)
    http.add_sockets(sockets)
    pid = os.getpid()
    store.reset_local()
    store.set_server(
        pid=pid, pid_started=process_start(pid), host=host, port=actual, started=time.time()
    )
    if host not in ("127.0.0.1", "::1", "localhost"):
        log.warning("the inference server listens on %s: other machines can reach it", host)
    log.info("inference server for %s listening on %s (pid %s)", ws.root, server.url, pid)
    print(f"serving {ws.root} on {server.url}", flush=True)
    loop = asyncio.get_running_loop()
    if stop is None:
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    poller = loop.create_task(server.poll())
    await stop.wait()
    # Stop accepting, then let requests already taken finish before the process ends.
    http.stop()
    deadline = time.monotonic() + DRAIN_SECONDS
    while server.in_flight() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    poller.cancel()
    await http.close_all_connections()
    server.close()
    if store.server().get("pid") == pid:
        store.set_server(pid=None, pid_started=None)
    store.close()
    server.store.close()
    log.info("inference server %s stopped", server.url)


def run_server(
    root: str | None, host: str = "127.0.0.1", port: int | None = None, access_log: bool = False
) -> None:
    """Serve the workspace's local deployments until SIGTERM or SIGINT.

    Raises:
        ServingError: another server is running for the workspace, or the port is taken.
    """
    ws = Workspace(root)
    lock = _lock(ws)
    try:
        asyncio.run(serve_until(ws, host, port, access_log))
    finally:
        lock.close()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the detached server process."""
    parser = argparse.ArgumentParser(prog="python -m jupyter_mlk.serving.server")
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--access-log", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        run_server(args.workspace, args.host, args.port, args.access_log)
    except ServingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
