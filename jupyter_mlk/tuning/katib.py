"""The Katib backend: a sweep spec as a ``kubeflow.org/v1beta1`` Experiment.

Each trial is a Kubernetes Job running the notebook's pipeline with ``jupyter mlk run`` in
the runner image (the same step runner as everywhere); the notebook reaches the pod in a
ConfigMap. The run prints its metrics at full precision as ``name=value`` lines on stdout,
which Katib's StdOut metrics collector reads (the rounded ``RESULT`` lines a step prints go
to the step's own log, not to the container's stdout, so they cannot win).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import yaml

from jupyter_mlk.notebook.model import StepGraph
from jupyter_mlk.notebook.tags import sanitize_name
from jupyter_mlk.tuning.spec import SweepError, SweepSpec

NOTEBOOK_MOUNT = "/mlk/notebook"
WORK_DIR = "/mlk/work"
CONTAINER = "trial"


def _quantity(value: float | None, kind: str) -> str | None:
    if value is None:
        return None
    return str(int(value)) if kind == "int" else repr(float(value))


def katib_parameters(spec: SweepSpec) -> list[dict[str, Any]]:
    """The spec's parameters in Katib's form (feasibleSpace values are strings)."""
    out: list[dict[str, Any]] = []
    for p in spec.parameters:
        space: dict[str, Any] = {}
        if p.type in ("categorical", "discrete"):
            space["list"] = list(p.values)
        else:
            space["min"] = _quantity(p.min, p.type)
            space["max"] = _quantity(p.max, p.type)
            if p.step is not None:
                space["step"] = _quantity(p.step, p.type)
            if p.log:
                space["distribution"] = "logUniform"
        out.append({"name": p.name, "parameterType": p.type, "feasibleSpace": space})
    return out


def _settings(settings: dict[str, str]) -> list[dict[str, str]]:
    return [{"name": k, "value": v} for k, v in sorted(settings.items())]


def build_notebook_configmap(name: str, namespace: str, notebook: Path) -> dict[str, Any]:
    """The ConfigMap that carries the notebook into each trial's pod."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "jupyter-mlk"},
        },
        "data": {notebook.name: notebook.read_text(encoding="utf-8")},
    }


def build_trial_job(
    notebook_name: str, spec: SweepSpec, fixed: dict[str, str], image: str, configmap: str
) -> dict[str, Any]:
    """The Job every trial runs: the whole pipeline, parameters from Katib's placeholders."""
    command = ["jupyter", "mlk", "run", f"{NOTEBOOK_MOUNT}/{notebook_name}", "--print-metrics"]
    for name, value in sorted(fixed.items()):
        command += ["-p", f"{name}={value}"]
    for p in spec.parameters:
        command += ["-p", f"{p.name}=${{trialParameters.{p.name}}}"]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"annotations": {"sidecar.istio.io/inject": "false"}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": CONTAINER,
                            "image": image,
                            "command": command,
                            "workingDir": WORK_DIR,
                            "env": [{"name": "MLK_HOME", "value": WORK_DIR}],
                            "volumeMounts": [
                                {
                                    "name": "notebook",
                                    "mountPath": NOTEBOOK_MOUNT,
                                    "readOnly": True,
                                },
                                {"name": "work", "mountPath": WORK_DIR},
                            ],
                        }
                    ],
                    "volumes": [
                        {"name": "notebook", "configMap": {"name": configmap}},
                        {"name": "work", "emptyDir": {}},
                    ],
                },
            },
        },
    }


def build_experiment(
    graph: StepGraph,
    spec: SweepSpec,
    fixed: dict[str, str],
    *,
    name: str,
    namespace: str,
    image: str,
    configmap: str,
) -> dict[str, Any]:
    """The Experiment for a sweep of ``graph``'s notebook (a pure function)."""
    metrics = [spec.objective, *spec.additional_metrics]
    objective: dict[str, Any] = {
        "type": spec.goal,
        "objectiveMetricName": spec.objective,
        "metricStrategies": [{"name": m, "value": "latest"} for m in metrics],
    }
    if spec.additional_metrics:
        objective["additionalMetricNames"] = list(spec.additional_metrics)
    if spec.target is not None:
        objective["goal"] = spec.target
    experiment: dict[str, Any] = {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "jupyter-mlk"},
        },
        "spec": {
            "objective": objective,
            "algorithm": {
                "algorithmName": spec.algorithm,
                "algorithmSettings": _settings(spec.algorithm_settings),
            },
            "parallelTrialCount": spec.parallel,
            "maxTrialCount": spec.max_trials,
            "maxFailedTrialCount": spec.max_failed,
            "parameters": katib_parameters(spec),
            "metricsCollectorSpec": {"collector": {"kind": "StdOut"}},
            "trialTemplate": {
                "primaryContainerName": CONTAINER,
                "trialParameters": [
                    {
                        "name": p.name,
                        "description": f"notebook parameter {p.name}",
                        "reference": p.name,
                    }
                    for p in spec.parameters
                ],
                "trialSpec": build_trial_job(Path(graph.path).name, spec, fixed, image, configmap),
            },
        },
    }
    if spec.early_stopping:
        experiment["spec"]["earlyStopping"] = {
            "algorithmName": spec.early_stopping,
            "algorithmSettings": _settings(spec.early_stopping_settings),
        }
    return experiment


