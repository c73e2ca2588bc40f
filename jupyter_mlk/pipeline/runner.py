"""The step runner: runs one step's cells through IPython and exchanges its values.

The same runner executes a step in the local executor (in a forked worker process) and in
a KFP task (``python -m jupyter_mlk.pipeline.runner``). It:

1. runs the imports and parameters cells, then sets the parameter values of the run;
2. loads the input bundles (whole, so objects shared between names stay shared);
3. runs the functions cells, the step's cells and the metrics cells attached to it,
   through an IPython shell, so magics and ``!`` lines work as in the notebook;
4. writes the output bundles, the metrics and the values later conditions compare;
5. keeps an executed copy of the cells with their outputs (streams, images, tables,
   results, errors) as a notebook: the step's log.

A failing cell stops the step; the outcome names the exception, the cell and the line.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import sys
import time
import traceback
import types
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from IPython.core.compilerop import CachingCompiler
from IPython.core.displayhook import DisplayHook
from IPython.core.displaypub import DisplayPublisher
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

from jupyter_mlk.errors import MlkError
from jupyter_mlk.notebook.params import from_json_value
from jupyter_mlk.pipeline.spec import CellSpec, StepSpec
from jupyter_mlk.pipeline.values import read_bundle, write_bundle


@dataclass
class StepError:
    """Where and why a step failed."""

    ename: str
    evalue: str
    cell_index: int | None = None
    cell_id: str | None = None
    line: int | None = None
    source_line: str | None = None
    traceback: str = ""

    def describe(self, step: str) -> str:
        where = ""
        if self.cell_index is not None:
            where = f" in cell {self.cell_index} (id {self.cell_id})"
            if self.line is not None:
                where += f", line {self.line}"
                if self.source_line:
                    where += f": {self.source_line.strip()}"
        return f"step {step} failed{where}: {self.ename}: {self.evalue}"


@dataclass
class StepOutcome:
    """What the runner reports about one step."""

    state: str  # SUCCEEDED or FAILED
    started: float
    finished: float
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)  # bundle key -> manifest
    metrics: dict[str, float] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)  # for later conditions
    warnings: list[str] = field(default_factory=list)
    error: StepError | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---- capturing outputs ------------------------------------------------------------------
class _Outputs:
    """Outputs of the cell being run, as nbformat 4 output dicts.

    Plain dicts and ``json`` rather than the nbformat package: importing nbformat pulls in
    jsonschema's format checkers, a second of start-up for every step process.
    """

    def __init__(self) -> None:
        self.current: list[dict[str, Any]] = []

    def stream(self, name: str, text: str) -> None:
        last = self.current[-1] if self.current else None
        if last is not None and last["output_type"] == "stream" and last["name"] == name:
            last["text"] += text
        else:
            self.current.append({"output_type": "stream", "name": name, "text": text})

    def add(self, output: dict[str, Any]) -> None:
        self.current.append(output)


def _jsonable_bundle(data: dict[str, Any]) -> dict[str, Any]:
    """Mime bundles as nbformat stores them: JSON values stay, the rest become text."""
    out: dict[str, Any] = {}
    for mime, value in data.items():
        if isinstance(value, bytes):
            import base64

            value = base64.b64encode(value).decode("ascii")
        elif not (mime == "application/json" or mime.endswith("+json")) and not isinstance(
            value, str
        ):
            value = str(value)
        out[mime] = value
    return out


class _Tee:
    """A text stream that feeds the cell's outputs and the step's log file."""

    def __init__(self, name: str, outputs: _Outputs, log: TextIO) -> None:
        self.name = name
        self.outputs = outputs
        self.log = log
        self.encoding = "utf-8"
        self.errors = "replace"

    def write(self, text: str) -> int:
        if text:
            self.outputs.stream(self.name, text)
            self.log.write(text)
            self.log.flush()
        return len(text)

    def writelines(self, lines: list[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self.log.flush()

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self.log.fileno()

    @property
    def closed(self) -> bool:
        return False

    def readable(self) -> bool:
        return False

    def writable(self) -> bool:
        return True


def _publisher(outputs: _Outputs) -> type[DisplayPublisher]:
    class Publisher(DisplayPublisher):  # type: ignore[misc]
        def publish(  # type: ignore[override]
            self, data: dict[str, Any], metadata: dict[str, Any] | None = None, *a: Any, **kw: Any
        ) -> None:
            outputs.add(
                {
                    "output_type": "display_data",
                    "data": _jsonable_bundle(data),
                    "metadata": metadata or {},
                }
            )

        def clear_output(self, wait: bool = False) -> None:
            outputs.current.clear()

    return Publisher


def _displayhook(outputs: _Outputs) -> type[DisplayHook]:
    class Hook(DisplayHook):  # type: ignore[misc]
        def write_output_prompt(self) -> None:
            return None

        def write_format_data(
            self, format_dict: dict[str, Any], md_dict: dict[str, Any] | None = None
        ) -> None:
            outputs.add(
                {
                    "output_type": "execute_result",
                    "data": _jsonable_bundle(format_dict),
                    "metadata": md_dict or {},
                    "execution_count": self.prompt_count,
                }
            )

        def finish_displayhook(self) -> None:
            return None

    return Hook


class _CellCompiler(CachingCompiler):  # type: ignore[misc]
    """Names the code of each cell ``<cell INDEX id=ID>``, so tracebacks point at it."""

    filename = "<cell>"

    def get_code_name(self, raw_code: str, transformed_code: str, number: int) -> str:
        return self.filename


class _StepShell(InteractiveShell):  # type: ignore[misc]
    """An IPython shell that hands tracebacks to the runner instead of printing them."""

    on_traceback: Any = None

    def _showtraceback(self, etype: type, evalue: BaseException, stb: list[str]) -> None:
        if self.on_traceback is not None:
            self.on_traceback(etype, evalue, stb)

    def enable_gui(self, gui: str | None = None) -> None:
        """``%matplotlib inline`` asks for no event loop: nothing to do in a step."""


INLINE_BACKEND = "module://matplotlib_inline.backend_inline"


def _inline_figures(shell: _StepShell) -> None:
    """Figures show up in the step's notebook as in Jupyter, unless the user chose a backend.

    The inline backend is matplotlib's default in Jupyter; here it becomes the default
    too, and once pyplot is imported its figures are flushed into the cell's outputs.
    """
    if os.environ.get("MPLBACKEND") or importlib.util.find_spec("matplotlib_inline") is None:
        return
    os.environ["MPLBACKEND"] = INLINE_BACKEND
    if "matplotlib" in sys.modules:  # imported by the fork server before the variable was set
        sys.modules["matplotlib"].rcParams["backend"] = INLINE_BACKEND
    state = {"configured": False}

    def after_cell(result: Any) -> None:
        if state["configured"] or "matplotlib.pyplot" not in sys.modules:
            return
        import matplotlib

        if matplotlib.get_backend() != INLINE_BACKEND:
            return  # the notebook chose its own backend (matplotlib.use("Agg"), ...)
        from matplotlib_inline.backend_inline import configure_inline_support, flush_figures

        state["configured"] = True
        configure_inline_support(shell, INLINE_BACKEND)  # type: ignore[no-untyped-call]
        flush_figures()  # type: ignore[no-untyped-call]  # later cells flush on their own

    shell.events.register("post_run_cell", after_cell)


def make_shell(outputs: _Outputs) -> _StepShell:
    """A fresh IPython shell whose displays and results land in ``outputs``."""
    config = Config()
    config.HistoryManager.enabled = False
    config.InteractiveShell.colors = "nocolor"
    config.InteractiveShell.autocall = 0
    _StepShell.clear_instance()
    shell = _StepShell.instance(
        config=config,
        display_pub_class=_publisher(outputs),
        displayhook_class=_displayhook(outputs),
        compiler_class=_CellCompiler,
    )
    shell.user_ns["__name__"] = "__main__"
    _inline_figures(shell)
    return shell  # type: ignore[no-any-return]


# ---- running ------------------------------------------------------------------------------
class _CellFailed(Exception):
    def __init__(self, error: StepError) -> None:
        super().__init__(error.evalue)
        self.error = error


def _locate(exc: BaseException, filename: str, source: str) -> tuple[int | None, str | None]:
    """The line of the cell where ``exc`` was raised, and that line's text."""
    line = None
    if isinstance(exc, SyntaxError) and exc.filename == filename:
        line = exc.lineno
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    if line is None:
        return None, None
    lines = source.splitlines()
    return line, lines[line - 1] if 0 < line <= len(lines) else None


