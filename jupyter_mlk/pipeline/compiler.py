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
import contextlib
import dataclasses
import inspect
import logging
import math
import operator
import os
import re
import tempfile
import threading
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
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

USE_LIBYAML = True  # see _libyaml_emitter; tests turn it off to compare the bytes
_KFP_LOCK = threading.RLock()

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
    s3_secret: str | None = None,
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
        s3_secret: The Kubernetes secret (keys ``AWS_ACCESS_KEY_ID``,
            ``AWS_SECRET_ACCESS_KEY``) that gives every task the S3 artifact store's
            credentials; with ``MLK_S3_BUCKET`` set, the tasks also get the bucket, prefix
            and endpoint. Only the secret's name is written into the YAML.

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
    kinds = {s.name: _bound_kinds(s) for s in graph.steps}
    plans = {s.name: _plan_step(graph, s, defaults, image, kinds) for s in graph.steps}
    _link_inputs(plans)
    _add_value_ports(graph, plans)
    root = _plan_groups(graph)
    name = _dns1123(pipeline_name or Path(graph.path).stem) or "pipeline"
    with _KFP_LOCK:  # kfp builds pipelines in a process-global context
        _STORAGE.clear()
        _STORAGE.update(_storage_settings(s3_secret))
        try:
            pipeline = _build_pipeline(graph, plans, root, defaults, name)
        except (ValueError, TypeError) as exc:
            raise CompileError(
                f"the KFP SDK refused the pipeline of {Path(graph.path).name}: {exc}"
            ) from exc
        _check_task_names(graph, pipeline)
        return _stabilise_header(_compile_to_text(pipeline, name), pipeline)


