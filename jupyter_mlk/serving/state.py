"""Deployments in the workspace database: ``deploy_*`` tables in ``.mlk/mlk.db``.

The tables hold the desired state (which versions serve, with what split); the local
inference server reconciles towards it and writes back what it achieved (a version's
status and error, its own address). Every change bumps ``generation``, which the server
polls, so a change made by any process (CLI, magics, REST API) reaches it.

Version statuses follow the run vocabulary: ``PENDING`` (recorded, not loaded yet),
``RUNNING`` (serving), ``FAILED`` (could not be loaded; ``error`` says why) and
``CANCELLED`` (retired by promote, rollback, a newer version or undeploy).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from jupyter_mlk.errors import ServingError
from jupyter_mlk.store.db import connect

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deploy_deployments (
    name TEXT PRIMARY KEY,
    backend TEXT NOT NULL,
    namespace TEXT,
    stable_version INTEGER,
    canary_version INTEGER,
    canary_percent INTEGER NOT NULL DEFAULT 0,
    url TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS deploy_versions (
    deployment TEXT NOT NULL,
    version INTEGER NOT NULL,
    model_ref TEXT NOT NULL,
    format TEXT NOT NULL,
    path TEXT NOT NULL,
    variable TEXT,
    lineage TEXT NOT NULL DEFAULT '{}',
    storage_uri TEXT,
    status TEXT NOT NULL,
    error TEXT,
    created REAL NOT NULL,
    retired REAL,
    PRIMARY KEY (deployment, version)
);
CREATE TABLE IF NOT EXISTS deploy_server (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    pid INTEGER,
    pid_started TEXT,
    host TEXT,
    port INTEGER,
    started REAL,
    generation INTEGER NOT NULL DEFAULT 0,
    applied INTEGER NOT NULL DEFAULT 0
);
INSERT OR IGNORE INTO deploy_server (id, generation, applied) VALUES (1, 0, 0);
"""


