"""Shared fixtures: the test corpus in ../shared/cases and an isolated workspace."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["pytest_jupyter.jupyter_server"]

REPO = Path(__file__).resolve().parent.parent
CASES = Path(os.environ.get("MLK_CASES", REPO.parent / "shared" / "cases"))


def case_dir(name: str) -> Path:
    path = CASES / name
    if not path.is_dir():
        pytest.skip(f"test corpus {path} is not there (set MLK_CASES to its folder)")
    return path


def expected(name: str) -> dict[str, Any]:
    return dict(json.loads((case_dir(name) / "expected.json").read_text()))


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty workspace directory that is also the current directory."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLK_HOME", raising=False)
    return tmp_path


def copy_case(name: str, dest: Path) -> Path:
    for f in case_dir(name).iterdir():
        if f.is_file():
            shutil.copy(f, dest / f.name)
    return dest
