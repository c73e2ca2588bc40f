"""The KServe backend: InferenceService manifests built as data, applied with the client.

Manifests are built by pure functions (tests compare them as data and validate them
against the InferenceService CRD's schema). Applying goes through the official
``kubernetes`` client: read, then replace or create. Credentials stay in the kubeconfig
and in the cluster (a service account whose secret holds the S3 keys); nothing secret is
written into a manifest or a log line.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from jupyter_mlk.errors import ServingError

log = logging.getLogger(__name__)

GROUP = "serving.kserve.io"
VERSION = "v1beta1"
PLURAL = "inferenceservices"
NAMESPACE_ENV = "MLK_KUBE_NAMESPACE"
CONTEXT_ENV = "MLK_KUBE_CONTEXT"
SERVICE_ACCOUNT_ENV = "MLK_KSERVE_SERVICE_ACCOUNT"
ANNOTATION = "serving.jupyter-mlk.org"
# Our format name -> KServe's modelFormat name (the runtimes' supportedModelFormats).
MODEL_FORMATS = {
    "sklearn": "sklearn",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "pytorch": "pytorch",
}


@dataclass(frozen=True)
class Resources:
    """Compute for the predictor: quantities as Kubernetes writes them (``500m``, ``2Gi``)."""

    cpu: str | None = None
    memory: str | None = None
    gpus: int = 0

    def to_dict(self) -> dict[str, dict[str, str]]:
        """``requests`` and ``limits``; a request equals its limit (Guaranteed QoS)."""
        amounts: dict[str, str] = {}
        if self.cpu:
            amounts["cpu"] = str(self.cpu)
        if self.memory:
            amounts["memory"] = str(self.memory)
        out: dict[str, dict[str, str]] = {}
        if amounts:
            out = {"requests": dict(amounts), "limits": dict(amounts)}
        if self.gpus:
            out.setdefault("limits", {})["nvidia.com/gpu"] = str(self.gpus)
        return out


def build_inference_service(
    name: str,
    *,
    namespace: str,
    model_format: str,
    storage_uri: str,
    canary_percent: int | None = None,
    resources: Resources | None = None,
    service_account: str | None = None,
    protocol_version: str | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An ``InferenceService`` for one model.

    Args:
        name: the deployment's name (DNS-1123).
        namespace: where it goes.
        model_format: one of ``sklearn``, ``xgboost``, ``lightgbm``, ``pytorch``.
        storage_uri: where the model is (``s3://...``).
        canary_percent: the share of traffic of this new revision; the previous one keeps
            the rest. None rolls it out to all traffic.
        resources: the predictor's compute.
        service_account: the account whose secret gives the S3 credentials.
        protocol_version: ``v1`` or ``v2``; None leaves KServe's default.
        annotations: lineage to record on the object (never secrets).

    Raises:
        ServingError: the format has no KServe runtime.
    """
    if model_format not in MODEL_FORMATS:
        raise ServingError(
            f"KServe has no runtime for model format {model_format!r}; "
            f"supported: {', '.join(MODEL_FORMATS)}"
        )
    model: dict[str, Any] = {
        "modelFormat": {"name": MODEL_FORMATS[model_format]},
        "storageUri": storage_uri,
    }
    if protocol_version:
        model["protocolVersion"] = protocol_version
    res = (resources or Resources()).to_dict()
    if res:
        model["resources"] = res
    predictor: dict[str, Any] = {"model": model}
    if service_account:
        predictor["serviceAccountName"] = service_account
    if canary_percent is not None:
        predictor["canaryTrafficPercent"] = int(canary_percent)
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": {"app.kubernetes.io/managed-by": "jupyter-mlk"},
    }
    if annotations:
        metadata["annotations"] = {f"{ANNOTATION}/{k}": str(v) for k, v in annotations.items()}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "InferenceService",
        "metadata": metadata,
        "spec": {"predictor": predictor},
    }


def lineage_annotations(version: int, model_ref: str, lineage: dict[str, Any]) -> dict[str, str]:
    """The annotations that say where a deployed model came from."""
    out = {"version": str(version), "model-ref": model_ref}
    for key in ("run", "step", "variable", "notebook", "sha256", "digest"):
        if lineage.get(key):
            out[key] = str(lineage[key])
    return out


def to_yaml(manifest: dict[str, Any]) -> str:
    """The manifest as YAML, keys in the order they were built."""
    import yaml

    return str(yaml.safe_dump(manifest, sort_keys=False, default_flow_style=False))


