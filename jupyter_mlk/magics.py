"""The ``%mlk`` magic: the CLI's verbs inside a notebook, acting on that notebook.

``%load_ext jupyter_mlk``, then ``%mlk graph``, ``%mlk run -p n_estimators=50``,
``%mlk runs``, ``%mlk logs RUN``, ``%mlk compile -o file.yaml``. Without a notebook argument
the verbs that need one use the notebook this kernel belongs to (jupyter-server tells the
kernel through ``__session__`` / ``JPY_SESSION_NAME``), or ``--notebook PATH``.
"""

from __future__ import annotations

import contextlib
import html
import io
import os
import shlex
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.display import display

from jupyter_mlk.errors import MlkError

NOTEBOOK_VERBS = ("graph", "run", "compile", "sweep")
_STATE_COLOURS = {
    "PENDING": "var(--jp-ui-font-color2, #777)",
    "RUNNING": "var(--jp-brand-color1, #1976d2)",
    "SUCCEEDED": "var(--jp-success-color1, #388e3c)",
    "CACHED": "var(--jp-info-color1, #0097a7)",
    "SKIPPED": "var(--jp-warn-color1, #f57c00)",
    "FAILED": "var(--jp-error-color1, #d32f2f)",
    "CANCELLED": "var(--jp-ui-font-color2, #777)",
}


def current_notebook(user_ns: dict[str, Any]) -> Path | None:
    """The notebook this kernel belongs to, when the server said so."""
    for candidate in (user_ns.get("__session__"), os.environ.get("JPY_SESSION_NAME")):
        if not candidate or not str(candidate).endswith(".ipynb"):
            continue
        path = Path(str(candidate))
        for option in (path, Path.cwd() / path.name):
            if option.is_file():
                return option.resolve()
    return None


def _badge(state: str) -> str:
    colour = _STATE_COLOURS.get(state, "inherit")
    return f'<span style="color:{colour};font-weight:600">{html.escape(state)}</span>'


def graph_mermaid(graph: Any) -> str:
    """The step graph in Mermaid, which JupyterLab lays out and draws."""
    lines = ["flowchart LR"]
    for s in graph.steps:
        label = s.name + (f" [if {s.condition.text}]" if s.condition else "")
        lines.append(f'  {s.kfp_name.replace("-", "_")}["{label}"]')
    for up, down in graph.edges:
        a, b = (graph.step(n).kfp_name.replace("-", "_") for n in (up, down))
        lines.append(f"  {a} --> {b}")
    return "\n".join(lines)


def graph_html(graph: Any) -> str:
    """A table of the steps with their inputs, outputs, parameters and problems."""
    rows = []
    for s in graph.steps:
        inputs = ", ".join(f"{n} ← {src}" for n, src in sorted(s.inputs.items()))
        rows.append(
            "<tr>"
            f"<td><b>{html.escape(s.name)}</b></td>"
            f"<td>{', '.join(str(c.index) for c in s.cells)}</td>"
            f"<td>{html.escape(inputs)}</td>"
            f"<td>{html.escape(', '.join(s.outputs))}</td>"
            f"<td>{html.escape(', '.join(s.params))}</td>"
            f"<td>{html.escape(s.condition.text if s.condition else '')}</td>"
            "</tr>"
        )
    problems = "".join(f"<li>{html.escape(d.describe())}</li>" for d in graph.diagnostics)
    params = ", ".join(f"{p.name}: {p.type} = {html.escape(p.source)}" for p in graph.parameters)
    return (
        f"<div><b>{len(graph.steps)} step(s)</b>"
        + (f" &middot; parameters: {params}" if params else "")
        + "<table><thead><tr><th>step</th><th>cells</th><th>inputs</th><th>outputs</th>"
        "<th>parameters</th><th>condition</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
        + (f"<ul>{problems}</ul>" if problems else "")
        + "</div>"
    )


def _display(data: dict[str, Any], **kwargs: Any) -> Any:
    return display(data, raw=True, **kwargs)  # type: ignore[no-untyped-call]


def _show(html_text: str) -> None:
    _display({"text/html": html_text})


def run_html(run_id: str, states: dict[str, str], notes: dict[str, str], final: str = "") -> str:
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{_badge(state)}</td>"
        f"<td>{html.escape(notes.get(name, ''))}</td></tr>"
        for name, state in states.items()
    )
    title = f"run {html.escape(run_id)}" + (f" {_badge(final)}" if final else "")
    return (
        f"<div><b>{title}</b><table><thead><tr><th>step</th><th>state</th><th></th></tr>"
        f"</thead><tbody>{rows}</tbody></table></div>"
    )


