"""Values that cross step boundaries: bundles written and read by the step runner.

A bundle is a directory holding a group of names that may share objects. The names are
pickled together (cloudpickle), so ``train_df is data[0]`` still holds after loading.
While pickling, every object with a better format of its own is written to a side file
instead and referenced from the pickle: DataFrames as Parquet, numpy arrays as ``.npy``,
models in their library's format. Which format is chosen by walking the value's classes
(its MRO), never by the variable's name, and without importing the libraries involved.
"""

from __future__ import annotations

import io
import json
import os
import pickle
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cloudpickle

from jupyter_mlk.errors import ValueStoreError

BUNDLE_FORMAT = 1
MANIFEST = "bundle.json"
PICKLE = "values.pkl"
# Arrays smaller than this are pickled inline: a file per tiny array costs more than it saves.
INLINE_ARRAY_BYTES = 64 * 1024

Saver = Callable[[Any, Path], None]
Loader = Callable[[Path, dict[str, Any]], Any]


@dataclass(frozen=True)
class Format:
    """How one kind of value is stored in a side file."""

    name: str
    suffix: str
    artifact_type: str  # Dataset, Model or Artifact (the KFP artifact type it suggests)
    save: Saver
    load: Loader


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


# ---- formats ------------------------------------------------------------------------------
def _save_parquet(obj: Any, path: Path) -> None:
    obj.to_parquet(path, engine="pyarrow", compression=None)


def _load_parquet(path: Path, meta: dict[str, Any]) -> Any:
    import pandas as pd

    return pd.read_parquet(path, engine="pyarrow")


def _save_npy(obj: Any, path: Path) -> None:
    import numpy as np

    with open(path, "wb") as fh:
        np.lib.format.write_array(fh, obj, allow_pickle=False)


def _load_npy(path: Path, meta: dict[str, Any]) -> Any:
    import numpy as np

    return np.load(path, allow_pickle=False)


def _save_joblib(obj: Any, path: Path) -> None:
    import joblib

    joblib.dump(obj, path, compress=0)


def _load_joblib(path: Path, meta: dict[str, Any]) -> Any:
    import joblib

    return joblib.load(path)


def _save_xgb(obj: Any, path: Path) -> None:
    obj.save_model(str(path))


def _load_xgb(path: Path, meta: dict[str, Any]) -> Any:
    import importlib

    module, _, name = meta["class"].rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    model = cls()
    model.load_model(str(path))
    return model


def _save_lgb(obj: Any, path: Path) -> None:
    obj.save_model(str(path))


def _load_lgb(path: Path, meta: dict[str, Any]) -> Any:
    import lightgbm

    return lightgbm.Booster(model_file=str(path))


def _save_torch(obj: Any, path: Path) -> None:
    import torch

    torch.save(obj, path)


def _load_torch(path: Path, meta: dict[str, Any]) -> Any:
    import torch

    return torch.load(path, weights_only=False)


PARQUET = Format("parquet", ".parquet", "Dataset", _save_parquet, _load_parquet)
NPY = Format("npy", ".npy", "Dataset", _save_npy, _load_npy)
JOBLIB = Format("sklearn-joblib", ".joblib", "Model", _save_joblib, _load_joblib)
XGBOOST = Format("xgboost", ".ubj", "Model", _save_xgb, _load_xgb)
LIGHTGBM = Format("lightgbm", ".txt", "Model", _save_lgb, _load_lgb)
TORCH = Format("torch", ".pt", "Model", _save_torch, _load_torch)
FORMATS = {f.name: f for f in (PARQUET, NPY, JOBLIB, XGBOOST, LIGHTGBM, TORCH)}

# Class (by qualified name, anywhere in the value's MRO) -> format.
_BY_CLASS: dict[str, Format] = {
    "pandas.core.frame.DataFrame": PARQUET,
    "numpy.ndarray": NPY,
    "xgboost.core.Booster": XGBOOST,
    "xgboost.sklearn.XGBModel": XGBOOST,
    "lightgbm.basic.Booster": LIGHTGBM,
    "torch.nn.modules.module.Module": TORCH,
    "sklearn.base.BaseEstimator": JOBLIB,
}

