"""GPU discovery through nvidia-smi and the choice of free GPUs."""

from __future__ import annotations

from pathlib import Path

import pytest

from spawner.errors import InsufficientGpuError
from spawner.gpus import Gpu, GpuInventory, choose_gpus, discover_gpus

TWO = GpuInventory(
    (Gpu("0", "GPU-a", "NVIDIA A100-SXM4-80GB"), Gpu("1", "GPU-b", "Tesla T4")), "test"
)


def test_discovery_reads_nvidia_smi(fake_gpus: Path) -> None:
    inventory = discover_gpus()
    assert inventory.source == "nvidia-smi"
    assert [g.index for g in inventory.gpus] == ["0", "1"]
    assert inventory.gpus[0].name == "NVIDIA A100-SXM4-80GB"
    assert inventory.gpus[0].memory_mib == 81920


def test_discovery_respects_our_own_cuda_visible_devices(
    fake_gpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert [g.index for g in discover_gpus().gpus] == ["1"]


def test_a_machine_without_gpus_has_zero_and_says_why(no_gpu_path: None) -> None:
    inventory = discover_gpus()
    assert inventory.gpus == ()
    assert "no nvidia-smi" in inventory.source
    with pytest.raises(InsufficientGpuError, match="this machine has none"):
        choose_gpus(inventory, 1, "", set())


def test_free_gpus_skip_held_ones_and_match_the_kind() -> None:
    assert [g.index for g in choose_gpus(TWO, 1, "", {"0"})] == ["1"]
    assert [g.index for g in choose_gpus(TWO, 1, "a100", set())] == ["0"]
    with pytest.raises(InsufficientGpuError, match=r"only 0 free: 2 present, 1 matching, 1 held"):
        choose_gpus(TWO, 1, "A100", {"0"})
