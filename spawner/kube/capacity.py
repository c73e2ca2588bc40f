"""Free GPUs on a cluster, computed before a pod is created: allocatable minus requested.

A pod's GPUs must all come from one node, so the check asks whether any single eligible
node has enough free GPUs. A node is eligible when it is schedulable, matches the node
selector (GPU kind included) and every NoSchedule/NoExecute taint on it is tolerated.
This mirrors the scheduler's main filters; it cannot see everything the scheduler does
(pod affinity, topology spread, device-plugin health), so a launch that passes can still
meet a FailedScheduling event, which :mod:`spawner.kube.classify` reports.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from spawner.errors import InsufficientGpuError
from spawner.request import Toleration

_SUFFIX = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}


def _count(quantity: Any) -> int:
    """An integer resource count (GPUs are whole numbers, written "1", "2", maybe "2k")."""
    text = str(quantity or "0")
    for suffix in sorted(_SUFFIX, key=len, reverse=True):
        if suffix and text.endswith(suffix):
            return int(float(text[: -len(suffix)]) * _SUFFIX[suffix])
    return math.floor(float(text))


@dataclass(frozen=True)
class NodeGpus:
    """One node's GPUs: allocatable, requested by running pods, and why it is not eligible."""

    node: str
    allocatable: int
    requested: int
    ineligible: str = ""

    @property
    def free(self) -> int:
        """Allocatable minus requested, never below zero."""
        return max(0, self.allocatable - self.requested)


def tolerates(taint: Mapping[str, Any], tolerations: Iterable[Toleration]) -> bool:
    """Whether any toleration matches a taint (key, value with Equal, effect)."""
    for tol in tolerations:
        if tol.effect and tol.effect != taint.get("effect"):
            continue
        if tol.key and tol.key != taint.get("key"):
            continue
        if tol.operator == "Exists" or tol.value == str(taint.get("value", "")):
            return True
    return False


def _ineligible(
    node: Mapping[str, Any], selector: Mapping[str, str], tolerations: Iterable[Toleration]
) -> str:
    spec, labels = node.get("spec") or {}, (node.get("metadata") or {}).get("labels") or {}
    if spec.get("unschedulable"):
        return "cordoned"
    for key, value in selector.items():
        if labels.get(key) != value:
            return f"label {key}={labels.get(key, '<unset>')} (wanted {value})"
    for taint in spec.get("taints") or ():
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(
            taint, tolerations
        ):
            value = taint.get("value")
            return f"taint {taint.get('key')}{'=' + value if value else ''}:{taint['effect']}"
    return ""


def gpu_nodes(
    nodes: Iterable[Mapping[str, Any]],
    pods: Iterable[Mapping[str, Any]],
    resource: str,
    selector: Mapping[str, str],
    tolerations: Iterable[Toleration],
) -> list[NodeGpus]:
    """Every node with allocatable GPUs, with GPUs requested by its unfinished pods."""
    requested: dict[str, int] = {}
    for pod in pods:
        status, spec = pod.get("status") or {}, pod.get("spec") or {}
        if status.get("phase") in ("Succeeded", "Failed") or not spec.get("nodeName"):
            continue
        count = 0
        for container in spec.get("containers") or ():
            res = container.get("resources") or {}
            amount = (res.get("limits") or {}).get(resource) or (res.get("requests") or {}).get(
                resource
            )
            count += _count(amount)
        requested[spec["nodeName"]] = requested.get(spec["nodeName"], 0) + count
    tolerations = list(tolerations)
    result = []
    for node in nodes:
        allocatable = _count(((node.get("status") or {}).get("allocatable") or {}).get(resource))
        if allocatable <= 0:
            continue
        name = str((node.get("metadata") or {}).get("name"))
        reason = _ineligible(node, selector, tolerations)
        result.append(NodeGpus(name, allocatable, requested.get(name, 0), reason))
    return result


def check_gpu_capacity(count: int, nodes: list[NodeGpus], resource: str) -> None:
    """Raise unless one eligible node has ``count`` free GPUs.

    Raises:
        InsufficientGpuError: with a per-node account (free/allocatable, or why ineligible).
    """
    if count == 0 or any(n.free >= count and not n.ineligible for n in nodes):
        return
    if not nodes:
        raise InsufficientGpuError(
            f"{count} {resource} requested but no node of the cluster has any",
            "ask your administrator for GPU nodes, or launch with --gpus 0",
        )
    summary = "; ".join(
        f"{n.node}: not eligible ({n.ineligible})"
        if n.ineligible
        else f"{n.node}: {n.free}/{n.allocatable} free"
        for n in nodes
    )
    best = max((n.free for n in nodes if not n.ineligible), default=0)
    hint = (
        f"ask for at most {best} GPU(s), or wait until GPUs are freed"
        if best
        else "no eligible node has a free GPU: fix the tolerations or GPU kind, or wait"
    )
    raise InsufficientGpuError(f"{count} {resource} requested on one node; {summary}", hint)
