"""Serving: models behind inference endpoints, on this machine or on KServe.

The verbs (:func:`deploy_model`, :func:`promote`, :func:`rollback`, :func:`set_traffic`,
:func:`undeploy`, :func:`list_deployments`, :func:`predict`) are what the CLI, the magics
and the REST API call. Nothing here imports tornado; only the server process does.
"""

from __future__ import annotations

from jupyter_mlk.serving.engine import (
    deploy_model,
    ensure_server,
    get_deployment,
    list_deployments,
    predict,
    promote,
    rollback,
    running_server,
    serve,
    set_traffic,
    stop_server,
    undeploy,
)

__all__ = [
    "deploy_model",
    "ensure_server",
    "get_deployment",
    "list_deployments",
    "predict",
    "promote",
    "rollback",
    "running_server",
    "serve",
    "set_traffic",
    "stop_server",
    "undeploy",
]