@magics_class
class MlkMagics(Magics):  # type: ignore[misc]
    """``%mlk VERB ...``."""

    @line_magic  # type: ignore[untyped-decorator]
    def mlk(self, line: str) -> Any:
        """Run a ``jupyter mlk`` verb; see ``%mlk --help``."""
        try:
            argv = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"%mlk: {exc}") from None
        argv = self._with_notebook(argv)
        verb = argv[0] if argv else ""
        try:
            if verb == "graph" and "--json" not in argv:
                return self._graph(argv)
            if verb == "run" and "--json" not in argv:
                return self._run(argv)
            if verb == "runs" and "--json" not in argv:
                return self._runs(argv)
            if verb == "sweep" and not {"--json", "--resume", "--dry-run"} & set(argv):
                return self._sweep(argv)
            self._cli(argv)
            return None
        except MlkError as exc:
            raise UsageError(str(exc)) from None

    def _with_notebook(self, argv: list[str]) -> list[str]:
        explicit = None
        if "--notebook" in argv:
            i = argv.index("--notebook")
            if i + 1 >= len(argv):
                raise UsageError("--notebook needs a path")
            explicit = argv[i + 1]
            argv = argv[:i] + argv[i + 2 :]
        if not argv or argv[0] not in NOTEBOOK_VERBS:
            return argv
        positional = [a for a in argv[1:] if a.endswith(".ipynb")]
        if positional:
            return argv
        assert self.shell is not None
        path = explicit or current_notebook(self.shell.user_ns)
        if path is None:
            raise UsageError(
                f"%mlk {argv[0]}: cannot tell which notebook this kernel belongs to; "
                "give it: %mlk " + argv[0] + " --notebook PATH"
            )
        return [argv[0], str(path), *argv[1:]]

    def _cli(self, argv: list[str]) -> int:
        from jupyter_mlk.cli import main

        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse: --help or a usage error
                code = int(exc.code or 0)
        message = err.getvalue().strip()
        if code and message:
            raise UsageError(message.removeprefix("error: "))
        if message:
            print(message)
        return code

    def _graph(self, argv: list[str]) -> None:
        from jupyter_mlk.notebook.graph import build_graph

        graph = build_graph(argv[1])
        _show(graph_html(graph))
        _display({"text/vnd.mermaid": graph_mermaid(graph), "text/plain": graph_mermaid(graph)})

    def _runs(self, argv: list[str]) -> None:
        from jupyter_mlk.store.workspace import Workspace

        runs = Workspace().store.list_runs(limit=20)
        rows = "".join(
            f"<tr><td>{html.escape(r['id'])}</td><td>{_badge(r['state'])}</td>"
            f"<td>{html.escape(os.path.relpath(r['notebook']))}</td>"
            f"<td>{(r['duration'] or 0):.1f}s</td>"
            f"<td>{html.escape(', '.join(f'{k}={v}' for k, v in r['params'].items()))}</td>"
            f"<td>{html.escape(', '.join(f'{k}={v:g}' for k, v in r['metrics'].items()))}</td>"
            "</tr>"
            for r in runs
        )
        _show(
            "<table><thead><tr><th>run</th><th>state</th><th>notebook</th><th>time</th>"
            f"<th>parameters</th><th>metrics</th></tr></thead><tbody>{rows}</tbody></table>"
        )

    def _sweep(self, argv: list[str]) -> None:
        """A local sweep with a live trials table, then the plots."""
        import argparse

        from jupyter_mlk.cli.pipeline import load_graph
        from jupyter_mlk.cli.tuning import build_spec
        from jupyter_mlk.cli.tuning import register as register_verbs
        from jupyter_mlk.notebook.params import parse_assignments, resolve_overrides
        from jupyter_mlk.store.workspace import Workspace
        from jupyter_mlk.tuning.local import LocalSweep, check_against_notebook, make_sampler
        from jupyter_mlk.tuning.store import SweepStore, new_sweep_id

        parser = argparse.ArgumentParser(prog="jupyter mlk", add_help=False)
        register_verbs(parser.add_subparsers(dest="verb"))
        try:
            args = parser.parse_args(argv)
        except SystemExit:
            raise UsageError(
                "%mlk sweep [--notebook PATH] --spec FILE | --param NAME=TYPE:SPEC"
                " ... --objective NAME [--trials N] [--parallel N]"
            ) from None
        if args.backend != "local":
            self._cli(argv)
            return
        spec, warnings = build_spec(args)
        graph = load_graph(args.notebook)
        fixed = parse_assignments(args.fixed)
        resolve_overrides(graph.parameters, fixed)
        warnings += check_against_notebook(spec, graph)
        make_sampler(spec)
        for w in warnings:
            print(f"warning: {w}")
        ws = Workspace()
        store = SweepStore(ws.root)
        sweep_id = new_sweep_id()
        store.create_sweep(sweep_id, str(graph.path), spec.to_dict(), fixed)
        handle = _display({"text/html": sweep_html(store.get_sweep(sweep_id))}, display_id=True)

        def on_event(kind: str, data: dict[str, Any]) -> None:
            if handle is not None:
                live = SweepStore(ws.root)  # events come from the sweep's worker threads
                try:
                    handle.update({"text/html": sweep_html(live.get_sweep(sweep_id))}, raw=True)
                finally:
                    live.close()

        result = LocalSweep(ws.root, graph, spec, fixed, sweep_id, on_event).run()
        if handle is not None:
            handle.update({"text/html": sweep_html(result)}, raw=True)
        if any(t["objective"] is not None for t in result["trials"]):
            plot = sweep_plot(result)
            _display(
                {
                    "application/vnd.vegalite.v5+json": plot,
                    "text/plain": f"<plot of {len(result['trials'])} trials>",
                }
            )

    def _run(self, argv: list[str]) -> Any:
        import argparse

        from jupyter_mlk.cli.pipeline import load_graph
        from jupyter_mlk.notebook.params import parse_assignments, resolve_overrides
        from jupyter_mlk.pipeline.executor import LocalExecutor
        from jupyter_mlk.store.workspace import Workspace

        parser = argparse.ArgumentParser(prog="%mlk run", add_help=False)
        parser.add_argument("notebook")
        parser.add_argument("-p", "--param", action="append")
        parser.add_argument("--no-cache", action="store_true")
        parser.add_argument("--workers", type=int)
        try:
            args = parser.parse_args(argv[1:])
        except SystemExit:
            raise UsageError(
                "%mlk run [--notebook PATH] [-p NAME=VALUE ...] [--no-cache] [--workers N]"
            ) from None
        graph = load_graph(args.notebook)
        values = resolve_overrides(graph.parameters, parse_assignments(args.param))
        states = {s.name: "PENDING" for s in graph.steps}
        notes: dict[str, str] = {}
        handle = _display({"text/html": run_html("…", states, notes)}, display_id=True)
        run_id = ""

        def on_event(step: str, state: str, details: dict[str, Any]) -> None:
            if not step:
                return
            states[step] = state
            if details.get("duration") is not None and state in ("SUCCEEDED", "FAILED"):
                notes[step] = f"{details['duration']:.2f}s"
            if state == "FAILED" and details.get("error"):
                err = details["error"]
                notes[step] = (
                    f"{err.get('ename')}: {err.get('evalue')} "
                    f"(cell {err.get('cell_index')}, line {err.get('line')})"
                )
            if details.get("reason") and state in ("CACHED", "SKIPPED"):
                notes[step] = details["reason"]
            if handle is not None:
                handle.update({"text/html": run_html(run_id, states, notes)}, raw=True)

        executor = LocalExecutor(
            Workspace(), workers=args.workers, use_cache=not args.no_cache, on_event=on_event
        )
        run_id = executor.start(graph, values)
        result = executor.run(graph, values, run_id=run_id)
        if handle is not None:
            handle.update({"text/html": run_html(run_id, states, notes, result.state)}, raw=True)
        if result.metrics:
            print("metrics: " + ", ".join(f"{k}={v:g}" for k, v in result.metrics.items()))
        return None


