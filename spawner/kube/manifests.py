"""Pure builders of the Kubernetes objects of one notebook server.

Every builder takes resolved values and returns a plain dict in the API's JSON shape, so
tests compare them as data and validate them against the official schemas
(``kubernetes-validate`` for core kinds, the Kubeflow Notebook CRD for ``Notebook``).

Ownership: every object carries the launch id, the owner and the server name as labels
(slugged) and annotations (verbatim). A workspace claim the launcher creates also carries
``mlk.jupyter.org/created-by: <launch id>``; only a claim with that annotation and the
same owner is ever deleted, so stopping one user's server never deletes another's volume
(nor a pre-existing claim given as ``existing_claim``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from spawner.request import SECRET_ENV_PATTERN, LaunchRequest, format_cpu, format_memory
from spawner.slugs import label_value, multi_slug

MANAGED_BY = "jupyter-mlk"
LABEL_MANAGED = "app.kubernetes.io/managed-by"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_LAUNCH = "mlk.jupyter.org/launch"
LABEL_OWNER = "mlk.jupyter.org/owner"
LABEL_SERVER = "mlk.jupyter.org/server"
ANNOTATION_OWNER = "mlk.jupyter.org/owner"
ANNOTATION_SERVER = "mlk.jupyter.org/server"
ANNOTATION_CREATED_BY = "mlk.jupyter.org/created-by"
SELECTOR = f"{LABEL_MANAGED}={MANAGED_BY}"
PORT = 8888
CONTAINER = "notebook"
TOKEN_KEY = "JUPYTER_TOKEN"


@dataclass(frozen=True)
class KubeSettings:
    """Cluster-wide settings that shape every server's objects."""

    namespace: str = "default"
    gpu_resource: str = "nvidia.com/gpu"
    gpu_kind_label: str = "nvidia.com/gpu.product"
    service_account: str = ""
    kind: str = "pod"


@dataclass(frozen=True)
class ServerNames:
    """The names of one server's objects, all derived from its owner and name."""

    launch_id: str
    pod: str
    service: str
    secret: str
    workspace_claim: str
    notebook: str = ""
    extra: dict[str, str] = field(default_factory=dict)


def server_names(launch_id: str, request: LaunchRequest, kind: str = "pod") -> ServerNames:
    """Names for a launch: the pod and its service and secret share the launch id."""
    claim = ""
    if request.workspace is not None:
        claim = request.workspace.existing_claim or multi_slug(
            ["mlk", request.owner, request.name, "workspace"]
        )
    # The notebook controller names its StatefulSet's only pod <notebook>-0.
    pod = f"{launch_id}-0" if kind == "notebook" else launch_id
    return ServerNames(
        launch_id=launch_id,
        pod=pod,
        service=launch_id,
        secret=launch_id,
        workspace_claim=claim,
        notebook=launch_id if kind == "notebook" else "",
    )


def ownership(launch_id: str, request: LaunchRequest) -> dict[str, dict[str, str]]:
    """Labels (slugged, selectable) and annotations (verbatim) naming owner and server."""
    return {
        "labels": {
            LABEL_MANAGED: MANAGED_BY,
            LABEL_COMPONENT: "notebook-server",
            LABEL_LAUNCH: launch_id,
            LABEL_OWNER: label_value(request.owner),
            LABEL_SERVER: label_value(request.name),
        },
        "annotations": {ANNOTATION_OWNER: request.owner, ANNOTATION_SERVER: request.name},
    }


def _metadata(name: str, namespace: str, launch_id: str, request: LaunchRequest) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, **ownership(launch_id, request)}


def secret_env_names(request: LaunchRequest) -> list[str]:
    """Request variables that look like credentials: they go to the Secret, not the pod."""
    return sorted(name for name in request.env if SECRET_ENV_PATTERN.search(name))


def build_secret(
    names: ServerNames, request: LaunchRequest, token: str, settings: KubeSettings
) -> dict[str, Any]:
    """The Secret holding the server token and the request's credential variables."""
    data = {name: request.env[name] for name in secret_env_names(request)}
    data[TOKEN_KEY] = token
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _metadata(names.secret, settings.namespace, names.launch_id, request),
        "type": "Opaque",
        "stringData": data,
    }


def build_workspace_claim(
    names: ServerNames, request: LaunchRequest, settings: KubeSettings
) -> dict[str, Any] | None:
    """The workspace PersistentVolumeClaim, or None (no workspace, or an existing claim)."""
    workspace = request.workspace
    if workspace is None or workspace.existing_claim:
        return None
    metadata = _metadata(names.workspace_claim, settings.namespace, names.launch_id, request)
    metadata["annotations"][ANNOTATION_CREATED_BY] = names.launch_id
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": format_memory(workspace.size)}},
    }
    if workspace.storage_class:
        spec["storageClassName"] = workspace.storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": metadata,
        "spec": spec,
    }


def _env(names: ServerNames, request: LaunchRequest) -> list[dict[str, Any]]:
    secret = set(secret_env_names(request)) | {TOKEN_KEY}
    env: list[dict[str, Any]] = [
        {"name": key, "value": value}
        for key, value in sorted(request.env.items())
        if key not in secret
    ]
    for key in sorted(secret):
        ref = {"secretKeyRef": {"name": names.secret, "key": key}}
        env.append({"name": key, "valueFrom": ref})
    return env


