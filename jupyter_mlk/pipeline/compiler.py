"""The KFP v2 compiler: a step graph becomes a Kubeflow Pipelines YAML built with the kfp SDK.

Every step becomes a container component that runs the same step runner as the local
executor (``python -m jupyter_mlk.pipeline.runner``), with the step's spec, and so its
code, carried in the command line: the YAML runs on any KFP v2 installation without extra
storage. The pipeline is built with the public kfp SDK (``dsl.container_component`` on
functions whose signatures are made at run time, ``dsl.pipeline``, ``dsl.If``,
kfp-kubernetes) and written by ``kfp.compiler.Compiler``; no IR is written by hand.

Wiring, in the words of the KFP UI:

* pipeline parameters are typed root inputs; a step receives the ones it reads as
  ``--param NAME=VALUE`` (VALUE is JSON text; KFP gives integers back as ``50.0`` and
  tuples as lists, which the runner converts back by the declared type);
* each bundle a step writes is an output artifact (``Model``, ``Dataset`` or ``Artifact``,
  guessed statically by :func:`guess_artifact_type`), wired to the matching input artifact
  of every step that reads it (``--input PRODUCER/KEY=PATH`` and ``--output KEY=PATH``);
* ``prev:`` edges that carry no data become ``.after()``; independent steps stay parallel;
* metrics become an ``Output[Metrics]`` named ``metrics`` (``--metrics PATH``);
* an ``if:`` tag becomes ``dsl.If`` on a plain value the producing step publishes as a
  typed output parameter (``--value NAME=PATH``);
* ``limit:``/``gpu:`` become CPU, memory and accelerator requests and limits,
  ``node:``/``toleration:`` go through kfp-kubernetes, ``cache:off`` turns caching off.

The Metrics artifact and the KFP UI: the KFP v2 launcher uploads the file written at the
artifact's path, but the metric values the UI shows are the artifact's *metadata*, which
the launcher takes only from the executor output file. For container components the
driver sets that file to ``/tmp/kfp_outputs/output_metadata.json`` (the constant
``OutputMetadataFilepath`` of the KFP backend's launcher), and no command-line
placeholder names it. So every task that reports metrics gets the environment variable
``MLK_KFP_OUTPUT_METADATA`` set to that path (:data:`KFP_OUTPUT_METADATA_PATH`), and the
runner, when that variable is set, also writes
``{"artifacts": {"metrics": {"artifacts": [{"metadata": {NAME: NUMBER, ...}}]}}}`` there.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import logging
import math
import operator
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_mlk import __version__
from jupyter_mlk.errors import CompileError, GraphError, ParameterError
from jupyter_mlk.notebook.model import Condition, Parameter, Step, StepGraph
from jupyter_mlk.notebook.params import to_json_value
from jupyter_mlk.pipeline.spec import StepSpec, build_step_spec

log = logging.getLogger(__name__)

DEFAULT_IMAGE = f"ghcr.io/jupyter-mlk/runner:{__version__}"
"""The image every step runs in unless ``--image`` or an ``image:`` tag says otherwise.

It is the project's runner image: Python with jupyter_mlk (and so the step runner)
installed, plus the scientific stack of the demo notebooks. Any image works if
``python -m jupyter_mlk.pipeline.runner`` runs in it and it has the packages the
notebook imports.
"""

RUNNER_COMMAND = ("python", "-m", "jupyter_mlk.pipeline.runner")
METRICS_OUTPUT = "metrics"
KFP_OUTPUT_METADATA_ENV = "MLK_KFP_OUTPUT_METADATA"
KFP_OUTPUT_METADATA_PATH = "/tmp/kfp_outputs/output_metadata.json"

_PY_TYPES: dict[str, type] = {
    "int": int,
    "float": float,
    "bool": bool,
    "str": str,
    "date": str,
    "datetime": str,
    "NoneType": str,
    "list": list,
    "tuple": list,
    "dict": dict,
}
_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_MODEL_SUFFIXES = ("Classifier", "Regressor", "Model", "Pipeline", "Estimator", "Booster")
_DATASET_CALLS = frozenset(
    {
        "DataFrame",
        "Series",
        "train_test_split",
        "read_csv",
        "read_parquet",
        "read_json",
        "read_excel",
        "read_feather",
        "read_sql",
        "read_table",
        "load_dataset",
    }
)
_DATASET_MODULES = frozenset({"pd", "pandas", "pl", "polars"})
_GPU_RESOURCES = ("nvidia.com/gpu", "amd.com/gpu")
_TOLERATION_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


# --- the plan: names, types and groups, decided before kfp is touched ---------------------


@dataclass
class _Port:
    """One input or output of a step's component."""

    name: str  # the component's input/output name (a Python identifier)
    kind: str  # param, input, output, metrics, value
    ref: str  # parameter name, PRODUCER/KEY, KEY, or the value's name
    type: Any = None  # artifact class name, or the Python type of a parameter/value
    producer: str = ""  # for inputs: the producing step
    source: str = ""  # for inputs: the producer's output name


