"""The local executor: runs a step graph on this machine, steps in parallel where it allows.

A step starts as soon as the steps it depends on have finished (not a layer at a time),
up to ``workers`` at once. Before starting a step the executor:

- marks it CANCELLED when a step it needs failed or was cancelled (it never starts);
- marks it SKIPPED when a step it needs was skipped, or its ``if:`` condition is false;
- marks it CACHED when a step with the same cache key succeeded before (any run): the key
  covers the step's code (with the imports, parameters and functions cells), the runner
  version, the parameters it reads and the content digests of the bundles it loads.

Each step runs in its own process (see :mod:`jupyter_mlk.pipeline.worker`). Cancelling
(Ctrl-C, SIGTERM, or ``jupyter mlk cancel``) kills every step's process group and leaves
nothing running.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import multiprocessing
import multiprocessing.connection
import operator
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_mlk.errors import RunError, ValueStoreError
from jupyter_mlk.notebook.model import Step, StepGraph
from jupyter_mlk.notebook.params import to_json_value
from jupyter_mlk.pipeline.spec import StepSpec, build_step_spec
from jupyter_mlk.pipeline.worker import PRELOAD_ENV, preload_modules, step_process
from jupyter_mlk.store.db import new_run_id
from jupyter_mlk.store.workspace import Workspace

log = logging.getLogger(__name__)

EventHandler = Callable[[str, str, dict[str, Any]], None]  # (step, state, details)
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
_KILL_GRACE_S = 2.0


class RunCancelled(Exception):
    """Raised inside the executor loop when the run is to stop."""


@dataclass
class _StepState:
    step: Step
    spec: StepSpec
    state: str = "PENDING"
    started: float | None = None
    finished: float | None = None
    outputs: dict[str, str] = field(default_factory=dict)  # bundle key -> digest
    metrics: dict[str, float] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    process: Any = None
    tmp_outputs: dict[str, Path] = field(default_factory=dict)
    cache_key: str | None = None


@dataclass
class RunResult:
    """The outcome of a local run."""

    run_id: str
    state: str
    steps: dict[str, str]
    metrics: dict[str, float]
    error: str | None = None


def _context() -> Any:
    return multiprocessing.get_context("forkserver")


def _prepare_zygote(graph: StepGraph, workdir: Path) -> None:
    """Tell the fork server what to import before its first fork (only the first run counts)."""
    if PRELOAD_ENV not in os.environ:
        modules = preload_modules([c.code for c in graph.imports_cells], workdir)
        os.environ[PRELOAD_ENV] = ",".join(modules)
    _context().set_forkserver_preload(["jupyter_mlk.pipeline._zygote"])


def condition_holds(step: Step, values: Mapping[str, Any], params: Mapping[str, Any]) -> bool:
    """Evaluate a step's ``if:`` condition on the producer's value and the run's params."""
    cond = step.condition
    if cond is None:
        return True
    if cond.left not in values:
        raise RunError(
            f"step {step.name}: the condition if:{cond.text} needs {cond.left!r}, which its "
            "producer did not report"
        )
    right = params[cond.right] if cond.right_is_parameter else cond.right
    try:
        return bool(_OPS[cond.op](values[cond.left], right))
    except TypeError as exc:
        raise RunError(
            f"step {step.name}: if:{cond.text} cannot compare {values[cond.left]!r} with "
            f"{right!r} ({exc})"
        ) from None