class StepRunner:
    """Runs the cells of one step spec in a fresh IPython shell."""

    def __init__(self, spec: StepSpec, stdout_log: TextIO, stderr_log: TextIO) -> None:
        self.spec = spec
        self.outputs = _Outputs()
        self.shell = make_shell(self.outputs)
        self.executed: list[Any] = []
        self.count = 0
        self.stdout = _Tee("stdout", self.outputs, stdout_log)
        self.stderr = _Tee("stderr", self.outputs, stderr_log)
        self._error_stb: list[str] | None = None
        self.shell.on_traceback = self._record_traceback

    def _record_traceback(self, etype: type, evalue: BaseException, stb: list[str]) -> None:
        self._error_stb = stb
        self.stderr.log.write(self.shell.InteractiveTB.stb2text(stb) + "\n")

    def run_cell(self, cell: CellSpec) -> None:
        """Run one cell; raise :class:`_CellFailed` when it raises."""
        self.count += 1
        filename = f"<cell {cell.index} id={cell.id}>"
        self.shell.compile.filename = filename  # type: ignore[attr-defined]
        self.shell.execution_count = self.count
        self.outputs.current = []
        self._error_stb = None
        record: dict[str, Any] = {
            "cell_type": "code",
            "id": f"{cell.id}"[:64],
            "source": cell.source,
            "execution_count": self.count,
            "metadata": {"mlk": {"role": cell.role, "cell_index": cell.index, "cell_id": cell.id}},
            "outputs": [],
        }
        self.executed.append(record)
        saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = self.stdout, self.stderr  # type: ignore[assignment]
        try:
            result = self.shell.run_cell(  # type: ignore[no-untyped-call]
                cell.source, store_history=False, silent=False
            )
        finally:
            sys.stdout, sys.stderr = saved
            record["outputs"] = self.outputs.current
        exc = result.error_before_exec or result.error_in_exec
        if exc is None:
            return
        line, text = _locate(exc, filename, cell.source)
        stb = self._error_stb or traceback.format_exception(exc)
        record["outputs"].append(
            {
                "output_type": "error",
                "ename": type(exc).__name__,
                "evalue": str(exc),
                "traceback": list(stb),
            }
        )
        raise _CellFailed(
            StepError(
                ename=type(exc).__name__,
                evalue=str(exc),
                cell_index=cell.index,
                cell_id=cell.id,
                line=line,
                source_line=text,
                traceback=self.shell.InteractiveTB.stb2text(stb),
            )
        )

    def set_parameters(self, values: Mapping[str, Any]) -> None:
        self.shell.user_ns.update(values)

    def load_inputs(self, inputs: Mapping[str, Path]) -> None:
        ns = self.shell.user_ns
        for path in inputs.values():
            ns.update(read_bundle(path))
        _rebind_functions(ns)

    def executed_notebook(self, kernel: str = "python3") -> dict[str, Any]:
        """The executed cells with their outputs, as an nbformat 4.5 notebook."""
        return {
            "nbformat": 4,
            "nbformat_minor": 5,
            "metadata": {
                "kernelspec": {"name": kernel, "display_name": "Python 3", "language": "python"},
                "language_info": {"name": "python"},
                "mlk": {"step": self.spec.step, "notebook": self.spec.notebook},
            },
            "cells": self.executed,
        }