# Values that can never cross a process boundary, with what to do instead.
_UNSTORABLE: dict[str, str] = {
    "builtins.generator": "a generator is consumed as it runs",
    "builtins.coroutine": "a coroutine belongs to its event loop",
    "_thread.lock": "a lock belongs to the process that made it",
    "_thread.RLock": "a lock belongs to the process that made it",
    "io.IOBase": "an open file belongs to the process that opened it",
    "_io._IOBase": "an open file belongs to the process that opened it",
    "socket.socket": "a socket belongs to the process that opened it",
    "sqlite3.Connection": "a database connection belongs to the process that opened it",
    "xgboost.core.DMatrix": "a DMatrix is a handle to native memory",
}

_format_cache: dict[type, Format | None] = {}


def format_for(value: Any) -> Format | None:
    """The side-file format for a value, by its classes; None means pickle it inline."""
    cls = type(value)
    if cls not in _format_cache:
        found: Format | None = None
        for base in cls.__mro__:
            found = _BY_CLASS.get(_qualname(base))
            if found is not None:
                break
        _format_cache[cls] = found
    fmt = _format_cache[cls]
    if fmt is NPY and (cls.__name__ != "ndarray" or not _npy_ok(value)):
        return None
    if fmt is PARQUET and not _parquet_ok(value):
        return None
    return fmt


def _npy_ok(arr: Any) -> bool:
    return not arr.dtype.hasobject and arr.nbytes >= INLINE_ARRAY_BYTES


def _parquet_ok(frame: Any) -> bool:
    """Parquet keeps a DataFrame exactly only with text column names and plain columns."""
    import pandas as pd

    cols = frame.columns
    if isinstance(cols, pd.MultiIndex) or not all(isinstance(c, str) for c in cols):
        return False
    if cols.has_duplicates or frame.attrs:
        return False
    for name in cols:
        col = frame[name]
        if col.dtype == object and pd.api.types.infer_dtype(col, skipna=True) not in (
            "string",
            "empty",
        ):
            return False
    index = frame.index
    if isinstance(index, pd.MultiIndex):
        return all(n is None or isinstance(n, str) for n in index.names)
    return index.name is None or isinstance(index.name, str)


def unstorable_reason(value: Any) -> str | None:
    """Why a value can never be stored, for the kinds known to fail; else None."""
    for base in type(value).__mro__:
        reason = _UNSTORABLE.get(_qualname(base))
        if reason:
            return reason
    return None


# ---- writing ------------------------------------------------------------------------------
class _BundlePickler(cloudpickle.Pickler):  # type: ignore[misc]
    def __init__(self, fh: io.BufferedWriter, directory: Path, hasher: Any) -> None:
        super().__init__(fh, protocol=pickle.HIGHEST_PROTOCOL)
        self.directory = directory
        self.objects: dict[str, dict[str, Any]] = {}
        self.digests: dict[str, Any] = {}  # key -> future of the side file's sha256
        self._hasher = hasher
        self._by_id: dict[int, str] = {}
        self._keep: list[Any] = []

    def persistent_id(self, obj: Any) -> str | None:
        fmt = format_for(obj)
        if fmt is None:
            return None
        key = self._by_id.get(id(obj))
        if key is not None:
            return key
        key = f"obj-{len(self.objects)}"
        filename = key + fmt.suffix
        try:
            fmt.save(obj, self.directory / filename)
        except Exception:
            (self.directory / filename).unlink(missing_ok=True)
            return None  # this value does not fit its usual format: pickle it inline
        self._by_id[id(obj)] = key
        self._keep.append(obj)  # ids stay unique while the pickler lives
        # Hash the side file while the pickler goes on (it is still in the page cache).
        self.digests[key] = self._hasher.submit(_file_digest, self.directory / filename)
        self.objects[key] = {
            "format": fmt.name,
            "file": filename,
            "class": _qualname(type(obj)),
            "artifact_type": fmt.artifact_type,
        }
        return key


