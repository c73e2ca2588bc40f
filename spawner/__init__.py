"""The launcher of notebook servers: local processes or Kubernetes pods, and a Hub Spawner.

Importing this package loads no ML library and no Kubernetes client; the Kubernetes
backend (``spawner.kube``) and the JupyterHub spawner (``spawner.hub``) load on use.

Typical use::

    launcher = Launcher()
    request = launcher.resolve("analysis", profile="gpu-1")
    record = launcher.launch(request, on_event=print)
    print(record.url, launcher.token(record))
    launcher.stop(record)
"""

from __future__ import annotations

from spawner.config import LauncherConfig
from spawner.errors import (
    ClassifiedLaunchError,
    CrashLoopError,
    ImagePullError,
    InsufficientGpuError,
    LaunchError,
    LaunchTimeoutError,
    ProfileError,
    ServerExistsError,
    ServerExitedError,
    ServerNotFoundError,
    UnschedulableError,
    VolumeError,
)
from spawner.events import ProgressEvent, Stage
from spawner.launcher import IdleCuller, Launcher, launch_id
from spawner.request import LaunchRequest, resolve_request
from spawner.state import LaunchRecord

__all__ = [
    "ClassifiedLaunchError",
    "CrashLoopError",
    "IdleCuller",
    "ImagePullError",
    "InsufficientGpuError",
    "LaunchError",
    "LaunchRecord",
    "LaunchRequest",
    "LaunchTimeoutError",
    "Launcher",
    "LauncherConfig",
    "ProfileError",
    "ProgressEvent",
    "ServerExistsError",
    "ServerExitedError",
    "ServerNotFoundError",
    "Stage",
    "UnschedulableError",
    "VolumeError",
    "launch_id",
    "resolve_request",
]