class LocalExecutor:
    """Runs graphs in one workspace; one ``run`` call at a time per executor."""

    def __init__(
        self,
        workspace: Workspace,
        *,
        workers: int | None = None,
        use_cache: bool = True,
        on_event: EventHandler | None = None,
    ) -> None:
        self.ws = workspace
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.use_cache = use_cache
        self.on_event = on_event or (lambda step, state, details: None)
        self._cancel = False

    # ---- public -------------------------------------------------------------------------
    def start(
        self,
        graph: StepGraph,
        params: Mapping[str, Any],
        *,
        run_id: str | None = None,
        labels: dict[str, Any] | None = None,
    ) -> str:
        """Record a new run (PENDING) and return its id."""
        run_id = run_id or new_run_id()
        self.ws.store.create_run(
            run_id,
            str(Path(graph.path).resolve()),
            {k: to_json_value(v) for k, v in params.items()},
            [s.name for s in graph.steps],
            graph=graph.to_dict(),
            labels=labels,
        )
        return run_id

    def adopt(self, run_id: str) -> str:
        """Take over a PENDING run recorded by someone else (the server) and own it."""
        from jupyter_mlk.store.db import process_start

        run = self.ws.store.get_run(run_id)
        if run["state"] != "PENDING":
            raise RunError(f"run {run_id} is {run['state']}, not PENDING: it cannot be started")
        self.ws.store.update_run(run_id, pid=os.getpid(), pid_started=process_start(os.getpid()))
        return run_id

    def run(
        self,
        graph: StepGraph,
        params: Mapping[str, Any],
        *,
        run_id: str | None = None,
        labels: dict[str, Any] | None = None,
        workdir: Path | None = None,
    ) -> RunResult:
        """Run a graph (without errors) to the end; Ctrl-C or SIGTERM cancels it.

        ``workdir`` is the steps' working folder (default: the notebook's folder).
        """
        if graph.errors:
            raise RunError("the graph has errors; fix them before running")
        run_id = run_id or self.start(graph, params, labels=labels)
        previous = signal.getsignal(signal.SIGTERM)
        if _in_main_thread():
            signal.signal(signal.SIGTERM, self._on_sigterm)
        try:
            return self._run(graph, params, run_id, workdir)
        finally:
            if _in_main_thread():
                signal.signal(signal.SIGTERM, previous)

    def cancel(self) -> None:
        """Ask the running ``run`` to stop (from another thread or a signal handler)."""
        self._cancel = True

    # ---- the loop -----------------------------------------------------------------------
    def _on_sigterm(self, signum: int, frame: Any) -> None:
        self._cancel = True

    def _run(
        self, graph: StepGraph, params: Mapping[str, Any], run_id: str, workdir: Path | None
    ) -> RunResult:
        store = self.ws.store
        workdir = workdir or Path(graph.path).resolve().parent
        json_params = {k: to_json_value(v) for k, v in params.items()}
        states = {s.name: _StepState(s, build_step_spec(graph, s)) for s in graph.steps}
        now = time.time()
        store.update_run(run_id, state="RUNNING", started=now)
        self.on_event("", "RUNNING", {"run_id": run_id})
        error: str | None = None
        try:
            self._loop(states, params, json_params, run_id, workdir, graph)
        except (KeyboardInterrupt, RunCancelled):
            self._kill_all(states, run_id)
            error = "cancelled"
        except Exception as exc:
            self._kill_all(states, run_id)
            store.update_run(
                run_id,
                state="FAILED",
                finished=time.time(),
                error=f"the executor failed: {type(exc).__name__}: {exc}",
            )
            raise
        finally:
            self._kill_all(states, run_id)
        final = self._final_state(states, error)
        metrics: dict[str, float] = {}
        for st in states.values():
            metrics.update(st.metrics)
        failed = [st for st in states.values() if st.state == "FAILED"]
        if final == "FAILED" and failed:
            error = "; ".join(f"step {st.step.name} failed" for st in failed)
        store.update_run(run_id, state=final, finished=time.time(), metrics=metrics, error=error)
        self.on_event("", final, {"run_id": run_id, "metrics": metrics})
        return RunResult(run_id, final, {n: s.state for n, s in states.items()}, metrics, error)

    @staticmethod
    def _final_state(states: dict[str, _StepState], error: str | None) -> str:
        if error == "cancelled":
            return "CANCELLED"
        if any(s.state == "FAILED" for s in states.values()):
            return "FAILED"
        if any(s.state == "CANCELLED" for s in states.values()):
            return "CANCELLED"
        return "SUCCEEDED"

    def _loop(
        self,
        states: dict[str, _StepState],
        params: Mapping[str, Any],
        json_params: dict[str, Any],
        run_id: str,
        workdir: Path,
        graph: StepGraph,
    ) -> None:
        store = self.ws.store
        zygote_ready = False
        last_cancel_check = 0.0
        while True:
            if self._cancel:
                raise RunCancelled()
            if time.monotonic() - last_cancel_check > 0.25:
                last_cancel_check = time.monotonic()
                if store.is_cancel_requested(run_id):
                    raise RunCancelled()
            progressed = self._settle_pending(states, params, run_id)
            running = [s for s in states.values() if s.state == "RUNNING"]
            waiting = False
            for st in states.values():
                if len(running) >= self.workers:
                    break
                if st.state != "PENDING" or not self._deps_done(st, states):
                    continue
                if not _claim(st.cache_key, self):
                    waiting = True  # another run in this process computes the same step
                    continue
                if not zygote_ready:
                    _prepare_zygote(graph, Path(graph.path).resolve().parent)
                    zygote_ready = True
                self._launch(st, states, json_params, run_id, workdir)
                running.append(st)
                progressed = True
            if not running:
                if all(s.state != "PENDING" for s in states.values()):
                    return
                if waiting:
                    time.sleep(0.05)
                    continue
                if not progressed:
                    raise RunError("no step can start: the graph has a cycle")  # guarded earlier
                continue
            ready = multiprocessing.connection.wait([s.process.sentinel for s in running], 0.25)
            for st in running:
                if st.process.sentinel in ready:
                    self._collect(st, run_id)

    @staticmethod
    def _deps_done(st: _StepState, states: dict[str, _StepState]) -> bool:
        return all(states[d].state in ("SUCCEEDED", "CACHED") for d in st.step.after)

    def _settle_pending(
        self, states: dict[str, _StepState], params: Mapping[str, Any], run_id: str
    ) -> bool:
        """Decide every pending step that need not run: cancelled, skipped or cached."""
        progressed = False
        changed = True
        while changed:
            changed = False
            for st in states.values():
                if st.state != "PENDING":
                    continue
                ups = [states[d].state for d in st.step.after]
                new: str | None = None
                reason = ""
                if any(u in ("FAILED", "CANCELLED") for u in ups):
                    new, reason = "CANCELLED", "a step it needs did not succeed"
                elif any(u == "SKIPPED" for u in ups):
                    new, reason = "SKIPPED", "a step it needs was skipped"
                elif all(u in ("SUCCEEDED", "CACHED") for u in ups):
                    try:
                        new, reason = self._condition_or_cache(st, states, params)
                    except RunError as exc:
                        self._finish(
                            st,
                            run_id,
                            "FAILED",
                            error={"ename": "ConditionError", "evalue": str(exc)},
                        )
                        changed = progressed = True
                        continue
                if new:
                    self._finish(st, run_id, new, reason=reason)
                    changed = progressed = True
        return progressed

    def _condition_or_cache(
        self, st: _StepState, states: dict[str, _StepState], params: Mapping[str, Any]
    ) -> tuple[str | None, str]:
        cond = st.step.condition
        if cond is not None:
            producer = states[st.step.inputs[cond.left]]
            if not condition_holds(st.step, producer.values, params):
                return "SKIPPED", f"if:{cond.text} is false"
        st.cache_key = self._cache_key(st, states, params)
        if not (self.use_cache and st.step.resources.cache):
            return None, ""
        hit = self.ws.store.cache_get(st.cache_key)
        if (
            hit
            and all(self.ws.has_bundle(d) for d in hit["outputs"].values())
            and set(hit["outputs"]) == {b.key for b in st.spec.outputs}
        ):
            st.outputs = hit["outputs"]
            st.metrics = hit["metrics"]
            st.values = hit["outcome_values"]
            return "CACHED", f"same code and inputs as in run {hit['run_id']}"
        return None, ""

    def _cache_key(
        self, st: _StepState, states: dict[str, _StepState], params: Mapping[str, Any]
    ) -> str:
        h = hashlib.sha256(st.spec.code_digest().encode())
        read = {p: to_json_value(params[p]) for p in st.step.params}
        h.update(json.dumps(read, sort_keys=True, default=str).encode())
        for ref in st.spec.inputs:
            h.update(f"{ref.step}/{ref.key}={states[ref.step].outputs[ref.key]}".encode())
        h.update(json.dumps(sorted(st.spec.condition_values)).encode())
        return h.hexdigest()

    def _launch(
        self,
        st: _StepState,
        states: dict[str, _StepState],
        json_params: dict[str, Any],
        run_id: str,
        workdir: Path,
    ) -> None:
        step_dir = self.ws.step_dir(run_id, st.step.name)
        step_dir.mkdir(parents=True, exist_ok=True)
        st.tmp_outputs = {b.key: self.ws.new_tmp() for b in st.spec.outputs}
        inputs = {
            f"{ref.step}/{ref.key}": str(self.ws.bundle_path(states[ref.step].outputs[ref.key]))
            for ref in st.spec.inputs
        }
        job = {
            "spec": st.spec.to_json(),
            "params": json_params,
            "inputs": inputs,
            "outputs": {k: str(v) for k, v in st.tmp_outputs.items()},
            "step_dir": str(step_dir),
            "workdir": str(workdir),
            "executor_pid": os.getpid(),
            "env": {"MLK_RUN_ID": run_id, "MLK_STEP": st.step.name, "PYTHONUNBUFFERED": "1"},
        }
        st.process = _context().Process(
            target=step_process, args=(job,), name=f"mlk-{st.step.name}", daemon=False
        )
        st.started = time.time()
        st.process.start()
        st.state = "RUNNING"
        self.ws.store.update_step(
            run_id, st.step.name, state="RUNNING", started=st.started, cache_key=st.cache_key
        )
        log.info("run %s: step %s RUNNING (pid %s)", run_id, st.step.name, st.process.pid)
        self.on_event(st.step.name, "RUNNING", {"started": st.started})

    def _collect(self, st: _StepState, run_id: str) -> None:
        st.process.join()
        try:
            self._record_result(st, run_id)
        finally:
            _release(st.cache_key, self)

    def _record_result(self, st: _StepState, run_id: str) -> None:
        result_file = self.ws.step_dir(run_id, st.step.name) / "result.json"
        try:
            result = json.loads(result_file.read_text())
        except (OSError, ValueError):
            code = st.process.exitcode
            result = {
                "state": "FAILED",
                "error": {
                    "ename": "StepProcessDied",
                    "evalue": f"the step's process ended with exit code {code} before reporting "
                    "(killed, out of memory, or the interpreter crashed); see its stderr log",
                },
            }
        if result["state"] == "SUCCEEDED":
            try:
                st.outputs = {k: self.ws.commit_bundle(p) for k, p in st.tmp_outputs.items()}
            except ValueStoreError as exc:  # e.g. the S3 store went away mid-run
                for p in st.tmp_outputs.values():
                    shutil.rmtree(p, ignore_errors=True)
                st.outputs = {}
                self._finish(
                    st, run_id, "FAILED", error={"ename": "ValueStoreError", "evalue": str(exc)}
                )
                return
            st.metrics = result.get("metrics", {})
            st.values = result.get("values", {})
            deployed = self._deploy(st, run_id)
            if deployed is not None:
                self._finish(st, run_id, "FAILED", error=deployed)
                return
            if st.cache_key:
                self.ws.store.cache_put(
                    st.cache_key, st.step.name, run_id, st.outputs, st.metrics, st.values
                )
            self._finish(st, run_id, "SUCCEEDED", warnings=result.get("warnings", []))
        else:
            for p in st.tmp_outputs.values():
                shutil.rmtree(p, ignore_errors=True)
            self._finish(st, run_id, "FAILED", error=result.get("error"))

    def _deploy(self, st: _StepState, run_id: str) -> dict[str, Any] | None:
        """``deploy:NAME``: serve the step's model once the step succeeded; an error dict
        when that fails (the step then fails)."""
        res = st.step.resources
        if res.deploy is None or res.deploy_variable is None:
            return None
        from jupyter_mlk.errors import MlkError
        from jupyter_mlk.serving import deploy_model

        producer = st.step.inputs[res.deploy_variable]
        ref = f"{run_id}:{producer}/{res.deploy_variable}"
        try:
            result = deploy_model(self.ws, ref, res.deploy, canary_percent=res.canary)
        except MlkError as exc:
            return {"ename": type(exc).__name__, "evalue": f"deploy:{res.deploy}: {exc}"}
        st.values["deployment"] = {
            "name": res.deploy,
            "model": ref,
            "url": result.get("url") if isinstance(result, dict) else None,
        }
        log.info("run %s: step %s deployed %s as %s", run_id, st.step.name, ref, res.deploy)
        return None

    def _finish(
        self,
        st: _StepState,
        run_id: str,
        state: str,
        *,
        reason: str = "",
        error: dict[str, Any] | None = None,
        warnings: list[str] | None = None,
    ) -> None:
        st.state = state
        st.finished = time.time()
        fields: dict[str, Any] = {
            "state": state,
            "finished": st.finished,
            "outputs": st.outputs,
            "metrics": st.metrics,
            "outcome_values": st.values,
        }
        if error is not None:
            fields["error"] = error
        elif reason:
            fields["error"] = {"reason": reason}
        if state == "CACHED":
            fields["cached_from"] = reason
            fields["cache_key"] = st.cache_key
        self.ws.store.update_step(run_id, st.step.name, **fields)
        duration = (st.finished - st.started) if st.started else None
        log.info("run %s: step %s %s", run_id, st.step.name, state)
        self.on_event(
            st.step.name,
            state,
            {
                "duration": duration,
                "reason": reason,
                "error": error,
                "metrics": st.metrics,
                "warnings": warnings or [],
            },
        )

    def _kill_all(self, states: dict[str, _StepState], run_id: str) -> None:
        running = [s for s in states.values() if s.state == "RUNNING" and s.process is not None]
        for st in running:
            _signal_group(st.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + _KILL_GRACE_S
        for st in running:
            st.process.join(max(0.0, deadline - time.monotonic()))
        for st in running:
            _signal_group(st.process.pid, signal.SIGKILL)
            st.process.join(1.0)
            for p in st.tmp_outputs.values():
                shutil.rmtree(p, ignore_errors=True)
            self._finish(st, run_id, "CANCELLED", reason="the run was cancelled")
            _release(st.cache_key, self)
        for st in states.values():
            if st.state == "PENDING":
                self._finish(st, run_id, "CANCELLED", reason="the run was cancelled")


def cancel_run(workspace: Workspace, ref: str, wait: float = 15.0) -> dict[str, Any]:
    """Ask a run to stop, wherever it was started; wait up to ``wait`` seconds for it.

    The executor that owns the run sees the request in the run history and also gets
    SIGTERM; either way it kills every step process and marks the run CANCELLED.
    """
    store = workspace.store
    run = store.request_cancel(ref)
    if run["state"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
        return run
    if not run.get("pid"):
        # Recorded for an executor that has not adopted it yet (or never started): nothing
        # runs, so the run ends here; an executor that comes later refuses to adopt it.
        store.update_run(
            run["id"], state="CANCELLED", finished=time.time(), error="cancelled before it started"
        )
        return store.get_run(run["id"])
    if run["pid"] != os.getpid():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(run["pid"], signal.SIGTERM)
    deadline = time.time() + wait
    while time.time() < deadline:
        current = store.get_run(run["id"])
        if current["state"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            return current
        time.sleep(0.1)
    return store.get_run(run["id"])


# Steps being computed in this process, by cache key: when sweep trials run side by side,
# the second one to reach an identical step waits for the first and then takes it from the
# cache, instead of computing it again.
_INFLIGHT: dict[str, LocalExecutor] = {}
_INFLIGHT_LOCK = threading.Lock()


def _claim(key: str | None, owner: LocalExecutor) -> bool:
    if key is None or not owner.use_cache:
        return True
    with _INFLIGHT_LOCK:
        holder = _INFLIGHT.setdefault(key, owner)
        return holder is owner


def _release(key: str | None, owner: LocalExecutor) -> None:
    if key is None:
        return
    with _INFLIGHT_LOCK:
        if _INFLIGHT.get(key) is owner:
            del _INFLIGHT[key]


def _signal_group(pid: int, sig: int) -> None:
    # The group exists once the child has called setsid(); just after the fork it may not,
    # so signal the process itself as well.
    for kill in (os.killpg, os.kill):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            kill(pid, sig)


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