def _rebind_functions(ns: dict[str, Any]) -> None:
    """Functions defined in an earlier step look up globals in this step's namespace."""
    for name, value in list(ns.items()):
        if isinstance(value, types.FunctionType) and value.__module__ == "__main__":
            ns[name] = types.FunctionType(
                value.__code__, ns, value.__name__, value.__defaults__, value.__closure__
            )


def _metric_value(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def run_step(
    spec: StepSpec,
    *,
    params: Mapping[str, Any],
    inputs: Mapping[str, Path],
    outputs: Mapping[str, Path],
    metrics_path: Path | None = None,
    value_paths: Mapping[str, Path] | None = None,
    notebook_path: Path | None = None,
    stdout_log: TextIO | None = None,
    stderr_log: TextIO | None = None,
) -> StepOutcome:
    """Run one step and write what it produces; never raises for the user's code.

    Args:
        spec: the step spec.
        params: parameter values as JSON values (converted here by declared type).
        inputs: ``"producer/key"`` -> bundle directory, for every bundle in ``spec.inputs``.
        outputs: bundle key -> directory to write, for every bundle in ``spec.outputs``.
        metrics_path: where to write the metrics JSON (KFP Metrics artifact file).
        value_paths: name -> file for the values later conditions compare.
        notebook_path: where to write the executed notebook.
        stdout_log: stream for the step's stdout (default: this process's).
        stderr_log: stream for the step's stderr.
    """
    started = time.time()
    runner = StepRunner(spec, stdout_log or sys.__stdout__, stderr_log or sys.__stderr__)  # type: ignore[arg-type]
    outcome = StepOutcome(state="FAILED", started=started, finished=started)
    try:
        values = {
            name: from_json_value(kind, params.get(name, spec.param_defaults.get(name)))
            for name, kind in spec.params.items()
        }
        by_role = _cells_by_role(spec)
        for cell in by_role["imports"] + by_role["parameters"]:
            runner.run_cell(cell)
        runner.set_parameters(values)
        missing_inputs = [
            f"{b.step}/{b.key}" for b in spec.inputs if f"{b.step}/{b.key}" not in inputs
        ]
        if missing_inputs:
            raise MlkError(f"no path given for input bundle(s) {', '.join(missing_inputs)}")
        runner.load_inputs({k: inputs[k] for k in (f"{b.step}/{b.key}" for b in spec.inputs)})
        for cell in by_role["functions"] + by_role["step"] + by_role["metrics"]:
            runner.run_cell(cell)
        _write_outputs(spec, runner.shell.user_ns, outputs, outcome)
        _write_metrics(spec, runner.shell.user_ns, metrics_path, outcome)
        _write_values(spec, runner.shell.user_ns, value_paths or {}, outcome)
        outcome.state = "SUCCEEDED"
    except _CellFailed as failed:
        outcome.error = failed.error
    except MlkError as exc:
        outcome.error = StepError(ename=type(exc).__name__, evalue=str(exc))
    except Exception as exc:  # the runner's own failure: keep the whole story
        outcome.error = StepError(
            ename=type(exc).__name__, evalue=str(exc), traceback=traceback.format_exc()
        )
    finally:
        outcome.finished = time.time()
        if notebook_path is not None:
            _write_atomic_notebook(runner.executed_notebook(), notebook_path)
    if outcome.error is not None and stderr_log is not None:
        stderr_log.write(outcome.error.describe(spec.step) + "\n")
        stderr_log.flush()
    return outcome


def _cells_by_role(spec: StepSpec) -> dict[str, list[CellSpec]]:
    groups: dict[str, list[CellSpec]] = {
        "imports": [],
        "parameters": [],
        "functions": [],
        "step": [],
        "metrics": [],
    }
    for cell in spec.cells:
        groups.setdefault(cell.role, []).append(cell)
    return groups


def _write_outputs(
    spec: StepSpec, ns: Mapping[str, Any], outputs: Mapping[str, Path], outcome: StepOutcome
) -> None:
    for bundle in spec.outputs:
        missing = [n for n in bundle.names if n not in ns]
        if missing:
            raise MlkError(
                f"step {spec.step} did not set {', '.join(repr(m) for m in missing)}, which a "
                "later step reads; make sure every path through the step's code sets it"
            )
        if bundle.key not in outputs:
            raise MlkError(f"no path given for output bundle {bundle.key}")
        manifest = write_bundle(
            {n: ns[n] for n in bundle.names}, outputs[bundle.key], step=spec.step
        )
        outcome.outputs[bundle.key] = manifest


def _write_metrics(
    spec: StepSpec, ns: Mapping[str, Any], path: Path | None, outcome: StepOutcome
) -> None:
    for name in spec.metrics:
        if name not in ns:
            outcome.warnings.append(f"metric {name!r} was not set by step {spec.step}")
            continue
        number = _metric_value(ns[name])
        if number is None:
            outcome.warnings.append(
                f"metric {name!r} is {type(ns[name]).__name__}, not a finite number; not recorded"
            )
            continue
        outcome.metrics[name] = number
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(outcome.metrics, sort_keys=True))


