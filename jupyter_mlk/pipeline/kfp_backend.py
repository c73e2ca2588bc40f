"""The kubernetes backend of runs: compile, submit to Kubeflow Pipelines, follow the run.

The run is recorded in the workspace's history like a local one (backend ``kubernetes``),
so the CLI, the panel and ``jupyter mlk runs`` show its step states. Configuration comes
from the environment: ``MLK_KFP_HOST`` (or kfp's ``KF_PIPELINES_ENDPOINT``),
``MLK_KFP_NAMESPACE``, and ``MLK_KFP_TOKEN`` for a bearer token (kfp's own credential
discovery otherwise). The token is never logged or stored.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from jupyter_mlk.errors import RunError
from jupyter_mlk.notebook.model import StepGraph
from jupyter_mlk.notebook.params import to_json_value
from jupyter_mlk.store.workspace import Workspace

POLL_S = 2.0
_STATES = {
    "PENDING": "PENDING",
    "RUNNING": "RUNNING",
    "CANCELING": "RUNNING",
    "PAUSED": "RUNNING",
    "SUCCEEDED": "SUCCEEDED",
    "SKIPPED": "SKIPPED",
    "FAILED": "FAILED",
    "CANCELED": "CANCELLED",
}
EventHandler = Callable[[str, str, dict[str, Any]], None]


def _host() -> str:
    host = os.environ.get("MLK_KFP_HOST") or os.environ.get("KF_PIPELINES_ENDPOINT")
    if not host:
        raise RunError(
            "no Kubeflow Pipelines endpoint: set MLK_KFP_HOST to its URL (for example "
            "http://localhost:8080 after kubectl port-forward -n kubeflow svc/ml-pipeline-ui "
            "8080:80)"
        )
    return host


def _explain(exc: Exception, host: str, action: str) -> RunError:
    status = getattr(exc, "status", None)
    body = getattr(exc, "body", None)
    message = str(exc)
    if body:
        with contextlib.suppress(TypeError, ValueError):
            parsed = json.loads(body)
            message = parsed.get("message") or parsed.get("error") or message
    if status in (401, 403):
        return RunError(
            f"the Kubeflow Pipelines endpoint {host} refused the credentials (HTTP {status}) "
            f"while trying to {action}: {message}; set MLK_KFP_TOKEN or log in again"
        )
    if status is not None:
        return RunError(
            f"the Kubeflow Pipelines endpoint {host} could not {action} (HTTP {status}): {message}"
        )
    return RunError(f"cannot reach the Kubeflow Pipelines endpoint {host} to {action}: {message}")


def _check_endpoint(host: str, token: str | None) -> None:
    """One quick look at the endpoint, so a wrong URL or token fails in seconds, not after
    the kfp client's retries."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(host.rstrip("/") + "/apis/v2beta1/healthz")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10):
            return
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            raise RunError(
                f"the Kubeflow Pipelines endpoint {host} refused the credentials (HTTP "
                f"{exc.code}); set MLK_KFP_TOKEN to a valid token or log in again"
            ) from None
        return  # other answers: the endpoint is there; the kfp client reports the rest
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise RunError(
            f"cannot reach the Kubeflow Pipelines endpoint {host}: {reason}; check "
            "MLK_KFP_HOST (and the port-forward or ingress)"
        ) from None


class KfpBackend:
    """Submits compiled pipelines to one KFP endpoint and reads their state."""

    def __init__(
        self,
        host: str | None = None,
        namespace: str | None = None,
        token: str | None = None,
        kube_client: Any = None,
    ) -> None:
        import kfp

        self._kube = kube_client
        self.host = host or _host()
        self.namespace = namespace or os.environ.get("MLK_KFP_NAMESPACE")
        token = token or os.environ.get("MLK_KFP_TOKEN") or None
        _check_endpoint(self.host, token)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                self.client = kfp.Client(
                    host=self.host,
                    namespace=self.namespace or "kubeflow",
                    existing_token=token,
                )
            except Exception as exc:
                raise _explain(exc, self.host, "connect") from None

    def submit(
        self,
        graph: StepGraph,
        params: Mapping[str, Any],
        *,
        experiment: str,
        run_name: str,
        image: str | None = None,
    ) -> str:
        """Compile and submit; return KFP's run id."""
        from jupyter_mlk.pipeline.compiler import compile_pipeline

        text = compile_pipeline(graph, image=image)
        arguments = {k: to_json_value(v) for k, v in params.items() if v is not None}
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "pipeline.yaml"
            path.write_text(text)
            try:
                with contextlib.redirect_stdout(io.StringIO()):  # kfp prints links
                    result = self.client.create_run_from_pipeline_package(
                        str(path),
                        arguments=arguments,
                        run_name=run_name,
                        experiment_name=experiment,
                        namespace=self.namespace,
                    )
            except Exception as exc:
                raise _explain(exc, self.host, "start the run") from None
        return str(result.run_id)

    def pods(self, kfp_run_id: str) -> dict[str, str]:
        """The pod of each task, by task name (for its logs)."""
        try:
            run = self.client.get_run(kfp_run_id)
        except Exception as exc:
            raise _explain(exc, self.host, "read the run") from None
        out: dict[str, str] = {}
        details = getattr(run, "run_details", None)
        for task in getattr(details, "task_details", None) or []:
            for child in getattr(task, "child_tasks", None) or []:
                pod = getattr(child, "pod_name", None)
                if pod and task.display_name:
                    out[str(task.display_name)] = str(pod)
        return out

    def pod_log(self, pod: str) -> str | None:
        """A task pod's log through the Kubernetes API; None when it cannot be read."""
        from kubernetes import client, config

        if self._kube is None:
            try:
                config.load_kube_config()
            except Exception:
                try:
                    config.load_incluster_config()
                except Exception:
                    return None
            self._kube = client.ApiClient()
        try:
            text = client.CoreV1Api(self._kube).read_namespaced_pod_log(
                pod, self.namespace or "kubeflow"
            )
        except Exception:
            return None
        return str(text)

    def status(self, kfp_run_id: str) -> tuple[str, dict[str, str], str | None]:
        """The run's state, its tasks' states by task name, and its error message."""
        try:
            run = self.client.get_run(kfp_run_id)
        except Exception as exc:
            raise _explain(exc, self.host, "read the run") from None
        state = _STATES.get(str(run.state or "PENDING"), "RUNNING")
        tasks: dict[str, str] = {}
        details = getattr(run, "run_details", None)
        for task in getattr(details, "task_details", None) or []:
            name = getattr(task, "display_name", None)
            if name:
                tasks[str(name)] = _STATES.get(str(task.state or "PENDING"), "RUNNING")
        error = getattr(getattr(run, "error", None), "message", None)
        return state, tasks, error

    def cancel(self, kfp_run_id: str) -> None:
        try:
            self.client.terminate_run(kfp_run_id)
        except Exception as exc:
            raise _explain(exc, self.host, "cancel the run") from None


