"""Where a model comes from: a run's value, a file or an S3 object, with its lineage.

``MODEL`` on the command line is one of:

- ``RUN:VARIABLE`` or ``RUN:STEP/VARIABLE``: a value from the run history (``RUN`` is an
  id, a unique prefix or ``latest``); without a step, the last step that produced it.
- ``RUN`` alone: the run's only model value.
- a path to a model file, or an ``s3://BUCKET/KEY`` URI.

Files and S3 objects are copied into ``<workspace>/.mlk/serving/models/<sha256>/`` so a
deployment survives the original being moved, and is restored after a restart. Run values
are referenced by their immutable bundle.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_mlk.errors import ServingError
from jupyter_mlk.serving.formats import ServedModel, format_of_class_name, load_model
from jupyter_mlk.store.workspace import Workspace

log = logging.getLogger(__name__)


@dataclass
class ModelSource:
    """A resolved model: what the server loads and where it came from.

    Attributes:
        ref: the MODEL as the user gave it.
        path: the model file, or the value bundle directory, that the server loads.
        variable: the variable inside a bundle; None for a file.
        lineage: where the model came from (``source`` is ``run``, ``file`` or ``s3``; a run
            adds ``run``, ``step``, ``variable``, ``notebook``, ``digest``).
        model: the loaded model (loading is how the format is detected and checked).
    """

    ref: str
    path: Path
    variable: str | None
    lineage: dict[str, Any]
    model: ServedModel
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def format(self) -> str:
        return self.model.format


def models_dir(ws: Workspace) -> Path:
    """Where deployed model files are kept."""
    return ws.state / "serving" / "models"


def resolve_model(ws: Workspace, ref: str) -> ModelSource:
    """Find, copy if needed, load and describe the model named by ``ref``.

    Raises:
        ServingError: the reference names nothing, or not a model.
        RunError: the run does not exist.
    """
    ref = ref.strip()
    if not ref:
        raise ServingError("MODEL is empty; give RUN:VARIABLE, a model file or an s3:// URI")
    if ref.startswith("s3://"):
        return _from_s3(ws, ref)
    candidate = Path(ref).expanduser()
    if candidate.is_file():
        return _from_file(ws, ref, candidate.resolve())
    if candidate.is_dir():
        raise ServingError(f"{ref} is a folder; give the model file inside it")
    run_ref, _, value = ref.partition(":")
    step, _, variable = value.rpartition("/")
    try:
        return _from_run(ws, ref, run_ref, step or None, variable or None)
    except ServingError:
        raise
    except Exception as exc:
        if ":" in ref or "/" in ref or os.sep in ref:
            raise
        raise ServingError(
            f"MODEL {ref!r} is neither a file, an s3:// URI nor a run of this workspace "
            "(`jupyter mlk runs` lists them); write RUN:VARIABLE or RUN:STEP/VARIABLE"
        ) from exc


def _file_sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _keep(ws: Workspace, src: Path, name: str) -> tuple[Path, str]:
    """Copy a file into the content-addressed model folder; return the copy and digest."""
    digest = _file_sha256(src)
    target = models_dir(ws) / digest / name
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".{uuid.uuid4().hex}.tmp"
        shutil.copyfile(src, tmp)
        os.replace(tmp, target)
    return target, digest


def _from_file(ws: Workspace, ref: str, path: Path) -> ModelSource:
    kept, digest = _keep(ws, path, path.name)
    model = load_model(kept)
    lineage = {"source": "file", "path": str(path), "sha256": digest}
    return ModelSource(ref, kept, None, lineage, model)


def _from_s3(ws: Workspace, uri: str) -> ModelSource:
    from jupyter_mlk.serving import s3

    tmp = ws.state / "serving" / "tmp" / uuid.uuid4().hex
    try:
        local, key = s3.download(uri, tmp / "model")
        kept, digest = _keep(ws, local, Path(key).name or "model")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    model = load_model(kept)
    bucket, _ = s3.split_uri(uri)
    lineage = {"source": "s3", "uri": f"s3://{bucket}/{key}", "sha256": digest}
    return ModelSource(uri, kept, None, lineage, model, {"s3_uri": f"s3://{bucket}/{key}"})


def _values_of(ws: Workspace, run: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(step, variable, bundle digest, class) of every value a run's steps produced."""
    from jupyter_mlk.pipeline.values import read_manifest

    found = []
    for step in run["steps"]:
        for digest in (step.get("outputs") or {}).values():
            path = ws.bundle_path(digest)
            if not ws.has_bundle(digest):
                continue
            manifest = read_manifest(path)
            for name in manifest.get("names", []):
                found.append((step["name"], name, digest, manifest.get("types", {}).get(name, "")))
    return found