def _resources(request: LaunchRequest, settings: KubeSettings) -> dict[str, Any]:
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    if request.cpu is not None:
        requests["cpu"] = format_cpu(request.cpu)
    if request.memory is not None:
        requests["memory"] = limits["memory"] = format_memory(request.memory)
    if request.gpus:
        # Extended resources must be given as limits; requests default to them.
        limits[settings.gpu_resource] = str(request.gpus)
    resources: dict[str, Any] = {}
    if requests:
        resources["requests"] = requests
    if limits:
        resources["limits"] = limits
    return resources


def _command(request: LaunchRequest) -> list[str]:
    if request.command:
        return list(request.command)
    return [
        "jupyter",
        "server",
        "--no-browser",
        "--ServerApp.ip=0.0.0.0",
        f"--ServerApp.port={PORT}",
        f"--ServerApp.base_url={request.base_url}",
    ]


def _volumes(names: ServerNames, request: LaunchRequest) -> tuple[list[Any], list[Any]]:
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    if request.workspace is not None:
        volumes.append(
            {"name": "workspace", "persistentVolumeClaim": {"claimName": names.workspace_claim}}
        )
        mounts.append({"name": "workspace", "mountPath": request.workspace.mount_path})
    for index, data in enumerate(request.data_volumes):
        name = f"data-{index}"
        claim = {"claimName": data.claim, "readOnly": data.read_only}
        volumes.append({"name": name, "persistentVolumeClaim": claim})
        mounts.append({"name": name, "mountPath": data.mount_path, "readOnly": data.read_only})
    return volumes, mounts


def build_pod_spec(
    names: ServerNames, request: LaunchRequest, settings: KubeSettings, with_command: bool = True
) -> dict[str, Any]:
    """The PodSpec of a server: one container, GPU limits, volumes, placement, probe."""
    volumes, mounts = _volumes(names, request)
    container: dict[str, Any] = {
        "name": names.notebook or CONTAINER,
        "image": request.image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "notebook", "containerPort": PORT, "protocol": "TCP"}],
        "env": _env(names, request),
        "resources": _resources(request, settings),
        "volumeMounts": mounts,
        "readinessProbe": {
            "httpGet": {"path": f"{request.base_url}api", "port": PORT},
            "periodSeconds": 2,
            "failureThreshold": 3,
        },
    }
    if with_command:
        container["command"] = _command(request)
    selector = dict(request.node_selector)
    if request.gpu_kind:
        selector[settings.gpu_kind_label] = request.gpu_kind
    spec: dict[str, Any] = {
        "containers": [container],
        "volumes": volumes,
        "restartPolicy": "Always",
        "enableServiceLinks": False,
        # The docker-stacks user (jovyan) is in group 100; without fsGroup a fresh volume
        # is owned by root and the home directory is read-only for the server.
        "securityContext": {"fsGroup": 100},
    }
    if selector:
        spec["nodeSelector"] = selector
    if request.tolerations:
        spec["tolerations"] = [
            {k: v for k, v in vars(t).items() if v} for t in request.tolerations
        ]
    if settings.service_account:
        spec["serviceAccountName"] = settings.service_account
    return spec


def build_pod(
    names: ServerNames, request: LaunchRequest, settings: KubeSettings
) -> dict[str, Any]:
    """The server Pod."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _metadata(names.pod, settings.namespace, names.launch_id, request),
        "spec": build_pod_spec(names, request, settings),
    }


def build_service(
    names: ServerNames, request: LaunchRequest, settings: KubeSettings
) -> dict[str, Any]:
    """A ClusterIP Service in front of the server pod, on port 8888."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(names.service, settings.namespace, names.launch_id, request),
        "spec": {
            "type": "ClusterIP",
            "selector": {LABEL_LAUNCH: names.launch_id},
            "ports": [{"name": "notebook", "port": PORT, "targetPort": PORT, "protocol": "TCP"}],
        },
    }


def build_notebook(
    names: ServerNames, request: LaunchRequest, settings: KubeSettings
) -> dict[str, Any]:
    """A ``kubeflow.org/v1`` Notebook; its controller creates the pod and the service.

    The container keeps the image's own command unless the request gives one: Kubeflow
    notebook images start the server themselves under the ``NB_PREFIX`` the controller
    sets.
    """
    spec = build_pod_spec(names, request, settings, with_command=bool(request.command))
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "Notebook",
        "metadata": _metadata(names.notebook, settings.namespace, names.launch_id, request),
        "spec": {"template": {"spec": spec}},
    }


def server_url(names: ServerNames, request: LaunchRequest, settings: KubeSettings) -> str:
    """The in-cluster URL of the server (through its Service)."""
    host = f"{names.service}.{settings.namespace}.svc.cluster.local"
    if names.notebook:
        # The notebook controller's Service listens on 80 and serves under NB_PREFIX.
        return f"http://{host}/notebook/{settings.namespace}/{names.notebook}/"
    return f"http://{host}:{PORT}{request.base_url}"
