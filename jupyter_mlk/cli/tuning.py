"""CLI verbs for sweeps: ``sweep`` and ``sweeps`` (``show`` and ``cancel`` take sweep ids)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    """Add the sweep verbs to ``jupyter mlk``."""
    p = subparsers.add_parser("sweep", help="search parameter values for the best metric")
    p.add_argument("notebook", nargs="?", help="the notebook (not needed with --resume)")
    p.add_argument("--spec", help="a sweep spec or Katib Experiment YAML file")
    p.add_argument(
        "--param",
        action="append",
        metavar="NAME=TYPE:SPEC",
        dest="search",
        help="a parameter to search: lr=double:1e-4:1e-1:log, depth=int:2:8, "
        "lr=discrete:0.01,0.1, model=categorical:rf,gbt",
    )
    p.add_argument(
        "-p",
        "--set",
        action="append",
        metavar="NAME=VALUE",
        dest="fixed",
        help="a parameter fixed for every trial",
    )
    p.add_argument("--objective", help="the metric to optimise")
    p.add_argument("--goal", choices=["maximize", "minimize"])
    p.add_argument("--target", type=float, help="stop when the objective reaches this value")
    p.add_argument(
        "--algorithm",
        help="random, grid, tpe, multivariate-tpe, cmaes, sobol, bayesianoptimization, hyperband",
    )
    p.add_argument("--early-stopping", choices=["medianstop"])
    p.add_argument("--trials", type=int, help="maxTrialCount")
    p.add_argument("--parallel", type=int, help="parallelTrialCount")
    p.add_argument("--max-failed", type=int, help="maxFailedTrialCount")
    p.add_argument("--backend", choices=["local", "kubernetes"], default="local")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="with --backend kubernetes: print the Katib Experiment, create nothing",
    )
    p.add_argument("--resume", metavar="SWEEP", help="continue a sweep that was interrupted")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_sweep)

    p = subparsers.add_parser("sweeps", help="list the sweeps of this workspace")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_sweeps)


def build_spec(args: argparse.Namespace) -> tuple[Any, list[str]]:
    """The spec from --spec, with the flags applied on top."""
    from jupyter_mlk.tuning.spec import SweepError, load_spec, parse_param_flag, parse_spec

    if args.spec:
        spec, warnings = load_spec(args.spec)
        raw: dict[str, Any] = {}
    else:
        spec, warnings, raw = None, [], {}
    if args.search or spec is None:
        if not args.search and spec is None:
            raise SweepError("give --spec FILE or at least one --param NAME=TYPE:SPEC to search")
        if not (args.objective or spec):
            raise SweepError("--objective: name the metric to optimise")
        raw = {
            "objective": {
                "type": args.goal or (spec.goal if spec else "maximize"),
                "objectiveMetricName": args.objective or (spec.objective if spec else ""),
            },
            "algorithm": {
                "algorithmName": args.algorithm or (spec.algorithm if spec else "random")
            },
            "parameters": [parse_param_flag(t) for t in args.search or []],
        }
        if spec is not None and not args.search:
            raw["parameters"] = []
        spec2, more = parse_spec(raw, source="flags")
        if spec is not None:
            from dataclasses import replace

            spec = replace(spec, parameters=spec2.parameters)
        else:
            spec = spec2
        warnings += more
    from dataclasses import replace

    changes: dict[str, Any] = {}
    for flag, field in (
        ("objective", "objective"),
        ("goal", "goal"),
        ("target", "target"),
        ("algorithm", "algorithm"),
        ("trials", "max_trials"),
        ("parallel", "parallel"),
        ("max_failed", "max_failed"),
        ("early_stopping", "early_stopping"),
    ):
        value = getattr(args, flag)
        if value is not None:
            changes[field] = value
    for field in ("max_trials", "parallel"):
        if field in changes and changes[field] < 1:
            raise SweepError(f"--{field.replace('_', '-')}: give at least 1")
    return replace(spec, **changes), warnings


def _print_sweep(sweep: dict[str, Any]) -> None:
    spec = sweep["spec"]
    print(
        f"sweep {sweep['id']} {sweep['state']}"
        + (f": {sweep['reason']}" if sweep.get("reason") else "")
    )
    names = [p["name"] for p in spec["parameters"]]
    print(f"  {'#':>3}  {'STATE':<10} {spec['objective']:>12}  " + "  ".join(names) + "  RUN")
    for t in sweep["trials"]:
        value = f"{t['objective']:.6g}" if t["objective"] is not None else "-"
        params = "  ".join(str(t["params"].get(n, "")) for n in names)
        print(f"  {t['number']:>3}  {t['state']:<10} {value:>12}  {params}  {t['run_id'] or ''}")
        if t["error"] and t["state"] == "FAILED":
            print(f"       {t['error']}")
    best = sweep.get("best")
    if best:
        params = ", ".join(f"{k}={v}" for k, v in best["params"].items())
        print(
            f"  best: trial {best['number']}: {spec['objective']}={best['objective']:.6g} "
            f"({params})"
        )


def cmd_sweep(args: argparse.Namespace) -> int:
    from jupyter_mlk.cli.pipeline import load_graph
    from jupyter_mlk.notebook.params import parse_assignments, resolve_overrides
    from jupyter_mlk.store.workspace import Workspace
    from jupyter_mlk.tuning.local import LocalSweep, check_against_notebook, make_sampler
    from jupyter_mlk.tuning.spec import SweepError, SweepSpec
    from jupyter_mlk.tuning.store import SweepStore, new_sweep_id

    ws = Workspace()
    store = SweepStore(ws.root)
    if args.resume:
        sweep = store.get_sweep(args.resume)
        if sweep["state"] in ("SUCCEEDED", "RUNNING"):
            raise SweepError(f"sweep {sweep['id']} is {sweep['state']}: nothing to resume")
        spec = SweepSpec.from_dict(sweep["spec"])
        warnings: list[str] = []
        notebook, fixed, sweep_id = sweep["notebook"], sweep["base_params"], sweep["id"]
    else:
        if not args.notebook:
            raise SweepError("name the notebook to sweep (or --resume SWEEP)")
        spec, warnings = build_spec(args)
        notebook, fixed, sweep_id = args.notebook, parse_assignments(args.fixed), None
    graph = load_graph(notebook)
    resolve_overrides(graph.parameters, fixed)
    warnings += check_against_notebook(spec, graph)
    make_sampler(spec)  # refuse unsupported algorithms before anything starts
    if args.backend == "kubernetes":
        from jupyter_mlk.tuning.katib import submit_experiment

        status: int = submit_experiment(
            graph, spec, fixed, dry_run=args.dry_run, as_json=args.json
        )
        return status
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    if sweep_id is None:
        sweep_id = new_sweep_id()
        store.create_sweep(sweep_id, str(Path(notebook).resolve()), spec.to_dict(), fixed)
    else:
        store.adopt(sweep_id)

    def on_event(kind: str, data: dict[str, Any]) -> None:
        if args.json or kind != "trial":
            return
        value = data.get("objective")
        extra = f" {spec.objective}={value:.6g}" if value is not None else ""
        if data.get("error") and data["state"] == "FAILED":
            extra = f" ({data['error']})"
        print(f"trial {data['number']} {data['state']}{extra}", file=sys.stderr, flush=True)

    runner = LocalSweep(ws.root, graph, spec, fixed, sweep_id, on_event)
    previous = signal.signal(signal.SIGTERM, lambda *a: runner.cancel())
    try:
        result = runner.run()
    finally:
        signal.signal(signal.SIGTERM, previous)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        _print_sweep(result)
    return 0 if result["state"] == "SUCCEEDED" else 1


def cmd_sweeps(args: argparse.Namespace) -> int:
    from jupyter_mlk.store.workspace import Workspace
    from jupyter_mlk.tuning.store import SweepStore

    sweeps = SweepStore(Workspace().root).list_sweeps()
    if args.json:
        print(json.dumps(sweeps, indent=2, default=str))
        return 0
    if not sweeps:
        print("no sweeps yet; start one with: jupyter mlk sweep NOTEBOOK --spec FILE")
        return 0
    for s in sweeps:
        best = s["best"]
        best_text = f"best {s['spec']['objective']}={best['objective']:.6g}" if best else ""
        print(f"{s['id']:<24} {s['state']:<10} {Path(s['notebook']).name}  {best_text}")
    return 0


def show_sweep(ref: str, as_json: bool) -> int:
    """``jupyter mlk show SWEEP``."""
    from jupyter_mlk.store.workspace import Workspace
    from jupyter_mlk.tuning.store import SweepStore

    sweep = SweepStore(Workspace().root).get_sweep(ref)
    if as_json:
        print(json.dumps(sweep, indent=2, default=str))
    else:
        _print_sweep(sweep)
    return 0


def cancel_sweep(ref: str, as_json: bool) -> int:
    """``jupyter mlk cancel SWEEP``: stop its trials, leave no process behind."""
    from jupyter_mlk.store.workspace import Workspace
    from jupyter_mlk.tuning.store import SweepStore
    from jupyter_mlk.tuning.store import cancel_sweep as cancel

    sweep = cancel(SweepStore(Workspace().root), ref)
    if as_json:
        print(json.dumps({"id": sweep["id"], "state": sweep["state"]}))
    else:
        print(f"sweep {sweep['id']} {sweep['state']}")
    return 0 if sweep["state"] not in ("PENDING", "RUNNING") else 1