def write_pipeline(
    graph: StepGraph,
    path: str | os.PathLike[str],
    *,
    image: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    pipeline_name: str | None = None,
    s3_secret: str | None = None,
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
    text = compile_pipeline(
        graph, image=image, overrides=overrides, pipeline_name=pipeline_name, s3_secret=s3_secret
    )
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
    return _bundle_kind(_bound_kinds(step), names)


def _bundle_kind(kinds: Mapping[str, str], names: Iterable[str]) -> str:
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
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", p.name):
            raise CompileError(
                f"parameter {p.name!r} (cell {p.cell_index}): Kubeflow Pipelines needs "
                "parameter names that start with an ASCII letter and hold only letters, "
                "digits and _; rename it in the parameters cell"
            )
        value = to_json_value(overrides.get(p.name, p.default))
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
    """An input/output name KFP accepts: ASCII letters, digits, ``_``; a letter first."""
    ident = re.sub(r"[^A-Za-z0-9_]", "_", text)
    return ident if ident[:1].isascii() and ident[:1].isalpha() else f"v{ident}"


# --- per-step plan ---------------------------------------------------------------------------


def _plan_step(
    graph: StepGraph,
    step: Step,
    defaults: dict[str, Any],
    image: str | None,
    kinds: dict[str, dict[str, str]],
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
        if defaults[pname] is None:
            # An optional KFP input with no value leaves its placeholder unsubstituted on
            # some backends, so a None default is not passed: the parameters cell sets it.
            continue
        ptype = _py_type(graph.parameter(pname).type, f"parameter {pname!r}")
        ports.append(_Port(names.take(pname), "param", pname, ptype))
    for ref in spec.inputs:
        kind = _bundle_kind(kinds[ref.step], ref.names)
        port_name = names.take(f"{graph.step(ref.step).kfp_name}__{ref.key}")
        ports.append(_Port(port_name, "input", f"{ref.step}/{ref.key}", kind, ref.step))
    for ref in spec.outputs:
        kind = _bundle_kind(kinds[step.name], ref.names)
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
                key = port.ref.rsplit("/", 1)[1]
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

    names = [p.name for p in graph.parameters]

    def body(*args: Any) -> None:
        params = dict(zip(names, args, strict=True))
        _emit_group(graph, root, plans, components, params, {})

    body.__name__ = body.__qualname__ = name.replace("-", "_")
    body.__doc__ = f"Steps of {Path(graph.path).name}, compiled by jupyter_mlk {__version__}."
    body.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [_pipeline_parameter(p, defaults[p.name]) for p in graph.parameters]
    )
    return dsl.pipeline(name=name)(body)


def _pipeline_parameter(param: Parameter, default: Any) -> inspect.Parameter:
    ptype = _py_type(param.type, f"parameter {param.name!r}")
    return inspect.Parameter(
        param.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default, annotation=ptype
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


def _apply_options(plan: _StepPlan, task: Any) -> None:
    """Resources, placement, caching and environment of one task, from the step's tags."""
    res = plan.step.resources
    try:
        _apply_limits(plan, task)
        for key, value in res.node_selector:
            _kubernetes().add_node_selector(task, label_key=key, label_value=value)
        for text in res.tolerations:
            _kubernetes().add_toleration(task, **_toleration(plan.step, text))
    except ValueError as exc:
        raise CompileError(f"step {plan.step.name!r}: {exc}") from exc
    if not res.cache:
        task.set_caching_options(False)
    if plan.spec.metrics:
        task.set_env_variable(KFP_OUTPUT_METADATA_ENV, KFP_OUTPUT_METADATA_PATH)
    if plan.step.name != plan.step.kfp_name:
        task.set_display_name(plan.step.name)
    _apply_storage(task)


# The S3 settings of the compile in progress (set under _KFP_LOCK): names only, no secret.
_STORAGE: dict[str, str] = {}
_S3_ENV = ("MLK_S3_BUCKET", "MLK_S3_PREFIX", "MLK_S3_ENDPOINT_URL", "MLK_S3_REGION")
_S3_SECRET_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


def _storage_settings(secret: str | None) -> dict[str, str]:
    settings = {k: os.environ[k] for k in _S3_ENV if os.environ.get(k)}
    secret = secret or os.environ.get("MLK_S3_SECRET")
    if secret:
        settings["secret"] = secret
    return settings


def _apply_storage(task: Any) -> None:
    """Point a task at the S3 artifact store; credentials only by a secret's name."""
    for key in _S3_ENV:
        if key in _STORAGE:
            task.set_env_variable(key, _STORAGE[key])
    if "secret" in _STORAGE:
        _kubernetes().use_secret_as_env(
            task,
            secret_name=_STORAGE["secret"],
            secret_key_to_env={k: k for k in _S3_SECRET_KEYS},
        )


def _apply_limits(plan: _StepPlan, task: Any) -> None:
    res = plan.step.resources
    accelerator = "nvidia.com/gpu"
    for resource, amount in res.limits:
        if resource == "cpu":
            task.set_cpu_request(amount).set_cpu_limit(amount)
        elif resource == "memory":
            task.set_memory_request(amount).set_memory_limit(amount)
        elif resource in _GPU_RESOURCES:
            accelerator = resource
        else:
            raise CompileError(
                f"step {plan.step.name!r}: limit:{resource}:{amount} has no field in a KFP v2 "
                "pipeline (it sets CPU, memory and one accelerator type per task); remove "
                "the tag, or set it with a LimitRange in the namespace the pipeline runs in"
            )
    if res.gpus > 0:
        task.set_accelerator_type(accelerator).set_accelerator_limit(res.gpus)


def _toleration(step: Step, text: str) -> dict[str, Any]:
    """``KEY[=VALUE][:EFFECT]`` as the keyword arguments of ``kubernetes.add_toleration``."""
    rest, _, effect = text.rpartition(":") if ":" in text else (text, "", "")
    if effect and effect not in _TOLERATION_EFFECTS:
        rest, effect = text, ""
    key, eq, value = rest.partition("=")
    if effect and effect not in _TOLERATION_EFFECTS:
        raise CompileError(
            f"step {step.name!r}: toleration:{text} has effect {effect!r}; "
            f"use one of {', '.join(_TOLERATION_EFFECTS)}"
        )
    return {
        "key": key,
        "operator": "Equal" if eq else "Exists",
        "value": value if eq else None,
        "effect": effect or None,
    }


def _kubernetes() -> Any:
    from kfp import kubernetes

    return kubernetes


# --- components --------------------------------------------------------------------------


def _make_component(plan: _StepPlan) -> Any:
    """A container component running the step runner, with one input/output per port."""
    from kfp import dsl

    ports = list(plan.ports)
    spec_json = plan.spec.to_json()

    def body(*args: Any) -> Any:
        bound = dict(zip([p.name for p in ports], args, strict=True))
        return dsl.ContainerSpec(
            image=plan.image,
            command=list(RUNNER_COMMAND),
            args=_runner_args(spec_json, ports, bound),
        )

    body.__name__ = body.__qualname__ = plan.step.kfp_name.replace("-", "_")
    body.__doc__ = _component_doc(plan)
    body.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter(p.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=_ann(p))
            for p in ports
        ],
        return_annotation=dsl.ContainerSpec,
    )
    return dsl.container_component(body)


