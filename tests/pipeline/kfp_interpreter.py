"""Run a compiled KFP v2 YAML on this machine by interpreting it, for the compiler tests.

kfp.local cannot run our tasks (its SubprocessRunner runs only lightweight Python
components, and its DockerRunner needs docker and a published image), so this does what a
KFP backend does, for the subset of the spec our compiler writes: walk the DAG in
dependency order, evaluate ``triggerPolicy`` conditions, substitute the ``{{$...}}``
placeholders of each executor's command and args (parameter values formatted as the KFP
launcher formats them, artifact paths in a scratch directory), run the command as a
subprocess and collect its output parameters.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_PLACEHOLDER = re.compile(
    r"\{\{\$\.(inputs|outputs)\.(parameters|artifacts)\['([^']+)'\](\.\w+)?\}\}"
)


@dataclass
class TaskRun:
    """What one executed task did."""

    name: str
    returncode: int
    stdout: str
    stderr: str
    outputs: dict[str, Any] = field(default_factory=dict)  # output parameters


@dataclass
class PipelineRun:
    """Every task that ran, and the ones skipped by a false condition."""

    tasks: dict[str, TaskRun] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    artifacts: dict[tuple[str, str], Path] = field(default_factory=dict)


def run_pipeline(
    yaml_text: str, workdir: Path, arguments: dict[str, Any] | None = None
) -> PipelineRun:
    """Execute every task of the pipeline; stop at the first failing task."""
    spec = next(yaml.safe_load_all(yaml_text))
    params = {
        name: body.get("defaultValue")
        for name, body in spec["root"].get("inputDefinitions", {}).get("parameters", {}).items()
    }
    params.update(arguments or {})
    run = PipelineRun()
    _run_dag(spec, spec["root"]["dag"], params, {}, workdir, run)
    return run


def _run_dag(
    spec: dict[str, Any],
    dag: dict[str, Any],
    params: dict[str, Any],
    artifacts: dict[str, Path],
    workdir: Path,
    run: PipelineRun,
) -> None:
    done: dict[str, dict[str, Any]] = {}
    pending = dict(dag["tasks"])
    while pending:
        ready = [n for n, t in pending.items() if set(t.get("dependentTasks", [])) <= set(done)]
        assert ready, f"the DAG has a cycle or a missing task: {sorted(pending)}"
        for name in sorted(ready):
            task = pending.pop(name)
            done[name] = _run_task(spec, name, task, params, artifacts, done, workdir, run)


def _resolve_inputs(
    task: dict[str, Any],
    params: dict[str, Any],
    artifacts: dict[str, Path],
    done: dict[str, dict[str, Any]],
    run: PipelineRun,
) -> tuple[dict[str, Any], dict[str, Path]]:
    values: dict[str, Any] = {}
    for key, src in task.get("inputs", {}).get("parameters", {}).items():
        if "componentInputParameter" in src:
            values[key] = params[src["componentInputParameter"]]
        elif "taskOutputParameter" in src:
            ref = src["taskOutputParameter"]
            values[key] = done[ref["producerTask"]][ref["outputParameterKey"]]
        else:
            values[key] = src["runtimeValue"]["constant"]
    paths: dict[str, Path] = {}
    for key, src in task.get("inputs", {}).get("artifacts", {}).items():
        if "componentInputArtifact" in src:
            paths[key] = artifacts[src["componentInputArtifact"]]
        else:
            ref = src["taskOutputArtifact"]
            paths[key] = run.artifacts[(ref["producerTask"], ref["outputArtifactKey"])]
    return values, paths


def _run_task(
    spec: dict[str, Any],
    name: str,
    task: dict[str, Any],
    params: dict[str, Any],
    artifacts: dict[str, Path],
    done: dict[str, dict[str, Any]],
    workdir: Path,
    run: PipelineRun,
) -> dict[str, Any]:
    values, paths = _resolve_inputs(task, params, artifacts, done, run)
    component = spec["components"][task["componentRef"]["name"]]
    condition = task.get("triggerPolicy", {}).get("condition")
    if condition and not _evaluate(condition, values):
        run.skipped.append(name)
        return {}
    if "dag" in component:
        _run_dag(spec, component["dag"], values, paths, workdir, run)
        return {}
    executor = spec["deploymentSpec"]["executors"][component["executorLabel"]]["container"]
    return _execute(name, component, executor, values, paths, workdir, run)


def _execute(
    name: str,
    component: dict[str, Any],
    container: dict[str, Any],
    values: dict[str, Any],
    paths: dict[str, Path],
    workdir: Path,
    run: PipelineRun,
) -> dict[str, Any]:
    root = workdir / name
    out_params = component.get("outputDefinitions", {}).get("parameters", {})
    out_artifacts = component.get("outputDefinitions", {}).get("artifacts", {})
    for key in out_artifacts:
        run.artifacts[(name, key)] = root / "artifacts" / key
        (root / "artifacts").mkdir(parents=True, exist_ok=True)

    def substitute(match: re.Match[str]) -> str:
        io, kind, key, attr = match.groups()
        if io == "inputs" and kind == "parameters":
            return _launcher_text(values[key])
        if io == "inputs":
            return str(paths[key])
        if kind == "artifacts":
            return str(run.artifacts[(name, key)])
        assert attr == ".output_file"
        (root / "params").mkdir(parents=True, exist_ok=True)
        return str(root / "params" / key)

    argv = [_PLACEHOLDER.sub(substitute, a) for a in [*container["command"], *container["args"]]]
    if argv[0] == "python":
        argv[0] = sys.executable
    env = {**os.environ, **{e["name"]: e["value"] for e in container.get("env", [])}}
    env.pop("MLK_KFP_OUTPUT_METADATA", None)  # the KFP-only metadata file lives under /tmp
    root.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, timeout=240)
    result = TaskRun(name, proc.returncode, proc.stdout, proc.stderr)
    run.tasks[name] = result
    assert proc.returncode == 0, f"task {name} failed:\n{proc.stdout}\n{proc.stderr}"
    for key, body in out_params.items():
        text = (root / "params" / key).read_text()
        result.outputs[key] = text if body["parameterType"] == "STRING" else json.loads(text)
    return result.outputs


def _launcher_text(value: Any) -> str:
    """A parameter value as the KFP v2 launcher writes it into a command line."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    return json.dumps(value)


def _evaluate(condition: str, values: dict[str, Any]) -> bool:
    """The CEL subset KFP writes for dsl.If: comparisons, casts, literals, !, &&."""
    names = {f"p{i}": v for i, v in enumerate(values.values())}
    expr = condition
    for i, key in enumerate(values):
        expr = expr.replace(f"inputs.parameter_values['{key}']", f"p{i}")
    expr = expr.replace("&&", " and ").replace("||", " or ").replace("!(", "not (")
    expr = re.sub(r"\bdouble\(", "float(", expr)
    expr = re.sub(r"\btrue\b", "True", re.sub(r"\bfalse\b", "False", expr))
    return bool(eval(expr, {"float": float, "int": int, "__builtins__": {}}, names))
