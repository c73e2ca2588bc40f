"""Serving fixtures: small models, the case-01 run, an in-process server, moto's S3."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jupyter_mlk.store.workspace import Workspace
from tests.conftest import case_dir

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerThread:
    """The real inference server, run in a thread of the test process.

    It registers itself as the workspace's server (this process's pid), so the engine's
    verbs (deploy, promote...) talk to it exactly as they talk to a detached server.
    """

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.loop = asyncio.new_event_loop()
        self.stop_event: asyncio.Event | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.started = threading.Event()

    def _run(self) -> None:
        from jupyter_mlk.serving.server import serve_until

        asyncio.set_event_loop(self.loop)

        async def main() -> None:
            self.stop_event = asyncio.Event()
            self.loop.call_soon(self.started.set)
            await serve_until(self.ws, "127.0.0.1", None, stop=self.stop_event)

        self.loop.run_until_complete(main())
        self.loop.close()

    def start(self) -> ServerThread:
        from jupyter_mlk.serving.engine import running_server

        self.thread.start()
        self.started.wait(10)
        for _ in range(200):
            row = running_server(self.ws)
            if row is not None:
                self.url = str(row["url"])
                return self
            threading.Event().wait(0.02)
        raise RuntimeError("the in-process server did not start")

    def stop(self) -> None:
        if self.stop_event is not None:
            self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(15)


@pytest.fixture
def ws(workspace: Path) -> Iterator[Workspace]:
    w = Workspace(workspace)
    yield w
    w.close()


@pytest.fixture
def server(ws: Workspace) -> Iterator[ServerThread]:
    srv = ServerThread(ws).start()
    yield srv
    srv.stop()


def iris_model(**kw: Any) -> Any:
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier

    x, y = load_iris(return_X_y=True)
    return RandomForestClassifier(n_estimators=10, max_depth=3, random_state=0, **kw).fit(x, y)


@pytest.fixture(scope="session")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Model files of several kinds, written once."""
    import joblib
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    d = tmp_path_factory.mktemp("models")
    files = {"iris": d / "iris.joblib", "iris_v2": d / "iris2.joblib"}
    joblib.dump(iris_model(), files["iris"])
    from sklearn.datasets import load_iris
    from sklearn.tree import DecisionTreeClassifier

    x, y = load_iris(return_X_y=True)
    joblib.dump(DecisionTreeClassifier(max_depth=1, random_state=0).fit(x, y), files["iris_v2"])
    frame = pd.DataFrame(
        {
            "city": ["Zürich", "Genève", "Zürich", "Köln", "Genève", "Köln"] * 5,
            "size": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0] * 5,
        }
    )
    labels = ["petit", "grand", "größer", "petit", "grand", "größer"] * 5
    pipe = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [("cat", OneHotEncoder(), ["city"]), ("num", StandardScaler(), ["size"])]
                ),
            ),
            ("clf", LogisticRegression(max_iter=500)),
        ]
    ).fit(frame, labels)
    files["frame"] = d / "frame.pkl"
    joblib.dump(pipe, files["frame"], compress=3)
    return files


@pytest.fixture(scope="session")
def iris_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace holding one run of case 01 (its model is the one case 11 is about)."""
    root = tmp_path_factory.mktemp("case01")
    nb = case_dir("01-iris-pipeline") / "pipeline.ipynb"
    (root / "pipeline.ipynb").write_bytes(nb.read_bytes())
    env = dict(os.environ, MLK_HOME=str(root))
    done = subprocess.run(
        [sys.executable, "-m", "jupyter_mlk.cli", "run", "pipeline.ipynb", "--json"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["state"] == "SUCCEEDED"
    return root


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """moto's S3 server on loopback; yields its URL (credentials are fake)."""
    pytest.importorskip("moto.server", reason="moto[server] is not installed")
    from moto.server import ThreadedMotoServer

    port = free_port()
    srv = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    srv.start()
    yield f"http://127.0.0.1:{port}"
    srv.stop()


@pytest.fixture
def s3_env(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("MLK_S3_ENDPOINT_URL", s3_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret-value")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return s3_server
