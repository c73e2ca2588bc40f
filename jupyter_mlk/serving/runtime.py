"""Loaded versions, their adaptive batching, and the routing table with its canary split.

Requests that arrive while a version is predicting are queued and sent to the model
together as one batch when it is free, so a model whose cost is mostly per call
(a random forest costs about the same for 1 row as for 32) serves many concurrent
requests at the cost of few calls. No request ever waits for others to arrive: an idle
version predicts at once.

A request picks its version when it starts and keeps that object to the end; promote,
rollback and new versions swap the routing table atomically, so in-flight requests finish
on the version they started on, even after it was retired.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from jupyter_mlk.serving.formats import ServedModel
from jupyter_mlk.serving.protocol import ModelInput, RequestError

log = logging.getLogger(__name__)

MAX_BATCH_ROWS = 1024
# Exceptions that a model raises for input it cannot take: the caller's to fix (400).
_INPUT_ERRORS = (ValueError, TypeError, KeyError, IndexError)


class PredictError(Exception):
    """The model itself failed on an input it should take (a 500)."""


@dataclass
class _Pending:
    item: ModelInput
    future: asyncio.Future[Any]


class LoadedVersion:
    """One loaded version of a deployment, predicting through its own queue."""

    def __init__(
        self, deployment: str, version: int, model: ServedModel, executor: Executor
    ) -> None:
        self.deployment = deployment
        self.version = version
        self.model = model
        self._executor = executor
        self._pending: list[_Pending] = []
        self._draining = False
        self._drainer: asyncio.Task[None] | None = None
        self.in_flight = 0

    async def predict(self, item: ModelInput) -> Any:
        """Predictions for one request's rows.

        Raises:
            RequestError: the model rejected the input (400).
            PredictError: the model failed for another reason (500).
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append(_Pending(item, future))
        self.in_flight += 1
        if not self._draining:
            self._draining = True
            self._drainer = loop.create_task(self._drain())
        try:
            return await future
        finally:
            self.in_flight -= 1

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                batch: list[_Pending] = []
                rows = 0
                while self._pending and (not batch or rows < MAX_BATCH_ROWS):
                    batch.append(self._pending.pop(0))
                    rows += batch[-1].item.rows
                for group in _groups(batch):
                    await loop.run_in_executor(self._executor, self._run_group, loop, group)
        finally:
            self._draining = False

    def _run_group(self, loop: asyncio.AbstractEventLoop, group: list[_Pending]) -> None:
        """Predict a group in a worker thread; resolve each request's future."""
        if len(group) > 1:
            try:
                out = self.model.predict(_concat([p.item.data for p in group]))
                parts = _split(out, [p.item.rows for p in group])
            except Exception:  # one bad input spoils a batch: retry each on its own
                parts = None
            if parts is not None:
                for p, part in zip(group, parts, strict=True):
                    loop.call_soon_threadsafe(_resolve, p.future, part, None)
                return
        for p in group:
            try:
                result, error = self.model.predict(p.item.data), None
                if len(result) != p.item.rows:
                    raise PredictError(
                        f"model {self.deployment!r} returned {len(result)} predictions for "
                        f"{p.item.rows} rows"
                    )
            except Exception as exc:
                result, error = None, self._classify(exc)
            loop.call_soon_threadsafe(_resolve, p.future, result, error)

    def _classify(self, exc: Exception) -> Exception:
        if isinstance(exc, (RequestError, PredictError)):
            return exc
        if isinstance(exc, _INPUT_ERRORS):
            return RequestError(
                f"model {self.deployment!r} rejected the input: {exc}. "
                f"Expected {_expected(self.model)}"
            )
        log.error(
            "model %s v%s failed: %s: %s", self.deployment, self.version, type(exc).__name__, exc
        )
        return PredictError(f"model {self.deployment!r} failed: {type(exc).__name__}: {exc}")


def _expected(model: ServedModel) -> str:
    if model.feature_names:
        return "records with the fields " + ", ".join(model.feature_names)
    if model.n_features:
        return f"rows of {model.n_features} numbers"
    return "rows of the model's features"


def _resolve(future: asyncio.Future[Any], result: Any, error: Exception | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _groups(batch: list[_Pending]) -> list[list[_Pending]]:
    by_key: dict[tuple[Any, ...], list[_Pending]] = {}
    for p in batch:
        by_key.setdefault(p.item.key, []).append(p)
    return list(by_key.values())


def _concat(parts: list[Any]) -> Any:
    import numpy as np

    if hasattr(parts[0], "iloc"):
        import pandas as pd

        return pd.concat(parts, ignore_index=True)
    return np.concatenate(parts)


def _split(out: Any, sizes: list[int]) -> list[Any] | None:
    import numpy as np

    array = np.asarray(out)
    if array.ndim == 0 or len(array) != sum(sizes):
        return None
    return np.split(array, np.cumsum(sizes)[:-1])


@dataclass
class Route:
    """Where one deployment's requests go: the stable version and an optional canary.

    The split is deterministic: after n requests the canary has had exactly
    ``floor(n * percent / 100)`` of them, so a measured share is never off by chance.
    """

    stable: LoadedVersion
    canary: LoadedVersion | None = None
    percent: int = 0
    _count: int = field(default=0, repr=False)

    def pick(self) -> LoadedVersion:
        if self.canary is None or self.percent <= 0:
            return self.stable
        n = self._count = self._count + 1
        if (n * self.percent) // 100 != ((n - 1) * self.percent) // 100:
            return self.canary
        return self.stable

    def versions(self) -> list[LoadedVersion]:
        return [self.stable] + ([self.canary] if self.canary is not None else [])