def default_namespace() -> str:
    """``MLK_KUBE_NAMESPACE``, else the kubeconfig context's namespace, else ``default``."""
    chosen = os.environ.get(NAMESPACE_ENV)
    if chosen:
        return chosen
    try:
        from kubernetes import config

        _, active = config.list_kube_config_contexts(config_file=_kubeconfig())
        return str((active or {}).get("context", {}).get("namespace") or "default")
    except Exception:  # no kubeconfig: in a pod, or not configured yet
        path = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
        try:
            with open(path, encoding="utf-8") as fh:
                return fh.read().strip() or "default"
        except OSError:
            return "default"


class KServeClient:
    """InferenceServices through the ``kubernetes`` client's custom objects API."""

    def __init__(self, api_client: Any | None = None) -> None:
        from kubernetes import client

        self.api_client = api_client or _api_client()
        self.custom = client.CustomObjectsApi(self.api_client)

    def close(self) -> None:
        """Close the client's connections."""
        self.api_client.close()
        pool = getattr(getattr(self.api_client, "rest_client", None), "pool_manager", None)
        if pool is not None:
            pool.clear()

    def __enter__(self) -> KServeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, name: str, namespace: str) -> dict[str, Any] | None:
        """The InferenceService, or None when there is none."""
        try:
            obj = self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        except Exception as exc:
            if getattr(exc, "status", None) == 404:
                return None
            raise _api_error(exc, "read", name, namespace) from exc
        return dict(obj)

    def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Create the InferenceService, or replace the one of the same name.

        Raises:
            ServingError: the cluster refused it or cannot be reached.
        """
        name = manifest["metadata"]["name"]
        namespace = manifest["metadata"]["namespace"]
        current = self.get(name, namespace)
        try:
            if current is None:
                obj = self.custom.create_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, manifest
                )
                log.info("created InferenceService %s/%s", namespace, name)
            else:
                body = dict(manifest)
                body["metadata"] = dict(manifest["metadata"])
                body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
                obj = self.custom.replace_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, name, body
                )
                log.info("replaced InferenceService %s/%s", namespace, name)
        except Exception as exc:
            raise _api_error(exc, "apply", name, namespace) from exc
        return dict(obj)

    def delete(self, name: str, namespace: str) -> bool:
        """Delete the InferenceService; False when it was not there."""
        try:
            self.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        except Exception as exc:
            if getattr(exc, "status", None) == 404:
                return False
            raise _api_error(exc, "delete", name, namespace) from exc
        log.info("deleted InferenceService %s/%s", namespace, name)
        return True


def status_of(obj: dict[str, Any]) -> tuple[str, str | None]:
    """(status, url) of an InferenceService: RUNNING when Ready, FAILED, else PENDING."""
    status = obj.get("status") or {}
    url = status.get("url")
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Ready":
            if cond.get("status") == "True":
                return "RUNNING", url
            if cond.get("reason") in ("Failed", "FailedToLoad", "RevisionFailed"):
                return "FAILED", url
    return "PENDING", url


def _kubeconfig() -> str | None:
    # The client reads $KUBECONFIG once, when it is imported; read it at each call so a
    # long-lived process (the Jupyter server) follows a change.
    return os.environ.get("KUBECONFIG") or None


def _api_client() -> Any:
    from kubernetes import client, config

    try:
        config.load_kube_config(
            config_file=_kubeconfig(), context=os.environ.get(CONTEXT_ENV) or None
        )
    except Exception as exc:
        try:
            config.load_incluster_config()
        except Exception:
            raise ServingError(
                f"no Kubernetes configuration: set KUBECONFIG (or {CONTEXT_ENV} for a "
                f"context) or run inside a cluster ({type(exc).__name__}: {exc})"
            ) from exc
    return client.ApiClient()


def _api_error(exc: Exception, action: str, name: str, namespace: str) -> ServingError:
    import json

    status = getattr(exc, "status", None)
    reason = getattr(exc, "reason", None) or type(exc).__name__
    detail = ""
    body = getattr(exc, "body", None)
    if body:
        try:
            detail = json.loads(body).get("message", "")
        except (ValueError, AttributeError):
            detail = ""
    hint = {
        401: "the kubeconfig's credentials were refused",
        403: f"your account may not {action} InferenceServices in {namespace}",
        404: "is KServe installed (the InferenceService CRD)?",
        422: "the cluster's InferenceService schema refused the manifest",
    }.get(status or 0, "check that the cluster is reachable")
    where = f"{status} {reason}" if status else reason
    return ServingError(
        f"cannot {action} InferenceService {namespace}/{name}: {where}"
        f"{': ' + detail if detail else ''}; {hint}"
    )
