"""The ``jupyter mlk`` command: one entry point, one module per group of verbs.

Each verb module exposes ``register(subparsers)``, which adds its sub-commands and sets
``func`` on them. A verb returns the process exit status. Errors that jupyter_mlk raises
on purpose (:class:`~jupyter_mlk.errors.MlkError`) are printed as one clear message (or a
JSON object with ``--json``), never as a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from jupyter_mlk import __version__
from jupyter_mlk.errors import GraphError, MlkError

VERB_MODULES = (
    "jupyter_mlk.cli.pipeline",
    "jupyter_mlk.cli.tuning",
    "jupyter_mlk.cli.launch",
    "jupyter_mlk.cli.serving",
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every verb registered."""
    import importlib

    parser = argparse.ArgumentParser(
        prog="jupyter mlk",
        description="Notebooks to pipelines, sweeps, endpoints and notebook servers.",
    )
    parser.add_argument("--version", action="version", version=f"jupyter-mlk {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="verb", metavar="VERB")
    for name in VERB_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(subparsers)
    return parser


def print_error(exc: MlkError, as_json: bool) -> None:
    """Print an error the user can act on: JSON on stdout with ``--json``, else stderr."""
    diagnostics = exc.diagnostics if isinstance(exc, GraphError) else []
    if as_json:
        body = {"error": str(exc), "type": type(exc).__name__, "diagnostics": diagnostics}
        print(json.dumps(body, indent=2))
    else:
        print(f"error: {exc}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one verb and return its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        status: int = args.func(args)
    except MlkError as exc:
        print_error(exc, bool(getattr(args, "json", False)))
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return status


if __name__ == "__main__":  # pragma: no cover - python -m jupyter_mlk.cli
    sys.exit(main())
