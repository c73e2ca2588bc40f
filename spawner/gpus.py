"""Find the NVIDIA GPUs of this machine and choose free ones for a local launch.

Discovery asks ``nvidia-smi`` (found on ``PATH``), then NVML through ``pynvml`` when that
package is installed. A machine with neither has zero GPUs, and the launcher says so
instead of failing later inside CUDA. When this process already runs with
``CUDA_VISIBLE_DEVICES`` set to indices, only those GPUs are offered.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass

from spawner.errors import InsufficientGpuError

logger = logging.getLogger(__name__)

QUERY = "--query-gpu=index,uuid,name,memory.total"


@dataclass(frozen=True)
class Gpu:
    """One GPU: its ``nvidia-smi`` index (PCI bus order), UUID, model name and memory."""

    index: str
    uuid: str
    name: str
    memory_mib: int = 0


@dataclass(frozen=True)
class GpuInventory:
    """The GPUs found and where the answer came from (``nvidia-smi``, ``nvml`` or why none)."""

    gpus: tuple[Gpu, ...]
    source: str


def _from_nvidia_smi(binary: str) -> tuple[Gpu, ...]:
    out = subprocess.run(
        [binary, QUERY, "--format=csv,noheader,nounits"],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    ).stdout
    gpus = []
    for line in out.splitlines():
        fields = [part.strip() for part in line.split(",")]
        if len(fields) >= 3 and fields[0].isdigit():
            memory = int(fields[3]) if len(fields) > 3 and fields[3].isdigit() else 0
            gpus.append(Gpu(fields[0], fields[1], fields[2], memory))
    return tuple(gpus)


def _from_nvml() -> tuple[Gpu, ...]:
    import pynvml  # optional: only when the package is installed

    pynvml.nvmlInit()
    try:
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = pynvml.nvmlDeviceGetName(handle)
            uuid = pynvml.nvmlDeviceGetUUID(handle)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle).total // 2**20
            gpus.append(Gpu(str(index), str(uuid), str(name), int(memory)))
        return tuple(gpus)
    finally:
        pynvml.nvmlShutdown()


def _visible_only(gpus: tuple[Gpu, ...]) -> tuple[Gpu, ...]:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return gpus
    wanted = {part.strip() for part in visible.split(",") if part.strip()}
    return tuple(g for g in gpus if g.index in wanted or g.uuid in wanted)


def discover_gpus() -> GpuInventory:
    """Return the GPUs of this machine; an empty inventory says why there are none."""
    binary = shutil.which("nvidia-smi")
    if binary:
        try:
            return GpuInventory(_visible_only(_from_nvidia_smi(binary)), "nvidia-smi")
        except (OSError, subprocess.SubprocessError) as exc:
            logger.warning("nvidia-smi failed (%s); trying NVML", exc)
    try:
        return GpuInventory(_visible_only(_from_nvml()), "nvml")
    except ImportError:
        reason = "no nvidia-smi on PATH and no pynvml installed"
    except Exception as exc:  # NVML raises its own error types when no driver is loaded
        reason = f"NVML failed: {exc}"
    return GpuInventory((), f"no GPU found ({reason})")


def matches_kind(gpu: Gpu, kind: str) -> bool:
    """Whether a GPU is of ``kind``: a case-insensitive part of its model name.

    ``"a100"`` matches ``"NVIDIA A100-SXM4-80GB"``; spaces and dashes count the same.
    """

    def norm(text: str) -> str:
        return text.lower().replace(" ", "-")

    return norm(kind) in norm(gpu.name)


def choose_gpus(inventory: GpuInventory, count: int, kind: str, held: Iterable[str]) -> list[Gpu]:
    """Pick ``count`` free GPUs of ``kind``, lowest index first.

    Args:
        inventory: the GPUs present.
        count: how many the launch asks for.
        kind: a model-name fragment, or empty for any.
        held: indices held by other active launches.

    Raises:
        InsufficientGpuError: fewer matching free GPUs than ``count``; the message counts
            present, matching and held GPUs.
    """
    if count == 0:
        return []
    held_set = set(held)
    matching = [g for g in inventory.gpus if not kind or matches_kind(g, kind)]
    free = [g for g in matching if g.index not in held_set]
    if len(free) >= count:
        return sorted(free, key=lambda g: int(g.index))[:count]
    if not inventory.gpus:
        raise InsufficientGpuError(
            f"{count} GPU(s) requested but this machine has none: {inventory.source}",
            "launch with --gpus 0, or use --backend kubernetes to get GPUs from the cluster",
        )
    kind_text = f" of kind {kind!r}" if kind else ""
    raise InsufficientGpuError(
        f"{count} GPU(s){kind_text} requested but only {len(free)} free: "
        f"{len(inventory.gpus)} present, {len(matching)} matching, "
        f"{len(matching) - len(free)} held by other servers",
        "ask for fewer GPUs, or stop a server that holds some (jupyter mlk servers)",
    )
