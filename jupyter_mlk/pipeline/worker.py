"""Step processes for the local executor, forked from a warm zygote.

Every step runs in its own process, as on Kubeflow. Starting a fresh Python and importing
pandas and scikit-learn for every step would cost seconds, so the executor keeps one
*zygote* (multiprocessing's fork server) that has already imported the step runner and the
modules the notebook's imports cells name, and forks each step process from it: the step
starts in milliseconds with its imports warm, and still shares no state with other steps.

Modules that must not be imported before a fork (GPU runtimes hold threads and device
handles that do not survive it) are never preloaded; the step imports them itself.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

# Preloading these before fork is unsafe (CUDA contexts, thread pools owned by the runtime).
NEVER_PRELOAD = frozenset(
    {
        "torch",
        "tensorflow",
        "jax",
        "jaxlib",
        "cupy",
        "numba",
        "keras",
        "mxnet",
        "ray",
        "dask",
        "pyspark",
        "multiprocessing",
        "tkinter",
        "lightgbm",
        "xgboost",
        "catboost",
    }
)
PRELOAD_ENV = "MLK_PRELOAD"


def preload_modules(import_sources: list[str], workdir: Path) -> list[str]:
    """Top-level modules the imports cells name that are safe and cheap to warm up."""
    found: dict[str, None] = {}
    for source in import_sources:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name, None)
    safe: list[str] = []
    for name in found:
        if name.split(".")[0] in NEVER_PRELOAD:
            continue
        try:
            spec = importlib.util.find_spec(name.split(".")[0])
        except (ImportError, ValueError):
            continue
        origin = spec.origin if spec else None
        if not origin or origin.startswith(str(workdir)):
            continue  # the user's own modules change while they work: import them fresh
        safe.append(name)
    return safe


def warm_up() -> None:
    """Run in the zygote: import the step runner and the preload list, ignoring failures."""
    import jupyter_mlk.pipeline.runner  # noqa: F401

    for name in filter(None, os.environ.get(PRELOAD_ENV, "").split(",")):
        try:
            importlib.import_module(name)
        except Exception:  # a module that fails here fails visibly in the step itself
            continue


def _watch_executor(pid: int) -> None:
    """Kill this step (and what it started) when the executor that owns it is gone.

    A step process is a child of the fork server, not of the executor, and the fork server
    outlives a killed executor while steps run; so each step watches the executor itself.
    """
    import threading

    def gone() -> bool:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
                return fh.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")  # a zombie
        except FileNotFoundError:
            return True
        except OSError:  # no /proc: ask the kernel
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            except PermissionError:
                pass
            return False

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if gone():
                os.killpg(0, signal.SIGKILL)

    threading.Thread(target=watch, name="mlk-executor-watch", daemon=True).start()


def _kill_own_group(signum: int, frame: Any) -> None:
    os.killpg(0, signal.SIGKILL)


def step_process(job: dict[str, Any]) -> None:
    """Entry point of a step process: run the step, write ``result.json``, exit."""
    os.setsid()  # its own process group: cancel kills the step and everything it started
    signal.signal(signal.SIGTERM, _kill_own_group)
    _watch_executor(job["executor_pid"])
    step_dir = Path(job["step_dir"])
    step_dir.mkdir(parents=True, exist_ok=True)
    stdout = open(step_dir / "stdout.log", "w", encoding="utf-8", buffering=1)  # noqa: SIM115
    stderr = open(step_dir / "stderr.log", "w", encoding="utf-8", buffering=1)  # noqa: SIM115
    os.dup2(stdout.fileno(), 1)  # output of C code and of `!` commands lands in the logs too
    os.dup2(stderr.fileno(), 2)
    os.chdir(job["workdir"])
    sys.path.insert(0, job["workdir"])
    os.environ.update(job.get("env", {}))
    from jupyter_mlk.pipeline.runner import run_step
    from jupyter_mlk.pipeline.spec import StepSpec

    outcome = run_step(
        StepSpec.from_json(job["spec"]),
        params=job["params"],
        inputs={k: Path(v) for k, v in job["inputs"].items()},
        outputs={k: Path(v) for k, v in job["outputs"].items()},
        value_paths={},
        notebook_path=step_dir / "output.ipynb",
        stdout_log=stdout,
        stderr_log=stderr,
    )
    tmp = step_dir / "result.json.tmp"
    tmp.write_text(json.dumps(outcome.to_dict(), default=str))
    os.replace(tmp, step_dir / "result.json")
    stdout.flush()
    stderr.flush()
    os._exit(0 if outcome.state == "SUCCEEDED" else 1)
