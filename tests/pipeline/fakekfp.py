"""A fake Kubeflow Pipelines v2beta1 REST API on 127.0.0.1 for the real kfp client.

It serves what ``kfp.Client`` calls to submit and follow a run (experiments: list, create;
runs: create, get, terminate), checks a bearer token when told to, refuses a pipeline spec
without ``pipelineInfo``, and moves each run's tasks through RUNNING to the state a test
scripted.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class FakeKfp:
    """The fake server; ``url`` is its address once started."""

    def __init__(
        self, token: str | None = None, fail_task: str | None = None, step_s: float = 0.1
    ) -> None:
        self.token = token
        self.fail_task = fail_task
        self.step_s = step_s
        self.experiments: dict[str, dict[str, Any]] = {}
        self.runs: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakeKfp:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def create_run(self, body: dict[str, Any]) -> dict[str, Any]:
        spec = body.get("pipeline_spec") or {}
        tasks = list(((spec.get("root") or {}).get("dag") or {}).get("tasks") or {})
        run = {
            "run_id": uuid.uuid4().hex,
            "display_name": body.get("display_name", ""),
            "experiment_id": body.get("experiment_id", ""),
            "state": "PENDING",
            "created_at": _now(),
            "runtime_config": body.get("runtime_config") or {},
            "run_details": {"task_details": []},
            "_tasks": tasks,
            "_started": time.time(),
        }
        with self.lock:
            self.runs[run["run_id"]] = run
        return run

    def view(self, run_id: str) -> dict[str, Any] | None:
        """The run as it is now: each task takes ``step_s`` and runs in notebook order."""
        with self.lock:
            run = self.runs.get(run_id)
            if run is None:
                return None
            if run["state"] in ("CANCELED",):
                return {k: v for k, v in run.items() if not k.startswith("_")}
            elapsed = time.time() - run["_started"]
            done = int(elapsed / self.step_s)
            details = []
            state = "RUNNING"
            for i, task in enumerate(run["_tasks"]):
                if i < done:
                    task_state = "FAILED" if task == self.fail_task else "SUCCEEDED"
                elif i == done:
                    task_state = "RUNNING"
                else:
                    break
                details.append(
                    {
                        "task_id": f"{run['run_id']}-{i}",
                        "display_name": task,
                        "state": task_state,
                        "create_time": _now(),
                        "child_tasks": [{"pod_name": f"{task}-pod-{i}"}],
                    }
                )
                if task_state == "FAILED":
                    state = "FAILED"
                    break
            if state != "FAILED" and done >= len(run["_tasks"]):
                state = "SUCCEEDED"
            run["state"] = state
            run["run_details"] = {"task_details": details}
            out = {k: v for k, v in run.items() if not k.startswith("_")}
            if state == "FAILED":
                out["error"] = {"code": 2, "message": f"task {self.fail_task} failed"}
            return out


def _handler(fake: FakeKfp) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return None

        def _send(self, code: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _authorised(self) -> bool:
            if fake.token is None:
                return True
            if self.headers.get("Authorization") == f"Bearer {fake.token}":
                return True
            self._send(
                401, {"error": "Unauthorized", "message": "invalid bearer token", "code": 16}
            )
            return False

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            return dict(json.loads(self.rfile.read(length) or b"{}"))

        def do_GET(self) -> None:
            if not self._authorised():
                return
            url = urlparse(self.path)
            path = url.path
            if path == "/apis/v2beta1/healthz":
                return self._send(200, {"multi_user": False})
            if path == "/apis/v2beta1/experiments":
                flt = json.loads(parse_qs(url.query).get("filter", ["{}"])[0])
                names = [p.get("stringValue") for p in flt.get("predicates", [])]
                found = [
                    e for e in fake.experiments.values() if not names or e["display_name"] in names
                ]
                return self._send(200, {"experiments": found, "total_size": len(found)})
            if path.startswith("/apis/v2beta1/runs/"):
                run = fake.view(path.rsplit("/", 1)[1])
                if run is None:
                    return self._send(404, {"message": "run not found", "code": 5})
                return self._send(200, run)
            self._send(404, {"message": f"no route {path}", "code": 5})

        def do_POST(self) -> None:
            if not self._authorised():
                return
            path = urlparse(self.path).path
            body = self._body()
            if path == "/apis/v2beta1/experiments":
                exp = {
                    "experiment_id": uuid.uuid4().hex,
                    "display_name": body["display_name"],
                    "namespace": body.get("namespace", ""),
                    "created_at": _now(),
                }
                fake.experiments[exp["experiment_id"]] = exp
                return self._send(200, exp)
            if path == "/apis/v2beta1/runs":
                if "pipelineInfo" not in (body.get("pipeline_spec") or {}):
                    return self._send(
                        400,
                        {"message": "pipeline spec is invalid: missing pipelineInfo", "code": 3},
                    )
                run = fake.create_run(body)
                return self._send(200, fake.view(run["run_id"]))
            if path.startswith("/apis/v2beta1/runs/") and path.endswith(":terminate"):
                run_id = path.rsplit("/", 1)[1].split(":")[0]
                with fake.lock:
                    if run_id in fake.runs:
                        fake.runs[run_id]["state"] = "CANCELED"
                return self._send(200, {})
            self._send(404, {"message": f"no route {path}", "code": 5})

    return Handler