@dataclass
class _StepPlan:
    step: Step
    spec: StepSpec
    ports: list[_Port]
    image: str

    def port(self, kind: str, ref: str) -> _Port:
        for p in self.ports:
            if p.kind == kind and p.ref == ref:
                return p
        raise CompileError(f"step {self.step.name!r} has no {kind} named {ref!r}")


@dataclass
class _Group:
    """A ``dsl.If`` group (or the root, ``owner`` None) and the steps placed directly in it."""

    owner: str | None
    parent: _Group | None = None
    steps: list[str] = field(default_factory=list)
    children: list[_Group] = field(default_factory=list)

    def ancestors(self) -> list[_Group]:
        chain: list[_Group] = []
        node: _Group | None = self
        while node is not None:
            chain.append(node)
            node = node.parent
        return chain


def compile_pipeline(
    graph: StepGraph,
    *,
    image: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    pipeline_name: str | None = None,
) -> str:
    """Compile a step graph into the text of a KFP v2 pipeline YAML.

    Args:
        graph: The step graph of a notebook, from
            :func:`jupyter_mlk.notebook.graph.build_graph`.
        image: The image of every step without an ``image:`` tag; :data:`DEFAULT_IMAGE`
            when None.
        overrides: Typed parameter values (see
            :func:`jupyter_mlk.notebook.params.resolve_overrides`) that replace the
            notebook's defaults as the pipeline's default values.
        pipeline_name: The KFP pipeline name; the notebook's file name when None. It is
            made DNS-1123 safe.

    Returns:
        The YAML text, identical byte for byte for the same graph and arguments.

    Raises:
        GraphError: The graph has errors; its diagnostics list them all.
        ParameterError: An override names no parameter of the notebook.
        CompileError: The graph cannot be expressed in KFP v2 (a resource KFP has no
            field for, a condition KFP cannot evaluate, ...).
    """
    _refuse_graph_errors(graph)
    defaults = _effective_defaults(graph, overrides or {})
    plans = {s.name: _plan_step(graph, s, defaults, image) for s in graph.steps}
    _link_inputs(plans)
    _add_value_ports(graph, plans)
    root = _plan_groups(graph)
    name = _dns1123(pipeline_name or Path(graph.path).stem) or "pipeline"
    pipeline = _build_pipeline(graph, plans, root, defaults, name)
    text = _compile_to_text(pipeline, name)
    _check_task_names(graph, text)
    return text


def write_pipeline(
    graph: StepGraph,
    path: str | os.PathLike[str],
    *,
    image: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    pipeline_name: str | None = None,
) -> Path:
    """Compile a step graph and write the YAML to ``path`` atomically.

    The file appears whole or not at all: on any error nothing is written and an
    existing file at ``path`` is left as it was.

    Args:
        graph: The step graph to compile.
        path: Where to write the YAML.
        image: As for :func:`compile_pipeline`.
        overrides: As for :func:`compile_pipeline`.
        pipeline_name: As for :func:`compile_pipeline`.

    Returns:
        The path written.

    Raises:
        GraphError, ParameterError, CompileError: As for :func:`compile_pipeline`.
        OSError: The file cannot be written.
    """
    text = compile_pipeline(graph, image=image, overrides=overrides, pipeline_name=pipeline_name)
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def guess_artifact_type(step: Step, names: Iterable[str]) -> str:
    """The KFP artifact type of a bundle, guessed from how the step binds its names.

    A static guess that only decides the type shown in the KFP UI (the runner stores
    every bundle the same way):

    * ``Model`` if a name is bound from a call of something whose name ends in
      Classifier, Regressor, Model, Pipeline, Estimator or Booster, from ``X.fit(...)``,
      or if the step calls ``NAME.fit(...)``;
    * ``Dataset`` if a name is bound from ``pd.*``/``pandas.*``/``pl.*``, ``DataFrame``,
      ``Series``, ``train_test_split``, ``load_dataset`` or a ``read_*`` reader;
    * ``Artifact`` otherwise. A bundle with several names takes Model over Dataset over
      Artifact.

    Args:
        step: The producing step.
        names: The names of the bundle.

    Returns:
        ``"Model"``, ``"Dataset"`` or ``"Artifact"``.
    """
    kinds = _bound_kinds(step)
    found = {kinds.get(n, "Artifact") for n in names}
    for kind in ("Model", "Dataset"):
        if kind in found:
            return kind
    return "Artifact"


