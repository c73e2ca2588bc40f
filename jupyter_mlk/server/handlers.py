"""REST handlers under ``/mlk/api/``: HTTP in, engine calls, JSON out.

Every route is authenticated like the rest of jupyter-server. Errors the caller can fix
become 4xx with the engine's message, which the panel shows as is; ``_errors`` is the one
place that maps exceptions to HTTP.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import re
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web

from jupyter_mlk.errors import GraphError, MlkError, NotebookError, RunError
from jupyter_mlk.server.watcher import display_path
from jupyter_mlk.store.db import RUN_FIELDS

_DIGEST = re.compile(r"^[0-9a-f]{64}$")
Handler = Callable[..., Awaitable[None]]


def _status_for(exc: MlkError) -> int:
    text = str(exc)
    if isinstance(exc, NotebookError) and "no such notebook" in text:
        return 404
    if isinstance(exc, RunError) and ("no run" in text or "has no step" in text):
        return 404
    if "no sweep" in text or "no deployment" in text:
        return 404
    return 400 if exc.user_error else 500


def _errors(method: Handler) -> Handler:
    """Turn engine errors into JSON 4xx responses with the engine's message."""

    @functools.wraps(method)
    async def wrapper(self: MlkHandler, *args: Any, **kwargs: Any) -> None:
        try:
            await method(self, *args, **kwargs)
        except MlkError as exc:
            self.set_status(_status_for(exc))
            # paths inside the server's root are shown as the user sees them in Lab
            message = str(exc).replace(str(self.root) + os.sep, "")
            body: dict[str, Any] = {"message": message, "reason": type(exc).__name__}
            if isinstance(exc, GraphError):
                body["diagnostics"] = exc.diagnostics
            self.finish(json.dumps(body))

    return wrapper


class MlkHandler(ExtensionHandlerMixin, APIHandler):  # type: ignore[misc]
    """Base: the workspace, path confinement and JSON helpers."""

    auth_resource = "mlk"

    @property
    def root(self) -> Path:
        return Path(self.settings["mlk_root"])

    @property
    def workspace(self) -> Any:
        from jupyter_mlk.store.workspace import Workspace

        ws = self.settings.get("mlk_ws")
        if ws is None:
            ws = Workspace(self.settings["mlk_workspace"])
            self.settings["mlk_ws"] = ws
        return ws

    def notebook_path(self, path: object) -> Path:
        """A notebook path from the request, confined to the server's root directory."""
        if not isinstance(path, str) or not path.strip():
            raise web.HTTPError(400, "give the notebook's 'path', relative to the root directory")
        full = (self.root / path.lstrip("/")).resolve()
        if full != self.root and self.root not in full.parents:
            raise web.HTTPError(403, f"path {path!r} is outside the server's root directory")
        if not full.is_file():
            raise web.HTTPError(404, f"no notebook at {path!r}")
        return full

    def body(self) -> dict[str, Any]:
        data = self.get_json_body()
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise web.HTTPError(400, "the request body must be a JSON object")
        return data

    def reply(self, data: Any, status: int = 200) -> None:
        from jupyter_mlk.notebook.params import json_safe

        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(json_safe(data), default=str, allow_nan=False))

    def run_json(self, run: dict[str, Any]) -> dict[str, Any]:
        out = {k: run.get(k) for k in RUN_FIELDS}
        out["notebook"] = display_path(run["notebook"], self.root)
        graph = run.get("graph") or {}
        out["edges"] = graph.get("edges", [])
        if "steps" in run:
            out["steps"] = [
                {
                    k: s.get(k)
                    for k in (
                        "name",
                        "state",
                        "started",
                        "finished",
                        "duration",
                        "metrics",
                        "outputs",
                        "error",
                        "cached_from",
                    )
                }
                for s in run["steps"]
            ]
        return out

    async def in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


def _params(body: dict[str, Any]) -> dict[str, str]:
    params = body.get("params")
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise web.HTTPError(400, "'params' must be an object of NAME: VALUE")
    out: dict[str, str] = {}
    for name, value in params.items():
        out[str(name)] = value if isinstance(value, str) else json.dumps(value)
    return out


def _graph_of(path: Path, content: dict[str, Any] | None) -> Any:
    from jupyter_mlk.notebook.graph import build_graph
    from jupyter_mlk.notebook.reader import load_notebook_text

    if content is None:
        return build_graph(path)
    return build_graph(load_notebook_text(json.dumps(content), str(path)))


def _checked_graph(path: Path) -> Any:
    from jupyter_mlk.cli.pipeline import load_graph

    return load_graph(str(path))


