"""A fake Kubernetes API server on 127.0.0.1 for the real ``kubernetes`` client.

It speaks the API's HTTP+JSON for the calls the launcher makes (create, read, delete and
list of pods, services, secrets, claims, events and nodes; Notebook custom objects; watch
streams with resourceVersion, 410 Gone and chunked transfer), and replays scripted event
sequences copied from real clusters once a pod is created. Tests can break every open
watch or expire the history to exercise recovery.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

Scenario = Callable[["FakeKube", str, dict[str, Any]], None]

_PATH = re.compile(
    r"^/(?:api/v1|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
    r"(?:/namespaces/(?P<ns>[^/]+))?/(?P<plural>[a-z]+)(?:/(?P<name>[^/]+))?(?:/(?P<sub>log))?$"
)


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def gpu_node(
    name: str, gpus: int, taints: list[dict[str, str]] | None = None, **labels: str
) -> dict[str, Any]:
    """A node with ``gpus`` allocatable nvidia.com/gpu."""
    return {
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **labels}},
        "spec": {"taints": taints or []},
        "status": {"allocatable": {"cpu": "32", "memory": "256Gi", "nvidia.com/gpu": str(gpus)}},
    }


class FakeKube:
    """The fake API server; ``url`` is its address once started."""

    def __init__(self, scenario: Scenario | None = None) -> None:
        self.cond = threading.Condition()
        self.counter = itertools.count(1000)
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.history: list[tuple[int, str, str, str, dict[str, Any]]] = []
        self.min_version = 0
        self.nodes: list[dict[str, Any]] = [gpu_node("gpu-node-1", 1)]
        self.other_pods: list[dict[str, Any]] = []
        self.scenario = scenario
        self.fatal_at: float | None = None
        self.requests: list[tuple[str, str]] = []
        self.watch_sockets: list[Any] = []
        self.logs = (
            "Traceback (most recent call last):\n"
            "ModuleNotFoundError: No module named 'jupyter_server'"
        )
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.stopping = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakeKube:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping = True
        with self.cond:
            self.cond.notify_all()
        self.break_watches()
        self.server.shutdown()
        self.server.server_close()

    # -- state ---------------------------------------------------------------------------

    def _record(self, plural: str, ns: str, kind: str, obj: dict[str, Any]) -> None:
        with self.cond:
            version = next(self.counter)
            obj["metadata"]["resourceVersion"] = str(version)
            self.history.append((version, plural, ns, kind, copy.deepcopy(obj)))
            self.cond.notify_all()

    def create(self, plural: str, ns: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        name = body["metadata"]["name"]
        with self.cond:
            if (plural, ns, name) in self.objects:
                return 409, _status(409, "AlreadyExists", f'{plural} "{name}" already exists')
            obj = copy.deepcopy(body)
            obj["metadata"].update(
                uid=str(uuid.uuid4()), creationTimestamp=now_iso(), namespace=ns
            )
            if plural == "pods":
                obj["status"] = {"phase": "Pending"}
            if plural == "persistentvolumeclaims":
                obj["status"] = {"phase": "Pending"}
            self.objects[(plural, ns, name)] = obj
            self._record(plural, ns, "ADDED", obj)
        if plural == "pods" and self.scenario is not None:
            threading.Thread(
                target=self.scenario, args=(self, ns, copy.deepcopy(obj)), daemon=True
            ).start()
        return 201, copy.deepcopy(obj)

    def delete(self, plural: str, ns: str, name: str) -> tuple[int, dict[str, Any]]:
        with self.cond:
            obj = self.objects.pop((plural, ns, name), None)
            if obj is None:
                return 404, _status(404, "NotFound", f'{plural} "{name}" not found')
            self._record(plural, ns, "DELETED", obj)
        return 200, _status(200, "Success", "deleted")

    def update_pod(self, ns: str, name: str, status: dict[str, Any], node: str = "") -> None:
        """Merge ``status`` into the pod's status (and set its node) and notify watches."""
        with self.cond:
            pod = self.objects.get(("pods", ns, name))
            if pod is None:
                return
            pod["status"].update(copy.deepcopy(status))
            if node:
                pod["spec"]["nodeName"] = node
            self._record("pods", ns, "MODIFIED", pod)

    def event(
        self,
        ns: str,
        obj: dict[str, Any],
        reason: str,
        message: str,
        kind: str = "Pod",
        fatal: bool = False,
    ) -> None:
        """Record a core/v1 Event about ``obj``, as the kubelet or scheduler would."""
        meta = obj["metadata"]
        event = {
            "metadata": {"name": f"{meta['name']}.{uuid.uuid4().hex[:16]}", "namespace": ns},
            "involvedObject": {
                "kind": kind,
                "name": meta["name"],
                "namespace": ns,
                "uid": meta.get("uid", ""),
            },
            "reason": reason,
            "message": message,
            "type": "Warning"
            if reason.startswith(("Failed", "BackOff", "Provisioning"))
            else "Normal",
            "count": 1,
            "firstTimestamp": now_iso(),
            "lastTimestamp": now_iso(),
        }
        with self.cond:
            self.objects[("events", ns, event["metadata"]["name"])] = event
            if fatal and self.fatal_at is None:
                self.fatal_at = time.monotonic()
            self._record("events", ns, "ADDED", event)

    def break_watches(self) -> None:
        """Cut every open watch connection mid-stream, as a load balancer would."""
        for sock in list(self.watch_sockets):
            with contextlib.suppress(OSError):
                sock.shutdown(2)

    def expire_history(self) -> None:
        """Make every version seen so far too old: watches from them get 410 Gone."""
        with self.cond:
            self.min_version = next(self.counter)

    def items(self, plural: str, ns: str | None, selector: str) -> list[dict[str, Any]]:
        wanted = dict(part.split("=", 1) for part in selector.split(",") if "=" in part)
        found = []
        with self.cond:
            for (p, n, _), obj in self.objects.items():
                labels = obj["metadata"].get("labels") or {}
                if (
                    p == plural
                    and (ns is None or n == ns)
                    and all(labels.get(k) == v for k, v in wanted.items())
                ):
                    found.append(copy.deepcopy(obj))
        if plural == "pods" and ns is None:
            found += copy.deepcopy(self.other_pods)
        if plural == "nodes":
            found = copy.deepcopy(self.nodes)
        return found


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure" if code >= 400 else "Success",
        "code": code,
        "reason": reason,
        "message": message,
    }


