"""Launcher configuration as traitlets: profiles, default backend, cluster settings.

Set in ``jupyter_mlk_config.py`` (or ``.json``) in any Jupyter config directory or in the
workspace, e.g.::

    c.LauncherConfig.profiles = [
        {"name": "gpu-1", "display_name": "1 GPU, 16 GiB", "gpus": 1, "memory": "16Gi",
         "cpu": 4, "tolerations": [{"key": "nvidia.com/gpu", "effect": "NoSchedule"}]},
    ]
    c.LauncherConfig.namespace = "kubeflow-user-example-com"
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from traitlets import Bool, Dict, Enum, Float, List, Unicode
from traitlets.config import Config, Configurable
from traitlets.config.loader import ConfigFileNotFound, JSONFileConfigLoader, PyFileConfigLoader

logger = logging.getLogger(__name__)

CONFIG_NAME = "jupyter_mlk_config"

DEFAULT_PROFILES: list[dict[str, Any]] = [
    {
        "name": "cpu",
        "display_name": "CPU only, 2 cores, 4 GiB",
        "description": "For editing and small data.",
        "cpu": 2,
        "memory": "4Gi",
        "default": True,
    },
    {
        "name": "gpu-1",
        "display_name": "1 GPU, 4 cores, 16 GiB",
        "description": "One NVIDIA GPU of any kind.",
        "cpu": 4,
        "memory": "16Gi",
        "gpus": 1,
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    },
]


class LauncherConfig(Configurable):
    """Settings of the notebook-server launcher (CLI, server extension and Hub spawner)."""

    profiles = List(
        Dict(),
        default_value=DEFAULT_PROFILES,
        help="""Named launch profiles, like KubeSpawner's profile_list. Each is a mapping
        with ``name``, ``display_name``, ``description``, optional ``default: True`` and
        any request key: image, environment, cpu, memory, gpus, gpu_kind, workspace
        (size, storage_class, existing_claim, mount_path), data_volumes (claim,
        mount_path, read_only), env, node_selector, tolerations, idle_timeout,
        start_timeout. A launch copies its profile; it never changes it.""",
    ).tag(config=True)

    default_backend = Enum(
        ["local", "kubernetes"], default_value="local", help="Backend when none is given."
    ).tag(config=True)

    namespace = Unicode(
        "", help="Kubernetes namespace for servers; empty uses the kubeconfig context's."
    ).tag(config=True)

    kube_context = Unicode("", help="kubeconfig context to use; empty uses the current.").tag(
        config=True
    )

    kube_kind = Enum(
        ["pod", "notebook"],
        default_value="pod",
        help="""Create a plain Pod and Service, or a kubeflow.org/v1 Notebook (needs the
        Kubeflow notebook controller, which then creates the pod and service).""",
    ).tag(config=True)

    gpu_resource = Unicode("nvidia.com/gpu", help="Extended resource name of GPUs.").tag(
        config=True
    )

    gpu_kind_label = Unicode(
        "nvidia.com/gpu.product",
        help="""Node label that ``gpu_kind`` must equal on a cluster (set by NVIDIA GPU
        feature discovery, e.g. NVIDIA-A100-SXM4-80GB).""",
    ).tag(config=True)

    service_account = Unicode("", help="Service account of server pods.").tag(config=True)

    check_capacity = Bool(
        True,
        help="""Before creating a pod, sum allocatable minus requested GPUs over GPU nodes
        (needs permission to list nodes and pods cluster-wide; skipped with a warning
        otherwise).""",
    ).tag(config=True)

    scale_up_grace = Float(
        0.0,
        help="""Seconds an unschedulable pod may wait for a cluster-autoscaler scale-up
        (a TriggeredScaleUp event) before the launch fails. 0 fails at once.""",
    ).tag(config=True)

    cull_interval = Float(60.0, help="Seconds between two idle-culling passes.").tag(config=True)


def load_launcher_config(workspace: Path) -> LauncherConfig:
    """Read ``jupyter_mlk_config.{py,json}`` from the Jupyter config path, then the workspace.

    Later files override earlier ones, as in every Jupyter application.
    """
    from jupyter_core.paths import jupyter_config_path

    merged = Config()
    for directory in [*reversed(jupyter_config_path()), str(workspace)]:
        for loader_class, suffix in ((JSONFileConfigLoader, ".json"), (PyFileConfigLoader, ".py")):
            path = Path(directory) / (CONFIG_NAME + suffix)
            if not path.is_file():
                continue
            try:
                merged.merge(
                    loader_class(path.name, path=str(path.parent), log=logger).load_config()
                )
            except ConfigFileNotFound:
                continue
    return LauncherConfig(config=merged)
