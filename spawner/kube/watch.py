"""One watch per namespace on the launcher's pods and on events, shared by every launch.

Two daemon threads follow ``pods`` (selected by the ``managed-by`` label) and ``events``
(all of the namespace: events carry no labels, so they are filtered here by the names each
launch subscribed to). Each thread lists, then watches from the list's resourceVersion.
When a stream ends, breaks or times out, it watches again from the last version it saw;
when the server answers 410 Gone (that version is too old), it lists again. Listing
replays current objects, so no subscriber misses a state; subscribers filter stale ones by
uid. Launches never poll the API while waiting.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
from collections.abc import Iterable
from typing import Any

logger = logging.getLogger(__name__)

WatchItem = tuple[str, str, dict[str, Any]]


class _ExpiredError(Exception):
    """The watch's resourceVersion is too old (410 Gone): list again."""


class ClusterWatcher:
    """Shared pod and event watches of one namespace, fanned out to per-launch queues.

    Args:
        api_client: a configured ``kubernetes.client.ApiClient``.
        namespace: the namespace to follow.
        label_selector: selects the launcher's pods.
        read_timeout: seconds of silence after which a stream is treated as broken.
        server_timeout: ``timeoutSeconds`` asked of the API server for each watch.
    """

    def __init__(
        self,
        api_client: Any,
        namespace: str,
        label_selector: str,
        read_timeout: float = 90.0,
        server_timeout: int = 60,
    ) -> None:
        from kubernetes import client

        self.core = client.CoreV1Api(api_client)
        self.namespace = namespace
        self.label_selector = label_selector
        self.read_timeout = read_timeout
        self.server_timeout = server_timeout
        self.reconnects = 0
        self.relists = 0
        self._lock = threading.Lock()
        self._subscribers: dict[int, tuple[frozenset[str], queue.Queue[WatchItem]]] = {}
        self._pods: dict[str, dict[str, Any]] = {}
        self._responses: dict[str, Any] = {}
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def subscribe(self, names: Iterable[str]) -> queue.Queue[WatchItem]:
        """A queue that receives ``("pod"|"event", type, object)`` about these names.

        The last known state of a subscribed pod is queued at once.
        """
        self.ensure_started()
        inbox: queue.Queue[WatchItem] = queue.Queue()
        wanted = frozenset(names)
        with self._lock:
            self._subscribers[id(inbox)] = (wanted, inbox)
            for name in wanted:
                if name in self._pods:
                    inbox.put(("pod", "SYNC", self._pods[name]))
        return inbox

    def unsubscribe(self, inbox: queue.Queue[WatchItem]) -> None:
        """Stop delivering to ``inbox``."""
        with self._lock:
            self._subscribers.pop(id(inbox), None)

    def ensure_started(self) -> None:
        """Start the two watch threads once."""
        with self._lock:
            if self._threads:
                return
            for kind in ("pods", "events"):
                thread = threading.Thread(
                    target=self._loop, args=(kind,), name=f"mlk-watch-{kind}", daemon=True
                )
                self._threads.append(thread)
                thread.start()

    def stop(self) -> None:
        """Stop both watches (unblocks their reads) and wait for the threads."""
        self._stopping.set()
        for response in list(self._responses.values()):
            with contextlib.suppress(Exception):
                getattr(response, "shutdown", response.close)()
        for thread in self._threads:
            thread.join(timeout=5)

    def _deliver(self, kind: str, event_type: str, obj: dict[str, Any]) -> None:
        if kind == "pods":
            name = obj.get("metadata", {}).get("name", "")
            with self._lock:
                if event_type == "DELETED":
                    self._pods.pop(name, None)
                else:
                    self._pods[name] = obj
            item: WatchItem = ("pod", event_type, obj)
        else:
            name = (obj.get("involvedObject") or {}).get("name", "")
            item = ("event", event_type, obj)
        with self._lock:
            targets = [inbox for wanted, inbox in self._subscribers.values() if name in wanted]
        for inbox in targets:
            inbox.put(item)

    def _call(self, kind: str, **kwargs: Any) -> Any:
        if kind == "pods":
            return self.core.list_namespaced_pod(
                self.namespace,
                label_selector=self.label_selector,
                _preload_content=False,
                **kwargs,
            )
        return self.core.list_namespaced_event(self.namespace, _preload_content=False, **kwargs)

    def _list(self, kind: str) -> str:
        body = json.loads(self._call(kind, _request_timeout=30).data)
        for obj in body.get("items") or ():
            self._deliver(kind, "SYNC", obj)
        return str(body.get("metadata", {}).get("resourceVersion", ""))

    def _watch(self, kind: str, version: str) -> str:
        from kubernetes.watch.watch import iter_resp_lines

        response = self._call(
            kind,
            watch=True,
            resource_version=version,
            allow_watch_bookmarks=True,
            timeout_seconds=self.server_timeout,
            _request_timeout=(5, self.read_timeout),
        )
        self._responses[kind] = response
        try:
            for line in iter_resp_lines(response):
                event = json.loads(line)
                obj = event.get("object") or {}
                if event.get("type") == "ERROR":
                    if obj.get("code") == 410:
                        raise _ExpiredError(obj.get("message", "too old resource version"))
                    raise RuntimeError(f"watch error {obj.get('code')}: {obj.get('message')}")
                version = str(obj.get("metadata", {}).get("resourceVersion") or version)
                if event.get("type") != "BOOKMARK":
                    self._deliver(kind, str(event.get("type")), obj)
        finally:
            self._responses.pop(kind, None)
            with contextlib.suppress(Exception):
                response.release_conn()
        return version

    def _loop(self, kind: str) -> None:
        version = ""
        backoff = 0.1
        while not self._stopping.is_set():
            try:
                if not version:
                    version = self._list(kind)
                version = self._watch(kind, version)
                backoff = 0.1
            except _ExpiredError as exc:
                logger.info("%s watch expired (%s); listing again", kind, exc)
                self.relists += 1
                version = ""
            except Exception as exc:
                if self._stopping.is_set():
                    break
                self.reconnects += 1
                logger.warning(
                    "%s watch in %s broke (%s); reconnecting in %.1fs",
                    kind,
                    self.namespace,
                    exc,
                    backoff,
                )
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 5.0)
