"""Kubernetes objects of a server, compared as data and validated against official schemas."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from spawner.kube import manifests as m
from spawner.request import resolve_request

K8S_VERSION = "1.30.0"  # the API of the pinned kubernetes client (30.1)
SCHEMAS = Path(os.environ.get("MLK_SCHEMAS", Path(__file__).parents[3] / "shared" / "schemas"))
SETTINGS = m.KubeSettings(namespace="team-a")


def gpu_request(**overrides: Any) -> Any:
    values = {
        "backend": "kubernetes",
        "image": "quay.io/jupyter/pytorch-notebook:cuda12-2024-12-09",
        "gpus": 2,
        "gpu_kind": "NVIDIA-A100-SXM4-80GB",
        "cpu": "500m",
        "memory": "16Gi",
        "workspace": {"size": "20Gi", "storage_class": "fast-ssd"},
        "data_volumes": [{"claim": "imagenet", "mount_path": "/data/imagenet"}],
        "env": {"MODE": "train", "WANDB_API_KEY": "k-123"},
        "node_selector": {"pool": "gpu"},
        "tolerations": [{"key": "nvidia.com/gpu", "effect": "NoSchedule"}],
        **overrides,
    }
    return resolve_request("Jane's GPU box", "jane.doe@example.org", [], "", values)


def objects(request: Any, kind: str = "pod") -> dict[str, Any]:
    names = m.server_names("mlk-jane-box---12345678", request, kind)
    settings = m.KubeSettings(namespace="team-a", kind=kind)
    return {
        "names": names,
        "pod": m.build_pod(names, request, settings),
        "service": m.build_service(names, request, settings),
        "secret": m.build_secret(names, request, "tok", settings),
        "claim": m.build_workspace_claim(names, request, settings),
        "notebook": m.build_notebook(names, request, settings),
    }


def test_pod_asks_for_gpus_as_limits_and_places_itself_on_gpu_nodes() -> None:
    pod = objects(gpu_request())["pod"]
    container = pod["spec"]["containers"][0]
    assert container["resources"] == {
        "requests": {"cpu": "500m", "memory": "16Gi"},
        "limits": {"memory": "16Gi", "nvidia.com/gpu": "2"},
    }
    assert pod["spec"]["nodeSelector"] == {
        "pool": "gpu",
        "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB",
    }
    assert pod["spec"]["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert container["readinessProbe"]["httpGet"] == {"path": "/api", "port": 8888}


def test_secrets_never_appear_in_the_pod() -> None:
    built = objects(gpu_request())
    env = built["pod"]["spec"]["containers"][0]["env"]
    assert {"name": "MODE", "value": "train"} in env
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in env if "valueFrom" in e}
    assert set(refs) == {"JUPYTER_TOKEN", "WANDB_API_KEY"}
    assert "k-123" not in repr(built["pod"]) and "tok" not in repr(built["pod"]["spec"])
    assert built["secret"]["stringData"] == {"JUPYTER_TOKEN": "tok", "WANDB_API_KEY": "k-123"}


def test_every_object_records_its_owner_and_the_claim_who_created_it() -> None:
    built = objects(gpu_request())
    for key in ("pod", "service", "secret", "claim"):
        meta = built[key]["metadata"]
        assert meta["annotations"][m.ANNOTATION_OWNER] == "jane.doe@example.org"
        assert meta["labels"][m.LABEL_LAUNCH] == "mlk-jane-box---12345678"
    claim = built["claim"]
    assert claim["metadata"]["annotations"][m.ANNOTATION_CREATED_BY] == "mlk-jane-box---12345678"
    assert claim["spec"]["storageClassName"] == "fast-ssd"
    assert claim["spec"]["resources"]["requests"]["storage"] == "20Gi"


def test_an_existing_claim_is_mounted_and_never_created() -> None:
    request = gpu_request(workspace={"existing_claim": "shared-home"})
    built = objects(request)
    assert built["claim"] is None
    volumes = built["pod"]["spec"]["volumes"]
    assert volumes[0] == {
        "name": "workspace",
        "persistentVolumeClaim": {"claimName": "shared-home"},
    }


@pytest.mark.parametrize("variant", ["gpu", "cpu-only"])
def test_core_objects_validate_against_the_kubernetes_schema(variant: str) -> None:
    request = gpu_request() if variant == "gpu" else gpu_request(gpus=0, gpu_kind="", workspace={})
    built = objects(request)
    for key in ("pod", "service", "secret", "claim"):
        if built[key] is not None:
            kubernetes_validate.validate(built[key], K8S_VERSION, strict=True)


def test_the_validator_rejects_a_broken_pod() -> None:
    pod = copy.deepcopy(objects(gpu_request())["pod"])
    pod["spec"]["containers"][0]["resource"] = pod["spec"]["containers"][0].pop("resources")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(pod, K8S_VERSION, strict=True)


def _notebook_schema() -> dict[str, Any]:
    crd = yaml.safe_load((SCHEMAS / "kubeflow-notebooks.kubeflow.org-crd.yaml").read_text())
    [version] = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    # The install-time patch (validation_patches.yaml) makes name and image required.
    containers = schema["properties"]["spec"]["properties"]["template"]["properties"]["spec"][
        "properties"
    ]["containers"]
    containers["minItems"] = 1
    containers["items"]["required"] = sorted(
        {*containers["items"].get("required", []), "name", "image"}
    )
    return schema


def test_notebook_validates_against_the_kubeflow_crd() -> None:
    notebook = objects(gpu_request(), kind="notebook")["notebook"]
    assert notebook["apiVersion"] == "kubeflow.org/v1"
    schema = _notebook_schema()
    jsonschema.validate(notebook, schema)
    broken = copy.deepcopy(notebook)
    del broken["spec"]["template"]["spec"]["containers"][0]["image"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)
    # The pod spec inside is a valid core PodSpec as well.
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "x"},
        "spec": notebook["spec"]["template"]["spec"],
    }
    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
