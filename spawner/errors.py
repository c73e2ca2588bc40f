"""Classified launch errors: each says what failed and what to change.

Every class carries a short ``code`` (stable, for the panel and ``--json``) and a
``hint`` (the change that would make the launch work). They all derive from
:class:`jupyter_mlk.errors.LaunchError`, so the CLI prints them without a traceback.
"""

from __future__ import annotations

from jupyter_mlk.errors import LaunchError

__all__ = [
    "BackendUnavailableError",
    "CrashLoopError",
    "ImagePullError",
    "InsufficientGpuError",
    "LaunchError",
    "LaunchTimeoutError",
    "ProfileError",
    "ServerExistsError",
    "ServerExitedError",
    "ServerNotFoundError",
    "UnschedulableError",
    "VolumeError",
]


class ClassifiedLaunchError(LaunchError):
    """A launch failure with a known cause: ``code`` names it, ``hint`` says what to change."""

    code = "launch-failed"

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(f"{message}. {hint}" if hint else message)
        self.reason = message
        self.hint = hint

    def to_dict(self) -> dict[str, str]:
        """The error as JSON-ready data for the CLI, the REST API and the Hub."""
        return {"code": self.code, "type": type(self).__name__, "message": str(self)}


class ProfileError(ClassifiedLaunchError):
    """The request or profile is invalid: unknown profile, unknown key, bad quantity."""

    code = "bad-request"


class ServerExistsError(ClassifiedLaunchError):
    """A server with this name is already starting or running for this owner."""

    code = "exists"


class ServerNotFoundError(ClassifiedLaunchError):
    """No launch with this name is known to the workspace."""

    code = "not-found"


class BackendUnavailableError(ClassifiedLaunchError):
    """The backend cannot be used here (no kubeconfig, no API server, missing package)."""

    code = "backend-unavailable"


class InsufficientGpuError(ClassifiedLaunchError):
    """Fewer GPUs are free than requested (checked before launching, or said by the scheduler)."""

    code = "insufficient-gpu"


class UnschedulableError(ClassifiedLaunchError):
    """The scheduler cannot place the pod (CPU or memory, taints, node selector)."""

    code = "unschedulable"


class ImagePullError(ClassifiedLaunchError):
    """The container image cannot be pulled (wrong name or tag, no credentials)."""

    code = "image-pull"


class CrashLoopError(ClassifiedLaunchError):
    """The server container keeps exiting (bad command, out of memory)."""

    code = "crash-loop"


class VolumeError(ClassifiedLaunchError):
    """A volume claim cannot bind or be provisioned, or cannot be mounted."""

    code = "volume"


class ServerExitedError(ClassifiedLaunchError):
    """The server process or pod ended before it became ready."""

    code = "exited"


class LaunchTimeoutError(ClassifiedLaunchError):
    """Nothing failed but the server was not ready in time; the message names the last stage."""

    code = "timeout"
