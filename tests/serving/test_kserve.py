"""KServe backend: manifests as data against the CRD schema; apply through a fake API."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from jupyter_mlk.cli import main
from jupyter_mlk.errors import ServingError
from jupyter_mlk.serving import engine, kserve
from jupyter_mlk.store.workspace import Workspace

SCHEMAS = Path(os.environ.get("MLK_SCHEMAS", Path(__file__).parents[3] / "shared" / "schemas"))
CRD = SCHEMAS / "kserve-inferenceservices.serving.kserve.io-crd.yaml"


@pytest.fixture(scope="module")
def isvc_schema() -> dict[str, Any]:
    if not CRD.is_file():
        pytest.skip(f"the KServe CRD {CRD} is not there (set MLK_SCHEMAS)")
    crd = yaml.safe_load(CRD.read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1beta1")
    return dict(version["schema"]["openAPIV3Schema"])


def validate(manifest: dict[str, Any], schema: dict[str, Any]) -> None:
    import jsonschema

    jsonschema.Draft7Validator(schema).validate(manifest)


class FakeKServe:
    """InferenceServices over HTTP like the API server: CRD-validated, resourceVersions."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        self.version = 100
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _route(self) -> tuple[str, str | None] | None:
                parts = self.path.split("?")[0].strip("/").split("/")
                # apis/serving.kserve.io/v1beta1/namespaces/NS/inferenceservices[/NAME]
                if parts[:3] != ["apis", "serving.kserve.io", "v1beta1"] or parts[5] != (
                    "inferenceservices"
                ):
                    return None
                return parts[4], (parts[6] if len(parts) > 6 else None)

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                fake.requests.append((method, self.path, dict(self.headers), body))
                if self.headers.get("Authorization") != "Bearer fake-token":
                    return self._reply(401, {"kind": "Status", "message": "Unauthorized"})
                route = self._route()
                if route is None:
                    return self._reply(404, {"kind": "Status", "message": "no such resource"})
                ns, name = route
                status, out = fake.handle(method, ns, name, body)
                self._reply(status, out)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_PUT(self) -> None:
                self._handle("PUT")

            def do_DELETE(self) -> None:
                self._handle("DELETE")

        return Handler

    def handle(self, method: str, ns: str, name: str | None, body: Any) -> tuple[int, Any]:
        import jsonschema

        key = (ns, name or (body or {}).get("metadata", {}).get("name", ""))
        if method == "GET":
            obj = self.objects.get(key)
            return (200, obj) if obj else (404, {"kind": "Status", "message": "not found"})
        if method == "DELETE":
            return (200, {"kind": "Status"}) if self.objects.pop(key, None) else (404, {})
        try:
            jsonschema.Draft7Validator(self.schema).validate(body)
        except jsonschema.ValidationError as exc:
            return 422, {"kind": "Status", "message": f"invalid: {exc.message}"}
        if method == "POST" and key in self.objects:
            return 409, {"kind": "Status", "message": "already exists"}
        if method == "PUT":
            current = self.objects.get(key)
            if current is None:
                return 404, {}
            if body["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
                return 409, {"kind": "Status", "message": "conflict"}
        self.version += 1
        obj = json.loads(json.dumps(body))
        obj["metadata"]["resourceVersion"] = str(self.version)
        obj["status"] = {
            "url": f"http://{key[1]}.{ns}.example.com",
            "conditions": [{"type": "Ready", "status": "True"}],
        }
        self.objects[key] = obj
        return (201 if method == "POST" else 200), obj

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_kube(
    isvc_schema: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeKServe]:
    fake = FakeKServe(isvc_schema)
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "fake", "cluster": {"server": fake.url}}],
        "users": [{"name": "me", "user": {"token": "fake-token"}}],
        "contexts": [
            {"name": "fake", "context": {"cluster": "fake", "user": "me", "namespace": "ml-team"}}
        ],
        "current-context": "fake",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.delenv("MLK_KUBE_NAMESPACE", raising=False)
    yield fake
    fake.stop()