def _write_values(
    spec: StepSpec, ns: Mapping[str, Any], paths: Mapping[str, Path], outcome: StepOutcome
) -> None:
    from jupyter_mlk.notebook.params import to_json_value

    for name in spec.condition_values:
        value = to_json_value(ns.get(name))
        if hasattr(value, "item"):  # numpy scalars
            value = value.item()
        outcome.values[name] = value
        path = paths.get(name)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            text = value if isinstance(value, str) else json.dumps(value)
            path.write_text(text)


def _write_atomic_notebook(nb: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(nb, fh, indent=1, ensure_ascii=False, default=str)
        fh.write("\n")
    os.replace(tmp, path)


# ---- command line (the KFP task entry point) ----------------------------------------------
def _pairs(items: list[str] | None, flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"{flag} {item!r}: expected KEY=VALUE")
        out[key] = value
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m jupyter_mlk.pipeline.runner``: run one step from its spec."""
    parser = argparse.ArgumentParser(prog="python -m jupyter_mlk.pipeline.runner")
    parser.add_argument("--spec", required=True, help="the step spec JSON, or @FILE")
    parser.add_argument("--param", action="append", help="NAME=JSON value")
    parser.add_argument("--input", action="append", help="PRODUCER/KEY=bundle directory")
    parser.add_argument("--output", action="append", help="KEY=bundle directory to write")
    parser.add_argument("--metrics", help="file for the metrics JSON")
    parser.add_argument("--value", action="append", help="NAME=file for a condition value")
    parser.add_argument("--notebook-out", help="file for the executed notebook")
    args = parser.parse_args(argv)
    text = Path(args.spec[1:]).read_text() if args.spec.startswith("@") else args.spec
    spec = StepSpec.from_json(text)
    params: dict[str, Any] = {}
    for name, raw in _pairs(args.param, "--param").items():
        if spec.params.get(name) in ("str", "date", "datetime"):
            params[name] = raw  # KFP substitutes STRING parameters as bare text
            continue
        try:
            params[name] = json.loads(raw)
        except json.JSONDecodeError:
            params[name] = raw
    outcome = run_step(
        spec,
        params=params,
        inputs={k: Path(v) for k, v in _pairs(args.input, "--input").items()},
        outputs={k: Path(v) for k, v in _pairs(args.output, "--output").items()},
        metrics_path=Path(args.metrics) if args.metrics else None,
        value_paths={k: Path(v) for k, v in _pairs(args.value, "--value").items()},
        notebook_path=Path(args.notebook_out) if args.notebook_out else None,
        stdout_log=sys.stdout,
        stderr_log=sys.stderr,
    )
    _write_kfp_metadata(outcome.metrics)
    for name, value in outcome.metrics.items():
        print(f"{name}={value!r}")
    return 0 if outcome.state == "SUCCEEDED" else 1


def _write_kfp_metadata(metrics: Mapping[str, float]) -> None:
    """On KFP: give the Metrics artifact its metadata, which is what the KFP UI shows.

    The v2 launcher reads artifact metadata only from its executor-output file, which no
    placeholder names; the compiler passes the path in ``MLK_KFP_OUTPUT_METADATA``.
    """
    path = os.environ.get("MLK_KFP_OUTPUT_METADATA")
    if not path or not metrics:
        return
    body = {"artifacts": {"metrics": {"artifacts": [{"metadata": dict(metrics)}]}}}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(body))


if __name__ == "__main__":
    sys.exit(main())
