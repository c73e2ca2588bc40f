"""The REST API through a real jupyter server (jp_fetch), checked against the OpenAPI file."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_schema_validator import OAS30Validator
from tornado.httpclient import HTTPClientError

from jupyter_mlk.server.deployments import ROUTES as DEPLOY_ROUTES
from jupyter_mlk.server.handlers import ROUTES as RUN_ROUTES
from jupyter_mlk.server.handlers import MlkHandler
from jupyter_mlk.server.launches import ROUTES as LAUNCH_ROUTES
from jupyter_mlk.server.sweeps import ROUTES as SWEEP_ROUTES

ROUTES = RUN_ROUTES + LAUNCH_ROUTES + SWEEP_ROUTES + DEPLOY_ROUTES

SPEC = yaml.safe_load(
    (Path(__file__).resolve().parents[2] / "jupyter_mlk/server/openapi.yaml").read_text()
)


def check(body: Any, ref: str) -> None:
    """Validate a response body against a schema of the OpenAPI file."""
    schema = {"$ref": ref, "components": SPEC["components"]}
    OAS30Validator(schema).validate(body)


def response_schema(path: str, method: str, status: str) -> dict[str, Any]:
    op = SPEC["paths"][path][method]["responses"][status]
    if "$ref" in op:
        name = op["$ref"].rsplit("/", 1)[1]
        op = SPEC["components"]["responses"][name]
    return dict(op["content"]["application/json"]["schema"])


def check_op(body: Any, path: str, method: str, status: str) -> None:
    schema = {**response_schema(path, method, status), "components": SPEC["components"]}
    OAS30Validator(schema).validate(body)


async def fetch(
    jp_fetch: Any, *parts: str, method: str = "GET", body: Any = None, **params: str
) -> tuple[int, Any]:
    kwargs: dict[str, Any] = {"method": method, "params": params}
    if body is not None:
        kwargs["body"] = json.dumps(body)
    try:
        resp = await jp_fetch("mlk", "api", *parts, **kwargs)
    except HTTPClientError as exc:
        assert exc.response is not None
        try:
            return exc.code, json.loads(exc.response.body)
        except ValueError:  # tornado's own 404 page for a URL no route matches
            return exc.code, {"raw": exc.response.body.decode()}
    return resp.code, json.loads(resp.body)


async def test_graph_of_a_saved_notebook(jp_fetch: Any, iris_root: Path) -> None:
    code, graph = await fetch(jp_fetch, "graph", path="iris.ipynb")
    assert code == 200
    check_op(graph, "/graph", "get", "200")
    assert [s["name"] for s in graph["steps"]] == ["load", "train", "evaluate", "deploy"]
    assert graph["notebook"] == "iris.ipynb"


async def test_graph_of_unsaved_content(jp_fetch: Any, iris_root: Path) -> None:
    content = json.loads((iris_root / "iris.ipynb").read_text())
    content["cells"][4]["metadata"]["tags"] = ["step:fit"]
    code, graph = await fetch(
        jp_fetch, "graph", method="POST", body={"path": "iris.ipynb", "content": content}
    )
    assert code == 200
    assert [s["name"] for s in graph["steps"]] == ["load", "fit", "evaluate", "deploy"]


@pytest.mark.parametrize(
    ("path", "status", "needle"),
    [
        ("../outside.ipynb", 403, "outside the server's root"),
        ("/etc/passwd", 404, "no notebook"),
        ("missing.ipynb", 404, "no notebook"),
        ("", 400, "path"),
    ],
)
async def test_bad_paths_are_4xx_with_a_message(
    jp_fetch: Any, iris_root: Path, path: str, status: int, needle: str
) -> None:
    (iris_root.parent / "outside.ipynb").write_text("{}")
    code, body = await fetch(jp_fetch, "graph", path=path)
    assert code == status and needle in body["message"]
    check_op(body, "/graph", "get", str(status))


async def test_run_from_the_api_goes_on_and_is_listed(jp_fetch: Any, iris_root: Path) -> None:
    code, run = await fetch(
        jp_fetch,
        "runs",
        method="POST",
        body={"path": "iris.ipynb", "params": {"n_estimators": "20"}},
    )
    assert code == 201, run
    check_op(run, "/runs", "post", "201")
    assert run["params"]["n_estimators"] == 20
    # the server keeps answering while the run goes on
    code, listed = await fetch(jp_fetch, "runs")
    assert code == 200 and listed["runs"][0]["id"] == run["id"]
    check_op(listed, "/runs", "get", "200")
    deadline = time.time() + 90
    while time.time() < deadline:
        code, current = await fetch(jp_fetch, "runs", run["id"])
        if current["state"] not in ("PENDING", "RUNNING"):
            break
        await asyncio.sleep(0.3)
    check_op(current, "/runs/{run_id}", "get", "200")
    assert current["state"] == "SUCCEEDED", current
    assert 0.8 < current["metrics"]["accuracy"] <= 1.0
    code, logs = await fetch(jp_fetch, "runs", run["id"], "steps", "train", "logs")
    assert code == 200 and "n_estimators=20" in logs["stdout"]
    code, nb = await fetch(jp_fetch, "runs", run["id"], "steps", "train", "notebook")
    assert code == 200 and nb["nbformat"] == 4
    digest = next(s for s in current["steps"] if s["name"] == "train")["outputs"]["model"]
    code, manifest = await fetch(jp_fetch, "artifacts", digest)
    assert code == 200 and manifest["names"] == ["model"]
    resp = await jp_fetch("mlk", "api", "artifacts", digest, "values.pkl")
    assert resp.code == 200 and len(resp.body) > 0
    for bad in ("..%2F..%2Fmlk.db", "bundle.json.tmp"):
        code, _ = await fetch(jp_fetch, "artifacts", digest, bad)
        assert code == 404


async def test_bad_parameters_are_400_and_start_nothing(jp_fetch: Any, iris_root: Path) -> None:
    code, body = await fetch(
        jp_fetch,
        "runs",
        method="POST",
        body={"path": "iris.ipynb", "params": {"n_estimators": "many"}},
    )
    assert code == 400 and "n_estimators" in body["message"] and "many" in body["message"]
    code, body = await fetch(
        jp_fetch, "runs", method="POST", body={"path": "iris.ipynb", "params": {"nope": "1"}}
    )
    assert code == 400 and "nope" in body["message"]
    assert (await fetch(jp_fetch, "runs"))[1]["runs"] == []


@pytest.mark.parametrize(
    "body", ["not json", "[1, 2]", '{"path": 3}', '{"path": "iris.ipynb", "params": []}']
)
async def test_malformed_bodies_are_400(jp_fetch: Any, iris_root: Path, body: str) -> None:
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch("mlk", "api", "runs", method="POST", body=body)
    assert info.value.code == 400


async def test_unknown_run_and_step_are_404(jp_fetch: Any, iris_root: Path) -> None:
    code, body = await fetch(jp_fetch, "runs", "r-nope")
    assert code == 404 and "no run" in body["message"]


async def test_compile_returns_yaml_and_saves_next_to_the_notebook(
    jp_fetch: Any, iris_root: Path
) -> None:
    code, body = await fetch(
        jp_fetch,
        "compile",
        method="POST",
        body={"path": "iris.ipynb", "save": True, "params": {"max_depth": "4"}},
    )
    assert code == 200, body
    check_op(body, "/compile", "post", "200")
    assert body["saved_to"] == "iris.yaml"
    assert (iris_root / "iris.yaml").read_text() == body["yaml"]
    assert "pipelineInfo" in body["yaml"]


async def test_graph_errors_are_400_with_diagnostics(jp_fetch: Any, jp_root_dir: Path) -> None:
    from tests.conftest import case_dir

    (jp_root_dir / "clash.ipynb").write_text(
        (case_dir("08-name-clash") / "clash.ipynb").read_text()
    )
    code, body = await fetch(jp_fetch, "runs", method="POST", body={"path": "clash.ipynb"})
    assert code == 400 and "nc-train-underscore" in body["message"]
    assert body["diagnostics"]


async def test_every_route_requires_authentication(
    jp_fetch: Any, jp_serverapp: Any, iris_root: Path
) -> None:
    from tornado.httpclient import AsyncHTTPClient

    client = AsyncHTTPClient()
    base = f"http://127.0.0.1:{jp_serverapp.port}{jp_serverapp.base_url}"
    samples = {
        "run_id": "r-x",
        "step": "s",
        "digest": "0" * 64,
        "file": "f",
        "name": "n",
        "sweep_id": "s-x",
    }
    assert ROUTES
    for pattern, handler in ROUTES:
        url = base + pattern.lstrip("/")
        for name, value in samples.items():
            url = url.replace(f"(?P<{name}>[^/]+)", value)
        url = url.replace("(?P<action>[a-z]+)", "promote")
        for method in ("GET", "POST", "DELETE"):
            if getattr(handler, method.lower()) is getattr(MlkHandler, method.lower()):
                continue
            resp = await client.fetch(
                url, method=method, raise_error=False, body="{}" if method == "POST" else None
            )
            assert resp.code == 403, (url, method, resp.code)
            # a token in the query but no XSRF cookie for a POST from a browser is refused too
            if method == "POST":
                resp = await client.fetch(
                    url,
                    method="POST",
                    body="{}",
                    raise_error=False,
                    headers={"Cookie": "_xsrf=abc"},
                )
                assert resp.code in (403,), (url, resp.code)


async def test_events_announce_run_state_changes(
    jp_fetch: Any, jp_serverapp: Any, iris_root: Path
) -> None:
    import logging

    from jupyter_mlk.server.watcher import EVENT_SCHEMA_ID

    seen: list[dict[str, Any]] = []

    async def listener(logger: Any, schema_id: str, data: dict[str, Any]) -> None:
        seen.append(data)

    jp_serverapp.event_logger.add_listener(schema_id=EVENT_SCHEMA_ID, listener=listener)
    _, run = await fetch(jp_fetch, "runs", method="POST", body={"path": "iris.ipynb"})
    deadline = time.time() + 90
    while time.time() < deadline:
        if any(e["step"] == "" and e["state"] == "SUCCEEDED" for e in seen):
            break
        await asyncio.sleep(0.3)
    states = [(e["step"], e["state"]) for e in seen if e["run_id"] == run["id"]]
    assert ("", "SUCCEEDED") in states and ("train", "SUCCEEDED") in states
    assert all(e["notebook"] == "iris.ipynb" for e in seen)
    logging.getLogger(__name__).debug("events: %s", states)


async def test_cancel_through_the_api_and_a_run_nobody_adopted(
    jp_fetch: Any, iris_root: Path
) -> None:
    from jupyter_mlk.store.workspace import Workspace

    store = Workspace(iris_root).store
    store.create_run("r-orphan", str(iris_root / "iris.ipynb"), {}, ["load"], owned=False)
    code, run = await fetch(jp_fetch, "runs", "r-orphan", "cancel", method="POST", body={})
    assert code == 200 and run["state"] == "CANCELLED"
    code, _ = await fetch(jp_fetch, "runs", "r-missing", "cancel", method="POST", body={})
    assert code == 404


async def test_huge_and_non_finite_values_are_served(jp_fetch: Any, iris_root: Path) -> None:
    nb = json.loads((iris_root / "iris.ipynb").read_text())
    nb["cells"][2]["source"] = (
        "n_estimators = 50\nmax_depth = 3\naccuracy_threshold = 0.9\nlabel = 'x'"
    )
    (iris_root / "iris.ipynb").write_text(json.dumps(nb))
    code, run = await fetch(
        jp_fetch,
        "runs",
        method="POST",
        body={
            "path": "iris.ipynb",
            "params": {"label": "y" * 200_000, "accuracy_threshold": "nan"},
        },
    )
    assert code == 201, run
    code, listed = await fetch(jp_fetch, "runs")
    assert code == 200 and listed["runs"][0]["params"]["accuracy_threshold"] is None
    deadline = time.time() + 90
    while time.time() < deadline:
        code, current = await fetch(jp_fetch, "runs", run["id"])
        if current["state"] not in ("PENDING", "RUNNING"):
            break
        await asyncio.sleep(0.3)
    assert current["state"] == "SUCCEEDED", current
    assert len(current["params"]["label"]) == 200_000