def _handler(fake: FakeKube) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

        def _send(self, code: int, body: Any, content_type: str = "application/json") -> None:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _route(self) -> tuple[re.Match[str] | None, dict[str, list[str]]]:
            parsed = urlparse(self.path)
            fake.requests.append((self.command, self.path))
            return _PATH.match(parsed.path), parse_qs(parsed.query)

        def do_GET(self) -> None:
            match, query = self._route()
            if match is None:
                return self._send(404, _status(404, "NotFound", self.path))
            plural, ns, name = match["plural"], match["ns"], match["name"]
            if match["sub"] == "log":
                return self._send(200, fake.logs, "text/plain")
            if name:
                obj = fake.objects.get((plural, ns or "", name))
                if obj is None:
                    return self._send(
                        404, _status(404, "NotFound", f'{plural} "{name}" not found')
                    )
                return self._send(200, obj)
            selector = query.get("labelSelector", [""])[0]
            if query.get("watch", ["false"])[0].lower() in ("true", "1"):
                return self._watch(
                    plural, ns, selector, int(query.get("resourceVersion", ["0"])[0] or 0)
                )
            with fake.cond:
                version = str(next(fake.counter))
            items = fake.items(plural, ns, selector)
            return self._send(
                200, {"kind": "List", "metadata": {"resourceVersion": version}, "items": items}
            )

        def _watch(self, plural: str, ns: str | None, selector: str, since: int) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            if since < fake.min_version:
                gone = {
                    "type": "ERROR",
                    "object": _status(410, "Expired", "too old resource version"),
                }
                self._chunk(json.dumps(gone) + "\n")
                self._chunk("")
                return
            fake.watch_sockets.append(self.connection)
            wanted = dict(part.split("=", 1) for part in selector.split(",") if "=" in part)
            position = 0
            try:
                while not fake.stopping:
                    with fake.cond:
                        pending = [h for h in fake.history[position:]]
                        position = len(fake.history)
                        if not pending:
                            fake.cond.wait(0.5)
                            continue
                    for version, p, n, kind, obj in pending:
                        labels = obj["metadata"].get("labels") or {}
                        if version <= since or p != plural or (ns and n != ns):
                            continue
                        if any(labels.get(k) != v for k, v in wanted.items()):
                            continue
                        self._chunk(json.dumps({"type": kind, "object": obj}) + "\n")
            except OSError:
                return
            finally:
                if self.connection in fake.watch_sockets:
                    fake.watch_sockets.remove(self.connection)

        def _chunk(self, text: str) -> None:
            data = text.encode()
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length", "0"))
            return json.loads(self.rfile.read(length) or b"{}")

        def do_POST(self) -> None:
            match, _ = self._route()
            if match is None or not match["ns"]:
                return self._send(404, _status(404, "NotFound", self.path))
            code, body = fake.create(match["plural"], match["ns"], self._body())
            self._send(code, body)

        def do_DELETE(self) -> None:
            match, _ = self._route()
            if match is None or not match["name"]:
                return self._send(404, _status(404, "NotFound", self.path))
            self._body()
            code, body = fake.delete(match["plural"], match["ns"] or "", match["name"])
            self._send(code, body)

    return Handler


