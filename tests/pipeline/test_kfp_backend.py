"""Runs on Kubeflow Pipelines: the real kfp client against a fake KFP API over HTTP."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jupyter_mlk.cli import main
from jupyter_mlk.store.workspace import Workspace
from tests.conftest import case_dir
from tests.pipeline.fakekfp import FakeKfp

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture
def iris(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copy(case_dir("01-iris-pipeline") / "pipeline.ipynb", workspace)
    monkeypatch.setenv("HOME", str(workspace))  # kfp's context file stays in the test
    return workspace


@pytest.fixture
def kfp_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKfp]:
    fake = FakeKfp(token="good").start()
    monkeypatch.setenv("MLK_KFP_HOST", fake.url)
    monkeypatch.setenv("MLK_KFP_TOKEN", "good")
    yield fake
    fake.stop()


def run_kfp(capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict[str, Any]]:
    code = main(
        [
            "run",
            "pipeline.ipynb",
            "--backend",
            "kubernetes",
            "--experiment",
            "iris",
            "--json",
            *extra,
        ]
    )
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


def test_a_run_is_submitted_and_followed_like_a_local_one(
    iris: Path,
    kfp_api: FakeKfp,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("jupyter_mlk.pipeline.kfp_backend.POLL_S", 0.05)
    code, run = run_kfp(capsys, "-p", "n_estimators=80")
    assert code == 0, run
    assert run["state"] == "SUCCEEDED" and run["backend"] == "kubernetes"
    assert {s["state"] for s in run["steps"].values()} == {"SUCCEEDED"}
    kfp_run = next(iter(kfp_api.runs.values()))
    assert run["labels"]["kfp_run_id"] == kfp_run["run_id"]
    assert kfp_run["runtime_config"]["parameters"]["n_estimators"] == 80
    assert [e["display_name"] for e in kfp_api.experiments.values()] == ["iris"]
    listed = Workspace(iris).store.list_runs()
    assert listed[0]["backend"] == "kubernetes"
    assert "good" not in json.dumps(listed, default=str), "the token is never stored"


def test_a_failed_task_fails_the_run_with_the_kfp_error(
    iris: Path,
    kfp_api: FakeKfp,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("jupyter_mlk.pipeline.kfp_backend.POLL_S", 0.05)
    kfp_api.fail_task = "train"
    code, run = run_kfp(capsys)
    assert code == 1 and run["state"] == "FAILED"
    assert run["steps"]["train"]["state"] == "FAILED"
    assert "task train failed" in run["error"]


def test_cancel_terminates_the_kfp_run(
    iris: Path,
    kfp_api: FakeKfp,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("jupyter_mlk.pipeline.kfp_backend.POLL_S", 0.05)
    kfp_api.step_s = 5.0

    def cancel_soon() -> None:
        time.sleep(1.0)
        store = Workspace(iris).store
        store.request_cancel("latest")

    threading.Thread(target=cancel_soon, daemon=True).start()
    code, run = run_kfp(capsys)
    assert code == 1 and run["state"] == "CANCELLED"
    assert next(iter(kfp_api.runs.values()))["state"] == "CANCELED"


def test_bad_credentials_name_the_endpoint(
    iris: Path,
    kfp_api: FakeKfp,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLK_KFP_TOKEN", "wrong")
    code, body = run_kfp(capsys)
    assert code == 1
    assert kfp_api.url in body["error"] and "refused the credentials" in body["error"]
    assert Workspace(iris).store.list_runs()[0]["state"] == "FAILED"


def test_an_unreachable_endpoint_is_named(
    iris: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLK_KFP_HOST", "http://127.0.0.1:9")
    code, body = run_kfp(capsys)
    assert code == 1 and "http://127.0.0.1:9" in body["error"]


def test_no_endpoint_says_how_to_set_one(
    iris: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLK_KFP_HOST", raising=False)
    monkeypatch.delenv("KF_PIPELINES_ENDPOINT", raising=False)
    code, body = run_kfp(capsys)
    assert code == 1 and "MLK_KFP_HOST" in body["error"]


def test_logs_and_metrics_come_from_the_task_pods(
    iris: Path,
    kfp_api: FakeKfp,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import kubernetes

    from jupyter_mlk.pipeline import kfp_backend
    from tests.spawner.fakekube import FakeKube

    kube = FakeKube().start()
    kube.logs = "RESULT evaluate accuracy=0.9333 correct=42/45\naccuracy=0.9333333333333333\n"
    config = kubernetes.client.Configuration()
    config.host = kube.url
    original = kfp_backend.KfpBackend.__init__

    def with_kube(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, kube_client=kubernetes.client.ApiClient(config), **kwargs)

    monkeypatch.setattr(kfp_backend.KfpBackend, "__init__", with_kube)
    monkeypatch.setattr("jupyter_mlk.pipeline.kfp_backend.POLL_S", 0.05)
    try:
        code, run = run_kfp(capsys)
    finally:
        kube.stop()
    assert code == 0
    assert run["metrics"] == {"accuracy": 0.9333333333333333}
    assert "RESULT evaluate" in Path(run["steps"]["evaluate"]["stdout"]).read_text()


def test_compiled_tasks_reach_s3_through_a_secret_never_its_values(
    iris: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLK_S3_BUCKET", "team-bucket")
    monkeypatch.setenv("MLK_S3_ENDPOINT_URL", "http://minio.kubeflow:9000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "very-secret-value")
    assert main(["compile", "pipeline.ipynb", "-o", "p.yaml", "--s3-secret", "mlk-s3"]) == 0
    text = (iris / "p.yaml").read_text()
    assert "team-bucket" in text and "mlk-s3" in text and "AWS_SECRET_ACCESS_KEY" in text
    assert "very-secret-value" not in text
    import yaml

    platform = list(yaml.safe_load_all(text))[1]["platforms"]["kubernetes"]
    executors = platform["deploymentSpec"]["executors"]
    assert all(e["secretAsEnv"][0]["secretName"] == "mlk-s3" for e in executors.values())
