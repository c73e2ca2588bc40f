"""Benchmark the launcher against its anchors; runnable on its own.

1. Local launch to ready vs ``jupyter server`` started by hand (same flags, same readiness
   check: the first 200 from ``/api``), alternated run by run. Goal: ratio <= 1.5.
2. Time from a fatal Kubernetes event to the classified error, with the fake API server of
   ``tests/spawner/fakekube.py`` replaying doomed pods. Goal: <= 5 s (KubeSpawner waits
   out its start timeout, 300 s by default).

Usage: ``python bench/bench_launch.py [--runs 5] [--json]``
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from spawner import ClassifiedLaunchError, Launcher, LauncherConfig  # noqa: E402
from spawner.local import free_port  # noqa: E402

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _answers(url: str) -> bool:
    try:
        with OPENER.open(url, timeout=2) as response:
            return int(response.status) == 200
    except OSError:
        return False


def by_hand(workdir: Path) -> float:
    """Start ``jupyter server`` directly and wait for /api, as a person with a script would."""
    port = free_port()
    argv = [
        sys.executable, "-m", "jupyter_server", "--no-browser", "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={workdir}",
    ]  # fmt: skip
    if os.geteuid() == 0:
        argv.append("--allow-root")
    env = {**os.environ, "JUPYTER_TOKEN": secrets.token_hex(24)}
    started = time.perf_counter()
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=workdir,
        start_new_session=True,
    )  # fmt: skip
    try:
        while not _answers(f"http://127.0.0.1:{port}/api"):
            if proc.poll() is not None:
                raise RuntimeError("jupyter server exited")
            time.sleep(0.05)
        return time.perf_counter() - started
    finally:
        proc.terminate()
        proc.wait(10)


def with_launcher(launcher: Launcher, name: str) -> float:
    """Launch through the launcher (records, events, GPU discovery included)."""
    started = time.perf_counter()
    record = launcher.launch(launcher.resolve(name, overrides={"backend": "local"}))
    elapsed = time.perf_counter() - started
    launcher.stop(record)
    return elapsed


def bench_local(runs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        os.chdir(workdir)
        launcher = Launcher(workdir, LauncherConfig())
        by_hand(workdir)  # warm the file cache for both
        hand, ours = [], []
        for index in range(runs):
            hand.append(by_hand(workdir))
            ours.append(with_launcher(launcher, f"bench-{index}"))
    result = {
        "by_hand_median_s": statistics.median(hand),
        "launcher_median_s": statistics.median(ours),
        "by_hand_s": hand,
        "launcher_s": ours,
    }
    result["ratio"] = result["launcher_median_s"] / result["by_hand_median_s"]
    return result


def _fakekube() -> Any:
    spec = importlib.util.spec_from_file_location("fakekube", REPO / "tests/spawner/fakekube.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["fakekube"] = module
    spec.loader.exec_module(module)
    return module


def bench_kube(delay: float = 1.0) -> dict[str, Any]:
    """Each doomed scenario sends its fatal event ``delay`` seconds after pod creation."""
    from kubernetes import client

    from spawner.kube.backend import KubernetesBackend
    from spawner.kube.manifests import KubeSettings

    fakekube = _fakekube()
    scenarios = {
        "pending-gpus": fakekube.pending_for_gpus(delay),
        "image-pull": fakekube.image_pull_backoff(delay / 3),
        "crash-loop": fakekube.crash_loop(delay / 2),
        "unbound-claim": fakekube.unbound_claim(delay),
    }
    results = {}
    for name, scenario in scenarios.items():
        fake = fakekube.FakeKube(scenario).start()
        configuration = client.Configuration()
        configuration.host = fake.url
        backend = KubernetesBackend(client.ApiClient(configuration), KubeSettings(namespace="b"))
        with tempfile.TemporaryDirectory() as tmp:
            launcher = Launcher(Path(tmp), LauncherConfig(), {"kubernetes": backend})
            overrides = {"backend": "kubernetes", "gpus": 1, "start_timeout": 300,
                         "workspace": {"size": "1Gi", "storage_class": "fast-ssd"}}  # fmt: skip
            try:
                launcher.launch(launcher.resolve("doomed", owner="bench", overrides=overrides))
                raise RuntimeError(f"{name}: the doomed launch succeeded")
            except ClassifiedLaunchError as exc:
                results[name] = {
                    "error": type(exc).__name__,
                    "seconds_after_event": time.monotonic() - fake.fatal_at,
                }
        backend.watcher.stop()
        fake.stop()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    local = bench_local(args.runs)
    kube = bench_kube()
    if args.json:
        print(json.dumps({"local": local, "kubernetes": kube}, indent=2))
        return 0
    print(f"local launch to ready, median of {args.runs} (alternating):")
    print(f"  jupyter server by hand : {local['by_hand_median_s']:.2f} s")
    print(f"  jupyter mlk launcher   : {local['launcher_median_s']:.2f} s")
    print(f"  ratio                  : {local['ratio']:.2f}x (goal <= 1.5x)")
    print("doomed pod, fatal event -> classified error (fake API, start timeout 300 s):")
    for name, row in kube.items():
        print(f"  {name:<14} {row['error']:<22} {row['seconds_after_event']:.3f} s (goal <= 5 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
