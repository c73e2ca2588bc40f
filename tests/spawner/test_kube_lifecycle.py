"""The Kubernetes backend against a fake API server at the HTTP boundary.

The real ``kubernetes`` client talks HTTP to :mod:`fakekube`, which replays event
sequences copied from real clusters. Each classified error must arrive as soon as its
event is sent (not after the start timeout, which is 60 s here).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fakekube
import pytest
from kubernetes import client

from spawner import (
    CrashLoopError,
    ImagePullError,
    InsufficientGpuError,
    Launcher,
    LauncherConfig,
    Stage,
    UnschedulableError,
    VolumeError,
)
from spawner.events import ProgressEvent
from spawner.kube import manifests as m
from spawner.kube.backend import KubernetesBackend

Env = tuple[fakekube.FakeKube, KubernetesBackend, Launcher]


@pytest.fixture
def cluster(workspace: Path) -> Iterator[Callable[..., Env]]:
    made: list[tuple[fakekube.FakeKube, KubernetesBackend]] = []

    def make(scenario: fakekube.Scenario | None = None, **backend_args: Any) -> Env:
        fake = fakekube.FakeKube(scenario).start()
        configuration = client.Configuration()
        configuration.host = fake.url
        backend = KubernetesBackend(
            client.ApiClient(configuration), m.KubeSettings(namespace="team"), **backend_args
        )
        made.append((fake, backend))
        return fake, backend, Launcher(workspace, LauncherConfig(), {"kubernetes": backend})

    yield make
    for fake, backend in made:
        backend.watcher.stop()
        fake.stop()


def request(launcher: Launcher, **overrides: Any) -> Any:
    values = {"backend": "kubernetes", "gpus": 1, "start_timeout": 60, **overrides}
    return launcher.resolve("nb", owner="jane", overrides=values)


def test_a_launch_follows_real_stages_to_ready(cluster: Callable[..., Env]) -> None:
    fake, _backend, launcher = cluster(fakekube.success())
    events: list[ProgressEvent] = []
    record = launcher.launch(request(launcher), on_event=events.append)
    stages = [e.stage for e in events]
    for stage in (Stage.SCHEDULED, Stage.PULLING, Stage.STARTED, Stage.READY):
        assert stage in stages
    assert stages == sorted(stages, key=list(Stage).index)
    assert record.url == f"http://{record.id}.team.svc.cluster.local:8888/"
    kinds = {(p[0], p[1]) for p in fake.objects}
    assert {("pods", "team"), ("services", "team"), ("secrets", "team")} <= kinds
    launcher.stop(record)
    assert not [k for k in fake.objects if k[0] in ("pods", "services", "secrets")]


@pytest.mark.parametrize(
    ("scenario", "error", "words"),
    [
        (fakekube.pending_for_gpus(), InsufficientGpuError, "Insufficient nvidia.com/gpu"),
        (fakekube.untolerated_taint(), UnschedulableError, "toleration"),
        # Under load the pod's ImagePullBackOff status can be seen before the ErrImagePull
        # event that says "not found"; either is the same classified error.
        (fakekube.image_pull_backoff(), ImagePullError, r"not found|Back-off pulling image"),
        (fakekube.transient_pull_then_backoff(), ImagePullError, "Back-off pulling image"),
        (fakekube.crash_loop(), CrashLoopError, "No module named 'jupyter_server'"),
        (fakekube.unbound_claim(), VolumeError, "fast-ssd"),
    ],
    ids=[
        "pending-gpus",
        "taint",
        "image-pull",
        "transient-then-backoff",
        "crash-loop",
        "unbound-claim",
    ],
)
def test_doomed_pods_fail_fast_with_a_classified_error(
    cluster: Callable[..., Env], scenario: fakekube.Scenario, error: type, words: str
) -> None:
    fake, _backend, launcher = cluster(scenario)
    overrides = {"workspace": {"size": "5Gi", "storage_class": "fast-ssd"}}
    started = time.monotonic()
    with pytest.raises(error, match=words) as info:
        launcher.launch(request(launcher, **overrides))
    assert fake.fatal_at is not None
    # Well inside the 60 s start timeout: the error comes from the event, not a timeout.
    assert time.monotonic() - started < 30
    record = launcher.get("nb", owner="jane")
    assert record.state == "failed" and record.error_code == info.value.code
    assert ("pods", "team", record.id) not in fake.objects  # cleaned up
    claims = [k for k in fake.objects if k[0] == "persistentvolumeclaims"]
    assert len(claims) == 1  # the workspace volume is kept


@pytest.mark.parametrize("trouble", ["break", "expire"])
def test_the_watch_recovers_when_it_breaks_or_expires(
    cluster: Callable[..., Env], trouble: str
) -> None:
    _fake, backend, launcher = cluster(fakekube.with_watch_trouble(fakekube.success(), trouble))
    record = launcher.launch(request(launcher))
    assert record.state == "ready"
    assert backend.watcher.reconnects >= 1
    if trouble == "expire":
        assert backend.watcher.relists >= 1


def test_launches_share_one_watch_instead_of_polling(cluster: Callable[..., Env]) -> None:
    fake, _backend, launcher = cluster(fakekube.success())
    for name in ("one", "two", "three"):
        launcher.launch(launcher.resolve(name, owner="jane", overrides={"backend": "kubernetes"}))
    pod_reads = [p for method, p in fake.requests if method == "GET" and "/pods" in p]
    watches = [p for p in pod_reads if "watch=" in p]
    assert len(watches) == 1
    reads = [p for p in pod_reads if "watch=" not in p]
    # One list to start the watch, then only the liveness refresh that each launch does
    # of the servers already running (0, 1, then 2 of them); a starting pod is never read.
    assert len(reads) == 1 + 0 + 1 + 2
    assert not [p for p in reads if "three" in p]


def test_gpus_are_checked_before_anything_is_created(cluster: Callable[..., Env]) -> None:
    fake, _backend, launcher = cluster(fakekube.success())
    fake.nodes = [fakekube.gpu_node("gpu-node-1", 2)]
    fake.other_pods = [fakekube_pod_using("gpu-node-1", 2)]
    with pytest.raises(InsufficientGpuError, match="gpu-node-1: 0/2 free"):
        launcher.launch(request(launcher))
    assert not any(method == "POST" for method, _ in fake.requests)


def fakekube_pod_using(node: str, gpus: int) -> dict[str, Any]:
    return {
        "metadata": {"name": "training-job", "namespace": "other"},
        "spec": {
            "nodeName": node,
            "containers": [{"resources": {"limits": {"nvidia.com/gpu": str(gpus)}}}],
        },
        "status": {"phase": "Running"},
    }


def test_deleting_a_server_deletes_only_its_own_volume(cluster: Callable[..., Env]) -> None:
    fake, _backend, launcher = cluster(fakekube.success())
    ws = {"size": "5Gi"}
    alice = launcher.launch(
        launcher.resolve("nb", owner="alice", overrides={"backend": "kubernetes", "workspace": ws})
    )
    alice_claim = alice.handle["workspace_claim"]
    bob_overrides = {"backend": "kubernetes", "workspace": {"existing_claim": alice_claim}}
    bob = launcher.launch(launcher.resolve("nb", owner="bob", overrides=bob_overrides))

    launcher.stop(bob, delete_volume=True)
    assert ("persistentvolumeclaims", "team", alice_claim) in fake.objects
    launcher.stop(alice, delete_volume=True)
    assert ("persistentvolumeclaims", "team", alice_claim) not in fake.objects


def test_a_relaunch_reuses_its_own_claim_but_refuses_a_foreign_one(
    cluster: Callable[..., Env],
) -> None:
    fake, _backend, launcher = cluster(fakekube.success())
    overrides = {"backend": "kubernetes", "workspace": {"size": "5Gi"}}
    first = launcher.launch(launcher.resolve("nb", owner="carol", overrides=overrides))
    launcher.stop(first)
    again = launcher.launch(launcher.resolve("nb", owner="carol", overrides=overrides))
    assert again.handle["workspace_claim"] == first.handle["workspace_claim"]
    claim = fake.objects[("persistentvolumeclaims", "team", first.handle["workspace_claim"])]
    claim["metadata"]["annotations"][m.ANNOTATION_CREATED_BY] = "someone-else"
    launcher.stop(again)
    with pytest.raises(VolumeError, match="not created for this server"):
        launcher.launch(launcher.resolve("nb", owner="carol", overrides=overrides))