def _collect_logs(
    ws: Workspace, graph: StepGraph, backend: KfpBackend, kfp_id: str, run_id: str
) -> dict[str, float]:
    """Keep each task pod's log as the step's log and read the metrics the runner printed.

    The runner ends a task by printing its metrics as ``name=value`` at full precision, so
    the log holds them; without Kubernetes access the logs stay in the KFP UI only.
    """
    from jupyter_mlk.tuning.metrics import parse_metric_lines

    by_task = {s.kfp_name: s for s in graph.steps}
    metrics: dict[str, float] = {}
    for task, pod in backend.pods(kfp_id).items():
        step = by_task.get(task)
        text = backend.pod_log(pod) if step is not None else None
        if step is None or text is None:
            continue
        step_dir = ws.step_dir(run_id, step.name)
        step_dir.mkdir(parents=True, exist_ok=True)
        (step_dir / "stdout.log").write_text(text)
        found = parse_metric_lines(text)
        step_metrics = {m: found[m][-1] for m in step.metrics if found.get(m)}
        if step_metrics:
            ws.store.update_step(run_id, step.name, metrics=step_metrics)
            metrics.update(step_metrics)
    return metrics


def run_on_kfp(
    ws: Workspace,
    graph: StepGraph,
    params: Mapping[str, Any],
    *,
    experiment: str,
    run_id: str,
    backend: KfpBackend | None = None,
    on_event: EventHandler | None = None,
    poll: float = POLL_S,
    image: str | None = None,
) -> str:
    """Submit a recorded run and follow it to the end; Ctrl-C cancels the KFP run."""
    backend = backend or KfpBackend()
    on_event = on_event or (lambda step, state, details: None)
    store = ws.store
    kfp_id = backend.submit(graph, params, experiment=experiment, run_name=run_id, image=image)
    store.update_run(
        run_id,
        state="RUNNING",
        started=time.time(),
        backend="kubernetes",
        labels={"kfp_run_id": kfp_id, "kfp_host": backend.host, "experiment": experiment},
    )
    on_event("", "RUNNING", {"run_id": run_id, "kfp_run_id": kfp_id})
    by_task = {s.kfp_name: s.name for s in graph.steps}
    known: dict[str, str] = {}
    try:
        while True:
            state, tasks, error = backend.status(kfp_id)
            for task, task_state in tasks.items():
                step = by_task.get(task)
                if step is None or known.get(step) == task_state:
                    continue
                known[step] = task_state
                now = time.time()
                fields: dict[str, Any] = {"state": task_state}
                if task_state == "RUNNING":
                    fields["started"] = now
                else:
                    fields["finished"] = now
                store.update_step(run_id, step, **fields)
                on_event(step, task_state, {})
            if state in ("SUCCEEDED", "FAILED", "CANCELLED"):
                metrics = _collect_logs(ws, graph, backend, kfp_id, run_id)
                store.update_run(
                    run_id, state=state, finished=time.time(), error=error, metrics=metrics
                )
                on_event("", state, {"run_id": run_id})
                return state
            if store.is_cancel_requested(run_id):
                raise KeyboardInterrupt
            time.sleep(poll)
    except KeyboardInterrupt:
        backend.cancel(kfp_id)
        store.update_run(
            run_id,
            state="CANCELLED",
            finished=time.time(),
            error="cancelled; the KFP run was terminated",
        )
        on_event("", "CANCELLED", {"run_id": run_id})
        return "CANCELLED"