def kfp_parameter_type(type_name: str) -> str:
    """The KFP ``parameterType`` of a notebook parameter type (see ``Parameter.type``).

    Args:
        type_name: int, float, bool, str, date, datetime, NoneType, list, tuple or dict.

    Returns:
        NUMBER_INTEGER, NUMBER_DOUBLE, BOOLEAN, STRING, LIST or STRUCT.

    Raises:
        CompileError: The type has no KFP counterpart.
    """
    names = {int: "NUMBER_INTEGER", float: "NUMBER_DOUBLE", bool: "BOOLEAN", str: "STRING"}
    names |= {list: "LIST", dict: "STRUCT"}
    return names[_py_type(type_name, "parameter")]


# --- checks and defaults -------------------------------------------------------------------


def _refuse_graph_errors(graph: StepGraph) -> None:
    errors = graph.errors
    if errors:
        lines = "\n".join(d.describe() for d in errors)
        raise GraphError(
            f"cannot compile {graph.path}: the notebook has {len(errors)} error(s); "
            f"fix them and compile again:\n{lines}",
            [d.to_dict() for d in errors],
        )
    if not graph.steps:
        raise CompileError(f"cannot compile {graph.path}: the notebook has no code to run")


def _py_type(type_name: str, what: str) -> type:
    try:
        return _PY_TYPES[type_name]
    except KeyError:
        known = ", ".join(_PY_TYPES)
        raise CompileError(
            f"{what} type {type_name!r} has no Kubeflow Pipelines type; "
            f"use a default of one of these types: {known}"
        ) from None