def _unstorable_error(name: str, value: Any, step: str, cause: str) -> ValueStoreError:
    kind = _qualname(type(value))
    reason = unstorable_reason(value) or cause
    return ValueStoreError(
        f"step {step}: value {name!r} ({kind}) cannot be passed to a later step: {reason}. "
        f"Create it in the step that uses it, or make it with a function defined in a "
        f"functions cell and call that function where it is needed."
    )


def write_bundle(values: Mapping[str, Any], directory: Path, *, step: str = "") -> dict[str, Any]:
    """Write names and their values into ``directory`` (created); return the manifest.

    Raises:
        ValueStoreError: a value cannot be stored; the message names the variable, its
            type and what to do instead.
    """
    for name, value in values.items():
        if unstorable_reason(value):
            raise _unstorable_error(name, value, step, "")
    from concurrent.futures import ThreadPoolExecutor

    directory.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=2) as hasher, open(directory / PICKLE, "wb") as fh:
        pickler = _BundlePickler(fh, directory, hasher)
        try:
            pickler.dump(dict(values))
        except Exception as exc:
            culprit = _find_unpicklable(values)
            name = culprit if culprit is not None else ", ".join(values)
            raise _unstorable_error(
                name, values.get(name), step, f"{type(exc).__name__}: {exc}"
            ) from exc
        for key, future in pickler.digests.items():
            pickler.objects[key]["sha256"] = future.result().hex()
    types = {n: _qualname(type(v)) for n, v in values.items()}
    artifact_types = {o["artifact_type"] for o in pickler.objects.values()}
    kind = "Model" if "Model" in artifact_types else "Dataset" if artifact_types else "Artifact"
    manifest = {
        "format": BUNDLE_FORMAT,
        "names": list(values),
        "types": types,
        "objects": pickler.objects,
        "artifact_type": kind,
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return manifest


def _find_unpicklable(values: Mapping[str, Any]) -> str | None:
    for name, value in values.items():
        try:
            cloudpickle.dumps(value)
        except Exception:
            return name
    return None


# ---- reading ------------------------------------------------------------------------------
class _BundleUnpickler(pickle.Unpickler):
    def __init__(self, fh: io.BufferedReader, directory: Path, objects: dict[str, Any]) -> None:
        super().__init__(fh)
        self.directory = directory
        self.objects = objects
        self._loaded: dict[str, Any] = {}

    def persistent_load(self, pid: Any) -> Any:
        key = str(pid)
        if key not in self._loaded:
            meta = self.objects[key]
            fmt = FORMATS[meta["format"]]
            self._loaded[key] = fmt.load(self.directory / meta["file"], meta)
        return self._loaded[key]


def read_manifest(directory: Path) -> dict[str, Any]:
    """The manifest of a bundle directory."""
    try:
        return dict(json.loads((directory / MANIFEST).read_text()))
    except FileNotFoundError:
        raise ValueStoreError(
            f"{directory} is not a complete value bundle (no {MANIFEST}); the step that "
            "wrote it did not finish: run that step again"
        ) from None


def read_bundle(directory: Path) -> dict[str, Any]:
    """Load every name of a bundle; objects shared between names stay shared."""
    manifest = read_manifest(directory)
    with open(directory / PICKLE, "rb") as fh:
        values = _BundleUnpickler(fh, directory, manifest["objects"]).load()
    return dict(values)


def _file_digest(path: Path) -> bytes:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as fh:
        while chunk := fh.read(8 << 20):
            h.update(chunk)  # hashlib releases the GIL on large buffers: files hash in parallel
    return h.digest()


def bundle_digest(directory: Path) -> str:
    """Content digest of a bundle: every file's name and bytes, in name order.

    Side files were hashed while they were written; their digests are in the manifest,
    which is itself part of the digest.
    """
    import hashlib

    manifest = read_manifest(directory)
    known = {
        o["file"]: bytes.fromhex(o["sha256"])
        for o in manifest["objects"].values()
        if "sha256" in o
    }
    h = hashlib.sha256()
    for path in sorted(p for p in directory.iterdir() if p.is_file()):
        h.update(path.name.encode() + b"\0")
        h.update(known.get(path.name) or _file_digest(path))
    return h.hexdigest()


def sync_directory(directory: Path) -> None:
    """Flush a directory's files to disk before it is published by a rename."""
    for path in directory.iterdir():
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
