"""The local inference server over HTTP: case 11, row shapes, errors, canary, promote."""

from __future__ import annotations

import http.client
import json
import re
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from jupyter_mlk.serving import engine
from jupyter_mlk.store.workspace import Workspace
from tests.conftest import case_dir, expected
from tests.serving.conftest import ServerThread

OPENAPI = Path(engine.__file__).with_name("openapi.yaml")


def call(url: str, method: str, path: str, body: Any = None, raw: bytes | None = None) -> Any:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    text = resp.read()
    conn.close()
    assert resp.getheader("Content-Type", "").startswith("application/json")
    payload = json.loads(text.decode("utf-8"))
    check_openapi(method, path, resp.status, payload)
    return resp.status, payload, resp.getheader("X-Mlk-Model-Version")


_SPEC: dict[str, Any] = yaml.safe_load(OPENAPI.read_text())


def check_openapi(method: str, path: str, status: int, payload: Any) -> None:
    """The response matches the shipped OpenAPI description of its operation."""
    from openapi_schema_validator import OAS30Validator

    for template, item in _SPEC["paths"].items():
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/:]+", re.escape(template)) + "$"
        if re.match(pattern, path) and method.lower() in item:
            responses = item[method.lower()]["responses"]
            break
    else:
        assert status == 404, f"{method} {path} answered {status} but is not described"
        assert set(payload) == {"error"}
        return
    assert str(status) in responses, f"{method} {path}: status {status} is not described"
    response = responses[str(status)]
    if "$ref" in response:
        response = _SPEC["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    schema = response["content"]["application/json"]["schema"]
    OAS30Validator({**schema, "components": _SPEC["components"]}).validate(payload)


@pytest.fixture
def iris(ws: Workspace, server: ServerThread, model_files: dict[str, Path]) -> ServerThread:
    engine.deploy_model(ws, str(model_files["iris"]), "iris")
    return server


def test_case_11_requests_give_the_expected_answers(
    iris_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(iris_run)
    monkeypatch.setenv("MLK_HOME", str(iris_run))
    ws = Workspace(iris_run)
    srv = ServerThread(ws).start()
    try:
        case = expected("11-serving-requests")
        folder = case_dir("11-serving-requests")
        dep = engine.deploy_model(ws, "latest:train/model", "iris")
        assert dep["versions"][0]["lineage"]["step"] == "train"
        for req in case["requests"]:
            status, body, _ = call(
                srv.url, req["method"], req["path"], raw=(folder / req["file"]).read_bytes()
            )
            assert status == req["status"], (req["file"], body)
            if "body" in req:
                assert body == req["body"]
                assert all(type(p) is int for p in body["predictions"])
            for key, value in req.get("body_includes", {}).items():
                assert body[key] == (value if key != "outputs" else body[key])
            if "body_includes" in req and "outputs" in req["body_includes"]:
                want = req["body_includes"]["outputs"][0]
                got = body["outputs"][0]
                assert {k: got[k] for k in want} == want
                assert got["name"] == "output-0"
            for pattern in req.get("error_must_match", []):
                assert re.search(pattern, body["error"]), (pattern, body["error"])
        status, body, _ = call(
            srv.url,
            "POST",
            "/v1/models/iris:predict",
            raw=(folder / "v1_predict.json").read_bytes(),
        )
        assert (status, body) == (200, {"predictions": [0, 1, 2]})
        assert call(srv.url, "GET", "/v2/health/ready")[0] == 200
        assert call(srv.url, "GET", "/v2/models/iris/ready")[0] == 200
        status, body, _ = call(srv.url, "GET", "/v1/models/iris")
        assert status == 200 and body == {"name": "iris", "ready": True}
    finally:
        srv.stop()
        ws.close()


def test_the_run_alone_deploys_its_only_model(iris_run: Path, tmp_path: Path) -> None:
    ws = Workspace(iris_run)
    plan = engine.deploy_model(ws, "latest", "iris", dry_run=True)
    assert plan["format"] == "sklearn"
    assert plan["lineage"]["step"] == "train" and plan["lineage"]["variable"] == "model"
    plan = engine.deploy_model(ws, str(iris_run / "model" / "model.joblib"), "iris2", dry_run=True)
    assert plan["model"]["class"].endswith("RandomForestClassifier")
    ws.close()


def test_v2_metadata_and_health(iris: ServerThread) -> None:
    status, body, _ = call(iris.url, "GET", "/v2/models/iris")
    assert status == 200
    assert body["platform"] == "sklearn"
    assert body["inputs"][0]["shape"] == [-1, 4]
    assert body["outputs"][0]["datatype"] == "INT64"
    assert call(iris.url, "GET", "/v2/health/live")[1] == {"live": True}
    assert call(iris.url, "GET", "/v1/models")[1] == {"models": ["iris"]}
    assert call(iris.url, "GET", "/v2")[0] == 200


ROWS = [[5.0, 3.4, 1.5, 0.2], [6.9, 3.1, 5.6, 2.2]]


@pytest.mark.parametrize(
    ("body", "expected_predictions"),
    [
        ({"instances": ROWS}, [0, 2]),
        ({"inputs": ROWS}, [0, 2]),
        ({"instances": [ROWS[1]]}, [2]),
        ({"instances": [[5, 3, 1, None]]}, None),
    ],
    ids=["instances", "inputs", "batch-of-one", "null-is-nan"],
)
def test_v1_row_shapes(
    iris: ServerThread, body: Any, expected_predictions: list[int] | None
) -> None:
    status, out, _ = call(iris.url, "POST", "/v1/models/iris:predict", body)
    assert status == 200, out
    if expected_predictions is None:  # the forest decides what a missing value means
        assert [type(p) for p in out["predictions"]] == [int]
    else:
        assert out == {"predictions": expected_predictions}


BAD_V1 = [
    (b'{"instances": [[1, 2', "(?i)not valid JSON"),
    (b"", "(?i)empty"),
    (b"\xff\xfe", "(?i)UTF-8|JSON"),
    (b"[1, 2]", "(?i)JSON object"),
    (b'{"rows": [[1, 2, 3, 4]]}', "instances.*inputs"),
    (b'{"instances": [5.0, 3.4, 1.5, 0.2]}', r"(?i)flat list of 4.*\[\[5\.0"),
    (b'{"instances": []}', "(?i)empty.*row"),
    (b'{"instances": [[1, 2, 3]]}', "3 features.*expects 4"),
    (b'{"instances": [[1, 2, 3, 4], [1, 2]]}', "row 1 has 2 values"),
    (b'{"instances": [[1, "a", 3, 4]]}', "(?i)model 'iris' rejected|could not convert"),
    (b'{"instances": [{"a": 1}]}', "(?i)without column names.*4"),
    (b'{"instances": [[1, [2], 3, 4]]}', "value 1 is a list"),
    (b'{"instances": "abc"}', "must be a list of rows"),
    (b'{"instances": [[], []]}', "0 features"),
]


@pytest.mark.parametrize(("raw", "message"), BAD_V1, ids=[m for _, m in BAD_V1])
def test_bad_v1_bodies_are_400_saying_what_to_send(
    iris: ServerThread, raw: bytes, message: str
) -> None:
    status, body, _ = call(iris.url, "POST", "/v1/models/iris:predict", raw=raw)
    assert status == 400, body
    assert re.search(message, body["error"]), body["error"]


BAD_V2 = [
    ({"inputs": []}, "non-empty list"),
    ({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32"}]}, "no 'data'"),
    ({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "F32", "data": [1] * 4}]}, "FP32"),
    ({"inputs": [{"name": "x", "shape": [4], "datatype": "FP32", "data": [1] * 4}]}, "2-D"),
    (
        {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "INT64", "data": [1.5] * 4}]},
        "INT64",
    ),
    ({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": ["a"] * 4}]}, "FP32"),
    ({"inputs": [{"name": "x", "shape": [1, -4], "datatype": "FP32", "data": [1] * 4}]}, "shape"),
    (
        {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32", "data": [1] * 3}]},
        "expects 4",
    ),
]


@pytest.mark.parametrize(("body", "message"), BAD_V2, ids=[m for _, m in BAD_V2])
def test_bad_v2_bodies_are_400(iris: ServerThread, body: Any, message: str) -> None:
    status, out, _ = call(iris.url, "POST", "/v2/models/iris/infer", body)
    assert status == 400, out
    assert message in out["error"]


def test_unknown_model_and_path_are_json_404(iris: ServerThread) -> None:
    status, body, _ = call(iris.url, "POST", "/v1/models/nope:predict", {"instances": ROWS})
    assert status == 404 and "jupyter mlk deploy" in body["error"]
    assert call(iris.url, "GET", "/v3/whatever")[0] == 404
    assert call(iris.url, "GET", "/v2/models/nope/ready")[0] == 404


def test_dataframe_pipeline_takes_records_columns_and_named_tensors_with_unicode_labels(
    ws: Workspace, server: ServerThread, model_files: dict[str, Path]
) -> None:
    engine.deploy_model(ws, str(model_files["frame"]), "shop")
    url = server.url
    records = {"instances": [{"city": "Zürich", "size": 1.0}, {"city": "Köln", "size": 6.0}]}
    status, body, _ = call(url, "POST", "/v1/models/shop:predict", records)
    assert status == 200, body
    assert body["predictions"] == ["petit", "größer"]
    columns = {"inputs": {"city": ["Zürich", "Köln"], "size": [1.0, 6.0]}}
    assert call(url, "POST", "/v1/models/shop:predict", columns)[1] == body
    single = {"instances": {"city": "Genève", "size": 2.0}}
    assert call(url, "POST", "/v1/models/shop:predict", single)[1] == {"predictions": ["grand"]}
    v2 = {
        "inputs": [
            {"name": "city", "shape": [2], "datatype": "BYTES", "data": ["Zürich", "Köln"]},
            {"name": "size", "shape": [2], "datatype": "FP64", "data": [1.0, 6.0]},
        ]
    }
    status, out, _ = call(url, "POST", "/v2/models/shop/infer", v2)
    assert status == 200, out
    assert out["outputs"][0]["datatype"] == "BYTES"
    assert out["outputs"][0]["data"] == ["petit", "größer"]
    mixed = {"instances": [["Zürich", 1.0]]}
    status, out, _ = call(url, "POST", "/v1/models/shop:predict", mixed)
    assert status == 400 and "send records" in out["error"] and "city, size" in out["error"]
    missing = {"instances": [{"city": "Zürich"}]}
    status, out, _ = call(url, "POST", "/v1/models/shop:predict", missing)
    assert status == 400 and "lacks 'size'" in out["error"]
    raw_parts = urlsplit(url)
    conn = http.client.HTTPConnection(raw_parts.hostname, raw_parts.port, timeout=10)
    conn.request("POST", "/v1/models/shop:predict", body=json.dumps(records).encode())
    text = conn.getresponse().read()
    conn.close()
    assert "größer".encode() in text  # UTF-8 on the wire, not \\u escapes


def test_canary_split_promote_and_rollback(
    ws: Workspace, server: ServerThread, model_files: dict[str, Path]
) -> None:
    engine.deploy_model(ws, str(model_files["iris"]), "iris")
    dep = engine.deploy_model(ws, str(model_files["iris_v2"]), "iris", canary_percent=20)
    assert [(t["version"], t["percent"]) for t in dep["traffic"]] == [(1, 80), (2, 20)]
    seen = {"1": 0, "2": 0}
    for _ in range(400):
        status, _, version = call(
            server.url, "POST", "/v1/models/iris:predict", {"instances": ROWS}
        )
        assert status == 200
        seen[version] += 1
    assert abs(seen["2"] / 400 - 0.20) <= 0.03, seen
    engine.rollback(ws, "iris")
    versions = {
        call(server.url, "POST", "/v1/models/iris:predict", {"instances": ROWS})[2]
        for _ in range(20)
    }
    assert versions == {"1"}
    engine.deploy_model(ws, str(model_files["iris_v2"]), "iris", canary_percent=50)
    dep = engine.promote(ws, "iris")
    assert [(t["version"], t["percent"]) for t in dep["traffic"]] == [(3, 100)]
    versions = {
        call(server.url, "POST", "/v1/models/iris:predict", {"instances": ROWS})[2]
        for _ in range(20)
    }
    assert versions == {"3"}
    with pytest.raises(Exception, match="no canary to promote"):
        engine.promote(ws, "iris")
    listed = engine.list_deployments(ws)
    assert listed[0]["status"] == "RUNNING" and listed[0]["url"].startswith("http://127.0.0.1:")
    statuses = {v["version"]: v["status"] for v in listed[0]["versions"]}
    assert statuses == {1: "CANCELLED", 2: "CANCELLED", 3: "RUNNING"}


def test_in_flight_requests_survive_promote_and_rollback(
    ws: Workspace, server: ServerThread, model_files: dict[str, Path]
) -> None:
    engine.deploy_model(ws, str(model_files["iris"]), "iris")
    engine.deploy_model(ws, str(model_files["iris_v2"]), "iris", canary_percent=50)
    results: list[int] = []
    stop = threading.Event()

    def hammer() -> None:
        parts = urlsplit(server.url)
        while not stop.is_set():
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
            conn.request("POST", "/v1/models/iris:predict", json.dumps({"instances": ROWS}))
            resp = conn.getresponse()
            resp.read()
            conn.close()
            results.append(resp.status)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    try:
        engine.promote(ws, "iris")
        engine.deploy_model(ws, str(model_files["iris"]), "iris", canary_percent=30)
        engine.rollback(ws, "iris")
        engine.deploy_model(ws, str(model_files["iris"]), "iris")
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert results and set(results) == {200}, {s: results.count(s) for s in set(results)}


def test_a_model_that_fails_to_load_keeps_the_old_version_serving(
    ws: Workspace, server: ServerThread, model_files: dict[str, Path], tmp_path: Path
) -> None:
    engine.deploy_model(ws, str(model_files["iris"]), "iris")
    store = engine.store_of(ws)
    # Simulate a model that loads in the CLI but not in the server (a missing module).
    version = store.add_version(
        "iris",
        "local",
        model_ref="broken",
        fmt="sklearn",
        path=str(tmp_path / "gone.joblib"),
        variable=None,
        lineage={},
        canary_percent=None,
    )
    engine._apply(engine.running_server(ws) or {}, 30)
    row = next(v for v in store.get("iris")["versions"] if v["version"] == version)
    assert row["status"] == "FAILED" and "gone.joblib" in row["error"]
    status, _body, used = call(server.url, "POST", "/v1/models/iris:predict", {"instances": ROWS})
    assert status == 200 and used == "1"
    store.close()


def test_schemathesis_finds_no_server_error(iris: ServerThread) -> None:
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, settings

    schema = schemathesis.openapi.from_path(str(OPENAPI))
    schema.config.update(base_url=iris.url)
    failures = []
    calls = []
    for result in schema.get_all_operations():
        operation = result.ok()
        strategy = operation.as_strategy()

        @settings(
            max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def check(case: Any) -> None:
            if "name" in (case.path_parameters or {}) and len(calls) % 4:
                case.path_parameters["name"] = "iris"  # mostly the served model
            response = case.call()
            calls.append(response.status_code)
            if response.status_code >= 500:
                failures.append(
                    (
                        case.method,
                        case.formatted_path,
                        case.body,
                        response.status_code,
                        response.text[:200],
                    )
                )
            else:
                check_openapi(
                    case.method, case.formatted_path, response.status_code, response.json()
                )

        from hypothesis import given

        given(strategy)(check)()
    assert not failures, failures[:5]
    assert len(calls) > 100 and 200 in calls and 400 in calls