def _ann(port: _Port) -> Any:
    from kfp import dsl

    if port.kind == "param":
        return port.type
    if port.kind == "value":
        return dsl.OutputPath(port.type)
    artifact = getattr(dsl, port.type)
    return dsl.Input[artifact] if port.kind == "input" else dsl.Output[artifact]


def _runner_args(spec_json: str, ports: list[_Port], bound: dict[str, Any]) -> list[str]:
    """The runner's command line (see ``jupyter_mlk.pipeline.runner``) with KFP placeholders.

    Placeholders sit inside plain strings (never ``Concat``), since every KFP backend
    substitutes ``{{$...}}`` text. KFP substitutes a STRING parameter as its raw text and
    every other type as JSON, so the runner reads ``--param`` of str, date, datetime and
    NoneType parameters as plain text.
    """
    args = ["--spec", spec_json]
    for p in ports:
        value = bound[p.name]
        if p.kind == "param":
            args += ["--param", f"{p.ref}={value}"]
        elif p.kind in ("input", "output"):
            args += [f"--{p.kind}", f"{p.ref}={value.path}"]
        elif p.kind == "metrics":
            args += ["--metrics", f"{value.path}"]
        else:
            args += ["--value", f"{p.ref}={value}"]
    return args


def _component_doc(plan: _StepPlan) -> str:
    """The component's docstring: KFP takes input descriptions from its Args section and
    output descriptions from its Returns section."""
    lines = [f"Step {plan.step.name} of {plan.spec.notebook}, run by the jupyter_mlk runner."]
    inputs = [p for p in plan.ports if p.kind in ("param", "input")]
    outputs = [p for p in plan.ports if p.kind not in ("param", "input")]
    for title, ports in (("Args:", inputs), ("Returns:", outputs)):
        if ports:
            lines += ["", title]
            lines += [f"    {p.name}: {_port_description(plan, p)}" for p in ports]
    return "\n".join(lines) + "\n"


def _port_description(plan: _StepPlan, port: _Port) -> str:
    if port.kind == "param":
        return f"Pipeline parameter {port.ref}."
    if port.kind == "input":
        producer, key = port.ref.rsplit("/", 1)
        return f"Bundle {key} written by step {producer}."
    if port.kind == "output":
        names = next(r.names for r in plan.spec.outputs if r.key == port.ref)
        return f"Bundle {port.ref} holding {', '.join(names)}."
    if port.kind == "metrics":
        return f"Metrics reported by this step: {', '.join(plan.spec.metrics)}."
    return f"Value {port.ref}, published for an if: condition of a later step."


# --- compiling and checking --------------------------------------------------------------


def _compile_to_text(pipeline: Any, name: str) -> str:
    from kfp import compiler

    with tempfile.TemporaryDirectory(prefix="mlk-compile-") as tmp:
        out = Path(tmp) / "pipeline.yaml"
        try:
            with _libyaml_emitter():
                compiler.Compiler().compile(pipeline, str(out), pipeline_name=name)
        except (ValueError, TypeError, RuntimeError) as exc:
            raise CompileError(f"the KFP compiler refused the pipeline {name!r}: {exc}") from exc
        return out.read_text(encoding="utf-8")


