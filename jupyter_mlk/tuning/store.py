"""Sweeps and their trials in the workspace's run history (``.mlk/mlk.db``)."""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

from jupyter_mlk.store.db import RunStore, process_start
from jupyter_mlk.tuning.spec import SweepError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sweeps (
    id TEXT PRIMARY KEY,
    notebook TEXT NOT NULL,
    spec TEXT NOT NULL,
    base_params TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    reason TEXT,
    best TEXT,
    pid INTEGER,
    pid_started TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS sweep_trials (
    sweep_id TEXT NOT NULL REFERENCES sweeps(id) ON DELETE CASCADE,
    number INTEGER NOT NULL,
    run_id TEXT,
    params TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL,
    objective REAL,
    error TEXT,
    started REAL,
    finished REAL,
    PRIMARY KEY (sweep_id, number)
);
"""


def new_sweep_id() -> str:
    """A short, time-ordered sweep id such as ``s-20261203-170512-3fa9``."""
    return time.strftime("s-%Y%m%d-%H%M%S-", time.gmtime()) + secrets.token_hex(2)


class SweepStore:
    """Sweep rows in the workspace database (one connection per instance: one per thread)."""

    def __init__(self, workspace_root: Path) -> None:
        self.runs = RunStore(workspace_root / ".mlk" / "mlk.db")
        self.conn = self.runs.conn
        self.conn.executescript(_SCHEMA)

    def close(self) -> None:
        self.runs.close()

    def create_sweep(
        self,
        sweep_id: str,
        notebook: str,
        spec: dict[str, Any],
        base_params: dict[str, str],
        owned: bool = True,
    ) -> None:
        """Record a PENDING sweep; ``owned=False`` when another process will adopt it."""
        pid = os.getpid() if owned else None
        with self.runs.transaction() as db:
            db.execute(
                "INSERT INTO sweeps (id, notebook, spec, base_params, state, created, pid, "
                "pid_started) VALUES (?, ?, ?, ?, 'PENDING', ?, ?, ?)",
                (
                    sweep_id,
                    notebook,
                    json.dumps(spec),
                    json.dumps(base_params),
                    time.time(),
                    pid,
                    process_start(pid) if pid else None,
                ),
            )

    def update_sweep(self, sweep_id: str, **fields: Any) -> None:
        if "best" in fields:
            fields["best"] = json.dumps(fields["best"])
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self.runs.transaction() as db:
            db.execute(f"UPDATE sweeps SET {sets} WHERE id = ?", (*fields.values(), sweep_id))

    def adopt(self, sweep_id: str) -> None:
        self.update_sweep(
            sweep_id,
            pid=os.getpid(),
            pid_started=process_start(os.getpid()),
            cancel_requested=0,
            state="RUNNING",
            finished=None,
        )

    def start_trial(self, sweep_id: str, number: int, run_id: str, params: dict[str, Any]) -> None:
        with self.runs.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO sweep_trials (sweep_id, number, run_id, params, state, "
                "started) VALUES (?, ?, ?, ?, 'RUNNING', ?)",
                (sweep_id, number, run_id, json.dumps(params), time.time()),
            )

    def finish_trial(
        self, sweep_id: str, number: int, state: str, objective: float | None, error: str | None
    ) -> None:
        with self.runs.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO sweep_trials (sweep_id, number, state) VALUES (?, ?, ?)",
                (sweep_id, number, state),
            )
            db.execute(
                "UPDATE sweep_trials SET state = ?, objective = ?, error = ?, finished = ? "
                "WHERE sweep_id = ? AND number = ?",
                (state, objective, error, time.time(), sweep_id, number),
            )

    def trials(self, sweep_id: str) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT * FROM sweep_trials WHERE sweep_id = ? ORDER BY number", (sweep_id,)
        ).fetchall()
        out = []
        for row in rows:
            trial = dict(row)
            trial["params"] = json.loads(trial["params"] or "{}")
            out.append(trial)
        return out

    def is_cancel_requested(self, sweep_id: str) -> bool:
        row = self.conn.execute(
            "SELECT cancel_requested FROM sweeps WHERE id = ?", (sweep_id,)
        ).fetchone()
        return bool(row and row["cancel_requested"])

    def resolve(self, ref: str) -> str:
        if ref in ("latest", "last"):
            row = self.conn.execute(
                "SELECT id FROM sweeps ORDER BY created DESC LIMIT 1"
            ).fetchone()
            if row is None:
                raise SweepError("there are no sweeps yet in this workspace")
            return str(row["id"])
        rows = self.conn.execute(
            "SELECT id FROM sweeps WHERE id = ? OR id LIKE ? LIMIT 3", (ref, ref + "%")
        ).fetchall()
        if len(rows) == 1 or any(r["id"] == ref for r in rows):
            return str(ref if any(r["id"] == ref for r in rows) else rows[0]["id"])
        if not rows:
            raise SweepError(
                f"no sweep {ref!r} in this workspace; `jupyter mlk sweeps` lists them"
            )
        raise SweepError(f"sweep {ref!r} is ambiguous")

    def reconcile(self) -> None:
        """A sweep whose process died is FAILED, with how to resume it."""
        from jupyter_mlk.store.db import is_alive

        rows = self.conn.execute(
            "SELECT id, pid, pid_started FROM sweeps WHERE state IN ('PENDING', 'RUNNING')"
        ).fetchall()
        for row in rows:
            if row["pid"] is None or is_alive(row["pid"], row["pid_started"]):
                continue
            self.update_sweep(
                row["id"],
                state="FAILED",
                finished=time.time(),
                reason=f"the process running it (pid {row['pid']}) exited; resume it with "
                f"jupyter mlk sweep --resume {row['id']}",
            )
            with self.runs.transaction() as db:
                db.execute(
                    "UPDATE sweep_trials SET state = 'CANCELLED', error = 'interrupted' "
                    "WHERE sweep_id = ? AND state = 'RUNNING'",
                    (row["id"],),
                )

    def get_sweep(self, ref: str) -> dict[str, Any]:
        self.reconcile()
        sweep_id = self.resolve(ref)
        row = self.conn.execute("SELECT * FROM sweeps WHERE id = ?", (sweep_id,)).fetchone()
        sweep = self._sweep_dict(row)
        sweep["trials"] = self.trials(sweep_id)
        return sweep

    def list_sweeps(self, limit: int = 30) -> list[dict[str, Any]]:
        self.reconcile()
        rows = self.conn.execute(
            "SELECT * FROM sweeps ORDER BY created DESC LIMIT ?", (limit,)
        ).fetchall()
        return [self._sweep_dict(r) for r in rows]

    @staticmethod
    def _sweep_dict(row: Any) -> dict[str, Any]:
        sweep = dict(row)
        sweep["spec"] = json.loads(sweep["spec"])
        sweep["base_params"] = json.loads(sweep["base_params"])
        sweep["best"] = json.loads(sweep["best"]) if sweep["best"] else None
        sweep["cancel_requested"] = bool(sweep["cancel_requested"])
        return sweep


def cancel_sweep(store: SweepStore, ref: str, wait: float = 20.0) -> dict[str, Any]:
    """Stop a sweep wherever it runs: its process stops every trial and leaves none behind.

    A sweep no process has adopted yet (recorded by the server, not started) ends here.
    """
    import contextlib
    import signal

    sweep = store.get_sweep(ref)
    if sweep["state"] not in ("PENDING", "RUNNING"):
        return sweep
    store.update_sweep(sweep["id"], cancel_requested=1)
    if not sweep["pid"]:
        store.update_sweep(
            sweep["id"],
            state="CANCELLED",
            finished=time.time(),
            reason="cancelled before it started",
        )
        return store.get_sweep(sweep["id"])
    if sweep["pid"] != os.getpid():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(sweep["pid"], signal.SIGTERM)
    deadline = time.time() + wait
    while time.time() < deadline:
        if store.get_sweep(sweep["id"])["state"] not in ("PENDING", "RUNNING"):
            break
        time.sleep(0.2)
    return store.get_sweep(sweep["id"])
