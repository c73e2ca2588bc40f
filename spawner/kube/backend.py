"""The Kubernetes backend: create a server's objects, follow them, classify failures, stop.

Waiting reads the shared watch (:mod:`spawner.kube.watch`), so a fatal event is reported
as soon as the API server sends it, not at the end of a timeout. The start timeout only
ends launches where nothing fatal happened, and its message names the last stage and the
last thing the cluster said.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import time
from typing import Any

from spawner.backend import Backend, HandleSink
from spawner.config import LauncherConfig
from spawner.errors import (
    BackendUnavailableError,
    ClassifiedLaunchError,
    CrashLoopError,
    InsufficientGpuError,
    LaunchTimeoutError,
    ServerExitedError,
    UnschedulableError,
    VolumeError,
)
from spawner.events import EventSink, ProgressEvent, Stage
from spawner.kube import manifests as m
from spawner.kube.capacity import check_gpu_capacity, gpu_nodes
from spawner.kube.classify import LaunchContext, classify_event, classify_pod, is_ready
from spawner.kube.watch import ClusterWatcher
from spawner.request import LaunchRequest
from spawner.state import LaunchRecord

logger = logging.getLogger(__name__)

_STAGE_ORDER = [Stage.REQUESTED, Stage.SCHEDULED, Stage.PULLING, Stage.STARTED, Stage.READY]


def _namespace_from_kubeconfig(context: str) -> str:
    from kubernetes import config

    try:
        _, active = config.list_kube_config_contexts()
        if context:
            contexts, _ = config.list_kube_config_contexts()
            active = next(c for c in contexts if c["name"] == context)
        return str(active["context"].get("namespace") or "default")
    except Exception:
        path = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
        with contextlib.suppress(OSError), open(path) as handle:
            return handle.read().strip()
        return "default"


class KubernetesBackend(Backend):
    """Servers as pods (or Kubeflow Notebooks) in one namespace.

    Args:
        api_client: a configured ``kubernetes.client.ApiClient``.
        settings: namespace, GPU resource and label names, kind of object.
        check_capacity: sum free GPUs over nodes before creating anything.
        scale_up_grace: seconds an unschedulable pod may wait for a cluster-autoscaler
            ``TriggeredScaleUp`` event before failing.
    """

    name = "kubernetes"

    def __init__(
        self,
        api_client: Any,
        settings: m.KubeSettings,
        check_capacity: bool = True,
        scale_up_grace: float = 0.0,
    ) -> None:
        from kubernetes import client

        self.api_client = api_client
        self.core = client.CoreV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)
        self.settings = settings
        self.check_capacity = check_capacity
        self.scale_up_grace = scale_up_grace
        self.watcher = ClusterWatcher(api_client, settings.namespace, m.SELECTOR)

    @classmethod
    def from_config(cls, config: LauncherConfig) -> KubernetesBackend:
        """Connect with the kubeconfig (or in-cluster service account) and the settings.

        Raises:
            BackendUnavailableError: no kubeconfig and not inside a cluster.
        """
        try:
            from kubernetes import client
            from kubernetes import config as kube_config
        except ImportError as exc:
            raise BackendUnavailableError(
                "the kubernetes package is not installed", "pip install kubernetes"
            ) from exc
        configuration = client.Configuration()
        try:
            kube_config.load_kube_config(
                context=config.kube_context or None, client_configuration=configuration
            )
        except Exception:
            try:
                kube_config.load_incluster_config(client_configuration=configuration)
            except Exception as exc:
                raise BackendUnavailableError(
                    "no Kubernetes cluster configured (no kubeconfig, not in a pod)",
                    "set KUBECONFIG or run inside the cluster, or use --backend local",
                ) from exc
        settings = m.KubeSettings(
            namespace=config.namespace or _namespace_from_kubeconfig(config.kube_context),
            gpu_resource=config.gpu_resource,
            gpu_kind_label=config.gpu_kind_label,
            service_account=config.service_account,
            kind=config.kube_kind,
        )
        return cls(
            client.ApiClient(configuration),
            settings,
            check_capacity=config.check_capacity,
            scale_up_grace=config.scale_up_grace,
        )

    def allocate(self, request: LaunchRequest, held: set[str]) -> list[str]:
        """Check that one eligible node has enough free GPUs; the scheduler picks them."""
        if not request.gpus or not self.check_capacity:
            return []
        from kubernetes.client.exceptions import ApiException

        try:
            nodes = json.loads(self.core.list_node(_preload_content=False).data)["items"]
            pods = json.loads(
                self.core.list_pod_for_all_namespaces(
                    field_selector="status.phase!=Succeeded,status.phase!=Failed",
                    _preload_content=False,
                ).data
            )["items"]
        except ApiException as exc:
            if exc.status in (401, 403):
                logger.warning(
                    "GPU capacity not checked: no permission to list nodes and pods (%s); "
                    "grant list on nodes and pods, or set LauncherConfig.check_capacity=False",
                    exc.status,
                )
                return []
            raise BackendUnavailableError(f"the API server failed: {exc.reason}") from exc
        selector = dict(request.node_selector)
        if request.gpu_kind:
            selector[self.settings.gpu_kind_label] = request.gpu_kind
        found = gpu_nodes(nodes, pods, self.settings.gpu_resource, selector, request.tolerations)
        check_gpu_capacity(request.gpus, found, self.settings.gpu_resource)
        return []

    def _names(self, launch_id: str, request: LaunchRequest) -> m.ServerNames:
        return m.server_names(launch_id, request, self.settings.kind)

    def run(
        self,
        record: LaunchRecord,
        request: LaunchRequest,
        token: str,
        emit: EventSink,
        save_handle: HandleSink,
    ) -> str:
        """Create secret, claim, pod (or Notebook) and service; wait on the watch."""
        names = self._names(record.id, request)
        claims = [names.workspace_claim] if names.workspace_claim else []
        claims += [volume.claim for volume in request.data_volumes]
        inbox = self.watcher.subscribe([names.pod, *claims])
        try:
            uids = self._create(names, request, token, record, save_handle)
            return self._wait(names, request, inbox, uids, emit)
        finally:
            self.watcher.unsubscribe(inbox)

    def _create(
        self,
        names: m.ServerNames,
        request: LaunchRequest,
        token: str,
        record: LaunchRecord,
        save_handle: HandleSink,
    ) -> dict[str, str]:
        ns = self.settings.namespace
        handle = {
            **record.handle,
            "namespace": ns,
            "pod": names.pod,
            "service": names.service,
            "secret": names.secret,
            "notebook": names.notebook,
            "workspace_claim": names.workspace_claim,
            "claim_created": False,
            "url": m.server_url(names, request, self.settings),
        }
        save_handle(handle)
        self._create_object("secret", m.build_secret(names, request, token, self.settings))
        uids: dict[str, str] = {}
        claim = m.build_workspace_claim(names, request, self.settings)
        if claim is not None:
            uids[names.workspace_claim] = self._ensure_claim(claim, names.launch_id)
            handle["claim_created"] = True
            save_handle(handle)
        if names.notebook:
            self._create_object("notebook", m.build_notebook(names, request, self.settings))
        else:
            created = self._create_object("pod", m.build_pod(names, request, self.settings))
            uids[names.pod] = str(created["metadata"]["uid"])
            self._create_object("service", m.build_service(names, request, self.settings))
        return uids

    def _create_object(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        ns = self.settings.namespace
        creators = {
            "secret": self.core.create_namespaced_secret,
            "pod": self.core.create_namespaced_pod,
            "service": self.core.create_namespaced_service,
            "pvc": self.core.create_namespaced_persistent_volume_claim,
        }
        from kubernetes.client.exceptions import ApiException

        try:
            if kind == "notebook":
                response = self.custom.create_namespaced_custom_object(
                    "kubeflow.org", "v1", ns, "notebooks", body, _preload_content=False
                )
            else:
                response = creators[kind](ns, body, _preload_content=False)
        except ApiException as exc:
            raise _api_error(exc, kind, body["metadata"]["name"]) from exc
        result: dict[str, Any] = json.loads(response.data)
        return result

    def _ensure_claim(self, claim: dict[str, Any], launch_id: str) -> str:
        """Create the workspace claim, or reuse the one this server created before."""
        from kubernetes.client.exceptions import ApiException

        try:
            return str(self._create_object("pvc", claim)["metadata"]["uid"])
        except VolumeError as exc:
            if not isinstance(exc.__cause__, ApiException) or exc.__cause__.status != 409:
                raise
        name = claim["metadata"]["name"]
        existing = json.loads(
            self.core.read_namespaced_persistent_volume_claim(
                name, self.settings.namespace, _preload_content=False
            ).data
        )
        annotations = existing.get("metadata", {}).get("annotations") or {}
        if annotations.get(m.ANNOTATION_CREATED_BY) != launch_id:
            raise VolumeError(
                f"claim {name!r} exists and was not created for this server "
                f"(owner {annotations.get(m.ANNOTATION_OWNER, 'unknown')!r})",
                "pass it as workspace.existing_claim if you mean to share it",
            )
        logger.info("launch %s: reusing its workspace claim %s", launch_id, name)
        return str(existing["metadata"]["uid"])

    def _context(self, request: LaunchRequest, names: m.ServerNames) -> LaunchContext:
        claims = tuple(c for c in [names.workspace_claim] if c)
        return LaunchContext(
            image=request.image,
            gpus=request.gpus,
            gpu_resource=self.settings.gpu_resource,
            gpu_kind=request.gpu_kind,
            memory=request.memory,
            claims=claims,
        )

    def _wait(
        self,
        names: m.ServerNames,
        request: LaunchRequest,
        inbox: queue.Queue[tuple[str, str, dict[str, Any]]],
        uids: dict[str, str],
        emit: EventSink,
    ) -> str:
        ctx = self._context(request, names)
        tracker = _Progress(emit)
        deadline = time.monotonic() + request.start_timeout
        pending: tuple[ClassifiedLaunchError, float] | None = None
        scale_up = False
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise tracker.timeout(request.start_timeout)
            if pending and not scale_up and time.monotonic() - pending[1] >= self.scale_up_grace:
                raise pending[0]
            try:
                source, event_type, obj = inbox.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            meta = obj.get("metadata") or {}
            if source == "pod":
                if names.pod in uids and meta.get("uid") != uids[names.pod]:
                    continue
                if event_type == "DELETED":
                    raise ServerExitedError(
                        "the server pod was deleted while starting", "launch again"
                    )
                if is_ready(obj):
                    return m.server_url(names, request, self.settings)
                tracker.pod(obj)
                error = classify_pod(obj, ctx)
            else:
                involved = obj.get("involvedObject") or {}
                known = uids.get(str(involved.get("name")))
                if known and involved.get("uid") and involved["uid"] != known:
                    continue
                if obj.get("reason") == "TriggeredScaleUp":
                    scale_up = True
                stage, message, error = classify_event(obj, ctx)
                tracker.event(stage, message)
            if error is None:
                continue
            if (
                isinstance(error, InsufficientGpuError | UnschedulableError)
                and self.scale_up_grace
            ):
                pending = pending or (error, time.monotonic())
                continue
            raise self._with_logs(error, names)

    def _with_logs(
        self, error: ClassifiedLaunchError, names: m.ServerNames
    ) -> ClassifiedLaunchError:
        """Add the last lines of the crashed container's log to a crash-loop error."""
        if not isinstance(error, CrashLoopError):
            return error
        try:
            logs = self.core.read_namespaced_pod_log(
                names.pod,
                self.settings.namespace,
                previous=True,
                tail_lines=10,
                _request_timeout=5,
            )
        except Exception:
            return error
        return CrashLoopError(f"{error.reason}; last log lines:\n{logs}", error.hint)

    def is_alive(self, record: LaunchRecord) -> bool:
        """Whether the server pod exists and has not ended."""
        from kubernetes.client.exceptions import ApiException

        try:
            pod = json.loads(
                self.core.read_namespaced_pod(
                    record.handle["pod"], record.handle["namespace"], _preload_content=False
                ).data
            )
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise BackendUnavailableError(f"cannot read pod: {exc.reason}") from exc
        except KeyError:
            return False
        return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")

    def stop(self, record: LaunchRecord, delete_volume: bool = False) -> None:
        """Delete pod (or Notebook), service and secret; the workspace claim only if asked.

        A claim is deleted only when this launch created it: its ``created-by``
        annotation names this launch id and its owner annotation names this owner.
        """
        from kubernetes.client.exceptions import ApiException

        handle, ns = record.handle, record.handle.get("namespace", self.settings.namespace)
        deletions = [
            (
                self.core.delete_namespaced_pod,
                handle.get("pod") if not handle.get("notebook") else "",
            ),
            (self.core.delete_namespaced_service, handle.get("service")),
            (self.core.delete_namespaced_secret, handle.get("secret")),
        ]
        for delete, name in deletions:
            if name:
                with contextlib.suppress(ApiException):
                    delete(name, ns)
        if handle.get("notebook"):
            with contextlib.suppress(ApiException):
                self.custom.delete_namespaced_custom_object(
                    "kubeflow.org", "v1", ns, "notebooks", handle["notebook"]
                )
        if delete_volume and handle.get("workspace_claim"):
            self._delete_own_claim(str(handle["workspace_claim"]), ns, record)

    def _delete_own_claim(self, name: str, ns: str, record: LaunchRecord) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            claim = json.loads(
                self.core.read_namespaced_persistent_volume_claim(
                    name, ns, _preload_content=False
                ).data
            )
        except ApiException:
            return
        annotations = claim.get("metadata", {}).get("annotations") or {}
        if (
            annotations.get(m.ANNOTATION_CREATED_BY) != record.id
            or annotations.get(m.ANNOTATION_OWNER) != record.owner
        ):
            logger.warning(
                "launch %s: claim %s kept: it was not created for this server", record.id, name
            )
            return
        with contextlib.suppress(ApiException):
            self.core.delete_namespaced_persistent_volume_claim(name, ns)
        logger.info("launch %s: deleted its workspace claim %s", record.id, name)