@contextlib.contextmanager
def _libyaml_emitter() -> Iterator[None]:
    """Let kfp's spec writer emit YAML with libyaml instead of pure-Python PyYAML.

    kfp 2.17 writes the spec with ``yaml.dump_all`` and PyYAML's pure-Python emitter,
    which is 70% of the compile time of a 200-step pipeline (0.7 s of 1.2 s here).
    libyaml's emitter writes the same bytes (a test compares both) about 7 times
    faster. kfp reads ``yaml`` as a module global, so that global is swapped for the
    duration of one compile, under ``_KFP_LOCK`` (held by :func:`compile_pipeline`, since
    kfp's pipeline context is process-global anyway, so compiles never overlap).
    """
    import yaml
    from kfp.compiler import pipeline_spec_builder

    dumper = getattr(yaml, "CSafeDumper", None)
    if not USE_LIBYAML or dumper is None:
        yield
        return
    original = pipeline_spec_builder.yaml
    pipeline_spec_builder.yaml = _YamlWithDumper(yaml, dumper)
    try:
        yield
    finally:
        pipeline_spec_builder.yaml = original


class _YamlWithDumper(types.ModuleType):
    """The ``yaml`` module, except that ``dump_all`` uses the given Dumper."""

    def __init__(self, module: types.ModuleType, dumper: Any) -> None:
        super().__init__(module.__name__)
        self._module = module
        self._dumper = dumper

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)

    def dump_all(self, documents: Any, stream: Any = None, **kwargs: Any) -> Any:
        return self._module.dump_all(documents, stream, Dumper=self._dumper, **kwargs)


def _stabilise_header(text: str, pipeline: Any) -> str:
    """Rewrite the dict/list defaults of KFP's comment header with sorted keys.

    kfp 2.17 prints those defaults from a protobuf Struct, whose key order depends on the
    process's hash seed; the YAML body itself is sorted. Without this, two compiles in
    two processes differ in the header.
    """
    from google.protobuf import json_format

    params = pipeline.pipeline_spec.root.input_definitions.parameters
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if not line.startswith("#"):
            break
        m = re.match(r"#    (\w+): (dict|list) \[Default: ", line)
        if m and m.group(1) in params:
            default = json_format.MessageToDict(params[m.group(1)].default_value)
            lines[i] = f"{m.group(0)}{_sorted_json(default)}]"
    return "\n".join(lines)


def _sorted_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted_json(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted_json(v) for v in value]
    return value


def _check_task_names(graph: StepGraph, pipeline: Any) -> None:
    """Every step must be the task named after its ``kfp_name``, never renamed by KFP."""
    spec = pipeline.pipeline_spec
    dags = [spec.root.dag, *(c.dag for c in spec.components.values() if c.HasField("dag"))]
    names = [n for dag in dags for n, t in dag.tasks.items() if not t.trigger_policy.condition]
    missing = sorted({s.kfp_name for s in graph.steps} - set(names))
    if missing:
        raise CompileError(
            f"steps {', '.join(missing)} did not become KFP tasks of the same name (a name "
            "such as condition-1 is taken by KFP's own groups); rename those steps"
        )


# --- artifact type guess -------------------------------------------------------------------


def _bound_kinds(step: Step) -> dict[str, str]:
    """Name -> Model/Dataset for the names a step binds in a recognisable way."""
    kinds: dict[str, str] = {}
    for cell in step.cells:
        try:
            tree = ast.parse(cell.code)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            _note_binding(node, kinds)
    return kinds


def _note_binding(node: ast.AST, kinds: dict[str, str]) -> None:
    if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
        kind = _call_kind(node.value)
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for name in (n for t in targets for n in _target_names(t)):
            if kind:
                kinds[name] = kind
            else:
                kinds.pop(name, None)
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        obj = node.func.value
        if node.func.attr == "fit" and isinstance(obj, ast.Name):
            kinds[obj.id] = "Model"


def _target_names(target: ast.expr) -> list[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Starred):
        return _target_names(target.value)
    if isinstance(target, (ast.Tuple, ast.List)):
        return [n for e in target.elts for n in _target_names(e)]
    return []


def _call_kind(value: ast.expr) -> str | None:
    if not isinstance(value, ast.Call):
        return None
    func = value.func
    last = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    if last == "fit" or last.endswith(_MODEL_SUFFIXES):
        return "Model"
    root = func
    while isinstance(root, ast.Attribute):
        root = root.value
    if last in _DATASET_CALLS or last.startswith("read_"):
        return "Dataset"
    if isinstance(root, ast.Name) and root.id in _DATASET_MODULES:
        return "Dataset"
    return None
