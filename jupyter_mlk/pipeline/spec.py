"""The step spec: everything the step runner needs to run one step, as plain JSON.

The same spec runs a step in the local executor and inside a KFP task (where it is carried
in the compiled YAML as a command-line argument), which is what makes "works locally"
predict "works on Kubeflow". Values cross steps in bundles: a bundle is a group of names
that may share objects and is stored as one artifact; its key is its first name.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from jupyter_mlk import __version__
from jupyter_mlk.notebook.model import Cell, Step, StepGraph

RUNNER_VERSION = f"mlk-runner/{__version__}/1"


@dataclass(frozen=True)
class CellSpec:
    """One cell the runner executes, with where it came from."""

    index: int
    id: str
    role: str
    source: str

    @classmethod
    def of(cls, cell: Cell) -> CellSpec:
        return cls(cell.index, cell.id, cell.role, cell.source)


@dataclass(frozen=True)
class BundleRef:
    """A bundle a step reads (``step`` is its producer) or writes."""

    key: str
    names: tuple[str, ...]
    step: str = ""


@dataclass(frozen=True)
class StepSpec:
    """What one step runs and exchanges; JSON-serialisable, the runner's only input."""

    notebook: str
    step: str
    cells: tuple[CellSpec, ...]  # imports, parameters, functions, step cells, metrics cells
    params: dict[str, str]  # parameter name -> type, for every parameter (all are injected)
    param_defaults: dict[str, Any]  # JSON form of the defaults
    reads_params: tuple[str, ...]
    inputs: tuple[BundleRef, ...]
    outputs: tuple[BundleRef, ...]
    metrics: tuple[str, ...]
    condition_values: tuple[str, ...] = ()  # outputs also published as KFP parameters
    runner_version: str = RUNNER_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> StepSpec:
        raw = json.loads(text)
        return cls(
            notebook=raw["notebook"],
            step=raw["step"],
            cells=tuple(CellSpec(**c) for c in raw["cells"]),
            params=dict(raw["params"]),
            param_defaults=dict(raw["param_defaults"]),
            reads_params=tuple(raw["reads_params"]),
            inputs=tuple(BundleRef(b["key"], tuple(b["names"]), b["step"]) for b in raw["inputs"]),
            outputs=tuple(
                BundleRef(b["key"], tuple(b["names"]), b["step"]) for b in raw["outputs"]
            ),
            metrics=tuple(raw["metrics"]),
            condition_values=tuple(raw.get("condition_values", ())),
            runner_version=raw["runner_version"],
            extra=dict(raw.get("extra", {})),
        )

    def code_digest(self) -> str:
        """Digest of the code the step runs (all its cells) and the runner version."""
        h = hashlib.sha256(self.runner_version.encode())
        for c in self.cells:
            h.update(b"\0" + c.role.encode() + b"\0" + c.source.encode())
        for m in self.metrics:
            h.update(b"\1" + m.encode())
        return h.hexdigest()


def input_bundles(graph: StepGraph, step: Step) -> tuple[BundleRef, ...]:
    """The producer bundles a step loads: whole bundles, so shared objects stay shared."""
    wanted: dict[str, set[str]] = {}
    for name, src in [*step.inputs.items(), *step.alias_inputs.items()]:
        wanted.setdefault(src, set()).add(name)
    refs: list[BundleRef] = []
    for src, names in wanted.items():
        producer = graph.step(src)
        for bundle in producer.bundles:
            if names & set(bundle):
                refs.append(BundleRef(bundle[0], tuple(bundle), src))
    return tuple(sorted(refs, key=lambda r: (r.step, r.key)))


def condition_names(graph: StepGraph) -> dict[str, set[str]]:
    """Step -> names it must also publish as plain values, for later ``if:`` conditions."""
    out: dict[str, set[str]] = {}
    for s in graph.steps:
        if s.condition is not None:
            src = s.inputs.get(s.condition.left)
            if src:
                out.setdefault(src, set()).add(s.condition.left)
    return out


def build_step_spec(graph: StepGraph, step: Step) -> StepSpec:
    """The spec of one step of a graph that has no errors."""
    from jupyter_mlk.notebook.params import to_json_value

    cells = [
        *graph.imports_cells,
        *graph.parameters_cells,
        *graph.functions_cells,
        *step.cells,
        *step.metric_cells,
    ]
    return StepSpec(
        notebook=graph.path,
        step=step.name,
        cells=tuple(CellSpec.of(c) for c in sorted(cells, key=_cell_order)),
        params={p.name: p.type for p in graph.parameters},
        param_defaults={p.name: to_json_value(p.default) for p in graph.parameters},
        reads_params=step.params,
        inputs=input_bundles(graph, step),
        outputs=tuple(BundleRef(b[0], tuple(b), step.name) for b in step.bundles),
        metrics=step.metrics,
        condition_values=tuple(sorted(condition_names(graph).get(step.name, ()))),
    )


_ROLE_ORDER = {"imports": 0, "parameters": 1, "functions": 2, "step": 3, "metrics": 4}


def _cell_order(cell: Cell) -> tuple[int, int]:
    return (_ROLE_ORDER.get(cell.role, 3), cell.index)
