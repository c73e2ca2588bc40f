"""Deployments through the REST API: deploy a run's model, predict, canary, undeploy."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jupyter_mlk.cli import main
from tests.server.test_handlers import check_op, fetch

pytestmark = pytest.mark.slow


@pytest.fixture
def trained(
    iris_root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[str]:
    monkeypatch.chdir(iris_root)
    assert main(["run", "iris.ipynb", "--json"]) == 0
    run_id = json.loads(capsys.readouterr().out)["id"]
    yield run_id
    from jupyter_mlk.serving import stop_server
    from jupyter_mlk.store.workspace import Workspace

    stop_server(Workspace(iris_root))


async def test_deploy_predict_canary_and_undeploy(jp_fetch: Any, trained: str) -> None:
    code, body = await fetch(
        jp_fetch,
        "deployments",
        method="POST",
        body={"model": f"{trained}:train/model", "name": "iris"},
    )
    assert code == 201, body
    code, listed = await fetch(jp_fetch, "deployments")
    check_op(listed, "/deployments", "get", "200")
    dep = listed["deployments"][0]
    assert dep["name"] == "iris" and dep["status"] == "RUNNING"
    assert dep["versions"][0]["lineage"]["step"] == "train"
    code, answer = await fetch(
        jp_fetch,
        "deployments",
        "iris",
        "predict",
        method="POST",
        body={"data": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]},
    )
    assert code == 200, answer
    assert answer["predictions"] == [0, 2]
    code, body = await fetch(
        jp_fetch,
        "deployments",
        method="POST",
        body={"model": f"{trained}:train/model", "name": "iris", "canary_percent": 20},
    )
    assert code == 201, body
    code, dep = await fetch(
        jp_fetch, "deployments", "iris", "traffic", method="POST", body={"percent": 30}
    )
    assert code == 200 and [t["percent"] for t in dep["traffic"]] == [70, 30]
    code, dep = await fetch(jp_fetch, "deployments", "iris", "rollback", method="POST", body={})
    assert code == 200 and len(dep["traffic"]) == 1
    code, body = await fetch(
        jp_fetch, "deployments", "iris", "predict", method="POST", body={"data": [[1, 2, 3]]}
    )
    assert code == 400 and "feature" in body["message"]
    code, _ = await fetch(jp_fetch, "deployments", "iris", method="DELETE")
    assert code == 200
    code, body = await fetch(jp_fetch, "deployments", "iris")
    assert code == 404 and "no deployment named" in body["message"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"name": "x"}, "model"),
        ({"model": "r-nope:model", "name": "x"}, "r-nope"),
        ({"model": "a", "name": "x", "canary_percent": "ten"}, "canary_percent"),
    ],
)
async def test_bad_deploy_requests_are_4xx(
    jp_fetch: Any, iris_root: Path, body: dict[str, Any], needle: str
) -> None:
    code, answer = await fetch(jp_fetch, "deployments", method="POST", body=body)
    assert 400 <= code < 500 and needle in answer["message"]


async def test_a_model_file_outside_the_root_is_refused_and_not_copied(
    jp_fetch: Any, iris_root: Path
) -> None:
    code, body = await fetch(
        jp_fetch, "deployments", method="POST", body={"model": "/etc/passwd", "name": "x"}
    )
    assert code == 404 or code == 403, body
    code, body = await fetch(
        jp_fetch, "deployments", method="POST", body={"model": "../outside.joblib", "name": "x"}
    )
    assert code == 403 and "outside the server's root" in body["message"]
    assert not list(iris_root.glob(".mlk/serving/models/*/passwd"))
