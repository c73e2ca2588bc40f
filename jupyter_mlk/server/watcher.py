"""Announces run and step state changes on jupyter-server's event bus.

One periodic look at the run history (a single indexed query) serves every browser tab and
every run, whoever started it; the panel subscribes once instead of polling each run.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

EVENT_SCHEMA_ID = "https://jupyter-mlk.org/events/run-state"
EVENT_SCHEMA_PATH = Path(__file__).parent / "event_schemas" / "run-state.yaml"
SWEEP_SCHEMA_ID = "https://jupyter-mlk.org/events/sweep-state"
SWEEP_SCHEMA_PATH = Path(__file__).parent / "event_schemas" / "sweep-state.yaml"


def display_path(path: str, root: Path) -> str:
    """A notebook path relative to the server's root when it is inside it."""
    try:
        return str(Path(path).resolve().relative_to(root))
    except ValueError:
        return path


class RunWatcher:
    """Polls ``.mlk/mlk.db`` for state changes and emits one event per change."""

    def __init__(self, workspace: Path, root: Path, event_logger: Any, interval: float) -> None:
        self.db_path = workspace / ".mlk" / "mlk.db"
        self.root = root
        self.event_logger = event_logger
        self.interval = interval
        self.known: dict[tuple[str, str], str] = {}
        self.since = time.time() - 3600
        self._callback: Any = None
        self.children: dict[str, Any] = {}  # run id -> executor process started by the server

    def start(self) -> None:
        from tornado.ioloop import PeriodicCallback

        self._callback = PeriodicCallback(self.check, self.interval * 1000)
        self._callback.start()

    def stop(self) -> None:
        if self._callback is not None:
            self._callback.stop()

    def check(self) -> None:
        """Emit an event for every run or step whose state changed since the last look."""
        self._reap_children()
        if not self.db_path.exists():
            return
        try:
            conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=1)
        except sqlite3.Error:
            return
        try:
            conn.row_factory = sqlite3.Row
            now = time.time()
            runs = conn.execute(
                "SELECT id, notebook, state, started, finished FROM runs "
                "WHERE state IN ('PENDING', 'RUNNING') OR finished >= ?",
                (self.since - 5,),
            ).fetchall()
            for run in runs:
                steps = conn.execute(
                    "SELECT name, state, started, finished FROM steps WHERE run_id = ?",
                    (run["id"],),
                ).fetchall()
                for step in steps:
                    self._announce(
                        run, step["name"], step["state"], step["started"], step["finished"]
                    )
                self._announce(run, "", run["state"], run["started"], run["finished"])
            self._check_sweeps(conn)
            self.since = now
        except sqlite3.Error as exc:  # a busy or half-created database: look again later
            log.debug("run watcher: %s", exc)
        finally:
            conn.close()

    def _check_sweeps(self, conn: sqlite3.Connection) -> None:
        try:
            sweeps = conn.execute(
                "SELECT id, state FROM sweeps WHERE state IN ('PENDING', 'RUNNING') "
                "OR finished >= ?",
                (self.since - 5,),
            ).fetchall()
        except sqlite3.OperationalError:  # no sweep has been started in this workspace
            return
        for sweep in sweeps:
            trials = conn.execute(
                "SELECT number, state, objective FROM sweep_trials WHERE sweep_id = ?",
                (sweep["id"],),
            ).fetchall()
            for trial in trials:
                self._announce_sweep(
                    sweep["id"], trial["number"], trial["state"], trial["objective"]
                )
            self._announce_sweep(sweep["id"], -1, sweep["state"], None)

    def _announce_sweep(
        self, sweep_id: str, trial: int, state: str, objective: float | None
    ) -> None:
        key = (f"sweep:{sweep_id}", str(trial))
        if self.known.get(key) == state:
            return
        self.known[key] = state
        self.event_logger.emit(
            schema_id=SWEEP_SCHEMA_ID,
            data={"sweep_id": sweep_id, "trial": trial, "state": state, "objective": objective},
        )

    def _announce(
        self,
        run: sqlite3.Row,
        step: str,
        state: str,
        started: float | None,
        finished: float | None,
    ) -> None:
        key = (run["id"], step)
        if self.known.get(key) == state:
            return
        self.known[key] = state
        duration = (finished - started) if started and finished else None
        self.event_logger.emit(
            schema_id=EVENT_SCHEMA_ID,
            data={
                "run_id": run["id"],
                "notebook": display_path(run["notebook"], self.root),
                "step": step,
                "state": state,
                "duration": duration,
            },
        )

    def adopt_child(self, run_id: str, proc: Any) -> None:
        """Watch an executor the server started; a thread waits for it, so none is a zombie."""
        import threading

        self.children[run_id] = proc
        threading.Thread(target=proc.wait, name=f"mlk-wait-{run_id}", daemon=True).start()

    def _reap_children(self) -> None:
        """Executors the server started: a run left unfinished by a dead one is FAILED."""
        for run_id, proc in list(self.children.items()):
            code = proc.returncode
            if code is None:
                continue
            del self.children[run_id]
            if code not in (0, 1):
                log.warning("the executor of run %s exited with status %s", run_id, code)
                self._fail_unfinished(run_id, code)

    def _fail_unfinished(self, run_id: str, code: int) -> None:
        from jupyter_mlk.store.db import RunStore

        store = RunStore(self.db_path)
        try:
            run = store.get_run(run_id)
            if run["state"] in ("PENDING", "RUNNING"):
                store.update_run(
                    run_id,
                    state="FAILED",
                    finished=time.time(),
                    error=f"its executor exited with status {code} before finishing; see "
                    f".mlk/runs/{run_id}/executor.log",
                )
        finally:
            store.close()
