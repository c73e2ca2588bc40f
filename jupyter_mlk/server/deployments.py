"""REST handlers for deployments: thin calls to the serving engine, run in worker threads.

Every call opens its own workspace (SQLite connections stay in their thread). Serving
errors are 4xx with the engine's message (404 when no deployment has the name).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from jupyter_mlk.server.handlers import MlkHandler, _errors


class _DeploymentHandler(MlkHandler):
    async def engine(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        from jupyter_mlk.store.workspace import Workspace

        def call() -> Any:
            ws = Workspace(self.settings["mlk_workspace"])
            try:
                return fn(ws, *args, **kwargs)
            finally:
                ws.close()

        return await self.in_thread(call)


class DeploymentsHandler(_DeploymentHandler):
    """List deployments, or deploy a model (a new version, or a canary)."""

    def _confined_model(self, model: str) -> str:
        """A model file must be inside the server's root, like every path of the API."""
        if not _is_file_model(model):
            return model
        full = (self.root / model.lstrip("/")).resolve()
        if full != self.root and self.root not in full.parents:
            raise web.HTTPError(
                403, f"model file {model!r} is outside the server's root directory"
            )
        if not full.is_file():
            raise web.HTTPError(404, f"no model file at {model!r}")
        return str(full)

    @web.authenticated
    @authorized
    @_errors
    async def get(self) -> None:
        from jupyter_mlk.serving import list_deployments

        self.reply({"deployments": await self.engine(list_deployments)})

    @web.authenticated
    @authorized
    @_errors
    async def post(self) -> None:
        from jupyter_mlk.serving import deploy_model

        body = self.body()
        model, name = body.get("model"), body.get("name")
        if not isinstance(model, str) or not model:
            raise web.HTTPError(
                400, "give 'model': RUN:VARIABLE, RUN:STEP/VARIABLE, a file or an s3:// URI"
            )
        if not isinstance(name, str) or not name:
            raise web.HTTPError(400, "give the deployment a 'name'")
        canary = body.get("canary_percent")
        if canary is not None and (not isinstance(canary, int) or isinstance(canary, bool)):
            raise web.HTTPError(400, "'canary_percent' must be a whole number from 1 to 99")
        backend = body.get("backend", "local")
        if backend not in ("local", "kubernetes"):
            raise web.HTTPError(400, "'backend' must be local or kubernetes")
        model = self._confined_model(model)
        result = await self.engine(
            deploy_model,
            model,
            name,
            canary_percent=canary,
            backend=backend,
            dry_run=bool(body.get("dry_run")),
        )
        self.reply(result, status=201)


def _is_file_model(model: str) -> bool:
    """A file path, as opposed to ``RUN:VARIABLE``, ``RUN:STEP/VARIABLE`` or ``s3://...``."""
    if model.startswith("s3://"):
        return False
    head, sep, _ = model.partition(":")
    return not sep or "/" in head or not head


class DeploymentHandler(_DeploymentHandler):
    """One deployment; DELETE undeploys it."""

    @web.authenticated
    @authorized
    @_errors
    async def get(self, name: str) -> None:
        from jupyter_mlk.serving import get_deployment

        self.reply(await self.engine(get_deployment, name))

    @web.authenticated
    @authorized
    @_errors
    async def delete(self, name: str) -> None:
        from jupyter_mlk.serving import undeploy

        self.reply(await self.engine(undeploy, name))


class DeploymentActionHandler(_DeploymentHandler):
    """promote, rollback, traffic (the canary slider) and predict (the "try it" box)."""

    @web.authenticated
    @authorized
    @_errors
    async def post(self, name: str, action: str) -> None:
        from jupyter_mlk import serving

        body = self.body()
        if action == "promote":
            result = await self.engine(serving.promote, name)
        elif action == "rollback":
            result = await self.engine(serving.rollback, name)
        elif action == "traffic":
            percent = body.get("percent")
            if not isinstance(percent, int) or isinstance(percent, bool):
                raise web.HTTPError(400, "'percent' must be a whole number from 0 to 100")
            result = await self.engine(serving.set_traffic, name, percent)
        elif action == "predict":
            if "data" not in body:
                raise web.HTTPError(400, "give 'data': rows, a V1 body or a V2 body")
            result = await self.engine(serving.predict, name, body["data"])
        else:
            raise web.HTTPError(
                404, f"no action {action!r}: use promote, rollback, traffic or predict"
            )
        self.reply(result)


ROUTES: list[tuple[str, type[MlkHandler]]] = [
    (r"/mlk/api/deployments", DeploymentsHandler),
    (r"/mlk/api/deployments/(?P<name>[^/]+)", DeploymentHandler),
    (r"/mlk/api/deployments/(?P<name>[^/]+)/(?P<action>[a-z]+)", DeploymentActionHandler),
]
