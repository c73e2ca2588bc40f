"""Run history in SQLite: runs, their steps, and the step cache.

One database per workspace (``<workspace>/.mlk/mlk.db``) in WAL mode, so the CLI, the
magics and the server read and write it at the same time. Every write is one short
transaction. A run whose owning process died is marked FAILED, with the reason, the next
time anything reads the store (:meth:`RunStore.reconcile`).
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from jupyter_mlk.errors import RunError, StoreError

ACTIVE_STATES = ("PENDING", "RUNNING")
# The fields of a run that the CLI's --json and the REST API show (and the OpenAPI file).
RUN_FIELDS = (
    "id",
    "notebook",
    "state",
    "backend",
    "created",
    "started",
    "finished",
    "duration",
    "params",
    "metrics",
    "error",
)
FINAL_STATES = ("SUCCEEDED", "FAILED", "CANCELLED")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    notebook TEXT NOT NULL,
    state TEXT NOT NULL,
    backend TEXT NOT NULL DEFAULT 'local',
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    params TEXT NOT NULL DEFAULT '{}',
    metrics TEXT NOT NULL DEFAULT '{}',
    error TEXT,
    pid INTEGER,
    pid_started TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    graph TEXT,
    labels TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS steps (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    position INTEGER NOT NULL,
    state TEXT NOT NULL,
    started REAL,
    finished REAL,
    cache_key TEXT,
    cached_from TEXT,
    outputs TEXT NOT NULL DEFAULT '{}',
    metrics TEXT NOT NULL DEFAULT '{}',
    outcome_values TEXT NOT NULL DEFAULT '{}',
    error TEXT,
    PRIMARY KEY (run_id, name)
);
CREATE TABLE IF NOT EXISTS cache (
    key TEXT PRIMARY KEY,
    step TEXT NOT NULL,
    run_id TEXT NOT NULL,
    outputs TEXT NOT NULL,
    metrics TEXT NOT NULL,
    outcome_values TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_created ON runs(created);
"""

_RUN_JSON = ("params", "metrics", "labels")
_STEP_JSON = ("outputs", "metrics", "outcome_values", "error")


def process_start(pid: int) -> str | None:
    """The start time of a process (from /proc), to tell a reused pid from the original."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def is_alive(pid: int, started: str | None) -> bool:
    """Whether ``pid`` runs and is the process that started at ``started`` (not a reuse)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    current = process_start(pid)
    return started is None or current is None or current == started


def new_run_id() -> str:
    """A short, time-ordered, unique run id such as ``r-20261203-170512-3fa9``."""
    return time.strftime("r-%Y%m%d-%H%M%S-", time.gmtime()) + secrets.token_hex(2)