# -- event sequences, as real clusters print them ----------------------------------------------


def _pod_events(
    fake: FakeKube, ns: str, pod: dict[str, Any], steps: list[tuple[float, str, str]]
) -> None:
    for delay, reason, message in steps:
        time.sleep(delay)
        fake.event(ns, pod, reason, message)


def success(delay: float = 0.05) -> Scenario:
    """Scheduled, image pulled, container started, readiness probe passes."""

    def run(fake: FakeKube, ns: str, pod: dict[str, Any]) -> None:
        name = pod["metadata"]["name"]
        image = pod["spec"]["containers"][0]["image"]
        time.sleep(delay)
        fake.update_pod(
            ns,
            name,
            {"conditions": [{"type": "PodScheduled", "status": "True"}]},
            node="gpu-node-1",
        )
        _pod_events(
            fake,
            ns,
            pod,
            [
                (0, "Scheduled", f"Successfully assigned {ns}/{name} to gpu-node-1"),
                (delay, "Pulling", f'Pulling image "{image}"'),
                (
                    delay,
                    "Pulled",
                    f'Successfully pulled image "{image}" in 2.1s (2.1s including waiting)',
                ),
                (0, "Created", "Created container notebook"),
                (0, "Started", "Started container notebook"),
            ],
        )
        running = {
            "phase": "Running",
            "containerStatuses": [
                {
                    "name": "notebook",
                    "ready": False,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": now_iso()}},
                }
            ],
        }
        fake.update_pod(ns, name, running)
        time.sleep(delay)
        fake.update_pod(
            ns,
            name,
            {
                "conditions": [
                    {"type": "PodScheduled", "status": "True"},
                    {"type": "Ready", "status": "True"},
                ]
            },
        )

    return run


def pending_for_gpus(delay: float = 0.05) -> Scenario:
    """FailedScheduling: Insufficient nvidia.com/gpu (and a control-plane taint)."""

    def run(fake: FakeKube, ns: str, pod: dict[str, Any]) -> None:
        time.sleep(delay)
        message = (
            "0/3 nodes are available: 1 node(s) had untolerated taint "
            "{node-role.kubernetes.io/control-plane: }, 2 Insufficient nvidia.com/gpu. "
            "preemption: 0/3 nodes are available: 1 Preemption is not helpful "
            "for scheduling, 2 No preemption victims found for incoming pod.."
        )
        fake.event(ns, pod, "FailedScheduling", message, fatal=True)
        fake.update_pod(
            ns,
            pod["metadata"]["name"],
            {
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": message,
                    }
                ]
            },
        )

    return run


def untolerated_taint(delay: float = 0.05) -> Scenario:
    """FailedScheduling: the GPU nodes are tainted and the pod has no toleration."""

    def run(fake: FakeKube, ns: str, pod: dict[str, Any]) -> None:
        time.sleep(delay)
        message = (
            "0/2 nodes are available: 2 node(s) had untolerated taint {nvidia.com/gpu: present}. "
            "preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.."
        )
        fake.event(ns, pod, "FailedScheduling", message, fatal=True)

    return run


def image_pull_backoff(delay: float = 0.05) -> Scenario:
    """The image tag does not exist: ErrImagePull, then ImagePullBackOff."""

    def run(fake: FakeKube, ns: str, pod: dict[str, Any]) -> None:
        name, image = pod["metadata"]["name"], pod["spec"]["containers"][0]["image"]
        time.sleep(delay)
        fake.update_pod(ns, name, {}, node="gpu-node-1")
        _pod_events(
            fake,
            ns,
            pod,
            [
                (0, "Scheduled", f"Successfully assigned {ns}/{name} to gpu-node-1"),
                (delay, "Pulling", f'Pulling image "{image}"'),
            ],
        )
        time.sleep(delay)
        fake.event(
            ns,
            pod,
            "Failed",
            f'Failed to pull image "{image}": rpc error: code = NotFound desc = failed to '
            f'pull and unpack image "docker.io/library/{image}": failed to resolve reference '
            f'"docker.io/library/{image}": docker.io/library/{image}: not found',
            fatal=True,
        )
        fake.event(ns, pod, "Failed", "Error: ErrImagePull")
        fake.update_pod(
            ns,
            name,
            {
                "containerStatuses": [
                    {
                        "name": "notebook",
                        "ready": False,
                        "restartCount": 0,
                        "state": {
                            "waiting": {
                                "reason": "ImagePullBackOff",
                                "message": f'Back-off pulling image "{image}"',
                            }
                        },
                    }
                ]
            },
        )

    return run


