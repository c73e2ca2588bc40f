"""CLI verbs for serving: deploy, promote, rollback, deployments, undeploy, predict, serve.

Each verb is a thin call into :mod:`jupyter_mlk.serving.engine`, imported inside the verb
so that ``jupyter mlk --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from jupyter_mlk.errors import ServingError


def register(subparsers: Any) -> None:
    """Add the serving verbs to ``jupyter mlk``."""
    p = subparsers.add_parser("deploy", help="serve a model behind an inference endpoint")
    p.add_argument("model", help="RUN:VARIABLE, RUN:STEP/VARIABLE, a model file or s3:// URI")
    p.add_argument("--name", required=True, help="deployment name (lowercase, digits, '-')")
    p.add_argument(
        "--canary-percent",
        type=int,
        metavar="P",
        help="send P%% of requests to this new version, the rest to the current",
    )
    p.add_argument("--backend", choices=["local", "kubernetes"], default="local")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="check and show what would be deployed (KServe: print the manifest)",
    )
    p.add_argument("--namespace", help="Kubernetes namespace (kubernetes backend)")
    p.add_argument("--cpu", help="predictor CPU, e.g. 1 or 500m (kubernetes backend)")
    p.add_argument("--memory", help="predictor memory, e.g. 2Gi (kubernetes backend)")
    p.add_argument("--gpus", type=int, default=0, help="predictor GPUs (kubernetes backend)")
    p.add_argument("--service-account", help="account with the S3 credentials (kubernetes)")
    p.add_argument("--protocol", choices=["v1", "v2"], help="KServe protocol (kubernetes)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_deploy)

    for verb, text in (
        ("promote", "make the canary the only version"),
        ("rollback", "drop the canary; the current version takes all traffic"),
        ("undeploy", "remove a deployment"),
    ):
        p = subparsers.add_parser(verb, help=text)
        p.add_argument("name")
        p.add_argument("--json", action="store_true")
        p.set_defaults(func=cmd_change, verb=verb)

    p = subparsers.add_parser("deployments", help="list deployments with versions and traffic")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_deployments)

    p = subparsers.add_parser("predict", help="send a request to a deployment")
    p.add_argument("name")
    p.add_argument("data", help="JSON: rows, a V1 or a V2 body; or @FILE")
    p.add_argument("--json", action="store_true", help="print the whole response")
    p.set_defaults(func=cmd_predict)

    p = subparsers.add_parser("serve", help="run the local inference server in the foreground")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default: the one used before, else free)")
    p.add_argument("--stop", action="store_true", help="stop the running server instead")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_serve)


def _workspace() -> Any:
    from jupyter_mlk.store.workspace import Workspace

    return Workspace()


def cmd_deploy(args: argparse.Namespace) -> int:
    from jupyter_mlk.serving import engine, kserve

    result = engine.deploy_model(
        _workspace(),
        args.model,
        args.name,
        canary_percent=args.canary_percent,
        backend=args.backend,
        dry_run=args.dry_run,
        namespace=args.namespace,
        resources=kserve.Resources(cpu=args.cpu, memory=args.memory, gpus=args.gpus),
        service_account=args.service_account,
        protocol_version=args.protocol,
    )
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    elif args.dry_run and "manifest" in result:
        print(kserve.to_yaml(result["manifest"]), end="")
    elif args.dry_run:
        print(
            f"would deploy {result['model_ref']} ({result['format']}) as {result['name']} "
            f"version {result['version']}"
        )
    else:
        _print_deployment(result)
    return 0


def cmd_change(args: argparse.Namespace) -> int:
    from jupyter_mlk.serving import engine

    ws = _workspace()
    action = {"promote": engine.promote, "rollback": engine.rollback, "undeploy": engine.undeploy}[
        args.verb
    ]
    result = action(ws, args.name)
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    elif args.verb == "undeploy":
        print(f"undeployed {args.name}")
    else:
        _print_deployment(result)
    return 0


def cmd_deployments(args: argparse.Namespace) -> int:
    from jupyter_mlk.serving import engine

    deployments = engine.list_deployments(_workspace())
    if args.json:
        print(json.dumps(deployments, indent=2, ensure_ascii=False))
        return 0
    if not deployments:
        print("no deployments; `jupyter mlk deploy MODEL --name NAME` creates one")
    for dep in deployments:
        _print_deployment(dep)
    return 0


def _print_deployment(dep: dict[str, Any]) -> None:
    split = ", ".join(f"v{t['version']} {t['percent']}% ({t['role']})" for t in dep["traffic"])
    print(f"{dep['name']}  {dep['status']}  {dep['backend']}  {dep['url'] or '-'}")
    print(f"  traffic: {split or 'none'}")
    live = {t["version"] for t in dep["traffic"]}
    for v in dep["versions"]:
        if v["version"] not in live:
            continue
        lin = v["lineage"]
        origin = (
            f"run {lin.get('run')} step {lin.get('step')} value {lin.get('variable')}"
            if lin.get("source") == "run"
            else lin.get("path") or lin.get("uri") or ""
        )
        error = f"  error: {v['error']}" if v["error"] else ""
        print(f"  v{v['version']} {v['status']} {v['format']} {v['model_ref']} <- {origin}{error}")


def _read_data(text: str) -> Any:
    if text.startswith("@"):
        path = Path(text[1:])
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ServingError(f"cannot read the request file {path}: {exc.strerror}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ServingError(
            f"DATA is not valid JSON ({exc.msg} at column {exc.colno}); give rows such as "
            "'[[5.1, 3.5, 1.4, 0.2]]', a V1/V2 body, or @FILE"
        ) from None


def cmd_predict(args: argparse.Namespace) -> int:
    from jupyter_mlk.serving import engine

    response = engine.predict(_workspace(), args.name, _read_data(args.data))
    if args.json:
        print(json.dumps(response, indent=2, ensure_ascii=False))
    elif "predictions" in response:
        print(json.dumps(response["predictions"], ensure_ascii=False))
    else:
        for out in response.get("outputs", []):
            print(json.dumps(out.get("data"), ensure_ascii=False))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import logging

    from jupyter_mlk.serving import engine

    ws = _workspace()
    if args.stop:
        stopped = engine.stop_server(ws)
        if args.json:
            print(json.dumps({"stopped": stopped}))
        else:
            print("stopped the inference server" if stopped else "no inference server running")
        return 0
    logging.getLogger("jupyter_mlk").setLevel(logging.INFO)
    print(f"restoring {len(engine.list_deployments(ws))} deployment(s)", file=sys.stderr)
    engine.serve(ws, args.host, args.port)
    return 0
