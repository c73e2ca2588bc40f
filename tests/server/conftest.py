"""Fixtures for the server extension: a real jupyter server with jupyter_mlk enabled."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import case_dir


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    return {"ServerApp": {"jpserver_extensions": {"jupyter_mlk": True}}}


@pytest.fixture
def iris_root(jp_root_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The server's root with case 01's notebook in it."""
    monkeypatch.delenv("MLK_HOME", raising=False)
    shutil.copy(case_dir("01-iris-pipeline") / "pipeline.ipynb", jp_root_dir / "iris.ipynb")
    return jp_root_dir