class GraphHandler(MlkHandler):
    """The step graph of a notebook, saved (GET) or as the panel holds it (POST)."""

    @web.authenticated
    @authorized
    @_errors
    async def get(self) -> None:
        path = self.notebook_path(self.get_query_argument("path", ""))
        graph = await self.in_thread(_graph_of, path, None)
        self.reply(self._graph_json(graph))

    @web.authenticated
    @authorized
    @_errors
    async def post(self) -> None:
        body = self.body()
        path = self.notebook_path(body.get("path"))
        content = body.get("content")
        if content is not None and not isinstance(content, dict):
            raise web.HTTPError(400, "'content' must be the notebook's JSON object")
        graph = await self.in_thread(_graph_of, path, content)
        self.reply(self._graph_json(graph))

    def _graph_json(self, graph: Any) -> dict[str, Any]:
        data: dict[str, Any] = graph.to_dict()
        data["notebook"] = display_path(data["notebook"], self.root)
        return data


class RunsHandler(MlkHandler):
    """List runs, or start one of a saved notebook."""

    @web.authenticated
    @authorized
    @_errors
    async def get(self) -> None:
        try:
            limit = int(self.get_query_argument("limit", "50"))
        except ValueError:
            raise web.HTTPError(400, "'limit' must be a whole number") from None
        if not 1 <= limit <= 500:
            raise web.HTTPError(400, "'limit' must be between 1 and 500")
        path = self.get_query_argument("path", "")
        notebook = str(self.notebook_path(path)) if path else None
        runs = self.workspace.store.list_runs(limit=limit, notebook=notebook)
        self.reply({"runs": [self.run_json(r) for r in runs]})

    @web.authenticated
    @authorized
    @_errors
    async def post(self) -> None:
        from jupyter_mlk.notebook.params import resolve_overrides, to_json_value
        from jupyter_mlk.store.db import new_run_id

        body = self.body()
        path = self.notebook_path(body.get("path"))
        overrides = _params(body)
        workers = body.get("workers") or self.settings.get("mlk_workers")
        if workers is not None and (not isinstance(workers, int) or workers < 1):
            raise web.HTTPError(400, "'workers' must be a whole number of at least 1")
        graph = await self.in_thread(_checked_graph, path)
        values = resolve_overrides(graph.parameters, overrides)
        run_id = new_run_id()
        ws = self.workspace
        ws.store.create_run(  # owned by the executor process started below
            run_id,
            str(path),
            {k: to_json_value(v) for k, v in values.items()},
            [s.name for s in graph.steps],
            graph=graph.to_dict(),
            owned=False,
        )
        self._spawn(run_id, path, overrides, bool(body.get("no_cache")), workers)
        self.reply(self.run_json(ws.store.get_run(run_id)), status=201)

    def _spawn(
        self,
        run_id: str,
        path: Path,
        overrides: dict[str, str],
        no_cache: bool,
        workers: int | None,
    ) -> None:
        """The run goes on in its own process: it survives the tab and never blocks us."""
        ws = self.workspace
        argv = [sys.executable, "-m", "jupyter_mlk.cli", "run", str(path), "--run-id", run_id]
        log_dir = ws.run_dir(run_id)
        log_dir.mkdir(parents=True, exist_ok=True)
        if overrides:  # in a file: a command line has a length limit, values do not
            params_file = log_dir / "params.json"
            params_file.write_text(json.dumps(overrides))
            argv += ["--params-file", str(params_file)]
        if no_cache:
            argv.append("--no-cache")
        if workers:
            argv += ["--workers", str(workers)]
        with open(log_dir / "executor.log", "wb") as log:
            proc = subprocess.Popen(
                argv,
                cwd=ws.root,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env={**os.environ, "MLK_HOME": str(ws.root)},
            )
        self.settings["mlk_watcher"].adopt_child(run_id, proc)


class RunHandler(MlkHandler):
    """One run with its steps."""

    @web.authenticated
    @authorized
    @_errors
    async def get(self, run_id: str) -> None:
        self.reply(self.run_json(self.workspace.store.get_run(run_id)))


class CancelHandler(MlkHandler):
    """Cancel a run."""

    @web.authenticated
    @authorized
    @_errors
    async def post(self, run_id: str) -> None:
        from jupyter_mlk.pipeline.executor import cancel_run
        from jupyter_mlk.store.workspace import Workspace

        def cancel() -> dict[str, Any]:
            ws = Workspace(self.settings["mlk_workspace"])  # SQLite: one connection a thread
            try:
                return cancel_run(ws, run_id, 10.0)
            finally:
                ws.close()

        self.reply(self.run_json(await self.in_thread(cancel)))


