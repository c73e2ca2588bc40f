"""Launch stages and the progress events that report them.

Stages are the real steps a server goes through, in order: ``requested`` (accepted,
resources checked), ``scheduled`` (GPUs and a port assigned locally; a node chosen on a
cluster), ``pulling`` (the node pulls the image; clusters only), ``started`` (the server
process or container runs), ``ready`` (it answers HTTP). A launch ends ``ready``,
``failed`` or, later, ``stopped``.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class Stage(str, enum.Enum):
    """One step of a launch's life."""

    REQUESTED = "requested"
    SCHEDULED = "scheduled"
    PULLING = "pulling"
    STARTED = "started"
    READY = "ready"
    FAILED = "failed"
    STOPPED = "stopped"


# The numbers JupyterHub's progress bar needs: fixed per stage, never a guess of time left.
STAGE_PROGRESS = {
    Stage.REQUESTED: 10,
    Stage.SCHEDULED: 30,
    Stage.PULLING: 50,
    Stage.STARTED: 75,
    Stage.READY: 100,
    Stage.FAILED: 100,
    Stage.STOPPED: 100,
}


@dataclass(frozen=True)
class ProgressEvent:
    """One thing that happened to a launch, at a stage, with a human message."""

    stage: Stage
    message: str
    at: float = field(default_factory=time.time)
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON data: stage, message, time, JupyterHub-style progress number and detail."""
        return {
            "stage": self.stage.value,
            "message": self.message,
            "at": self.at,
            "progress": STAGE_PROGRESS[self.stage],
            "detail": self.detail,
        }


EventSink = Callable[[ProgressEvent], None]


def ignore_event(event: ProgressEvent) -> None:
    """An event sink that drops events (the default when nobody listens)."""
