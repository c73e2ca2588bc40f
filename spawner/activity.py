"""Read a notebook server's activity from its ``/api/status`` and decide if it is idle.

``last_activity`` in jupyter server covers kernel activity (execution, messages) and
authenticated API requests; reading ``/api/status`` itself does not count as activity, so
the culler can ask as often as it likes. An open JupyterLab tab polls the API and
therefore keeps its server alive.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass

logger = logging.getLogger(__name__)

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class ServerActivity:
    """What ``/api/status`` says: last activity (epoch seconds), kernels, connections."""

    last_activity: float
    kernels: int
    connections: int


def fetch_activity(url: str, token: str, timeout: float = 5.0) -> ServerActivity | None:
    """Ask a jupyter server for its activity; ``None`` when it cannot be reached.

    Args:
        url: the server's base URL, ending in ``/``.
        token: its token (``/api/status`` needs authentication).
        timeout: seconds to wait for the answer.
    """
    request = urllib.request.Request(
        url + "api/status", headers={"Authorization": f"token {token}"}
    )
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            body = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        logger.debug("activity of %s unknown: %s", url, exc)
        return None
    last = dt.datetime.fromisoformat(str(body["last_activity"]).replace("Z", "+00:00"))
    return ServerActivity(
        last_activity=last.timestamp(),
        kernels=int(body.get("kernels", 0)),
        connections=int(body.get("connections", 0)),
    )


def idle_seconds(activity: ServerActivity, ready_at: float, now: float) -> float:
    """Seconds since the later of the last activity and the moment the server was ready."""
    return now - max(activity.last_activity, ready_at)