class _StepFileHandler(MlkHandler):
    def step_dir(self, run_id: str, step: str) -> Path:
        run = self.workspace.store.get_run(run_id)
        names = [s["name"] for s in run["steps"]]
        if step not in names:
            raise RunError(
                f"run {run['id']} has no step {step!r}; its steps are: " + ", ".join(names)
            )
        return Path(self.workspace.step_dir(run["id"], step))


class LogsHandler(_StepFileHandler):
    """A step's stdout and stderr."""

    @web.authenticated
    @authorized
    @_errors
    async def get(self, run_id: str, step: str) -> None:
        d = self.step_dir(run_id, step)
        logs = {
            s: (d / f"{s}.log").read_text(errors="replace") if (d / f"{s}.log").exists() else ""
            for s in ("stdout", "stderr")
        }
        self.reply(logs)


class StepNotebookHandler(_StepFileHandler):
    """A step's executed notebook."""

    @web.authenticated
    @authorized
    @_errors
    async def get(self, run_id: str, step: str) -> None:
        path = self.step_dir(run_id, step) / "output.ipynb"
        if not path.exists():
            raise web.HTTPError(
                404, f"step {step} of run {run_id} has no executed notebook (it did not start)"
            )
        self.reply(json.loads(path.read_text()))


class ArtifactHandler(MlkHandler):
    """A value bundle's manifest, or one of its files."""

    @web.authenticated
    @authorized
    @_errors
    async def get(self, digest: str, file: str | None = None) -> None:
        from jupyter_mlk.pipeline.values import MANIFEST, PICKLE, read_manifest

        if not _DIGEST.match(digest) or not self.workspace.has_bundle(digest):
            raise web.HTTPError(404, f"no artifact {digest!r} in this workspace")
        bundle = self.workspace.bundle_path(digest)
        manifest = read_manifest(bundle)
        if not file:
            self.reply(manifest)
            return
        allowed = {MANIFEST, PICKLE} | {o["file"] for o in manifest["objects"].values()}
        if file not in allowed:
            raise web.HTTPError(
                404,
                f"artifact {digest[:12]} has no file {file!r}; it has: "
                + ", ".join(sorted(allowed)),
            )
        self.set_header("Content-Type", "application/octet-stream")
        self.set_header("Content-Disposition", f'attachment; filename="{file}"')
        with open(bundle / file, "rb") as fh:
            while chunk := fh.read(1 << 20):
                self.write(chunk)
                await self.flush()
        self.finish()


def _compile(path: Path, overrides: dict[str, str], image: str | None) -> str:
    from jupyter_mlk.notebook.params import resolve_overrides
    from jupyter_mlk.pipeline.compiler import compile_pipeline

    graph = _checked_graph(path)
    values = resolve_overrides(graph.parameters, overrides)
    return compile_pipeline(graph, image=image, overrides={k: values[k] for k in overrides})


class CompileHandler(MlkHandler):
    """The KFP v2 YAML of a notebook, optionally saved next to it."""

    @web.authenticated
    @authorized
    @_errors
    async def post(self) -> None:
        body = self.body()
        path = self.notebook_path(body.get("path"))
        image = body.get("image") or self.settings.get("mlk_image")
        if image is not None and not isinstance(image, str):
            raise web.HTTPError(400, "'image' must be a string such as repo/image:tag")
        text = await self.in_thread(_compile, path, _params(body), image)
        saved = None
        if body.get("save"):
            target = path.with_suffix(".yaml")
            tmp = target.with_name(f".{target.name}.tmp")
            tmp.write_text(text)
            os.replace(tmp, target)
            saved = display_path(str(target), self.root)
        self.reply({"yaml": text, "saved_to": saved})


_ID = r"(?P<run_id>[^/]+)"
ROUTES: list[tuple[str, type[MlkHandler]]] = [
    (r"/mlk/api/graph", GraphHandler),
    (r"/mlk/api/runs", RunsHandler),
    (rf"/mlk/api/runs/{_ID}", RunHandler),
    (rf"/mlk/api/runs/{_ID}/cancel", CancelHandler),
    (rf"/mlk/api/runs/{_ID}/steps/(?P<step>[^/]+)/logs", LogsHandler),
    (rf"/mlk/api/runs/{_ID}/steps/(?P<step>[^/]+)/notebook", StepNotebookHandler),
    (r"/mlk/api/artifacts/(?P<digest>[^/]+)", ArtifactHandler),
    (r"/mlk/api/artifacts/(?P<digest>[^/]+)/(?P<file>[^/]+)", ArtifactHandler),
    (r"/mlk/api/compile", CompileHandler),
]