def sweep_html(sweep: dict[str, Any]) -> str:
    """The trials table of a sweep, best trial marked."""
    spec = sweep["spec"]
    names = [p["name"] for p in spec["parameters"]]
    best = (sweep.get("best") or {}).get("number")
    rows = []
    for t in sweep["trials"]:
        value = f"{t['objective']:.6g}" if t["objective"] is not None else ""
        mark = " &#9733;" if t["number"] == best else ""
        cells = "".join(f"<td>{html.escape(str(t['params'].get(n, '')))}</td>" for n in names)
        rows.append(
            f"<tr><td>{t['number']}{mark}</td><td>{_badge(t['state'])}</td>{cells}"
            f"<td>{value}</td><td>{html.escape(t.get('error') or '')}</td></tr>"
        )
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    title = f"sweep {html.escape(sweep['id'])} {_badge(sweep['state'])}"
    if sweep.get("reason"):
        title += f" &middot; {html.escape(sweep['reason'])}"
    return (
        f"<div><b>{title}</b><table><thead><tr><th>#</th><th>state</th>{head}"
        f"<th>{html.escape(spec['objective'])}</th><th></th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def sweep_plot(sweep: dict[str, Any]) -> dict[str, Any]:
    """A Vega-Lite spec: the objective over trials, and against each parameter."""
    spec = sweep["spec"]
    objective = spec["objective"]
    values = [
        {"trial": t["number"], objective: t["objective"], **t["params"]}
        for t in sweep["trials"]
        if t["objective"] is not None
    ]
    charts: list[dict[str, Any]] = [
        {
            "title": f"{objective} over trials",
            "mark": {"type": "line", "point": True},
            "encoding": {
                "x": {"field": "trial", "type": "quantitative"},
                "y": {"field": objective, "type": "quantitative", "scale": {"zero": False}},
            },
        }
    ]
    for p in spec["parameters"]:
        kind = "nominal" if p["type"] in ("categorical",) else "quantitative"
        charts.append(
            {
                "title": f"{p['name']} vs {objective}",
                "mark": "point",
                "encoding": {
                    "x": {
                        "field": p["name"],
                        "type": kind,
                        **({"scale": {"type": "log"}} if p.get("log") else {}),
                    },
                    "y": {"field": objective, "type": "quantitative", "scale": {"zero": False}},
                },
            }
        )
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "data": {"values": values},
        "hconcat": charts,
    }


def register(ipython: Any) -> None:
    """Register the magics with an IPython shell."""
    ipython.register_magics(MlkMagics)