def _effective_defaults(graph: StepGraph, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Parameter name -> JSON-form default, overrides applied, checked for KFP."""
    known = {p.name for p in graph.parameters}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ParameterError(
            f"unknown parameter(s) {', '.join(unknown)}; "
            f"the notebook's parameters are: {', '.join(sorted(known)) or '(none)'}"
        )
    out: dict[str, Any] = {}
    for p in graph.parameters:
        value = to_json_value(overrides[p.name] if p.name in overrides else p.default)
        _check_finite(p, value)
        out[p.name] = value
    return out


def _check_finite(param: Parameter, value: Any) -> None:
    floats = [value] if isinstance(value, float) else []
    if isinstance(value, (list, dict)):
        floats = [v for v in _walk_json(value) if isinstance(v, float)]
    if any(not math.isfinite(v) for v in floats):
        raise CompileError(
            f"parameter {param.name!r}: {value!r} holds inf or nan, which a KFP pipeline "
            "parameter (a protobuf Value) cannot carry; give a finite default or override"
        )


def _walk_json(value: Any) -> Iterable[Any]:
    if isinstance(value, dict):
        for v in value.values():
            yield from _walk_json(v)
    elif isinstance(value, list):
        for v in value:
            yield from _walk_json(v)
    else:
        yield value


def _dns1123(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:63].strip("-")


def _identifier(text: str) -> str:
    ident = re.sub(r"\W|[^\x00-\x7f]", "_", text)
    return ident if ident and not ident[0].isdigit() else f"v_{ident}"


# --- per-step plan ---------------------------------------------------------------------------


def _plan_step(
    graph: StepGraph, step: Step, defaults: dict[str, Any], image: str | None
) -> _StepPlan:
    spec = build_step_spec(graph, step)
    # The notebook's directory stays out of the YAML: the same notebook compiled from two
    # checkouts gives the same file, so KFP's cache (keyed on the command) is shared.
    spec = dataclasses.replace(
        spec, notebook=Path(spec.notebook).name, param_defaults=dict(defaults)
    )
    names = _NameBook(reserved={METRICS_OUTPUT} if spec.metrics else set())
    ports: list[_Port] = []
    for pname in spec.reads_params:
        ptype = _py_type(graph.parameter(pname).type, f"parameter {pname!r}")
        ports.append(_Port(names.take(pname), "param", pname, ptype))
    for ref in spec.inputs:
        kind = guess_artifact_type(graph.step(ref.step), ref.names)
        port_name = names.take(f"{graph.step(ref.step).kfp_name}__{ref.key}")
        ports.append(_Port(port_name, "input", f"{ref.step}/{ref.key}", kind, ref.step))
    for ref in spec.outputs:
        kind = guess_artifact_type(step, ref.names)
        ports.append(_Port(names.take(ref.key), "output", ref.key, kind))
    if spec.metrics:
        ports.append(_Port(METRICS_OUTPUT, "metrics", METRICS_OUTPUT, "Metrics"))
    return _StepPlan(step, spec, ports, step.resources.image or image or DEFAULT_IMAGE)


class _NameBook:
    """Hands out unique component input/output names (Python identifiers)."""

    def __init__(self, reserved: set[str]) -> None:
        self.taken = set(reserved)

    def take(self, wanted: str) -> str:
        base = _identifier(wanted)
        name, n = base, 1
        while name in self.taken:
            n += 1
            name = f"{base}_{n}"
        self.taken.add(name)
        return name


def _link_inputs(plans: dict[str, _StepPlan]) -> None:
    """Point each input port at the output port of the producer's bundle."""
    for plan in plans.values():
        for port in plan.ports:
            if port.kind == "input":
                key = port.ref.split("/", 1)[1]
                port.source = plans[port.producer].port("output", key).name


def _add_value_ports(graph: StepGraph, plans: dict[str, _StepPlan]) -> None:
    """Give each producer of a value that an ``if:`` compares a typed output parameter."""
    for step in graph.steps:
        cond = step.condition
        if cond is None or cond.left not in step.inputs:
            continue
        producer = plans[step.inputs[cond.left]]
        if cond.left not in producer.spec.condition_values:
            raise CompileError(
                f"step {step.name!r}: the condition {cond.text!r} reads {cond.left!r} from "
                f"step {producer.step.name!r}, which does not publish it; this is a bug in "
                "the graph analysis, please report it with the notebook"
            )
        if any(p.kind == "value" and p.ref == cond.left for p in producer.ports):
            continue
        book = _NameBook({p.name for p in producer.ports})
        vtype = _condition_type(graph, step, cond)
        producer.ports.append(_Port(book.take(f"{cond.left}_value"), "value", cond.left, vtype))


def _condition_type(graph: StepGraph, step: Step, cond: Condition) -> type:
    """The type a compared value is published as: what it is compared with decides."""
    if cond.right_is_parameter:
        ptype = _py_type(graph.parameter(str(cond.right)).type, "parameter")
    else:
        ptype = type(cond.right)
    if ptype in (int, float):
        return float
    if ptype in (bool, str):
        return ptype
    raise CompileError(
        f"step {step.name!r}: the condition {cond.text!r} compares with {cond.right!r}; "
        "a KFP condition compares numbers, strings or booleans only"
    )


# --- condition groups ------------------------------------------------------------------------


def _plan_groups(graph: StepGraph) -> _Group:
    """Place steps in nested ``dsl.If`` groups.

    KFP forbids a task to depend on a task inside a ``dsl.If`` unless it sits in that
    group too, so every step downstream of a conditional step goes inside its group
    (it could not run anyway when the condition is false: its input would be missing).
    """
    root = _Group(None)
    where: dict[str, _Group] = {}
    for step in _topological(graph):
        group = _deepest_group(step, [where[u] for u in step.after], root)
        if step.condition is not None:
            child = _Group(step.name, parent=group)
            group.children.append(child)
            group = child
        group.steps.append(step.name)
        where[step.name] = group
    return root


def _deepest_group(step: Step, groups: list[_Group], root: _Group) -> _Group:
    deepest = max(groups, key=lambda g: len(g.ancestors()), default=root)
    chain = deepest.ancestors()
    for g in groups:
        if g not in chain:
            raise CompileError(
                f"step {step.name!r} depends on steps guarded by two independent conditions "
                f"(if: of {g.owner!r} and of {deepest.owner!r}); Kubeflow Pipelines cannot "
                "run a task that depends on tasks in separate dsl.If groups. Add a "
                f"prev:{g.owner} tag to step {deepest.owner!r} (or the reverse) so one "
                "condition is nested in the other"
            )
    return deepest


def _topological(graph: StepGraph) -> list[Step]:
    order: list[Step] = []
    state: dict[str, int] = {}

    def visit(step: Step, path: tuple[str, ...]) -> None:
        if state.get(step.name) == 2:
            return
        if state.get(step.name) == 1:
            cycle = " -> ".join((*path, step.name))
            raise CompileError(f"the steps form a cycle ({cycle}); remove a prev: tag")
        state[step.name] = 1
        for up in step.after:
            visit(graph.step(up), (*path, step.name))
        state[step.name] = 2
        order.append(step)

    for step in graph.steps:
        visit(step, ())
    return order


# --- building with the kfp SDK --------------------------------------------------------------


def _build_pipeline(
    graph: StepGraph,
    plans: dict[str, _StepPlan],
    root: _Group,
    defaults: dict[str, Any],
    name: str,
) -> Any:
    from kfp import dsl

    components = {s: _make_component(plan) for s, plan in plans.items()}

    def body(**params: Any) -> None:
        tasks: dict[str, Any] = {}
        _emit_group(graph, root, plans, components, params, tasks)

    body.__name__ = body.__qualname__ = name.replace("-", "_")
    body.__doc__ = f"Steps of {Path(graph.path).name}, compiled by jupyter_mlk {__version__}."
    body.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [_pipeline_parameter(p, defaults[p.name]) for p in graph.parameters]
    )
    return dsl.pipeline(name=name)(body)


