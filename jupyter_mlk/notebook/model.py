"""The step graph: the data model every other layer (executor, compiler, panel) reads.

The graph is built by :func:`jupyter_mlk.notebook.graph.build_graph` and never mutated
afterwards. ``to_dict`` gives the stable JSON form documented in the README (``jupyter mlk
graph --json``); the panel and the tests read that form.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

CellRole = Literal["imports", "functions", "parameters", "metrics", "step", "skip"]
Severity = Literal["error", "warning"]

GRAPH_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Cell:
    """One code cell as the analysis sees it."""

    index: int  # position among all cells of the file, markdown included, from 0
    id: str
    source: str  # the source as written by the user
    code: str  # the source after IPython's transformer: plain Python
    tags: tuple[str, ...]
    role: CellRole
    step: str | None  # the step a ``step`` cell belongs to


@dataclass(frozen=True)
class Diagnostic:
    """An error or warning found while reading or analysing a notebook."""

    severity: Severity
    message: str
    cell_index: int | None = None
    cell_id: str | None = None
    step: str | None = None
    line: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def describe(self) -> str:
        """One line for a terminal: where, then what."""
        where = []
        if self.step:
            where.append(f"step {self.step}")
        if self.cell_index is not None:
            where.append(f"cell {self.cell_index} (id {self.cell_id})")
        if self.line is not None:
            where.append(f"line {self.line}")
        prefix = f"[{', '.join(where)}] " if where else ""
        return f"{self.severity}: {prefix}{self.message}"


@dataclass(frozen=True)
class Parameter:
    """A pipeline parameter from a ``parameters`` cell."""

    name: str
    type: str  # int, float, bool, str, list, dict, tuple, NoneType, date, datetime
    default: Any  # the evaluated default, a Python value of ``type``
    source: str  # the default as written
    annotation: str | None = None
    choices: tuple[Any, ...] | None = None  # from a ``Literal[...]`` annotation
    cell_index: int = 0

    def to_dict(self) -> dict[str, Any]:
        from jupyter_mlk.notebook.params import to_json_value

        return {
            "name": self.name,
            "type": self.type,
            "default": to_json_value(self.default),
            "source": self.source,
            "annotation": self.annotation,
            "choices": list(self.choices) if self.choices is not None else None,
            "cell_index": self.cell_index,
        }


@dataclass(frozen=True)
class Condition:
    """An ``if:`` tag: ``left op right`` where right is a literal or a parameter."""

    left: str
    op: str
    right: Any
    right_is_parameter: bool
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "left": self.left,
            "op": self.op,
            "right": self.right,
            "right_is_parameter": self.right_is_parameter,
        }


@dataclass(frozen=True)
class Resources:
    """Per-step resources and options from ``limit:``, ``gpu:``, ``image:``, ``cache:``."""

    limits: tuple[tuple[str, str], ...] = ()
    gpus: int = 0
    image: str | None = None
    cache: bool = True
    node_selector: tuple[tuple[str, str], ...] = ()
    tolerations: tuple[str, ...] = ()
    deploy: str | None = None  # deploy:NAME: the deployment the step's model goes to
    deploy_variable: str | None = None
    canary: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "deploy": self.deploy,
            "deploy_variable": self.deploy_variable,
            "canary": self.canary,
            "limits": dict(self.limits),
            "gpus": self.gpus,
            "image": self.image,
            "cache": self.cache,
            "node_selector": dict(self.node_selector),
            "tolerations": list(self.tolerations),
        }


@dataclass(frozen=True)
class Step:
    """A named group of code cells that runs as one isolated unit."""

    name: str
    kfp_name: str  # DNS-1123 form, the KFP task name
    cells: tuple[Cell, ...]
    params: tuple[str, ...]  # parameters the step reads
    inputs: dict[str, str]  # value name -> producing step
    alias_inputs: dict[str, str]  # loaded with an input because they may share objects
    outputs: tuple[str, ...]  # names later steps read from this step
    bundles: tuple[tuple[str, ...], ...]  # outputs grouped by shared objects
    after: tuple[str, ...]  # all upstream steps (data edges and prev: edges)
    prev_tags: tuple[str, ...]
    condition: Condition | None
    resources: Resources
    functions_used: tuple[str, ...]
    metrics: tuple[str, ...]  # metric names this step reports
    metric_cells: tuple[Cell, ...] = ()  # metrics cells run at the end of this step

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kfp_name": self.kfp_name,
            "cells": [c.index for c in self.cells],
            "cell_ids": [c.id for c in self.cells],
            "params": list(self.params),
            "inputs": dict(sorted(self.inputs.items())),
            "alias_inputs": dict(sorted(self.alias_inputs.items())),
            "outputs": list(self.outputs),
            "bundles": [list(b) for b in self.bundles],
            "after": list(self.after),
            "prev_tags": list(self.prev_tags),
            "condition": self.condition.to_dict() if self.condition else None,
            "resources": self.resources.to_dict(),
            "functions_used": list(self.functions_used),
            "metrics": list(self.metrics),
            "metric_cells": [c.index for c in self.metric_cells],
        }


@dataclass(frozen=True)
class StepGraph:
    """Steps in notebook order plus everything shared by all of them."""

    path: str
    steps: tuple[Step, ...]
    parameters: tuple[Parameter, ...]
    metrics: dict[str, str]  # metric name -> step that reports it
    imports_cells: tuple[Cell, ...]
    functions_cells: tuple[Cell, ...]
    diagnostics: tuple[Diagnostic, ...]
    parameters_cells: tuple[Cell, ...] = ()
    kernel: str = "python3"
    nbformat: str = "4.5"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "warning"]

    @property
    def edges(self) -> list[tuple[str, str]]:
        return [(up, s.name) for s in self.steps for up in s.after]

    def step(self, name: str) -> Step:
        for s in self.steps:
            if s.name == name:
                return s
        known = ", ".join(s.name for s in self.steps)
        raise KeyError(f"no step named {name!r}; the steps are: {known}")

    def parameter(self, name: str) -> Parameter:
        for p in self.parameters:
            if p.name == name:
                return p
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": GRAPH_SCHEMA_VERSION,
            "notebook": self.path,
            "kernel": self.kernel,
            "nbformat": self.nbformat,
            "steps": [s.to_dict() for s in self.steps],
            "edges": [list(e) for e in self.edges],
            "parameters": [p.to_dict() for p in self.parameters],
            "metrics": dict(self.metrics),
            "imports_cells": [c.index for c in self.imports_cells],
            "parameters_cells": [c.index for c in self.parameters_cells],
            "functions_cells": [c.index for c in self.functions_cells],
            "errors": [d.to_dict() for d in self.errors],
            "warnings": [d.to_dict() for d in self.warnings],
        }