def transient_pull_then_backoff(delay: float = 0.05) -> Scenario:
    """A registry timeout (transient ErrImagePull) and only later ImagePullBackOff."""

    def run(fake: FakeKube, ns: str, pod: dict[str, Any]) -> None:
        name, image = pod["metadata"]["name"], pod["spec"]["containers"][0]["image"]
        time.sleep(delay)
        fake.update_pod(
            ns,
            name,
            {
                "containerStatuses": [
                    {
                        "name": "notebook",
                        "ready": False,
                        "restartCount": 0,
                        "state": {
                            "waiting": {
                                "reason": "ErrImagePull",
                                "message": "dial tcp 10.0.0.1:443: i/o timeout",
                            }
                        },
                    }
                ]
            },
            node="gpu-node-1",
        )
        time.sleep(delay * 4)
        fake.event(ns, pod, "BackOff", f'Back-off pulling image "{image}"', fatal=True)

    return run


def crash_loop(delay: float = 0.05) -> Scenario:
    """The server starts, exits 1, restarts, and the kubelet backs off."""

    def run(fake: FakeKube, ns: str, pod: dict[str, Any]) -> None:
        name = pod["metadata"]["name"]
        time.sleep(delay)
        fake.update_pod(ns, name, {}, node="gpu-node-1")
        _pod_events(
            fake,
            ns,
            pod,
            [
                (0, "Scheduled", f"Successfully assigned {ns}/{name} to gpu-node-1"),
                (
                    delay,
                    "Pulled",
                    'Container image "quay.io/jupyter/scipy-notebook:2024-12-09" '
                    "already present on machine",
                ),
                (0, "Created", "Created container notebook"),
                (0, "Started", "Started container notebook"),
            ],
        )
        terminated = {
            "exitCode": 1,
            "reason": "Error",
            "startedAt": now_iso(),
            "finishedAt": now_iso(),
        }
        time.sleep(delay)
        fake.update_pod(
            ns,
            name,
            {
                "phase": "Running",
                "containerStatuses": [
                    {
                        "name": "notebook",
                        "ready": False,
                        "restartCount": 1,
                        "state": {
                            "waiting": {
                                "reason": "CrashLoopBackOff",
                                "message": "back-off 10s restarting failed "
                                f"container=notebook pod={name}",
                            }
                        },
                        "lastState": {"terminated": terminated},
                    }
                ],
            },
        )
        fake.fatal_at = fake.fatal_at or time.monotonic()
        fake.event(
            ns, pod, "BackOff", f"Back-off restarting failed container notebook in pod {name}"
        )

    return run


def unbound_claim(delay: float = 0.05) -> Scenario:
    """The storage class does not exist: ProvisioningFailed, pod unschedulable."""

    def run(fake: FakeKube, ns: str, pod: dict[str, Any]) -> None:
        time.sleep(delay)
        claim_name = pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"]
        claim = fake.objects.get(
            ("persistentvolumeclaims", ns, claim_name), {"metadata": {"name": claim_name}}
        )
        fake.event(
            ns,
            claim,
            "ProvisioningFailed",
            'storageclass.storage.k8s.io "fast-ssd" not found',
            kind="PersistentVolumeClaim",
            fatal=True,
        )
        fake.event(
            ns,
            pod,
            "FailedScheduling",
            "0/1 nodes are available: pod has unbound immediate "
            "PersistentVolumeClaims. preemption: 0/1 nodes are available: "
            "1 Preemption is not helpful for scheduling..",
        )

    return run


def with_watch_trouble(inner: Scenario, action: str) -> Scenario:
    """Run ``inner`` after cutting the watches (``break``) or expiring history (``expire``)."""

    def run(fake: FakeKube, ns: str, pod: dict[str, Any]) -> None:
        time.sleep(0.1)
        if action == "expire":
            fake.expire_history()
        fake.break_watches()
        time.sleep(0.1)
        inner(fake, ns, pod)

    return run
