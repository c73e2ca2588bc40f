"""The workspace: where state lives (``<workspace>/.mlk/``) and the local artifact store.

Artifacts are immutable and content-addressed: a step writes a bundle into a private
temporary directory, and :meth:`Workspace.commit_bundle` publishes it under its digest
with one atomic rename. A reader therefore sees a complete bundle or none; two runs
writing the same content share one copy.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from jupyter_mlk.errors import ValueStoreError
from jupyter_mlk.pipeline.values import MANIFEST, bundle_digest
from jupyter_mlk.store.db import RunStore


def workspace_root(path: str | os.PathLike[str] | None = None) -> Path:
    """The workspace directory.

    ``path`` when given, else ``$MLK_HOME``, else the nearest folder from the current one
    upwards (up to the home folder) that already has a run history (``.mlk/mlk.db``), else
    the current folder. Walking up lets a kernel whose notebook sits in a subfolder of the
    server's root share the server's history, as git finds its repository.
    """
    chosen = path or os.environ.get("MLK_HOME")
    if chosen:
        return Path(chosen).resolve()
    cwd = Path.cwd().resolve()
    home = Path.home().resolve()
    for folder in (cwd, *cwd.parents):
        if (folder / ".mlk" / "mlk.db").is_file():
            return folder
        if folder == home:
            break
    return cwd


class Workspace:
    """Paths and stores of one workspace."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = workspace_root(root)
        self.state = self.root / ".mlk"
        self.objects = self.state / "artifacts" / "objects"
        self.tmp = self.state / "artifacts" / "tmp"
        self.runs_dir = self.state / "runs"
        for d in (self.objects, self.tmp, self.runs_dir):
            d.mkdir(parents=True, exist_ok=True)
        self._store: RunStore | None = None
        from jupyter_mlk.store.s3 import S3Store

        self.s3 = S3Store.from_env()

    @property
    def store(self) -> RunStore:
        if self._store is None:
            self._store = RunStore(self.state / "mlk.db")
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def run_dir(self, run_id: str) -> Path:
        return self.runs_dir / run_id

    def step_dir(self, run_id: str, step: str) -> Path:
        return self.runs_dir / run_id / step

    def new_tmp(self) -> Path:
        """A private directory for a bundle being written (the same file system)."""
        path = self.tmp / uuid.uuid4().hex
        return path

    def bundle_path(self, digest: str) -> Path:
        """The local folder of a bundle, fetched from the S3 store first when needed."""
        path = self.objects / digest
        if self.s3 is not None and not (path / MANIFEST).is_file():
            self.s3.download(digest, path)
        return path

    def has_bundle(self, digest: str) -> bool:
        if (self.objects / digest / MANIFEST).is_file():
            return True
        return self.s3 is not None and self.s3.has(digest)

    def commit_bundle(self, tmp: Path) -> str:
        """Publish a finished bundle under its content digest; return the digest."""
        if not (tmp / MANIFEST).is_file():
            raise ValueStoreError(f"{tmp} is not a finished bundle; it was not published")
        digest = bundle_digest(tmp)
        target = self.objects / digest
        if target.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            try:
                os.rename(tmp, target)
            except OSError:  # another run published the same content first
                shutil.rmtree(tmp, ignore_errors=True)
        if self.s3 is not None:
            self.s3.upload(digest, target)
        return digest
