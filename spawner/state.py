"""Launch records in SQLite, so servers outlive the process that started them.

The database is ``<workspace>/.mlk/launches.db`` (the workspace is ``$MLK_HOME`` or the
current directory); its tables are prefixed ``launch_``. Per-launch files (the server log
and, mode 0600, its token) live in ``<workspace>/.mlk/launches/<id>/``. Tokens and
environment values are never written to the database.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from spawner.errors import ServerExistsError, ServerNotFoundError
from spawner.events import ProgressEvent

logger = logging.getLogger(__name__)

ACTIVE_STATES = ("starting", "ready")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS launch_servers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    owner TEXT NOT NULL,
    backend TEXT NOT NULL,
    state TEXT NOT NULL,
    stage TEXT NOT NULL,
    url TEXT NOT NULL DEFAULT '',
    request TEXT NOT NULL,
    gpus TEXT NOT NULL DEFAULT '[]',
    handle TEXT NOT NULL DEFAULT '{}',
    error TEXT NOT NULL DEFAULT '',
    error_code TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    ready_at REAL,
    stopped_at REAL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS launch_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    launch_id TEXT NOT NULL,
    stage TEXT NOT NULL,
    message TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS launch_events_by_launch ON launch_events (launch_id, seq);
"""


def workspace_dir() -> Path:
    """The workspace: ``$MLK_HOME`` when set, else the current directory."""
    return Path(os.environ.get("MLK_HOME") or os.getcwd())


@dataclass(frozen=True)
class LaunchRecord:
    """What the workspace remembers about one launch.

    ``handle`` is backend data needed to find the server again (pid and process start
    time locally; namespace and object names on a cluster).
    """

    id: str
    name: str
    owner: str
    backend: str
    state: str
    stage: str
    request: dict[str, Any]
    url: str = ""
    gpus: list[str] = field(default_factory=list)
    handle: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    error_code: str = ""
    created_at: float = field(default_factory=time.time)
    ready_at: float | None = None
    stopped_at: float | None = None

    @property
    def is_active(self) -> bool:
        """Whether the launch is starting or ready (holds its resources)."""
        return self.state in ACTIVE_STATES

    def to_dict(self) -> dict[str, Any]:
        """JSON data for ``jupyter mlk servers --json`` and the REST API (no token)."""
        return {
            "id": self.id,
            "name": self.name,
            "owner": self.owner,
            "backend": self.backend,
            "state": self.state,
            "stage": self.stage,
            "url": self.url,
            "gpus": self.gpus,
            "profile": self.request.get("profile", ""),
            "idle_timeout": self.request.get("idle_timeout", 0),
            "error": self.error,
            "error_code": self.error_code,
            "created_at": self.created_at,
            "ready_at": self.ready_at,
            "stopped_at": self.stopped_at,
        }