def connect(path: Path, schema: str) -> sqlite3.Connection:
    """A connection to the workspace database (WAL, autocommit) with ``schema`` applied.

    Raises:
        StoreError: the file is not a usable SQLite database.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.executescript(schema)
    except sqlite3.DatabaseError as exc:
        raise StoreError(
            f"the workspace database {path} cannot be opened ({exc}); move it aside to start "
            "a fresh history"
        ) from exc
    return conn


class RunStore:
    """The workspace's run database."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = connect(path, _SCHEMA)

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # ---- runs ---------------------------------------------------------------------------
    def create_run(
        self,
        run_id: str,
        notebook: str,
        params: dict[str, Any],
        steps: list[str],
        *,
        backend: str = "local",
        graph: dict[str, Any] | None = None,
        labels: dict[str, Any] | None = None,
        owned: bool = True,
    ) -> None:
        """Record a PENDING run; ``owned=False`` when another process will adopt it."""
        now = time.time()
        pid = os.getpid() if owned else None
        with self.transaction() as db:
            db.execute(
                "INSERT INTO runs (id, notebook, state, backend, created, params, pid, "
                "pid_started, graph, labels) VALUES (?, ?, 'PENDING', ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    notebook,
                    backend,
                    now,
                    json.dumps(params),
                    pid,
                    process_start(pid) if pid else None,
                    json.dumps(graph) if graph else None,
                    json.dumps(labels or {}),
                ),
            )
            db.executemany(
                "INSERT INTO steps (run_id, name, position, state) VALUES (?, ?, ?, 'PENDING')",
                [(run_id, name, i) for i, name in enumerate(steps)],
            )

    def update_run(self, run_id: str, **fields: Any) -> None:
        for key in _RUN_JSON:
            if key in fields:
                fields[key] = json.dumps(fields[key])
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self.transaction() as db:
            db.execute(f"UPDATE runs SET {sets} WHERE id = ?", (*fields.values(), run_id))

    def update_step(self, run_id: str, name: str, **fields: Any) -> None:
        for key in _STEP_JSON:
            if key in fields and fields[key] is not None:
                fields[key] = json.dumps(fields[key])
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self.transaction() as db:
            db.execute(
                f"UPDATE steps SET {sets} WHERE run_id = ? AND name = ?",
                (*fields.values(), run_id, name),
            )

    def resolve_run_id(self, ref: str) -> str:
        """A full run id from an id, a unique prefix, or ``latest``."""
        if ref in ("latest", "last"):
            row = self.conn.execute("SELECT id FROM runs ORDER BY created DESC LIMIT 1").fetchone()
            if row is None:
                raise RunError("there are no runs yet in this workspace")
            return str(row["id"])
        rows = self.conn.execute(
            "SELECT id FROM runs WHERE id = ? OR id LIKE ? ORDER BY created DESC LIMIT 3",
            (ref, ref.replace("%", "") + "%"),
        ).fetchall()
        exact = [r["id"] for r in rows if r["id"] == ref]
        if exact:
            return str(exact[0])
        if len(rows) == 1:
            return str(rows[0]["id"])
        if not rows:
            raise RunError(f"no run {ref!r} in this workspace; `jupyter mlk runs` lists them")
        raise RunError(f"run {ref!r} is ambiguous: {', '.join(r['id'] for r in rows)}, ...")

    def get_run(self, ref: str) -> dict[str, Any]:
        self.reconcile()
        run_id = self.resolve_run_id(ref)
        row = self.conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        run = self._run_dict(row)
        run["steps"] = [
            self._step_dict(s)
            for s in self.conn.execute(
                "SELECT * FROM steps WHERE run_id = ? ORDER BY position", (run_id,)
            )
        ]
        return run

    def list_runs(self, limit: int = 50, notebook: str | None = None) -> list[dict[str, Any]]:
        self.reconcile()
        query = "SELECT * FROM runs"
        args: tuple[Any, ...] = ()
        if notebook:
            query += " WHERE notebook = ?"
            args = (notebook,)
        query += " ORDER BY created DESC LIMIT ?"
        return [self._run_dict(r) for r in self.conn.execute(query, (*args, limit))]

    def request_cancel(self, ref: str) -> dict[str, Any]:
        run = self.get_run(ref)
        if run["state"] in FINAL_STATES:
            return run
        self.update_run(run["id"], cancel_requested=1)
        return run

    def is_cancel_requested(self, run_id: str) -> bool:
        row = self.conn.execute(
            "SELECT cancel_requested FROM runs WHERE id = ?", (run_id,)
        ).fetchone()
        return bool(row and row["cancel_requested"])

    def reconcile(self) -> None:
        """Mark runs whose owning process is gone as FAILED, with the reason."""
        rows = self.conn.execute(
            "SELECT id, pid, pid_started FROM runs WHERE state IN ('PENDING', 'RUNNING')"
        ).fetchall()
        for row in rows:
            if row["pid"] is None or is_alive(row["pid"], row["pid_started"]):
                continue
            reason = (
                f"the process that ran it (pid {row['pid']}) exited without finishing it "
                "(killed, or the machine restarted); start the run again"
            )
            now = time.time()
            with self.transaction() as db:
                db.execute(
                    "UPDATE runs SET state = 'FAILED', error = ?, finished = ? WHERE id = ? "
                    "AND state IN ('PENDING', 'RUNNING')",
                    (reason, now, row["id"]),
                )
                db.execute(
                    "UPDATE steps SET state = 'CANCELLED', finished = COALESCE(finished, ?) "
                    "WHERE run_id = ? AND state IN ('PENDING', 'RUNNING')",
                    (now, row["id"]),
                )

    # ---- cache --------------------------------------------------------------------------
    def cache_get(self, key: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT * FROM cache WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        out = dict(row)
        for k in ("outputs", "metrics", "outcome_values"):
            out[k] = json.loads(out[k])
        return out

    def cache_put(
        self,
        key: str,
        step: str,
        run_id: str,
        outputs: dict[str, str],
        metrics: dict[str, float],
        values: dict[str, Any],
    ) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO cache (key, step, run_id, outputs, metrics, "
                "outcome_values, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    step,
                    run_id,
                    json.dumps(outputs),
                    json.dumps(metrics),
                    json.dumps(values),
                    time.time(),
                ),
            )

    # ---- rows ---------------------------------------------------------------------------
    @staticmethod
    def _run_dict(row: sqlite3.Row) -> dict[str, Any]:
        run = dict(row)
        for key in _RUN_JSON:
            run[key] = json.loads(run[key]) if run[key] else {}
        run["graph"] = json.loads(run["graph"]) if run.get("graph") else None
        run["cancel_requested"] = bool(run["cancel_requested"])
        started, finished = run["started"], run["finished"]
        run["duration"] = (finished - started) if started and finished else None
        return run

    @staticmethod
    def _step_dict(row: sqlite3.Row) -> dict[str, Any]:
        step = dict(row)
        for key in _STEP_JSON:
            step[key] = json.loads(step[key]) if step[key] else ({} if key != "error" else None)
        started, finished = step["started"], step["finished"]
        step["duration"] = (finished - started) if started and finished else None
        return step
