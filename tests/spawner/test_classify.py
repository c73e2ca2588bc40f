"""Classification of scheduler, kubelet and volume messages, and the GPU capacity check."""

from __future__ import annotations

from typing import Any

import pytest

from spawner.errors import (
    CrashLoopError,
    ImagePullError,
    InsufficientGpuError,
    UnschedulableError,
    VolumeError,
)
from spawner.events import Stage
from spawner.kube.capacity import check_gpu_capacity, gpu_nodes
from spawner.kube.classify import LaunchContext, classify_event, classify_pod, classify_scheduling
from spawner.request import Toleration

CTX = LaunchContext(image="repo/img:1", gpus=2, memory=2**30)


@pytest.mark.parametrize(
    ("message", "error", "advice"),
    [
        (
            "0/4 nodes are available: 4 Insufficient nvidia.com/gpu.",
            InsufficientGpuError,
            "fewer GPUs",
        ),
        (
            "0/2 nodes are available: 2 node(s) had untolerated taint {nvidia.com/gpu: present}.",
            UnschedulableError,
            "toleration",
        ),
        ("0/1 nodes are available: 1 Insufficient memory.", UnschedulableError, "less"),
        (
            "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.",
            UnschedulableError,
            "gpu_kind",
        ),
        (
            "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims.",
            VolumeError,
            "storage class",
        ),
    ],
)
def test_scheduler_messages_become_errors_that_say_what_to_change(
    message: str, error: type, advice: str
) -> None:
    result = classify_scheduling(message, CTX)
    assert type(result) is error
    assert advice in str(result) and message in str(result)


def _waiting(reason: str, message: str = "", last: dict[str, Any] | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {
        "name": "notebook",
        "state": {"waiting": {"reason": reason, "message": message}},
    }
    if last:
        status["lastState"] = {"terminated": last}
    return {"status": {"phase": "Pending", "containerStatuses": [status]}}


def test_a_transient_pull_error_waits_but_a_missing_image_fails() -> None:
    assert classify_pod(_waiting("ErrImagePull", "dial tcp: i/o timeout"), CTX) is None
    assert isinstance(
        classify_pod(_waiting("ErrImagePull", "manifest unknown"), CTX), ImagePullError
    )
    assert isinstance(classify_pod(_waiting("ImagePullBackOff"), CTX), ImagePullError)


def test_an_out_of_memory_crash_loop_asks_for_more_memory() -> None:
    pod = _waiting("CrashLoopBackOff", "back-off", {"exitCode": 137, "reason": "OOMKilled"})
    error = classify_pod(pod, CTX)
    assert isinstance(error, CrashLoopError)
    assert "1Gi" in str(error) and "more --memory" in str(error)


def test_events_advance_stages_in_order() -> None:
    def event(reason: str, message: str = "m") -> Any:
        return classify_event(
            {"reason": reason, "message": message, "involvedObject": {"kind": "Pod"}}, CTX
        )

    assert event("Scheduled")[0] is Stage.SCHEDULED
    assert event("Pulling")[0] is Stage.PULLING
    assert event("Started")[0] is Stage.STARTED
    assert event("FailedMount")[2] is None  # often transient: reported, not fatal
    assert isinstance(event("BackOff", 'Back-off pulling image "x"')[2], ImagePullError)


def node(name: str, gpus: int, **extra: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": extra.get("labels", {})},
        "spec": {"taints": extra.get("taints", []), "unschedulable": extra.get("cordoned", False)},
        "status": {"allocatable": {"nvidia.com/gpu": str(gpus)}},
    }


def pod_on(node_name: str, gpus: int, phase: str = "Running") -> dict[str, Any]:
    return {
        "spec": {
            "nodeName": node_name,
            "containers": [{"resources": {"limits": {"nvidia.com/gpu": str(gpus)}}}],
        },
        "status": {"phase": phase},
    }


def test_capacity_is_allocatable_minus_requested_per_node() -> None:
    nodes = [node("a", 4), node("b", 2), node("cpu", 0)]
    pods = [pod_on("a", 3), pod_on("b", 1), pod_on("b", 1, phase="Succeeded")]
    found = gpu_nodes(nodes, pods, "nvidia.com/gpu", {}, [])
    assert {(n.node, n.free) for n in found} == {("a", 1), ("b", 1)}
    check_gpu_capacity(1, found, "nvidia.com/gpu")
    with pytest.raises(InsufficientGpuError, match=r"a: 1/4 free; b: 1/2 free"):
        check_gpu_capacity(2, found, "nvidia.com/gpu")


def test_tainted_or_cordoned_or_mismatched_nodes_do_not_count() -> None:
    taint = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
    nodes = [
        node("t", 8, taints=[taint]),
        node("c", 8, cordoned=True),
        node("l", 8, labels={"k": "v"}),
    ]
    found = gpu_nodes(nodes, [], "nvidia.com/gpu", {}, [])
    with pytest.raises(
        InsufficientGpuError, match=r"taint nvidia\.com/gpu=present:NoSchedule"
    ) as info:
        check_gpu_capacity(9, found, "nvidia.com/gpu")
    assert "c: not eligible (cordoned)" in str(info.value)
    assert "l: 8/8 free" in str(info.value)
    mismatched = gpu_nodes(nodes[2:], [], "nvidia.com/gpu", {"k": "other"}, [])
    with pytest.raises(InsufficientGpuError, match="label k=v"):
        check_gpu_capacity(1, mismatched, "nvidia.com/gpu")
    tolerated = gpu_nodes(nodes[:1], [], "nvidia.com/gpu", {}, [Toleration("nvidia.com/gpu")])
    check_gpu_capacity(8, tolerated, "nvidia.com/gpu")
