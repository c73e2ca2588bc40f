"""The local backend against real ``jupyter server`` processes."""

from __future__ import annotations

import json
import os
import signal
import stat
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from spawner import InsufficientGpuError, Launcher, LauncherConfig, ServerExitedError, Stage
from spawner.events import ProgressEvent
from spawner.local import tagged_processes

pytestmark = pytest.mark.slow


def api(url: str, token: str, path: str, method: str = "GET", body: object = None) -> object:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url + path, data=data, method=method, headers={"Authorization": f"token {token}"}
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def wait_for_kernel(url: str, token: str) -> psutil.Process:
    kernel = api(url, token, "api/kernels", "POST", {"name": "python3"})
    assert isinstance(kernel, dict)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for proc in psutil.process_iter():
            try:
                if kernel["id"] in " ".join(proc.cmdline()):
                    return proc
            except psutil.Error:
                continue
        time.sleep(0.2)
    raise AssertionError("kernel process not found")


def test_launch_reaches_ready_through_real_stages_and_stop_leaves_no_process(
    launcher: Launcher, no_gpu_path: None
) -> None:
    events: list[ProgressEvent] = []
    request = launcher.resolve("my server!", profile="cpu", overrides={"memory": "3Gi"})
    record = launcher.launch(request, on_event=events.append)

    assert [e.stage for e in events] == [
        Stage.REQUESTED,
        Stage.SCHEDULED,
        Stage.STARTED,
        Stage.READY,
    ]
    assert record.state == "ready" and record.url.startswith("http://127.0.0.1:")
    token = launcher.token(record)
    token_file = Path(record.handle["run_dir"]) / "token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert token not in launcher.store.path.read_bytes().decode(errors="replace")
    status = api(record.url, token, "api/status")
    assert isinstance(status, dict) and "last_activity" in status

    server = psutil.Process(record.handle["pid"])
    assert server.environ()["CUDA_VISIBLE_DEVICES"] == ""
    assert server.rlimit(psutil.RLIMIT_AS) == (3 * 2**30, 3 * 2**30)
    kernel = wait_for_kernel(record.url, token)
    assert kernel.environ()["MLK_LAUNCH_ID"] == record.id

    launcher.stop(launcher.get("my server!"))
    assert not server.is_running() or server.status() == psutil.STATUS_ZOMBIE
    psutil.wait_procs([kernel], timeout=10)
    assert not kernel.is_running()
    assert tagged_processes(record.id) == []
    assert launcher.get("my server!").state == "stopped"


def test_kernels_orphaned_by_a_killed_server_are_still_stopped(
    launcher: Launcher, no_gpu_path: None
) -> None:
    record = launcher.launch(launcher.resolve("orphans", profile="cpu"))
    kernel = wait_for_kernel(record.url, launcher.token(record))
    os.kill(record.handle["pid"], signal.SIGKILL)
    psutil.wait_procs([psutil.Process(record.handle["pid"])], timeout=10)
    assert kernel.is_running()

    launcher.stop(record)
    psutil.wait_procs([kernel], timeout=10)
    assert not kernel.is_running()


def test_state_survives_a_restart_of_the_owning_process(
    launcher: Launcher, workspace: Path, no_gpu_path: None
) -> None:
    record = launcher.launch(launcher.resolve("survivor", profile="cpu"))
    reborn = Launcher(workspace, LauncherConfig())
    [listed] = [r for r in reborn.refresh() if r.name == "survivor"]
    assert listed.state == "ready" and listed.url == record.url
    assert reborn.token(listed) == launcher.token(record)
    reborn.stop(listed)
    assert not reborn.poll(reborn.get("survivor"))


def test_a_server_that_dies_is_found_stopped_and_frees_its_name(
    launcher: Launcher, no_gpu_path: None
) -> None:
    record = launcher.launch(launcher.resolve("fragile", profile="cpu"))
    os.killpg(record.handle["pid"], signal.SIGKILL)
    psutil.wait_procs([psutil.Process(record.handle["pid"])], timeout=10)
    [found] = [r for r in launcher.refresh() if r.id == record.id]
    assert found.state == "stopped" and "ended on its own" in found.error


def test_gpus_are_given_through_cuda_visible_devices_and_never_twice(
    launcher: Launcher, fake_gpus: Path
) -> None:
    first = launcher.launch(launcher.resolve("g1", overrides={"gpus": 1, "memory": "8Gi"}))
    assert first.gpus == ["0"]
    server = psutil.Process(first.handle["pid"])
    assert server.environ()["CUDA_VISIBLE_DEVICES"] == "0"
    assert server.environ()["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    assert "not enforced" in first.handle["memory_limit"]
    kernel = wait_for_kernel(first.url, launcher.token(first))
    assert kernel.environ()["CUDA_VISIBLE_DEVICES"] == "0"

    started = time.monotonic()
    with pytest.raises(InsufficientGpuError, match="only 1 free"):
        launcher.launch(launcher.resolve("g2", overrides={"gpus": 2}))
    assert time.monotonic() - started < 5, "the GPU check must come before any process starts"
    assert launcher.get("g2").state == "failed"
    assert launcher.get("g2").error_code == "insufficient-gpu"

    second = launcher.launch(launcher.resolve("g3", overrides={"gpus": 1}))
    assert second.gpus == ["1"]


def test_no_gpu_machine_refuses_a_gpu_launch_before_starting(
    launcher: Launcher, no_gpu_path: None
) -> None:
    with pytest.raises(InsufficientGpuError, match="this machine has none"):
        launcher.launch(launcher.resolve("wants-gpu", profile="gpu-1"))
    assert "pid" not in launcher.get("wants-gpu").handle


def test_a_server_that_exits_at_start_is_reported_with_its_log(
    launcher: Launcher, no_gpu_path: None
) -> None:
    request = launcher.resolve("broken", profile="cpu", overrides={"memory": "64Mi"})
    with pytest.raises(ServerExitedError, match="exited with status") as info:
        launcher.launch(request)
    assert "log tail" in str(info.value)
    assert launcher.get("broken").state == "failed"


def test_idle_servers_are_culled_and_active_ones_kept(
    launcher: Launcher, no_gpu_path: None
) -> None:
    record = launcher.launch(
        launcher.resolve("idle", profile="cpu", overrides={"idle_timeout": "1s"})
    )
    busy = launcher.launch(
        launcher.resolve("busy", profile="cpu", overrides={"idle_timeout": "600s"})
    )
    token = launcher.token(busy)
    time.sleep(1.5)
    api(busy.url, token, "api/kernels")  # authenticated API use is activity
    culled = launcher.cull_idle()
    assert [r.name for r in culled] == ["idle"]
    assert "culled after" in launcher.get("idle").error
    assert not launcher.poll(launcher.get("idle"))
    assert not psutil.pid_exists(record.handle["pid"]) or (
        psutil.Process(record.handle["pid"]).status() == psutil.STATUS_ZOMBIE
    )
    # The busy server is culled only once its idle timeout has passed since its activity.
    assert launcher.cull_idle(now=time.time() + 500) == []
    assert [r.name for r in launcher.cull_idle(now=time.time() + 601)] == ["busy"]
