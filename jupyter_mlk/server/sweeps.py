"""REST handlers for sweeps: list, start (its own process), get with trials, cancel."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from jupyter_mlk.server.handlers import MlkHandler, _checked_graph, _errors, _params
from jupyter_mlk.server.watcher import display_path


def _sweep_json(sweep: dict[str, Any], root: Any) -> dict[str, Any]:
    out = dict(sweep)
    out["notebook"] = display_path(sweep["notebook"], root)
    for key in ("pid", "pid_started", "cancel_requested"):
        out.pop(key, None)
    return out


def _validate(path: Any, body: dict[str, Any]) -> tuple[Any, dict[str, str], list[str]]:
    from jupyter_mlk.notebook.params import resolve_overrides
    from jupyter_mlk.tuning.local import check_against_notebook, make_sampler
    from jupyter_mlk.tuning.spec import parse_spec

    raw = {
        "objective": {
            "type": body.get("goal", "maximize"),
            "objectiveMetricName": body.get("objective"),
        },
        "algorithm": {"algorithmName": body.get("algorithm", "tpe")},
        "parallelTrialCount": body.get("parallel", 1),
        "maxTrialCount": body.get("max_trials", 10),
        "maxFailedTrialCount": body.get("max_failed", 3),
        "parameters": body.get("parameters"),
    }
    if body.get("target") is not None:
        raw["objective"]["goal"] = body["target"]
    spec, warnings = parse_spec(raw, source="request")
    graph = _checked_graph(path)
    fixed = _params(body)
    resolve_overrides(graph.parameters, fixed)
    warnings += check_against_notebook(spec, graph)
    make_sampler(spec)
    return spec, fixed, warnings


class SweepsHandler(MlkHandler):
    """List sweeps, or start one."""

    @web.authenticated
    @authorized
    @_errors
    async def get(self) -> None:
        from jupyter_mlk.tuning.store import SweepStore

        store = SweepStore(self.workspace.root)
        try:
            sweeps = store.list_sweeps()
        finally:
            store.close()
        self.reply({"sweeps": [_sweep_json(s, self.root) for s in sweeps]})

    @web.authenticated
    @authorized
    @_errors
    async def post(self) -> None:
        from jupyter_mlk.tuning.store import SweepStore, new_sweep_id

        body = self.body()
        path = self.notebook_path(body.get("path"))
        spec, fixed, warnings = await self.in_thread(_validate, path, body)
        sweep_id = new_sweep_id()
        ws = self.workspace
        store = SweepStore(ws.root)
        try:
            store.create_sweep(sweep_id, str(path), spec.to_dict(), fixed, owned=False)
        finally:
            store.close()
        log_dir = ws.state / "sweeps" / sweep_id
        log_dir.mkdir(parents=True, exist_ok=True)
        with open(log_dir / "sweep.log", "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "jupyter_mlk.cli", "sweep", "--resume", sweep_id],
                cwd=ws.root,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env={**os.environ, "MLK_HOME": str(ws.root)},
            )
        self.settings["mlk_watcher"].adopt_child(sweep_id, proc)
        self.reply({"id": sweep_id, "state": "PENDING", "warnings": warnings}, status=201)


class SweepHandler(MlkHandler):
    """One sweep with its trials."""

    @web.authenticated
    @authorized
    @_errors
    async def get(self, sweep_id: str) -> None:
        from jupyter_mlk.tuning.store import SweepStore

        store = SweepStore(self.workspace.root)
        try:
            sweep = store.get_sweep(sweep_id)
        finally:
            store.close()
        self.reply(_sweep_json(sweep, self.root))


class CancelSweepHandler(MlkHandler):
    """Cancel a sweep: its running trials stop, no process is left."""

    @web.authenticated
    @authorized
    @_errors
    async def post(self, sweep_id: str) -> None:
        from jupyter_mlk.tuning.store import SweepStore, cancel_sweep

        def cancel() -> dict[str, Any]:
            store = SweepStore(self.workspace.root)  # SQLite: one connection a thread
            try:
                return cancel_sweep(store, sweep_id, 15.0)
            finally:
                store.close()

        self.reply(_sweep_json(await self.in_thread(cancel), self.root))


ROUTES: list[tuple[str, type[MlkHandler]]] = [
    (r"/mlk/api/sweeps", SweepsHandler),
    (r"/mlk/api/sweeps/(?P<sweep_id>[^/]+)", SweepHandler),
    (r"/mlk/api/sweeps/(?P<sweep_id>[^/]+)/cancel", CancelSweepHandler),
]