def _pipeline_parameter(param: Parameter, default: Any) -> inspect.Parameter:
    ptype = _py_type(param.type, f"parameter {param.name!r}")
    return inspect.Parameter(
        param.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=ptype
    )


def _emit_group(
    graph: StepGraph,
    group: _Group,
    plans: dict[str, _StepPlan],
    components: dict[str, Any],
    params: dict[str, Any],
    tasks: dict[str, Any],
) -> None:
    """Create the tasks of a group, then its child groups (their steps depend on ours)."""
    from kfp import dsl

    for step_name in group.steps:
        tasks[step_name] = _make_task(plans[step_name], components[step_name], params, tasks)
    for child in group.children:
        assert child.owner is not None
        with dsl.If(_condition(graph, plans, graph.step(child.owner), params, tasks)):
            _emit_group(graph, child, plans, components, params, tasks)


def _condition(
    graph: StepGraph,
    plans: dict[str, _StepPlan],
    step: Step,
    params: dict[str, Any],
    tasks: dict[str, Any],
) -> Any:
    cond = step.condition
    assert cond is not None
    if cond.left in step.inputs:
        producer = step.inputs[cond.left]
        left = tasks[producer].outputs[plans[producer].port("value", cond.left).name]
    elif cond.left in params:
        left = params[cond.left]
    else:
        raise CompileError(
            f"step {step.name!r}: the condition {cond.text!r} compares {cond.left!r}, which "
            "is neither a value an earlier step produces nor a parameter"
        )
    right = params[str(cond.right)] if cond.right_is_parameter else cond.right
    if cond.op not in _OPERATORS:
        raise CompileError(f"step {step.name!r}: unknown operator {cond.op!r} in {cond.text!r}")
    return _OPERATORS[cond.op](left, right)


def _make_task(
    plan: _StepPlan, component: Any, params: dict[str, Any], tasks: dict[str, Any]
) -> Any:
    kwargs: dict[str, Any] = {}
    fed_by: set[str] = set()
    for port in plan.ports:
        if port.kind == "param":
            kwargs[port.name] = params[port.ref]
        elif port.kind == "input":
            kwargs[port.name] = tasks[port.producer].outputs[port.source]
            fed_by.add(port.producer)
    task = component(**kwargs)
    for up in plan.step.after:
        if up not in fed_by:
            task.after(tasks[up])
    _apply_options(plan, task)
    return task


