"""The Katib backend: Experiments validated against Katib's schema, created through a fake
Kubernetes API at the HTTP boundary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml

from jupyter_mlk.cli import main
from jupyter_mlk.notebook.graph import build_graph
from jupyter_mlk.tuning.katib import create_objects, experiment_objects
from jupyter_mlk.tuning.spec import SweepError, load_spec
from tests.conftest import case_dir
from tests.spawner.fakekube import FakeKube
from tests.tuning.test_spec import katib_validator


def objects() -> list[dict[str, Any]]:
    graph = build_graph(case_dir("01-iris-pipeline") / "pipeline.ipynb")
    spec, _ = load_spec(case_dir("10-sweep-spec") / "experiment.yaml")
    return experiment_objects(
        graph,
        spec,
        {"accuracy_threshold": "0.8"},
        namespace="team-a",
        image="registry.example/runner:1",
    )


def test_the_experiment_validates_and_runs_the_pipeline_in_the_runner_image() -> None:
    import kubernetes_validate

    configmap, experiment = objects()
    katib_validator().validate(experiment)
    job = experiment["spec"]["trialTemplate"]["trialSpec"]
    kubernetes_validate.validate({**job, "metadata": {"name": "trial"}}, "1.30", strict=True)
    kubernetes_validate.validate(configmap, "1.30", strict=True)
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[:5] == [
        "jupyter",
        "mlk",
        "run",
        "/mlk/notebook/pipeline.ipynb",
        "--print-metrics",
    ]
    assert "n_estimators=${trialParameters.n_estimators}" in command
    assert "accuracy_threshold=0.8" in command
    spec = experiment["spec"]
    assert spec["parameters"][0]["feasibleSpace"] == {"min": "10", "max": "100"}
    assert spec["metricsCollectorSpec"]["collector"]["kind"] == "StdOut"
    assert spec["objective"]["metricStrategies"] == [{"name": "accuracy", "value": "latest"}]
    assert "pipeline.ipynb" in configmap["data"]


def test_print_metrics_gives_full_precision_lines(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workspace / "nb.ipynb").write_text(
        (case_dir("01-iris-pipeline") / "pipeline.ipynb").read_text()
    )
    assert main(["run", "nb.ipynb", "--print-metrics"]) == 0
    assert capsys.readouterr().out.strip() == "accuracy=0.9333333333333333"


def test_dry_run_prints_the_objects(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (workspace / "pipeline.ipynb").write_text(
        (case_dir("01-iris-pipeline") / "pipeline.ipynb").read_text()
    )
    (workspace / "exp.yaml").write_text(
        (case_dir("10-sweep-spec") / "experiment.yaml").read_text()
    )
    assert (
        main(
            [
                "sweep",
                "pipeline.ipynb",
                "--spec",
                "exp.yaml",
                "--backend",
                "kubernetes",
                "--dry-run",
            ]
        )
        == 0
    )
    docs = list(yaml.safe_load_all(capsys.readouterr().out))
    assert [d["kind"] for d in docs] == ["ConfigMap", "Experiment"]


def _client(fake: FakeKube) -> Any:
    config = kubernetes.client.Configuration()
    config.host = fake.url
    return kubernetes.client.ApiClient(config)


def test_the_experiment_is_created_through_the_kubernetes_api() -> None:
    fake = FakeKube().start()
    try:
        created = create_objects(objects(), _client(fake))
        assert created["metadata"]["name"] == "iris-rf-sweep"
        assert ("experiments", "team-a", "iris-rf-sweep") in fake.objects
        assert ("configmaps", "team-a", "iris-rf-sweep-notebook") in fake.objects
        with pytest.raises(SweepError, match="refused the Katib Experiment iris-rf-sweep"):
            create_objects(objects(), _client(fake))  # it exists already: 409
    finally:
        fake.stop()


def test_an_unreachable_cluster_is_a_clear_error() -> None:
    config = kubernetes.client.Configuration()
    config.host = "http://127.0.0.1:9"
    config.retries = 0
    with pytest.raises(SweepError, match=r"cannot reach the Kubernetes API|refused"):
        create_objects(objects(), kubernetes.client.ApiClient(config))
    _ = json
