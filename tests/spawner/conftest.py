"""Fixtures of the launcher tests: a workspace, local launchers, fake GPUs, a fake cluster."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from spawner import Launcher, LauncherConfig
from spawner.state import ACTIVE_STATES

FAKE_SMI = """#!/bin/sh
# A stand-in for nvidia-smi: answers the launcher's query with two A100s.
case "$*" in
  *--query-gpu=index,uuid,name,memory.total*)
    echo "0, GPU-0b1c7e7a-aaaa-4c1e-9c6b-000000000000, NVIDIA A100-SXM4-80GB, 81920"
    echo "1, GPU-0b1c7e7a-bbbb-4c1e-9c6b-111111111111, NVIDIA A100-SXM4-80GB, 81920"
    ;;
  *) echo "fake nvidia-smi: unexpected arguments $*" >&2; exit 2 ;;
esac
"""


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty workspace that ``$MLK_HOME`` points to."""
    root = tmp_path / "ws"
    root.mkdir()
    monkeypatch.setenv("MLK_HOME", str(root))
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def no_gpu_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PATH without nvidia-smi (as on this CI machine), whatever the host has."""
    bin_dir = Path(os.__file__).parent  # any directory without nvidia-smi
    venv_bin = Path(os.sys.executable).parent
    monkeypatch.setenv("PATH", f"{venv_bin}:/usr/bin:/bin")
    assert not (bin_dir / "nvidia-smi").exists()


@pytest.fixture
def fake_gpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put a fake ``nvidia-smi`` reporting two A100 GPUs first on PATH."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    script = bin_dir / "nvidia-smi"
    script.write_text(FAKE_SMI)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return script


@pytest.fixture
def launcher(workspace: Path) -> Iterator[Launcher]:
    """A launcher on the workspace; every server still active at the end is stopped."""
    instance = Launcher(workspace, LauncherConfig())
    yield instance
    for record in instance.store.list():
        if record.state in ACTIVE_STATES:
            instance.stop(record)
