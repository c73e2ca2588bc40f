"""Read pods and events as they arrive and say which stage a launch is at, or why it failed.

Pure functions over the API's JSON (camelCase dicts), so each rule is tested with the
messages real clusters print. The rules fail fast only on causes that do not heal by
themselves: an image pull error says "not found" or "denied" (a network blip does not),
a back-off has started, the scheduler found no node. Mount failures are often transient
(volume attach races), so they are reported as progress and only end a launch through
its start timeout, whose message names them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from spawner.errors import (
    ClassifiedLaunchError,
    CrashLoopError,
    ImagePullError,
    InsufficientGpuError,
    ServerExitedError,
    UnschedulableError,
    VolumeError,
)
from spawner.events import Stage
from spawner.request import format_memory

PERMANENT_PULL = re.compile(
    r"not found|manifest unknown|unauthorized|denied|no such host|invalid reference|"
    r"repository does not exist|may require 'docker login'",
    re.I,
)
TAINT = re.compile(r"untolerated taint[s]? \{([^}]*)\}")


@dataclass(frozen=True)
class LaunchContext:
    """What the classifier must know about the launch to word its advice."""

    image: str
    gpus: int = 0
    gpu_resource: str = "nvidia.com/gpu"
    gpu_kind: str = ""
    memory: int | None = None
    claims: tuple[str, ...] = ()


def is_ready(pod: dict[str, Any]) -> bool:
    """Whether the pod's Ready condition is True (its readiness probe passed)."""
    for condition in pod.get("status", {}).get("conditions") or ():
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return False


def classify_scheduling(message: str, ctx: LaunchContext) -> ClassifiedLaunchError:
    """Turn a scheduler message ("0/3 nodes are available: ...") into a classified error."""
    quoted = f"scheduler: {message.strip()}"
    if "unbound immediate PersistentVolumeClaims" in message:
        return VolumeError(
            f"the workspace or data claim is not bound ({quoted})",
            "check that the storage class exists and can provision, or use an existing claim",
        )
    if f"Insufficient {ctx.gpu_resource}" in message:
        kind = f" of kind {ctx.gpu_kind}" if ctx.gpu_kind else ""
        return InsufficientGpuError(
            f"no node has {ctx.gpus} free {ctx.gpu_resource}{kind} ({quoted})",
            "ask for fewer GPUs, choose another GPU kind, or wait until GPUs are freed",
        )
    taints = TAINT.findall(message)
    if taints:
        wanted = ", ".join(sorted({t.strip() for t in taints}))
        return UnschedulableError(
            f"the only fitting nodes have taints the server does not tolerate: {wanted} "
            f"({quoted})",
            "add a matching toleration to the profile (tolerations: [{key: ..., "
            "operator: Exists, effect: NoSchedule}])",
        )
    if "Insufficient memory" in message or "Insufficient cpu" in message:
        return UnschedulableError(
            f"no node has that much free CPU or memory ({quoted})",
            "ask for less --cpu or --memory",
        )
    if "node affinity/selector" in message or "node selector" in message:
        return UnschedulableError(
            f"no node matches the node selector or GPU kind ({quoted})",
            "check gpu_kind and node_selector against the labels of your nodes",
        )
    return UnschedulableError(f"the pod cannot be scheduled ({quoted})", "see the message")


def _pull_error(message: str, ctx: LaunchContext) -> ImagePullError:
    return ImagePullError(
        f"image {ctx.image!r} cannot be pulled: {message.strip()}",
        "check the image name and tag, or give the registry credentials (imagePullSecrets)",
    )


def _crash_error(status: dict[str, Any], ctx: LaunchContext) -> CrashLoopError:
    last = (status.get("lastState") or {}).get("terminated") or {}
    reason, code = last.get("reason", "unknown"), last.get("exitCode", "?")
    if reason == "OOMKilled":
        limit = format_memory(ctx.memory) if ctx.memory else "its limit"
        hint = f"the server ran out of memory ({limit}); ask for more --memory"
    else:
        hint = "the server command fails at start; read the pod log (kubectl logs)"
    return CrashLoopError(
        f"the server container keeps crashing (last exit code {code}, reason {reason})", hint
    )


def classify_pod(pod: dict[str, Any], ctx: LaunchContext) -> ClassifiedLaunchError | None:
    """A classified error if the pod's status shows a cause that will not heal, else None."""
    status = pod.get("status") or {}
    for condition in status.get("conditions") or ():
        if (
            condition.get("type") == "PodScheduled"
            and condition.get("status") == "False"
            and condition.get("reason") == "Unschedulable"
        ):
            return classify_scheduling(str(condition.get("message", "")), ctx)
    for container in status.get("containerStatuses") or ():
        waiting = (container.get("state") or {}).get("waiting") or {}
        reason, message = waiting.get("reason", ""), str(waiting.get("message", ""))
        if reason in ("ImagePullBackOff", "InvalidImageName") or (
            reason == "ErrImagePull" and PERMANENT_PULL.search(message)
        ):
            return _pull_error(message or reason, ctx)
        if reason == "CrashLoopBackOff":
            return _crash_error(container, ctx)
        if reason in ("CreateContainerConfigError", "CreateContainerError", "RunContainerError"):
            return ServerExitedError(
                f"the container cannot start ({reason}: {message})",
                "check the command, environment secrets and config maps of the profile",
            )
    if status.get("phase") in ("Failed", "Succeeded"):
        return ServerExitedError(
            f"the pod ended in phase {status['phase']} before it was ready "
            f"({status.get('reason', '')} {status.get('message', '')})".rstrip(),
            "read the pod log (kubectl logs) and fix the server command",
        )
    return None


def classify_event(
    event: dict[str, Any], ctx: LaunchContext
) -> tuple[Stage | None, str, ClassifiedLaunchError | None]:
    """Read one Kubernetes Event about the pod or its claims.

    Returns:
        ``(stage, message, error)``: the stage the event proves (or None), a message for
        the progress stream, and a classified error when the event is fatal.
    """
    reason = str(event.get("reason", ""))
    message = str(event.get("message", ""))
    kind = (event.get("involvedObject") or {}).get("kind", "")
    if kind == "PersistentVolumeClaim":
        if reason in ("ProvisioningFailed", "FailedBinding"):
            claim = (event.get("involvedObject") or {}).get("name", "")
            error = VolumeError(
                f"claim {claim!r} cannot be bound: {message}",
                "check the storage class (kubectl get storageclass) or use an existing claim",
            )
            return None, message, error
        return None, f"volume: {message}", None
    if reason == "Scheduled":
        return Stage.SCHEDULED, message, None
    if reason == "FailedScheduling":
        return None, message, classify_scheduling(message, ctx)
    if reason in ("Pulling", "Pulled"):
        return Stage.PULLING, message, None
    if reason == "Started":
        return Stage.STARTED, message, None
    if reason == "Failed" and PERMANENT_PULL.search(message) and "pull" in message.lower():
        return None, message, _pull_error(message, ctx)
    if reason == "BackOff" and "pulling image" in message:
        return None, message, _pull_error(message, ctx)
    if reason == "BackOff" and "restarting failed container" in message:
        return (
            None,
            message,
            CrashLoopError(
                f"the server container keeps crashing ({message})",
                "the server command fails at start; read the pod log (kubectl logs)",
            ),
        )
    return None, f"{reason}: {message}" if reason else message, None
