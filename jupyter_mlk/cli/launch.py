"""``jupyter mlk launch | servers | stop``: notebook servers from the command line.

The launcher (``spawner``) is imported inside each verb so that ``jupyter mlk --help``
and the pipeline verbs stay fast.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``launch``, ``servers`` and ``stop`` verbs."""
    launch = subparsers.add_parser(
        "launch", help="start a notebook server (local process or Kubernetes pod)"
    )
    launch.add_argument("--name", default="default", help="server name (any characters)")
    launch.add_argument("--profile", default="", help="a configured profile, e.g. gpu-1")
    launch.add_argument("--backend", choices=["local", "kubernetes"], default=None)
    launch.add_argument("--gpus", type=int, default=None, help="number of GPUs")
    launch.add_argument("--gpu-kind", default=None, help="GPU model, e.g. A100")
    launch.add_argument("--memory", default=None, help="memory, e.g. 16Gi")
    launch.add_argument("--cpu", default=None, help="CPU cores, e.g. 4 or 500m")
    launch.add_argument("--image", default=None, help="container image (kubernetes)")
    launch.add_argument("--environment", default=None, help="Python environment (local)")
    launch.add_argument("--idle-timeout", default=None, help="stop after idling, e.g. 2h")
    launch.add_argument("--start-timeout", default=None, help="give up after, e.g. 10m")
    launch.add_argument("--json", action="store_true", help="machine-readable output")
    launch.set_defaults(func=run_launch)

    servers = subparsers.add_parser("servers", help="list notebook servers")
    servers.add_argument("--all", action="store_true", help="include stopped and failed ones")
    servers.add_argument("--json", action="store_true", help="machine-readable output")
    servers.set_defaults(func=run_servers)

    stop = subparsers.add_parser("stop", help="stop a notebook server")
    stop.add_argument("name", help="server name or id")
    stop.add_argument(
        "--delete-volume",
        action="store_true",
        help="also delete the workspace volume this server created (kubernetes)",
    )
    stop.add_argument("--json", action="store_true", help="machine-readable output")
    stop.set_defaults(func=run_stop)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "backend": args.backend,
        "gpus": args.gpus,
        "gpu_kind": args.gpu_kind,
        "memory": args.memory,
        "cpu": args.cpu,
        "image": args.image,
        "environment": args.environment,
        "idle_timeout": args.idle_timeout,
        "start_timeout": args.start_timeout,
    }


def run_launch(args: argparse.Namespace) -> int:
    """Start a server, print its stages on stderr, and its URL once ready."""
    from spawner import Launcher
    from spawner.errors import ClassifiedLaunchError

    launcher = Launcher()
    overrides = {k: v for k, v in _overrides(args).items() if v is not None}
    if overrides.get("backend") is None:
        overrides["backend"] = launcher.config.default_backend
    request = launcher.resolve(args.name, profile=args.profile, overrides=overrides)
    started = time.monotonic()

    def show(event: Any) -> None:
        if not args.json:
            elapsed = time.monotonic() - started
            print(f"[{elapsed:5.1f}s] {event.stage.value:<9} {event.message}", file=sys.stderr)

    try:
        record = launcher.launch(request, on_event=show)
    except ClassifiedLaunchError as exc:
        if args.json:
            print(json.dumps({"error": str(exc), "code": exc.code, "type": type(exc).__name__}))
            return 1
        raise
    token = launcher.token(record)
    url = f"{record.url}?token={token}" if record.backend == "local" else record.url
    if args.json:
        print(json.dumps({**record.to_dict(), "url_with_token": url}, indent=2))
    else:
        print(url)
    return 0


def run_servers(args: argparse.Namespace) -> int:
    """List servers (active ones unless ``--all``), refreshing local ones first."""
    from spawner import Launcher

    launcher = Launcher()
    records = launcher.refresh("local")
    if not args.all:
        records = [r for r in records if r.is_active]
    if args.json:
        print(json.dumps([r.to_dict() for r in records], indent=2))
        return 0
    if not records:
        print("no notebook servers (jupyter mlk launch starts one)")
        return 0
    print(f"{'NAME':<20} {'BACKEND':<11} {'STATE':<9} {'GPUS':<6} URL")
    for record in records:
        gpus = ",".join(record.gpus) or "-"
        print(f"{record.name:<20} {record.backend:<11} {record.state:<9} {gpus:<6} {record.url}")
    return 0


def run_stop(args: argparse.Namespace) -> int:
    """Stop one server by name (or id)."""
    from spawner import Launcher

    launcher = Launcher()
    record = launcher.stop(launcher.get(args.name), delete_volume=args.delete_volume)
    if args.json:
        print(json.dumps(record.to_dict(), indent=2))
    else:
        print(f"stopped {record.name}")
    return 0
