"""The S3 artifact store against a real S3-compatible server (moto's server mode)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from jupyter_mlk.cli import main
from jupyter_mlk.store.s3 import S3Store
from tests.nbutil import write_notebook

moto_server = pytest.importorskip("moto.server")
pytestmark = pytest.mark.slow


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any]]:
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "MLK_S3_BUCKET": "mlk",
        "MLK_S3_PREFIX": "team",
        "MLK_S3_ENDPOINT_URL": url,
    }.items():
        monkeypatch.setenv(key, value)
    client = boto3.client("s3", endpoint_url=url, region_name="us-east-1")
    client.create_bucket(Bucket="mlk")
    yield server, client
    server.stop()


def keys(client: Any) -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket="mlk")
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


NOTEBOOK = [
    (["imports"], "import numpy as np"),
    (["parameters"], "n = 3"),
    (["step:make"], "big = np.arange(6_000_000, dtype=np.float32)\nsmall = [n] * n"),
    (["step:use"], "print('RESULT', float(big.sum()), sum(small))"),
]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = main(["run", *argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_runs_upload_their_values_and_reuse_them_across_workspaces(
    s3: tuple[Any, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, client = s3
    first, second = tmp_path / "one", tmp_path / "two"
    for ws in (first, second):
        ws.mkdir()
        write_notebook(ws / "nb.ipynb", NOTEBOOK)
    monkeypatch.chdir(first)
    code, one = run(capsys, "nb.ipynb")
    assert code == 0, one
    uploaded = keys(client)
    digests = set(one["steps"]["make"]["outputs"].values())
    for digest in digests:
        assert f"team/objects/{digest}/bundle.json" in uploaded
    big = [k for k in uploaded if k.endswith(".npy")]
    assert big, "the 24 MB array is a side file (uploaded in parts)"
    head = client.head_object(Bucket="mlk", Key=big[0])
    assert "-" in head["ETag"], "a multipart upload has a composite ETag"
    before = {k: client.head_object(Bucket="mlk", Key=k)["LastModified"] for k in uploaded}

    monkeypatch.chdir(second)
    code, two = run(capsys, "nb.ipynb", "--no-cache")
    assert code == 0
    assert set(two["steps"]["make"]["outputs"].values()) == digests
    after = {k: client.head_object(Bucket="mlk", Key=k)["LastModified"] for k in uploaded}
    assert after == before, "content-addressed: the same bundles are not uploaded again"


def test_a_bundle_without_its_marker_is_never_read_as_complete(
    s3: tuple[Any, Any], tmp_path: Path
) -> None:
    _, client = s3
    store = S3Store("mlk", "team", endpoint_url=client.meta.endpoint_url)
    client.put_object(Bucket="mlk", Key="team/objects/" + "a" * 64 + "/values.pkl", Body=b"x")
    assert not store.has("a" * 64)
    with pytest.raises(Exception, match="never finished"):
        store.download("a" * 64, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_server_that_goes_away_fails_the_step_clearly(
    s3: tuple[Any, Any], workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server, _ = s3
    write_notebook(
        workspace / "nb.ipynb",
        [
            (["step:make"], "import time\ntime.sleep(1.0)\nvalue = list(range(10))"),
            (["step:use"], "print(value)"),
        ],
    )
    import threading

    threading.Timer(0.5, server.stop).start()
    code, run_ = run(capsys, "nb.ipynb")
    assert code == 1
    make = run_["steps"]["make"]
    assert make["state"] == "FAILED" and make["error"]["ename"] == "ValueStoreError"
    assert (
        "could not" in make["error"]["evalue"]
        and "s3://mlk/team/objects" in make["error"]["evalue"]
    )
    assert run_["steps"]["use"]["state"] == "CANCELLED"
    assert "testing" not in json.dumps(run_), "no credential in the run's record"
