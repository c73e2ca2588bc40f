"""The contract every launcher backend implements (local processes, Kubernetes pods).

The :class:`~spawner.launcher.Launcher` owns records, tokens and events; a backend only
turns a resolved request into a running server, says whether it still runs, and stops it.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any

from spawner.events import EventSink
from spawner.request import LaunchRequest
from spawner.state import LaunchRecord

HandleSink = Callable[[dict[str, Any]], None]


class Backend(abc.ABC):
    """Where notebook servers run. Methods are called from one thread per launch."""

    name: str = ""

    @abc.abstractmethod
    def allocate(self, request: LaunchRequest, held: set[str]) -> list[str]:
        """Check capacity before anything starts and return the GPUs given to the launch.

        Called inside the store's write lock, so two launches never take the same GPU.
        ``held`` are the GPUs of this backend's other active launches.

        Raises:
            InsufficientGpuError: not enough free GPUs.
        """

    @abc.abstractmethod
    def run(
        self,
        record: LaunchRecord,
        request: LaunchRequest,
        token: str,
        emit: EventSink,
        save_handle: HandleSink,
    ) -> str:
        """Start the server and return its URL once it answers HTTP.

        ``save_handle`` must be called as soon as the server can be found again (pid,
        object names), before waiting, so a crash of the caller never loses a server.

        Raises:
            ClassifiedLaunchError: a classified cause (the launcher then calls :meth:`stop`).
        """

    @abc.abstractmethod
    def is_alive(self, record: LaunchRecord) -> bool:
        """Whether the server of an active record still exists."""

    @abc.abstractmethod
    def stop(self, record: LaunchRecord, delete_volume: bool = False) -> None:
        """Stop the server and free what it holds; idempotent.

        ``delete_volume`` also deletes the workspace volume, and only one this launch
        created for its owner.
        """