def _from_run(
    ws: Workspace, ref: str, run_ref: str, step: str | None, variable: str | None
) -> ModelSource:
    run = ws.store.get_run(run_ref)
    values = _values_of(ws, run)
    steps = [s["name"] for s in run["steps"]]
    if step is not None and step not in steps:
        raise ServingError(
            f"run {run['id']} has no step {step!r}; its steps are {', '.join(steps)}"
        )
    matches = [
        v
        for v in values
        if (step is None or v[0] == step)
        and (v[1] == variable if variable else format_of_class_name(v[3]))
    ]
    if not matches:
        raise ServingError(_no_value_message(run, step, variable, values))
    if variable is None:
        names = {v[1] for v in matches}
        if len(names) > 1:
            listed = ", ".join(f"{run['id']}:{s}/{n}" for s, n, _, _ in matches)
            raise ServingError(f"run {run['id']} has several models; pick one: {listed}")
    chosen_step, name, digest, _ = matches[-1]  # the last step that produced it
    model = load_model(ws.bundle_path(digest), name)
    lineage = {
        "source": "run",
        "run": run["id"],
        "step": chosen_step,
        "variable": name,
        "notebook": run.get("notebook"),
        "digest": digest,
        "params": run.get("params", {}),
        "metrics": run.get("metrics", {}),
    }
    canonical = f"{run['id']}:{chosen_step}/{name}"
    return ModelSource(canonical, ws.bundle_path(digest), name, lineage, model)


def _no_value_message(
    run: dict[str, Any],
    step: str | None,
    variable: str | None,
    values: list[tuple[str, str, str, str]],
) -> str:
    where = f" in step {step}" if step else ""
    listed = ", ".join(f"{s}/{n}" for s, n, _, _ in values) or "none"
    if variable is None:
        return (
            f"run {run['id']} produced no model value{where} (its values: {listed}); "
            "name one as RUN:STEP/VARIABLE"
        )
    state = run.get("state")
    hint = "" if state in ("SUCCEEDED", None) else f" (the run is {state})"
    return (
        f"run {run['id']}{hint} has no value {variable!r}{where}; its values are {listed}. "
        "Only values read by a later step are stored: deploy one of these as "
        "RUN:STEP/VARIABLE"
    )


def export_model(source: ModelSource, dest: Path) -> Path:
    """Write the model into ``dest`` under the file name KServe's runtime expects.

    scikit-learn: ``model.joblib``; XGBoost: ``model.json``; LightGBM: ``model.bst``
    (its text format); PyTorch: ``model.pt`` (``torch.save`` of the module).

    Raises:
        ServingError: the model cannot be written in its runtime's format.
    """
    dest.mkdir(parents=True, exist_ok=True)
    obj, fmt = source.model.obj, source.format
    try:
        if fmt == "sklearn":
            import joblib

            target = dest / "model.joblib"
            joblib.dump(obj, target)
        elif fmt == "xgboost":
            target = dest / "model.json"
            obj.save_model(str(target))
        elif fmt == "lightgbm":
            target = dest / "model.bst"
            booster = getattr(obj, "booster_", obj)
            booster.save_model(str(target))
        else:
            import torch

            target = dest / "model.pt"
            torch.save(obj, target)
    except Exception as exc:
        raise ServingError(
            f"the {fmt} model {source.ref} cannot be written for KServe "
            f"({type(exc).__name__}: {exc})"
        ) from exc
    return target
