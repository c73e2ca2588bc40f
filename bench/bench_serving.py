"""Bench: the iris model behind our local server vs KServe's Python ModelServer.

Both servers get the same model file (case 01's forest: 50 trees, depth 3) and the same
requests (case 11's V1 body, three rows) from one loopback load generator (aiohttp) at
the same concurrency, one after the other. Reports requests/s, p50/p99 latency and errors,
then 10,000 requests at concurrency 32 against our server.

KServe is run from its own virtual environment (it pins packages that clash with ours)::

    python -m venv /tmp/kservevenv && /tmp/kservevenv/bin/pip install kserve scikit-learn
    python bench/bench_serving.py --kserve-python /tmp/kservevenv/bin/python

Without ``--kserve-python`` (or when it does not exist) only our server is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BODY = {"instances": [[5.0, 3.4, 1.5, 0.2], [5.9, 2.9, 4.3, 1.3], [6.9, 3.1, 5.6, 2.2]]}
EXPECTED = [0, 1, 2]

KSERVE_MODEL = """
import sys, joblib, numpy as np
from kserve import Model, ModelServer

class Iris(Model):
    def __init__(self, name, path):
        super().__init__(name)
        self.model = joblib.load(path)
        self.ready = True

    def predict(self, payload, headers=None, response_headers=None):
        rows = np.asarray(payload["instances"], dtype=float)
        return {"predictions": self.model.predict(rows).tolist()}

if __name__ == "__main__":
    ModelServer(http_port=int(sys.argv[2]), grpc_port=int(sys.argv[3]), workers=1,
                enable_grpc=False).start([Iris("iris", sys.argv[1])])
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def train(path: Path) -> None:
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import train_test_split

    x, y = load_iris(return_X_y=True)
    x_train, _, y_train, _ = train_test_split(x, y, test_size=0.3, random_state=7, stratify=y)
    model = RandomForestClassifier(n_estimators=50, max_depth=3, random_state=0)
    joblib.dump(model.fit(x_train, y_train), path)


async def load(url: str, total: int, concurrency: int) -> dict[str, Any]:
    import aiohttp

    latencies: list[float] = []
    errors: dict[str, int] = {}
    data = json.dumps(BODY).encode()
    remaining = total
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                t0 = time.perf_counter()
                try:
                    async with session.post(
                        url, data=data, headers={"Content-Type": "application/json"}
                    ) as r:
                        body = await r.read()
                        ok = r.status == 200 and json.loads(body)["predictions"] == EXPECTED
                        if not ok:
                            key = f"status {r.status}"
                            errors[key] = errors.get(key, 0) + 1
                except Exception as exc:  # counted, reported
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                latencies.append(time.perf_counter() - t0)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": total,
        "concurrency": concurrency,
        "seconds": round(elapsed, 2),
        "rps": round(total / elapsed, 1),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2),
        "errors": errors,
    }


def wait_ready(url: str, timeout: float = 60) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not become ready")


def start_ours(workdir: Path, model: Path) -> tuple[str, Any]:
    from jupyter_mlk.serving import engine
    from jupyter_mlk.store.workspace import Workspace

    ws = Workspace(workdir)
    engine.deploy_model(ws, str(model), "iris")
    server = engine.running_server(ws)
    assert server is not None
    return f"{server['url']}/v1/models/iris:predict", ws


def start_kserve(python: str, workdir: Path, model: Path) -> tuple[str, subprocess.Popen[bytes]]:
    script = workdir / "kserve_iris.py"
    script.write_text(KSERVE_MODEL)
    port = free_port()
    with open(workdir / "kserve.log", "wb") as log:
        proc = subprocess.Popen(
            [python, str(script), str(model), str(port), str(free_port())],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    wait_ready(f"http://127.0.0.1:{port}/v1/models/iris")
    return f"http://127.0.0.1:{port}/v1/models/iris:predict", proc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kserve-python", default="/tmp/kservevenv/bin/python")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--long", type=int, default=10_000)
    args = parser.parse_args()
    results: dict[str, Any] = {"cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="mlk-bench-") as tmp:
        workdir = Path(tmp)
        model = workdir / "model.joblib"
        train(model)
        ours_url, ws = start_ours(workdir, model)
        try:
            asyncio.run(load(ours_url, 200, args.concurrency))  # warm up
            kserve_proc = None
            if Path(args.kserve_python).exists():
                kserve_url, kserve_proc = start_kserve(args.kserve_python, workdir, model)
                asyncio.run(load(kserve_url, 200, args.concurrency))
                results["kserve"] = asyncio.run(load(kserve_url, args.requests, args.concurrency))
                kserve_proc.terminate()
                kserve_proc.wait(30)
            results["ours"] = asyncio.run(load(ours_url, args.requests, args.concurrency))
            if "kserve" in results:
                results["rps_ratio"] = round(results["ours"]["rps"] / results["kserve"]["rps"], 2)
            results["ours_long"] = asyncio.run(load(ours_url, args.long, 32))
        finally:
            from jupyter_mlk.serving import engine

            engine.stop_server(ws)
            ws.close()
    print(json.dumps(results, indent=2))
    return 0 if not results["ours_long"]["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