class LaunchStore:
    """Reads and writes launch records; safe across threads and processes."""

    def __init__(self, workspace: Path | None = None) -> None:
        self.workspace = workspace or workspace_dir()
        self.root = self.workspace / ".mlk"
        self.path = self.root / "launches.db"
        self.root.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(_SCHEMA)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            yield db
        finally:
            db.close()

    def run_dir(self, launch_id: str) -> Path:
        """The directory for one launch's log and token (created, mode 0700)."""
        path = self.root / "launches" / launch_id
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path

    def write_token(self, launch_id: str, token: str) -> None:
        """Keep the server token in a file only the owner can read."""
        path = self.run_dir(launch_id) / "token"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(token)

    def read_token(self, launch_id: str) -> str:
        """The server token, or an empty string when none was kept."""
        try:
            return (self.root / "launches" / launch_id / "token").read_text().strip()
        except FileNotFoundError:
            return ""

    def reserve(
        self, record: LaunchRecord, allocate: Callable[[set[str]], list[str]]
    ) -> LaunchRecord:
        """Insert a starting launch, allocating GPUs atomically against active launches.

        Args:
            record: the new launch, state ``starting``.
            allocate: given the GPUs active local launches hold, returns the GPUs for
                this one (or raises); it runs inside the write lock.

        Raises:
            ServerExistsError: an active launch already has this id.
        """
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute(
                    "SELECT state FROM launch_servers WHERE id = ?", (record.id,)
                ).fetchone()
                if row is not None and row["state"] in ACTIVE_STATES:
                    raise ServerExistsError(
                        f"server {record.name!r} of {record.owner!r} is already {row['state']}",
                        f"stop it first (jupyter mlk stop {record.name}) or pick another --name",
                    )
                held: set[str] = set()
                for other in db.execute(
                    "SELECT gpus FROM launch_servers WHERE backend = ? AND state IN (?, ?)",
                    (record.backend, *ACTIVE_STATES),
                ):
                    held.update(json.loads(other["gpus"]))
                record = replace(record, gpus=allocate(held))
                self._upsert(db, record)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return record

    def _upsert(self, db: sqlite3.Connection, record: LaunchRecord) -> None:
        db.execute(
            "INSERT OR REPLACE INTO launch_servers (id, name, owner, backend, state, stage, url,"
            " request, gpus, handle, error, error_code, created_at, ready_at, stopped_at,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.id,
                record.name,
                record.owner,
                record.backend,
                record.state,
                record.stage,
                record.url,
                json.dumps(record.request),
                json.dumps(record.gpus),
                json.dumps(record.handle),
                record.error,
                record.error_code,
                record.created_at,
                record.ready_at,
                record.stopped_at,
                time.time(),
            ),
        )

    def save(self, record: LaunchRecord) -> None:
        """Write the record as it is now."""
        with self._connect() as db:
            self._upsert(db, record)

    def add_event(self, launch_id: str, event: ProgressEvent) -> None:
        """Append one progress event (the panel shows them as live progress)."""
        with self._connect() as db:
            db.execute(
                "INSERT INTO launch_events (launch_id, stage, message, at) VALUES (?, ?, ?, ?)",
                (launch_id, event.stage.value, event.message, event.at),
            )
            db.execute(
                "UPDATE launch_servers SET stage = ?, updated_at = ? WHERE id = ?",
                (event.stage.value, time.time(), launch_id),
            )

    def events(self, launch_id: str) -> list[dict[str, Any]]:
        """The progress events of one launch, oldest first."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT stage, message, at FROM launch_events WHERE launch_id = ? ORDER BY seq",
                (launch_id,),
            ).fetchall()
        return [dict(row) for row in rows]

    def get(self, launch_id: str) -> LaunchRecord:
        """The record with this id.

        Raises:
            ServerNotFoundError: no such launch.
        """
        with self._connect() as db:
            row = db.execute("SELECT * FROM launch_servers WHERE id = ?", (launch_id,)).fetchone()
        if row is None:
            raise ServerNotFoundError(
                f"no server with id {launch_id!r}", "jupyter mlk servers lists the known ones"
            )
        return _from_row(row)

    def find(self, owner: str, name: str) -> LaunchRecord | None:
        """The most recent launch of ``owner`` called ``name``, or ``None``."""
        with self._connect() as db:
            row = db.execute(
                "SELECT * FROM launch_servers WHERE owner = ? AND name = ?"
                " ORDER BY created_at DESC LIMIT 1",
                (owner, name),
            ).fetchone()
        return None if row is None else _from_row(row)

    def list(self, include_stopped: bool = True) -> list[LaunchRecord]:
        """All launch records, newest first."""
        query = "SELECT * FROM launch_servers"
        if not include_stopped:
            query += " WHERE state IN ('starting', 'ready')"
        with self._connect() as db:
            rows = db.execute(query + " ORDER BY created_at DESC").fetchall()
        return [_from_row(row) for row in rows]


def _from_row(row: sqlite3.Row) -> LaunchRecord:
    return LaunchRecord(
        id=row["id"],
        name=row["name"],
        owner=row["owner"],
        backend=row["backend"],
        state=row["state"],
        stage=row["stage"],
        request=json.loads(row["request"]),
        url=row["url"],
        gpus=json.loads(row["gpus"]),
        handle=json.loads(row["handle"]),
        error=row["error"],
        error_code=row["error_code"],
        created_at=row["created_at"],
        ready_at=row["ready_at"],
        stopped_at=row["stopped_at"],
    )