def experiment_objects(
    graph: StepGraph, spec: SweepSpec, fixed: dict[str, str], *, namespace: str, image: str
) -> list[dict[str, Any]]:
    """The ConfigMap and the Experiment of a sweep."""
    base = sanitize_name(spec.name or f"{Path(graph.path).stem}-sweep")[:40].rstrip("-")
    configmap = f"{base}-notebook"
    return [
        build_notebook_configmap(configmap, namespace, Path(graph.path)),
        build_experiment(
            graph, spec, fixed, name=base, namespace=namespace, image=image, configmap=configmap
        ),
    ]


def _cluster_settings() -> tuple[str, str]:
    from jupyter_mlk.pipeline.compiler import DEFAULT_IMAGE

    return os.environ.get("MLK_NAMESPACE", "kubeflow-user"), os.environ.get(
        "MLK_IMAGE", DEFAULT_IMAGE
    )


def create_objects(objects: list[dict[str, Any]], api_client: Any) -> dict[str, Any]:
    """Create the ConfigMap and the Experiment; return the Experiment as the cluster has it."""
    import urllib3
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    configmap, experiment = objects
    namespace = experiment["metadata"]["namespace"]
    try:
        core = client.CoreV1Api(api_client)
        try:
            core.create_namespaced_config_map(namespace, configmap)
        except ApiException as exc:
            if exc.status != 409:
                raise
            core.replace_namespaced_config_map(configmap["metadata"]["name"], namespace, configmap)
        custom = client.CustomObjectsApi(api_client)
        created: dict[str, Any] = custom.create_namespaced_custom_object(
            "kubeflow.org", "v1beta1", namespace, "experiments", experiment
        )
    except ApiException as exc:
        reason = exc.reason
        with contextlib.suppress(TypeError, ValueError, AttributeError):
            reason = json.loads(exc.body).get("message", reason)
        raise SweepError(
            f"the cluster refused the Katib Experiment {experiment['metadata']['name']} in "
            f"namespace {namespace} (HTTP {exc.status}): {reason}"
        ) from None
    except (OSError, urllib3.exceptions.HTTPError) as exc:
        host = getattr(getattr(api_client, "configuration", None), "host", "the cluster")
        raise SweepError(f"cannot reach the Kubernetes API at {host}: {exc}") from None
    return created


def submit_experiment(
    graph: StepGraph,
    spec: SweepSpec,
    fixed: dict[str, str],
    *,
    dry_run: bool,
    as_json: bool,
    api_client: Any = None,
) -> int:
    """``jupyter mlk sweep --backend kubernetes``: print (--dry-run) or create the Experiment."""
    namespace, image = _cluster_settings()
    objects = experiment_objects(graph, spec, fixed, namespace=namespace, image=image)
    if dry_run:
        if as_json:
            print(json.dumps(objects, indent=2))
        else:
            print(yaml.safe_dump_all(objects, sort_keys=False), end="")
        return 0
    if api_client is None:
        from kubernetes import config

        try:
            config.load_kube_config()
        except Exception:
            try:
                config.load_incluster_config()
            except Exception as exc:
                raise SweepError(
                    f"no Kubernetes credentials: set KUBECONFIG or run inside the cluster ({exc})"
                ) from None
    created = create_objects(objects, api_client)
    name = created["metadata"]["name"]
    if as_json:
        print(json.dumps({"experiment": name, "namespace": namespace}))
    else:
        print(
            f"created Katib Experiment {name} in namespace {namespace}; follow it with "
            f"kubectl get experiment {name} -n {namespace} -w"
        )
    return 0