@pytest.mark.parametrize("fmt", ["sklearn", "xgboost", "lightgbm", "pytorch"])
def test_manifest_for_each_format_validates_against_the_crd(
    fmt: str, isvc_schema: dict[str, Any]
) -> None:
    manifest = kserve.build_inference_service(
        "iris",
        namespace="ml",
        model_format=fmt,
        storage_uri="s3://b/models/abc",
        canary_percent=10,
        resources=kserve.Resources(cpu="1", memory="2Gi", gpus=1),
        service_account="s3-reader",
        protocol_version="v2",
        annotations={"run": "r-1", "step": "train"},
    )
    validate(manifest, isvc_schema)
    model = manifest["spec"]["predictor"]["model"]
    assert model["modelFormat"] == {"name": fmt}
    assert model["resources"]["limits"] == {"cpu": "1", "memory": "2Gi", "nvidia.com/gpu": "1"}
    assert manifest["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert manifest["metadata"]["annotations"]["serving.jupyter-mlk.org/run"] == "r-1"


def test_minimal_manifest_has_no_canary_and_no_resources(isvc_schema: dict[str, Any]) -> None:
    manifest = kserve.build_inference_service(
        "iris", namespace="ml", model_format="sklearn", storage_uri="s3://b/m"
    )
    validate(manifest, isvc_schema)
    assert manifest["spec"] == {
        "predictor": {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": "s3://b/m"}}
    }


def test_the_schema_refuses_a_broken_manifest(isvc_schema: dict[str, Any]) -> None:
    import jsonschema

    manifest = kserve.build_inference_service(
        "iris", namespace="ml", model_format="sklearn", storage_uri="s3://b/m"
    )
    manifest["spec"]["predictor"]["canaryTrafficPercent"] = "ten"
    with pytest.raises(jsonschema.ValidationError):
        validate(manifest, isvc_schema)


def test_dry_run_prints_yaml_with_the_uploaded_location_and_no_secret(
    workspace: Path,
    s3_env: str,
    model_files: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    isvc_schema: dict[str, Any],
) -> None:
    monkeypatch.setenv("MLK_S3_ARTIFACTS", "s3://mlk-artifacts/team")
    monkeypatch.setenv("MLK_KUBE_NAMESPACE", "ml")
    code = main(
        [
            "deploy",
            str(model_files["iris"]),
            "--name",
            "iris",
            "--backend",
            "kubernetes",
            "--dry-run",
            "--cpu",
            "500m",
            "--memory",
            "1Gi",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    manifest = yaml.safe_load(out)
    validate(manifest, isvc_schema)
    uri = manifest["spec"]["predictor"]["model"]["storageUri"]
    assert uri.startswith("s3://mlk-artifacts/team/models/")
    assert "testing-secret-value" not in out and "AWS_" not in out
    assert engine.list_deployments(Workspace(workspace)) == []


def test_apply_canary_promote_rollback_and_undeploy_through_the_fake_api(
    workspace: Path,
    s3_env: str,
    fake_kube: FakeKServe,
    model_files: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import boto3

    monkeypatch.setenv("MLK_S3_ARTIFACTS", "s3://mlk-models")
    s3 = boto3.client("s3", endpoint_url=s3_env)
    s3.create_bucket(Bucket="mlk-models")
    ws = Workspace(workspace)
    caplog.set_level("DEBUG")
    dep = engine.deploy_model(ws, str(model_files["iris"]), "iris", backend="kubernetes")
    assert dep["namespace"] == "ml-team" and dep["status"] == "RUNNING"
    assert dep["url"] == "http://iris.ml-team.example.com"
    obj = fake_kube.objects[("ml-team", "iris")]
    first_uri = obj["spec"]["predictor"]["model"]["storageUri"]
    key = first_uri.removeprefix("s3://mlk-models/") + "/model.joblib"
    assert s3.head_object(Bucket="mlk-models", Key=key)["ContentLength"] > 0

    dep = engine.deploy_model(
        ws, str(model_files["iris_v2"]), "iris", backend="kubernetes", canary_percent=25
    )
    obj = fake_kube.objects[("ml-team", "iris")]
    assert obj["spec"]["predictor"]["canaryTrafficPercent"] == 25
    second_uri = obj["spec"]["predictor"]["model"]["storageUri"]
    assert second_uri != first_uri
    assert [(t["version"], t["percent"]) for t in dep["traffic"]] == [(1, 75), (2, 25)]

    engine.rollback(ws, "iris")
    obj = fake_kube.objects[("ml-team", "iris")]
    assert "canaryTrafficPercent" not in obj["spec"]["predictor"]
    assert obj["spec"]["predictor"]["model"]["storageUri"] == first_uri

    engine.deploy_model(
        ws, str(model_files["iris_v2"]), "iris", backend="kubernetes", canary_percent=10
    )
    dep = engine.promote(ws, "iris")
    obj = fake_kube.objects[("ml-team", "iris")]
    assert "canaryTrafficPercent" not in obj["spec"]["predictor"]
    assert obj["spec"]["predictor"]["model"]["storageUri"] == second_uri
    assert [(t["version"], t["percent"]) for t in dep["traffic"]] == [(3, 100)]

    s3.close()
    engine.undeploy(ws, "iris")
    assert ("ml-team", "iris") not in fake_kube.objects
    assert engine.list_deployments(ws) == []
    methods = [m for m, *_ in fake_kube.requests]
    assert methods.count("POST") == 1 and "PUT" in methods and "DELETE" in methods
    for _, _, _, body in fake_kube.requests:
        assert "testing-secret-value" not in json.dumps(body or {})
    assert "testing-secret-value" not in caplog.text and "fake-token" not in caplog.text
    ws.close()


def test_a_cluster_that_refuses_says_why(
    workspace: Path, fake_kube: FakeKServe, model_files: dict[str, Path], s3_env: str
) -> None:
    import boto3

    s3 = boto3.client("s3", endpoint_url=s3_env)
    s3.create_bucket(Bucket="given")
    s3.upload_file(str(model_files["iris"]), "given", "m/model.joblib")
    s3.close()
    fake_kube.schema = {"type": "object", "required": ["nothing-has-this"]}
    ws = Workspace(workspace)
    with pytest.raises(ServingError, match=r"422.*schema refused"):
        engine.deploy_model(ws, "s3://given/m", "iris", backend="kubernetes")
    plan = engine.deploy_model(ws, "s3://given/m", "iris", backend="kubernetes", dry_run=True)
    assert plan["storage_uri"] == "s3://given/m/model.joblib"  # an S3 model is used in place
    assert plan["lineage"]["source"] == "s3"
    ws.close()