def _api_error(exc: Any, kind: str, name: str) -> ClassifiedLaunchError:
    status, reason = getattr(exc, "status", 0), getattr(exc, "reason", "")
    try:
        message = json.loads(exc.body).get("message", reason)
    except (TypeError, ValueError):
        message = reason
    text = f"creating {kind} {name!r} failed ({status}): {message}"
    if kind == "pvc":
        return VolumeError(text, "check the storage class and your quota")
    if status in (401, 403):
        return BackendUnavailableError(text, "your account needs create rights in the namespace")
    if status == 409:
        return ClassifiedLaunchError(text, "a leftover object has this name: jupyter mlk stop it")
    if status == 422:
        return ClassifiedLaunchError(text, "the API server rejected the object; check the profile")
    return BackendUnavailableError(text, "check the cluster and try again")


class _Progress:
    """Emits a stage once, in order, and remembers the last message for timeouts."""

    def __init__(self, emit: EventSink) -> None:
        self.emit = emit
        self.stage = Stage.REQUESTED
        self.last = "nothing yet"

    def advance(self, stage: Stage, message: str) -> None:
        if _STAGE_ORDER.index(stage) > _STAGE_ORDER.index(self.stage):
            self.stage = stage
            self.last = message or self.last
            self.emit(ProgressEvent(stage, message))
        elif message and message != self.last:
            self.last = message
            self.emit(ProgressEvent(self.stage, message))

    def event(self, stage: Stage | None, message: str) -> None:
        if stage is not None:
            self.advance(stage, message)
        elif message and message != self.last:
            self.last = message
            self.emit(ProgressEvent(self.stage, message))

    def pod(self, pod: dict[str, Any]) -> None:
        status = pod.get("status") or {}
        if status.get("phase") == "Running" or any(
            "running" in (c.get("state") or {}) for c in status.get("containerStatuses") or ()
        ):
            self.advance(Stage.STARTED, "container running")
        elif (pod.get("spec") or {}).get("nodeName"):
            self.advance(Stage.SCHEDULED, f"assigned to node {pod['spec']['nodeName']}")

    def timeout(self, seconds: float) -> LaunchTimeoutError:
        return LaunchTimeoutError(
            f"not ready after {seconds:.0f}s; last stage {self.stage.value}, "
            f"last message: {self.last}",
            "if the image is large, raise start_timeout; otherwise see kubectl describe pod",
        )
