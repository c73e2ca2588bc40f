"""CLI verbs for pipelines: graph, compile, run, runs, show, logs, cancel."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from jupyter_mlk.errors import GraphError, MlkError, RunError
from jupyter_mlk.store.db import RUN_FIELDS

_STATE_COLOURS = {
    "PENDING": "2",
    "RUNNING": "36",
    "SUCCEEDED": "32",
    "CACHED": "34",
    "SKIPPED": "33",
    "FAILED": "31",
    "CANCELLED": "35",
}


def register(subparsers: Any) -> None:
    """Add the pipeline verbs to ``jupyter mlk``."""
    p = subparsers.add_parser("graph", help="show the step graph of a notebook")
    p.add_argument("notebook")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_graph)

    p = subparsers.add_parser("compile", help="compile a notebook to Kubeflow Pipelines v2 YAML")
    p.add_argument("notebook")
    p.add_argument("-o", "--output", help="YAML file to write (default: NOTEBOOK.yaml)")
    p.add_argument("--image", help="container image for every step (a step's image: tag wins)")
    p.add_argument(
        "--s3-secret",
        help="Kubernetes secret with the S3 store's credentials "
        "(keys AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY); only its name is written",
    )
    p.add_argument(
        "-p",
        "--param",
        action="append",
        metavar="NAME=VALUE",
        help="override a parameter's default in the compiled pipeline",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_compile)

    p = subparsers.add_parser("run", help="run a notebook as a pipeline on this machine")
    p.add_argument("notebook")
    p.add_argument(
        "-p",
        "--param",
        action="append",
        metavar="NAME=VALUE",
        help="set a parameter; converted to the type of its default",
    )
    p.add_argument("--no-cache", action="store_true", help="run every step, even unchanged")
    p.add_argument("--workers", type=int, help="steps at once (default: number of cores)")
    p.add_argument("--json", action="store_true", help="print the run as JSON at the end")
    p.add_argument(
        "--backend",
        choices=["local", "kubernetes"],
        default="local",
        help="kubernetes: compile and submit to Kubeflow Pipelines (MLK_KFP_HOST)",
    )
    p.add_argument("--experiment", default="jupyter-mlk", help="KFP experiment name")
    p.add_argument("--image", help="with --backend kubernetes: the runner image of every step")
    p.add_argument(
        "--print-metrics",
        action="store_true",
        help="print the run's metrics as name=value lines on stdout (for Katib)",
    )
    p.add_argument("--run-id", help=argparse.SUPPRESS)  # a run the server already recorded
    p.add_argument("--params-file", help=argparse.SUPPRESS)  # overrides as a JSON object
    p.set_defaults(func=cmd_run)

    p = subparsers.add_parser("runs", help="list the runs of this workspace")
    p.add_argument("--limit", type=int, default=30)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_runs)

    p = subparsers.add_parser("show", help="show one run (or sweep) with its steps (or trials)")
    p.add_argument("run", help="run or sweep id (s-...), unique prefix, or 'latest'")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_show)

    p = subparsers.add_parser("logs", help="print the logs of a run's steps")
    p.add_argument("run", help="run id, unique prefix, or 'latest'")
    p.add_argument("step", nargs="?", help="only this step")
    p.add_argument("--step", dest="step_opt", help=argparse.SUPPRESS)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_logs)

    p = subparsers.add_parser("cancel", help="cancel a running run or sweep (s-...)")
    p.add_argument("run")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_cancel)


# ---- graph and compile --------------------------------------------------------------------
def load_graph(notebook: str, *, fail_on_errors: bool = True) -> Any:
    from jupyter_mlk.notebook.graph import build_graph

    graph = build_graph(notebook)
    if graph.errors and fail_on_errors:
        diagnostics = [d.to_dict() for d in graph.diagnostics]
        lines = "\n".join("  " + d.describe() for d in graph.errors)
        raise GraphError(f"{notebook} has {len(graph.errors)} error(s):\n{lines}", diagnostics)
    return graph


def cmd_graph(args: argparse.Namespace) -> int:
    graph = load_graph(args.notebook, fail_on_errors=False)
    if args.json:
        print(json.dumps(graph.to_dict(), indent=2, default=str))
        return 1 if graph.errors else 0
    print(f"{graph.path}: {len(graph.steps)} step(s)")
    for p in graph.parameters:
        print(f"  parameter {p.name}: {p.type} = {p.source}")
    for s in graph.steps:
        cells = ", ".join(str(c.index) for c in s.cells)
        print(f"\nstep {s.name} (cells {cells})")
        if s.after:
            print(f"  after: {', '.join(s.after)}")
        if s.inputs:
            print("  inputs: " + ", ".join(f"{n} <- {src}" for n, src in sorted(s.inputs.items())))
        if s.outputs:
            print(f"  outputs: {', '.join(s.outputs)}")
        if s.params:
            print(f"  parameters: {', '.join(s.params)}")
        if s.condition:
            print(f"  runs only if {s.condition.text}")
        if s.metrics:
            print(f"  metrics: {', '.join(s.metrics)}")
        res = s.resources
        extras = [f"{k}={v}" for k, v in res.limits] + ([f"gpus={res.gpus}"] if res.gpus else [])
        extras += [f"image={res.image}"] if res.image else []
        extras += ["cache=off"] if not res.cache else []
        if extras:
            print(f"  resources: {', '.join(extras)}")
    if graph.diagnostics:
        print()
        for d in graph.diagnostics:
            print(d.describe(), file=sys.stderr if d.severity == "error" else sys.stdout)
    return 1 if graph.errors else 0


def cmd_compile(args: argparse.Namespace) -> int:
    from jupyter_mlk.notebook.params import parse_assignments, resolve_overrides
    from jupyter_mlk.pipeline.compiler import write_pipeline

    graph = load_graph(args.notebook)
    overrides = parse_assignments(args.param)
    values = resolve_overrides(graph.parameters, overrides)
    typed = {k: values[k] for k in overrides}
    output = Path(args.output or Path(args.notebook).with_suffix(".yaml"))
    write_pipeline(graph, output, image=args.image, overrides=typed, s3_secret=args.s3_secret)
    if args.json:
        print(json.dumps({"output": str(output), "steps": [s.kfp_name for s in graph.steps]}))
    else:
        print(f"wrote {output} ({len(graph.steps)} step(s))")
    return 0


# ---- run ----------------------------------------------------------------------------------
class _Progress:
    """Step states as they change: a live table on a terminal, plain lines elsewhere."""

    def __init__(self, steps: list[str], stream: Any, live: bool) -> None:
        self.steps = steps
        self.state = dict.fromkeys(steps, "PENDING")
        self.detail: dict[str, str] = {}
        self.stream = stream
        self.live = live
        self.drawn = 0
        self.started: dict[str, float] = {}

    def __call__(self, step: str, state: str, details: dict[str, Any]) -> None:
        if not step:
            if state == "RUNNING" and not self.live:
                print(f"run {details.get('run_id')} RUNNING", file=self.stream, flush=True)
            return
        self.state[step] = state
        if state == "RUNNING":
            self.started[step] = time.time()
        duration = details.get("duration")
        note = f"{duration:.2f}s" if duration is not None and state not in ("CANCELLED",) else ""
        if details.get("reason") and state in ("SKIPPED", "CACHED", "CANCELLED"):
            note = details["reason"]
        if state == "FAILED" and details.get("error"):
            err = details["error"]
            note = f"{err.get('ename')}: {err.get('evalue')}"
        self.detail[step] = note
        if self.live:
            self._draw()
        else:
            print(
                f"step {step} {state}" + (f" ({note})" if note else ""),
                file=self.stream,
                flush=True,
            )

    def _draw(self) -> None:
        if self.drawn:
            self.stream.write(f"\x1b[{self.drawn}F")
        width = max(len(s) for s in self.steps) if self.steps else 0
        for s in self.steps:
            state = self.state[s]
            colour = _STATE_COLOURS.get(state, "0")
            line = f"  {s:<{width}}  \x1b[{colour}m{state:<9}\x1b[0m  {self.detail.get(s, '')}"
            self.stream.write("\x1b[2K" + line[:200] + "\n")
        self.drawn = len(self.steps)
        self.stream.flush()


def cmd_run(args: argparse.Namespace) -> int:
    from jupyter_mlk.notebook.params import parse_assignments, resolve_overrides
    from jupyter_mlk.pipeline.executor import LocalExecutor
    from jupyter_mlk.store.workspace import Workspace

    overrides = parse_assignments(args.param)
    if args.params_file:
        overrides.update(json.loads(Path(args.params_file).read_text()))
    graph = load_graph(args.notebook)
    values = resolve_overrides(graph.parameters, overrides)
    if args.workers is not None and args.workers < 1:
        raise RunError(f"--workers {args.workers}: give at least 1")
    ws = Workspace()
    live = sys.stderr.isatty() and not args.json
    progress = _Progress([s.name for s in graph.steps], sys.stderr, live)
    executor = LocalExecutor(
        ws, workers=args.workers, use_cache=not args.no_cache, on_event=progress
    )
    run_id = executor.adopt(args.run_id) if args.run_id else executor.start(graph, values)
    if args.backend == "kubernetes":
        return _run_on_kfp(ws, graph, values, run_id, args, progress)
    if not args.json:
        print(f"run {run_id}: {graph.path}", file=sys.stderr, flush=True)
    result = executor.run(graph, values, run_id=run_id)
    run = ws.store.get_run(run_id)
    if args.json:
        print(json.dumps(_run_json(ws, run), indent=2, default=str))
    elif args.print_metrics:
        for name, value in run["metrics"].items():
            print(f"{name}={value!r}")  # full precision: Katib's collector reads these
    else:
        _print_summary(ws, run)
    return 0 if result.state == "SUCCEEDED" else 1


def _run_on_kfp(
    ws: Any,
    graph: Any,
    values: dict[str, Any],
    run_id: str,
    args: argparse.Namespace,
    progress: Any,
) -> int:
    from jupyter_mlk.pipeline.kfp_backend import KfpBackend, run_on_kfp

    try:
        backend = KfpBackend()
        state = run_on_kfp(
            ws,
            graph,
            values,
            experiment=args.experiment,
            run_id=run_id,
            backend=backend,
            on_event=progress,
            image=args.image,
        )
    except MlkError as exc:
        ws.store.update_run(run_id, state="FAILED", finished=time.time(), error=str(exc))
        raise
    run = ws.store.get_run(run_id)
    if args.json:
        print(json.dumps(_run_json(ws, run), indent=2, default=str))
    else:
        print(
            f"run {run_id} {state} on {backend.host} (KFP run "
            f"{run['labels'].get('kfp_run_id')}); step logs are in the KFP UI"
        )
    return 0 if state == "SUCCEEDED" else 1


def _run_json(ws: Any, run: dict[str, Any]) -> dict[str, Any]:
    out = {k: run[k] for k in (*RUN_FIELDS, "labels")}
    out["steps"] = {}
    for s in run["steps"]:
        step_dir = ws.step_dir(run["id"], s["name"])
        out["steps"][s["name"]] = {
            "state": s["state"],
            "started": s["started"],
            "finished": s["finished"],
            "duration": s["duration"],
            "metrics": s["metrics"],
            "outputs": s["outputs"],
            "error": s["error"],
            "cached_from": s["cached_from"],
            "stdout": str(step_dir / "stdout.log") if (step_dir / "stdout.log").exists() else None,
            "stderr": str(step_dir / "stderr.log") if (step_dir / "stderr.log").exists() else None,
            "notebook": (
                str(step_dir / "output.ipynb") if (step_dir / "output.ipynb").exists() else None
            ),
        }
    from jupyter_mlk.notebook.params import json_safe

    safe: dict[str, Any] = json_safe(out)
    return safe


def _print_summary(ws: Any, run: dict[str, Any]) -> None:
    duration = f" in {run['duration']:.2f}s" if run["duration"] else ""
    print(f"run {run['id']} {run['state']}{duration}")
    for s in run["steps"]:
        err = s["error"] or {}
        if s["state"] == "FAILED":
            print(f"  step {s['name']} FAILED: {_describe_error(s['name'], err)}")
            print(f"    log: jupyter mlk logs {run['id']} {s['name']}")
    if run["metrics"]:
        print("  metrics: " + ", ".join(f"{k}={v:g}" for k, v in run["metrics"].items()))


def _describe_error(step: str, err: dict[str, Any]) -> str:
    where = ""
    if err.get("cell_index") is not None:
        where = f"cell {err['cell_index']} (id {err['cell_id']})"
        if err.get("line"):
            where += f", line {err['line']}"
            if err.get("source_line"):
                where += f": {err['source_line'].strip()}"
        where += ": "
    return f"{where}{err.get('ename', 'Error')}: {err.get('evalue', err.get('reason', ''))}"


# ---- history ------------------------------------------------------------------------------
def cmd_runs(args: argparse.Namespace) -> int:
    from jupyter_mlk.store.workspace import Workspace

    runs = Workspace().store.list_runs(limit=args.limit)
    if args.json:
        print(json.dumps([{k: r[k] for k in RUN_FIELDS} for r in runs], indent=2, default=str))
        return 0
    if not runs:
        print("no runs yet; start one with: jupyter mlk run NOTEBOOK")
        return 0
    print(f"{'RUN':<24} {'STATE':<10} {'STARTED':<19} {'TIME':>7}  NOTEBOOK / PARAMS / METRICS")
    for r in runs:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["created"]))
        dur = f"{r['duration']:.1f}s" if r["duration"] else "-"
        params = " ".join(f"{k}={v}" for k, v in r["params"].items())
        metrics = " ".join(f"{k}={v:g}" for k, v in r["metrics"].items())
        print(
            f"{r['id']:<24} {r['state']:<10} {started:<19} {dur:>7}  "
            f"{os.path.relpath(r['notebook'])}  {params}  {metrics}".rstrip()
        )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from jupyter_mlk.store.workspace import Workspace

    if args.run.startswith("s-"):
        from jupyter_mlk.cli.tuning import show_sweep

        return show_sweep(args.run, args.json)

    ws = Workspace()
    run = ws.store.get_run(args.run)
    if args.json:
        print(json.dumps(_run_json(ws, run), indent=2, default=str))
        return 0
    _print_summary(ws, run)
    for s in run["steps"]:
        dur = f"{s['duration']:.2f}s" if s["duration"] else ""
        print(f"  {s['name']:<20} {s['state']:<10} {dur}")
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    from jupyter_mlk.store.workspace import Workspace

    ws = Workspace()
    run = ws.store.get_run(args.run)
    wanted = args.step or args.step_opt
    names = [s["name"] for s in run["steps"]]
    if wanted and wanted not in names:
        raise RunError(
            f"run {run['id']} has no step {wanted!r}; its steps are: {', '.join(names)}"
        )
    logs: dict[str, dict[str, str]] = {}
    for name in [wanted] if wanted else names:
        d = ws.step_dir(run["id"], name)
        logs[name] = {
            stream: (d / f"{stream}.log").read_text(errors="replace")
            if (d / f"{stream}.log").exists()
            else ""
            for stream in ("stdout", "stderr")
        }
    if args.json:
        print(json.dumps(logs, indent=2))
        return 0
    for name, streams in logs.items():
        if not wanted:
            print(f"===== {name} =====")
        sys.stdout.write(streams["stdout"])
        if streams["stderr"]:
            sys.stdout.flush()
            sys.stderr.write(streams["stderr"])
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    from jupyter_mlk.pipeline.executor import cancel_run
    from jupyter_mlk.store.workspace import Workspace

    if args.run.startswith("s-"):
        from jupyter_mlk.cli.tuning import cancel_sweep

        return cancel_sweep(args.run, args.json)

    run = cancel_run(Workspace(), args.run)
    if args.json:
        print(json.dumps({"id": run["id"], "state": run["state"]}))
    if run["state"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
        if not args.json:
            print(f"run {run['id']} {run['state']}")
        return 0
    print(f"run {run['id']}: cancel requested; it has not stopped yet", file=sys.stderr)
    return 1