class DeploymentStore:
    """The deployments of one workspace (a connection of its own to ``mlk.db``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = connect(path, _SCHEMA)

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction that also bumps the generation the server polls."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
            self.conn.execute("UPDATE deploy_server SET generation = generation + 1")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # ---- reading ------------------------------------------------------------------------
    def names(self) -> list[str]:
        rows = self.conn.execute("SELECT name FROM deploy_deployments ORDER BY name")
        return [str(r["name"]) for r in rows]

    def find(self, name: str) -> dict[str, Any] | None:
        """A deployment with its versions (newest first), or None."""
        row = self.conn.execute(
            "SELECT * FROM deploy_deployments WHERE name = ?", (name,)
        ).fetchone()
        if row is None:
            return None
        dep = dict(row)
        dep["versions"] = [
            _version_dict(v)
            for v in self.conn.execute(
                "SELECT * FROM deploy_versions WHERE deployment = ? ORDER BY version DESC",
                (name,),
            )
        ]
        return dep

    def get(self, name: str) -> dict[str, Any]:
        """A deployment with its versions.

        Raises:
            ServingError: there is no deployment of that name.
        """
        dep = self.find(name)
        if dep is None:
            known = ", ".join(self.names()) or "none yet"
            raise ServingError(
                f"no deployment named {name!r} in this workspace (deployments: {known}); "
                "`jupyter mlk deploy MODEL --name NAME` creates one"
            )
        return dep

    def all(self) -> list[dict[str, Any]]:
        return [d for d in (self.find(n) for n in self.names()) if d is not None]

    def generation(self) -> int:
        row = self.conn.execute("SELECT generation FROM deploy_server WHERE id = 1").fetchone()
        return int(row["generation"])

    def server(self) -> dict[str, Any]:
        row = self.conn.execute("SELECT * FROM deploy_server WHERE id = 1").fetchone()
        return dict(row)

    # ---- writing ------------------------------------------------------------------------
    def add_version(
        self,
        name: str,
        backend: str,
        *,
        model_ref: str,
        fmt: str,
        path: str,
        variable: str | None,
        lineage: dict[str, Any],
        canary_percent: int | None,
        storage_uri: str | None = None,
        namespace: str | None = None,
        status: str = "PENDING",
    ) -> int:
        """Record a new version and route traffic to it; return its number.

        Without ``canary_percent`` the new version replaces every other one; with it, the
        new version is the canary next to the current stable one (an earlier canary is
        retired).
        """
        now = time.time()
        with self.transaction() as db:
            dep = db.execute("SELECT * FROM deploy_deployments WHERE name = ?", (name,)).fetchone()
            if dep is None:
                db.execute(
                    "INSERT INTO deploy_deployments (name, backend, namespace, created, "
                    "updated) VALUES (?, ?, ?, ?, ?)",
                    (name, backend, namespace, now, now),
                )
            row = db.execute(
                "SELECT MAX(version) AS v FROM deploy_versions WHERE deployment = ?", (name,)
            ).fetchone()
            version = int(row["v"] or 0) + 1
            db.execute(
                "INSERT INTO deploy_versions (deployment, version, model_ref, format, path, "
                "variable, lineage, storage_uri, status, created) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    name,
                    version,
                    model_ref,
                    fmt,
                    path,
                    variable,
                    json.dumps(lineage),
                    storage_uri,
                    status,
                    now,
                ),
            )
            if canary_percent is None:
                retire = (
                    "SELECT stable_version FROM deploy_deployments WHERE name = ? "
                    "UNION SELECT canary_version FROM deploy_deployments WHERE name = ?"
                )
                old = [r[0] for r in db.execute(retire, (name, name)) if r[0] is not None]
                db.execute(
                    "UPDATE deploy_deployments SET stable_version = ?, canary_version = NULL, "
                    "canary_percent = 0, updated = ? WHERE name = ?",
                    (version, now, name),
                )
            else:
                cur = db.execute(
                    "SELECT canary_version FROM deploy_deployments WHERE name = ?", (name,)
                ).fetchone()
                old = [cur[0]] if cur[0] is not None else []
                db.execute(
                    "UPDATE deploy_deployments SET canary_version = ?, canary_percent = ?, "
                    "updated = ? WHERE name = ?",
                    (version, canary_percent, now, name),
                )
            _retire(db, name, old, now)
        return version

    def promote(self, name: str) -> None:
        """Make the canary the only version."""
        now = time.time()
        with self.transaction() as db:
            dep = db.execute("SELECT * FROM deploy_deployments WHERE name = ?", (name,)).fetchone()
            db.execute(
                "UPDATE deploy_deployments SET stable_version = canary_version, "
                "canary_version = NULL, canary_percent = 0, updated = ? WHERE name = ?",
                (now, name),
            )
            _retire(db, name, [dep["stable_version"]], now)

    def rollback(self, name: str) -> None:
        """Drop the canary; the stable version takes all traffic again."""
        now = time.time()
        with self.transaction() as db:
            dep = db.execute("SELECT * FROM deploy_deployments WHERE name = ?", (name,)).fetchone()
            db.execute(
                "UPDATE deploy_deployments SET canary_version = NULL, canary_percent = 0, "
                "updated = ? WHERE name = ?",
                (now, name),
            )
            _retire(db, name, [dep["canary_version"]], now)

    def set_traffic(self, name: str, percent: int) -> None:
        """Change the canary's share of requests."""
        with self.transaction() as db:
            db.execute(
                "UPDATE deploy_deployments SET canary_percent = ?, updated = ? WHERE name = ?",
                (percent, time.time(), name),
            )

    def revert_version(self, name: str, version: int, previous: dict[str, Any] | None) -> None:
        """Undo :meth:`add_version` after the version failed to load."""
        now = time.time()
        with self.transaction() as db:
            if previous is None:
                db.execute("DELETE FROM deploy_deployments WHERE name = ?", (name,))
                db.execute("DELETE FROM deploy_versions WHERE deployment = ?", (name,))
                return
            db.execute(
                "UPDATE deploy_deployments SET stable_version = ?, canary_version = ?, "
                "canary_percent = ?, updated = ? WHERE name = ?",
                (
                    previous["stable_version"],
                    previous["canary_version"],
                    previous["canary_percent"],
                    now,
                    name,
                ),
            )
            for v in (previous["stable_version"], previous["canary_version"]):
                db.execute(
                    "UPDATE deploy_versions SET retired = NULL, status = CASE WHEN status = "
                    "'CANCELLED' THEN 'PENDING' ELSE status END WHERE deployment = ? AND "
                    "version = ?",
                    (name, v),
                )

    def remove(self, name: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM deploy_deployments WHERE name = ?", (name,))
            db.execute("DELETE FROM deploy_versions WHERE deployment = ?", (name,))

    def set_url(self, name: str, url: str | None) -> None:
        with self.transaction() as db:
            db.execute("UPDATE deploy_deployments SET url = ? WHERE name = ?", (url, name))

    def set_status(self, name: str, version: int, status: str, error: str | None = None) -> None:
        """Record what the server achieved for a version (no generation bump)."""
        self.conn.execute(
            "UPDATE deploy_versions SET status = ?, error = ? WHERE deployment = ? AND "
            "version = ? AND retired IS NULL",
            (status, error, name, version),
        )

    def reset_local(self) -> None:
        """Mark the live local versions PENDING: a starting server has loaded none yet."""
        self.conn.execute(
            "UPDATE deploy_versions SET status = 'PENDING', error = NULL WHERE retired IS NULL "
            "AND deployment IN (SELECT name FROM deploy_deployments WHERE backend = 'local')"
        )

    def set_server(self, **fields: Any) -> None:
        """Record the server's pid, address or applied generation (no generation bump)."""
        sets = ", ".join(f"{k} = ?" for k in fields)
        self.conn.execute(f"UPDATE deploy_server SET {sets} WHERE id = 1", tuple(fields.values()))


def _retire(db: sqlite3.Connection, name: str, versions: list[Any], now: float) -> None:
    for v in versions:
        if v is not None:
            db.execute(
                "UPDATE deploy_versions SET status = 'CANCELLED', retired = ? WHERE "
                "deployment = ? AND version = ? AND retired IS NULL",
                (now, name, v),
            )


def _version_dict(row: sqlite3.Row) -> dict[str, Any]:
    out = dict(row)
    out["lineage"] = json.loads(out["lineage"] or "{}")
    return out
