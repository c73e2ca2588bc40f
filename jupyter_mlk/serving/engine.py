"""Deployment verbs shared by the CLI, the magics and the REST API.

Each function takes a :class:`~jupyter_mlk.store.workspace.Workspace` and returns plain
JSON-ready dicts; errors are :class:`~jupyter_mlk.errors.ServingError` (or the run
store's :class:`~jupyter_mlk.errors.RunError`) with a message that says what to do.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from jupyter_mlk.errors import ServingError
from jupyter_mlk.serving import kserve
from jupyter_mlk.serving.sources import ModelSource, export_model, resolve_model
from jupyter_mlk.serving.state import DeploymentStore
from jupyter_mlk.store.db import is_alive
from jupyter_mlk.store.workspace import Workspace

log = logging.getLogger(__name__)

BACKENDS = ("local", "kubernetes")
HOST_ENV = "MLK_SERVE_HOST"
PORT_ENV = "MLK_SERVE_PORT"
_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
START_SECONDS = 60.0
APPLY_SECONDS = 120.0


def store_of(ws: Workspace) -> DeploymentStore:
    """The deployment tables of a workspace."""
    return DeploymentStore(ws.state / "mlk.db")


def check_name(name: str) -> str:
    """A deployment name: lowercase letters, digits and '-', starting with a letter.

    Raises:
        ServingError: the name is not valid; the message suggests one that is.
    """
    if _NAME.match(name) and len(name) <= 45:
        return name
    slug = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    slug = re.sub(r"^[^a-z]+", "", slug)[:45].rstrip("-") or "model"
    raise ServingError(
        f"deployment name {name!r} is not valid: use lowercase letters, digits and '-', "
        f"starting with a letter, at most 45 characters (it becomes a Kubernetes and URL "
        f"name), e.g. {slug!r}"
    )


def _check_percent(percent: int | None) -> None:
    if percent is not None and not 0 <= percent <= 100:
        raise ServingError(f"canary percent {percent} is out of range; give 0 to 100")


# ---- deploy -------------------------------------------------------------------------------
def deploy_model(
    ws: Workspace,
    model_ref: str,
    name: str,
    *,
    canary_percent: int | None = None,
    backend: str = "local",
    dry_run: bool = False,
    namespace: str | None = None,
    resources: kserve.Resources | None = None,
    service_account: str | None = None,
    protocol_version: str | None = None,
    timeout: float = APPLY_SECONDS,
) -> dict[str, Any]:
    """Deploy a model as a new version of ``name``.

    Without ``canary_percent`` the new version takes all traffic once it is loaded (the
    previous one serves until then); with it, the new version is a canary next to the
    current one. ``dry_run`` resolves and checks everything and returns what would be
    deployed (with ``backend="kubernetes"``, the manifest) without changing anything.

    Returns:
        The deployment (see :func:`deployment_view`), or with ``dry_run`` a plan with
        ``dry_run: true`` and, for KServe, ``manifest``.

    Raises:
        ServingError: bad name, backend or percent; the model cannot be found or loaded;
            the server or the cluster refused it.
    """
    check_name(name)
    _check_percent(canary_percent)
    if backend not in BACKENDS:
        raise ServingError(f"unknown backend {backend!r}; choose {' or '.join(BACKENDS)}")
    store = store_of(ws)
    try:
        previous = store.find(name)
        _check_previous(name, previous, backend, canary_percent)
        source = resolve_model(ws, model_ref)
        if backend == "kubernetes":
            return _deploy_kserve(
                ws,
                store,
                source,
                name,
                previous,
                canary_percent,
                dry_run,
                namespace,
                resources,
                service_account,
                protocol_version,
            )
        if dry_run:
            return _plan(source, name, previous, canary_percent, backend)
        return _deploy_local(ws, store, source, name, previous, canary_percent, timeout)
    finally:
        store.close()


def _check_previous(
    name: str, previous: dict[str, Any] | None, backend: str, canary_percent: int | None
) -> None:
    if previous is not None and previous["backend"] != backend:
        raise ServingError(
            f"deployment {name!r} runs on the {previous['backend']} backend; deploy to it "
            f"with --backend {previous['backend']}, or pick another name"
        )
    if canary_percent is not None and (previous is None or previous["stable_version"] is None):
        raise ServingError(
            f"there is no current version of {name!r} to split traffic with; deploy it "
            "first without --canary-percent"
        )


def _plan(
    source: ModelSource,
    name: str,
    previous: dict[str, Any] | None,
    canary_percent: int | None,
    backend: str,
) -> dict[str, Any]:
    versions = previous["versions"] if previous else []
    return {
        "dry_run": True,
        "name": name,
        "backend": backend,
        "version": (max((v["version"] for v in versions), default=0) + 1),
        "model_ref": source.ref,
        "format": source.format,
        "model": source.model.describe(),
        "lineage": source.lineage,
        "canary_percent": canary_percent,
    }


def _deploy_local(
    ws: Workspace,
    store: DeploymentStore,
    source: ModelSource,
    name: str,
    previous: dict[str, Any] | None,
    canary_percent: int | None,
    timeout: float,
) -> dict[str, Any]:
    version = store.add_version(
        name,
        "local",
        model_ref=source.ref,
        fmt=source.format,
        path=str(source.path),
        variable=source.variable,
        lineage=source.lineage,
        canary_percent=canary_percent,
    )
    try:
        server = ensure_server(ws)
        _apply(server, timeout)
    except BaseException:
        store.revert_version(name, version, previous)
        raise
    row = next(v for v in store.get(name)["versions"] if v["version"] == version)
    if row["status"] != "RUNNING":
        store.revert_version(name, version, previous)
        _apply_quietly(ws)
        raise ServingError(
            f"version {version} of {name!r} ({source.ref}) could not be loaded by the "
            f"inference server: {row['error'] or row['status']}"
        )
    log.info("deployed %s v%s from %s (%s)", name, version, source.ref, source.format)
    return deployment_view(store.get(name), server)


def _deploy_kserve(
    ws: Workspace,
    store: DeploymentStore,
    source: ModelSource,
    name: str,
    previous: dict[str, Any] | None,
    canary_percent: int | None,
    dry_run: bool,
    namespace: str | None,
    resources: kserve.Resources | None,
    service_account: str | None,
    protocol_version: str | None,
) -> dict[str, Any]:
    namespace = namespace or (previous or {}).get("namespace") or kserve.default_namespace()
    service_account = service_account or os.environ.get(kserve.SERVICE_ACCOUNT_ENV) or None
    storage_uri = source.extra.get("s3_uri") or _upload(source, dry_run)
    number = max((v["version"] for v in (previous or {}).get("versions", [])), default=0) + 1
    options = {
        "resources": (resources or kserve.Resources()).__dict__,
        "service_account": service_account,
        "protocol_version": protocol_version,
    }
    manifest = _manifest(
        name,
        namespace,
        source.format,
        storage_uri,
        canary_percent,
        number,
        source.ref,
        source.lineage,
        options,
    )
    if dry_run:
        plan = _plan(source, name, previous, canary_percent, "kubernetes")
        plan.update(namespace=namespace, storage_uri=storage_uri, manifest=manifest)
        return plan
    with kserve.KServeClient() as kube:
        obj = kube.apply(manifest)
    status, url = kserve.status_of(obj)
    lineage = dict(source.lineage, kserve=options)
    version = store.add_version(
        name,
        "kubernetes",
        model_ref=source.ref,
        fmt=source.format,
        path=str(source.path),
        variable=source.variable,
        lineage=lineage,
        canary_percent=canary_percent,
        storage_uri=storage_uri,
        namespace=namespace,
        status=status,
    )
    store.set_url(name, url)
    log.info("deployed %s v%s to KServe in %s (%s)", name, version, namespace, storage_uri)
    return deployment_view(store.get(name), None)


def _manifest(
    name: str,
    namespace: str,
    fmt: str,
    storage_uri: str,
    canary_percent: int | None,
    version: int,
    model_ref: str,
    lineage: dict[str, Any],
    options: dict[str, Any],
) -> dict[str, Any]:
    res = options.get("resources") or {}
    return kserve.build_inference_service(
        name,
        namespace=namespace,
        model_format=fmt,
        storage_uri=storage_uri,
        canary_percent=canary_percent,
        resources=kserve.Resources(**res),
        service_account=options.get("service_account"),
        protocol_version=options.get("protocol_version"),
        annotations=kserve.lineage_annotations(version, model_ref, lineage),
    )


def _upload(source: ModelSource, dry_run: bool) -> str:
    """Put the model where KServe can fetch it; return the storageUri (a folder)."""
    import hashlib

    from jupyter_mlk.serving import s3

    bucket, prefix = s3.artifacts_prefix()
    with tempfile.TemporaryDirectory(prefix="mlk-export-") as tmp:
        path = export_model(source, Path(tmp))
        with open(path, "rb") as fh:
            digest = hashlib.file_digest(fh, "sha256").hexdigest()
        folder = "/".join(p for p in (prefix, "models", digest) if p)
        if not dry_run:
            s3.upload(path, bucket, f"{folder}/{path.name}")
    return f"s3://{bucket}/{folder}"


# ---- promote, rollback, traffic, undeploy -------------------------------------------------
def promote(ws: Workspace, name: str, timeout: float = APPLY_SECONDS) -> dict[str, Any]:
    """Make the canary of ``name`` its only version.

    Raises:
        ServingError: no such deployment, or it has no canary.
    """
    return _change(ws, name, "promote", timeout)


def rollback(ws: Workspace, name: str, timeout: float = APPLY_SECONDS) -> dict[str, Any]:
    """Drop the canary of ``name``; the stable version takes all traffic again.

    Raises:
        ServingError: no such deployment, or it has no canary.
    """
    return _change(ws, name, "rollback", timeout)


def set_traffic(
    ws: Workspace, name: str, percent: int, timeout: float = APPLY_SECONDS
) -> dict[str, Any]:
    """Give the canary of ``name`` ``percent`` of the requests (the panel's slider).

    Raises:
        ServingError: no such deployment, no canary, or a percent outside 0..100.
    """
    _check_percent(percent)
    return _change(ws, name, "traffic", timeout, percent)


def _change(
    ws: Workspace, name: str, action: str, timeout: float, percent: int | None = None
) -> dict[str, Any]:
    store = store_of(ws)
    try:
        dep = store.get(name)
        if dep["canary_version"] is None:
            raise ServingError(
                f"deployment {name!r} has no canary to {action.replace('traffic', 'split')}; "
                f"deploy a new version with `jupyter mlk deploy MODEL --name {name} "
                "--canary-percent P` first"
            )
        if dep["backend"] == "kubernetes":
            _kserve_change(dep, action, percent)
        if action == "promote":
            store.promote(name)
        elif action == "rollback":
            store.rollback(name)
        else:
            store.set_traffic(name, int(percent or 0))
        server = None
        if dep["backend"] == "local":
            server = running_server(ws)
            if server is not None:
                _apply(server, timeout)
        log.info("%s %s", action, name)
        return deployment_view(store.get(name), server)
    finally:
        store.close()


def _kserve_change(dep: dict[str, Any], action: str, percent: int | None) -> None:
    by_number = {v["version"]: v for v in dep["versions"]}
    chosen = by_number[dep["stable_version"] if action == "rollback" else dep["canary_version"]]
    canary = percent if action == "traffic" else None
    manifest = _manifest(
        dep["name"],
        dep["namespace"],
        chosen["format"],
        chosen["storage_uri"],
        canary,
        chosen["version"],
        chosen["model_ref"],
        chosen["lineage"],
        chosen["lineage"].get("kserve", {}),
    )
    with kserve.KServeClient() as kube:
        kube.apply(manifest)


def undeploy(ws: Workspace, name: str, timeout: float = APPLY_SECONDS) -> dict[str, Any]:
    """Remove a deployment and every version of it.

    Raises:
        ServingError: no such deployment, or the cluster refused the deletion.
    """
    store = store_of(ws)
    try:
        dep = store.get(name)
        if dep["backend"] == "kubernetes":
            with kserve.KServeClient() as kube:
                kube.delete(name, dep["namespace"])
        store.remove(name)
        if dep["backend"] == "local":
            server = running_server(ws)
            if server is not None:
                _apply(server, timeout)
        log.info("undeployed %s", name)
        return {"name": name, "removed": True}
    finally:
        store.close()


# ---- reading ------------------------------------------------------------------------------
def list_deployments(ws: Workspace) -> list[dict[str, Any]]:
    """Every deployment with versions, traffic split, lineage, URL and status."""
    store = store_of(ws)
    try:
        server = running_server(ws, store)
        return [deployment_view(d, server) for d in store.all()]
    finally:
        store.close()


def get_deployment(ws: Workspace, name: str) -> dict[str, Any]:
    """One deployment (see :func:`deployment_view`).

    Raises:
        ServingError: there is no deployment of that name.
    """
    store = store_of(ws)
    try:
        return deployment_view(store.get(name), running_server(ws, store))
    finally:
        store.close()


def deployment_view(dep: dict[str, Any], server: dict[str, Any] | None) -> dict[str, Any]:
    """The JSON shape of a deployment for the CLI, the REST API and the panel."""
    stable, canary = dep["stable_version"], dep["canary_version"]
    percent = int(dep["canary_percent"] or 0) if canary is not None else 0
    traffic = []
    if stable is not None:
        traffic.append({"version": stable, "role": "stable", "percent": 100 - percent})
    if canary is not None:
        traffic.append({"version": canary, "role": "canary", "percent": percent})
    live = {stable, canary} - {None}
    versions = [
        {
            "version": v["version"],
            "model_ref": v["model_ref"],
            "format": v["format"],
            "lineage": {k: val for k, val in v["lineage"].items() if k != "kserve"},
            "status": v["status"],
            "error": v["error"],
            "created": v["created"],
            "storage_uri": v["storage_uri"],
        }
        for v in dep["versions"]
    ]
    statuses = [v["status"] for v in dep["versions"] if v["version"] in live]
    status = (
        "RUNNING"
        if statuses and all(s == "RUNNING" for s in statuses)
        else ("FAILED" if "FAILED" in statuses else "PENDING")
    )
    url = dep["url"]
    if dep["backend"] == "local":
        if server is None:
            status = "STOPPED" if status == "RUNNING" else status
        else:
            url = f"{server['url']}/v1/models/{dep['name']}"
    base = url.rsplit("/v1/models/", 1)[0] if url else None
    return {
        "name": dep["name"],
        "backend": dep["backend"],
        "namespace": dep["namespace"],
        "status": status,
        "url": url,
        "endpoints": {
            "v1": f"{base}/v1/models/{dep['name']}:predict" if base else None,
            "v2": f"{base}/v2/models/{dep['name']}/infer" if base else None,
        },
        "traffic": traffic,
        "versions": versions,
        "created": dep["created"],
        "updated": dep["updated"],
    }


# ---- prediction ---------------------------------------------------------------------------
def predict(ws: Workspace, name: str, data: Any, timeout: float = 60.0) -> dict[str, Any]:
    """Send one request to a deployment and return its response body.

    ``data`` is a V1 body (``{"instances": ...}`` or ``{"inputs": ...}``), a V2 body
    (``{"inputs": [{"name", "shape", "datatype", "data"}]}``), or a bare list of rows.

    Raises:
        ServingError: unknown deployment, server not running, or the server answered with
            an error (its message is passed on).
    """
    store = store_of(ws)
    try:
        dep = store.get(name)
        server = running_server(ws, store) if dep["backend"] == "local" else None
    finally:
        store.close()
    if dep["backend"] == "local" and server is None:
        raise ServingError(
            "the local inference server is not running (stopped, or the machine restarted); "
            "start it with `jupyter mlk serve`"
        )
    base = server["url"] if server else str(dep["url"] or "").rsplit("/v1/models/", 1)[0]
    if not base:
        raise ServingError(f"deployment {name!r} has no URL yet; `jupyter mlk deployments`")
    if isinstance(data, list):
        data = {"instances": data}
    is_v2 = (
        isinstance(data, dict)
        and isinstance(data.get("inputs"), list)
        and any(isinstance(t, dict) and "datatype" in t for t in data["inputs"])
    )
    path = f"/v2/models/{name}/infer" if is_v2 else f"/v1/models/{name}:predict"
    status, body = _http(base, "POST", path, json.dumps(data).encode(), timeout)
    if status != 200:
        message = body.get("error") if isinstance(body, dict) else body
        raise ServingError(f"{name} answered {status}: {message}")
    return dict(body)


def _http(
    base: str, method: str, path: str, body: bytes | None = None, timeout: float = 30.0
) -> tuple[int, Any]:
    from urllib.parse import urlsplit

    parts = urlsplit(base)
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = cls(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
    except OSError as exc:
        raise ServingError(f"cannot reach {base}{path}: {exc}") from exc
    finally:
        conn.close()
    try:
        return resp.status, json.loads(raw)
    except ValueError:
        return resp.status, raw.decode("utf-8", "replace")


# ---- the local server process -------------------------------------------------------------
def running_server(ws: Workspace, store: DeploymentStore | None = None) -> dict[str, Any] | None:
    """The live local server of this workspace (pid, host, port, url), or None."""
    own = store is None
    store = store or store_of(ws)
    try:
        row = store.server()
    finally:
        if own:
            store.close()
    if not row.get("pid") or not row.get("port") or not is_alive(row["pid"], row["pid_started"]):
        return None
    host = row["host"] if row["host"] not in ("0.0.0.0", "", None) else "127.0.0.1"
    row["url"] = f"http://{host}:{row['port']}"
    return row


def ensure_server(ws: Workspace, timeout: float = START_SECONDS) -> dict[str, Any]:
    """The workspace's local server, started (detached) when it is not running.

    Raises:
        ServingError: the server did not come up; the message has its log's last lines.
    """
    server = running_server(ws)
    if server is not None:
        return server
    log_path = ws.state / "serving" / "server.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "jupyter_mlk.serving.server",
        "--workspace",
        str(ws.root),
        "--host",
        os.environ.get(HOST_ENV, "127.0.0.1"),
    ]
    if os.environ.get(PORT_ENV):
        cmd += ["--port", os.environ[PORT_ENV]]
    pid = _spawn_detached(cmd, log_path, ws.root)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        server = running_server(ws)
        if server is not None and _is_live(server["url"]):
            log.info("started the inference server %s (pid %s)", server["url"], server["pid"])
            return server
        if not is_alive(pid, None) and running_server(ws) is None:
            break  # it exited: another one held the lock and died, or it failed to start
        time.sleep(0.1)
    tail = log_path.read_text(errors="replace").splitlines()[-15:]
    raise ServingError(f"the inference server did not start (see {log_path}):\n" + "\n".join(tail))


# A throwaway process starts the server in a new session and exits at once, so the server
# is nobody's child: no zombie once it exits, and it outlives the command that started it.
_LAUNCHER = """
import subprocess, sys
with open(sys.argv[1], "ab") as out:
    proc = subprocess.Popen(sys.argv[2:], stdin=subprocess.DEVNULL, stdout=out,
                            stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
print(proc.pid)
"""


def _spawn_detached(cmd: list[str], log_path: Path, cwd: Path) -> int:
    done = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, str(log_path), *cmd],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        check=False,
    )
    try:
        return int(done.stdout.strip())
    except ValueError:
        raise ServingError(f"cannot start the inference server: {done.stderr.strip()}") from None


def _is_live(url: str) -> bool:
    try:
        status, _ = _http(url, "GET", "/v2/health/live", timeout=2.0)
    except ServingError:
        return False
    return status == 200


def _apply(server: dict[str, Any], timeout: float) -> None:
    """Have the server load the current state now, and wait until it has."""
    status, body = _http(server["url"], "POST", "/_mlk/reconcile", b"{}", timeout)
    if status != 200:
        raise ServingError(f"the inference server could not apply the change: {body}")


def _apply_quietly(ws: Workspace) -> None:
    server = running_server(ws)
    if server is not None:
        try:
            _apply(server, APPLY_SECONDS)
        except ServingError as exc:
            log.warning("the inference server did not take the change back: %s", exc)


def serve(ws: Workspace, host: str | None = None, port: int | None = None) -> None:
    """Run the local server in the foreground, restoring every local deployment.

    Raises:
        ServingError: a server is already running for this workspace.
    """
    from jupyter_mlk.serving.server import run_server

    if port is None and os.environ.get(PORT_ENV):
        port = int(os.environ[PORT_ENV])
    run_server(str(ws.root), host or os.environ.get(HOST_ENV, "127.0.0.1"), port)


def stop_server(ws: Workspace, timeout: float = 15.0) -> bool:
    """Stop the workspace's local server (it finishes requests in flight); False if none."""
    server = running_server(ws)
    if server is None:
        return False
    os.kill(server["pid"], signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and running_server(ws) is not None:
        time.sleep(0.05)
    return True
