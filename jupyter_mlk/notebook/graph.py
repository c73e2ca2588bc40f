"""Build the step graph of a notebook: cells to steps, names to values, values to edges.

The rule for values: a name a step reads comes from the latest earlier step (in notebook
order) that bound it or may have changed it in place. A step that reads ``x`` and rebinds
it reads the earlier version and produces a new one, so rebinding never makes a cycle.
Names that may share objects (``data = [train_df, test_df]``) travel together in one
bundle, and a step that changes one of them in place produces all of them.
"""

from __future__ import annotations

import ast
import importlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from jupyter_mlk.notebook.analysis import BUILTIN_NAMES, CodeScanner, transform_source
from jupyter_mlk.notebook.model import (
    Cell,
    Condition,
    Diagnostic,
    Parameter,
    Resources,
    Step,
    StepGraph,
)
from jupyter_mlk.notebook.params import extract_parameters
from jupyter_mlk.notebook.reader import LoadedNotebook, load_notebook
from jupyter_mlk.notebook.tags import CellTags, parse_tags, sanitize_name

DEFAULT_STEP = "main"


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def group(self, x: str, among: set[str]) -> set[str]:
        root = self.find(x)
        return {n for n in among if self.find(n) == root}


@dataclass
class _StepDraft:
    name: str
    cells: list[Cell] = field(default_factory=list)
    tags: list[CellTags] = field(default_factory=list)
    metric_cells: list[Cell] = field(default_factory=list)
    metric_names: list[str] = field(default_factory=list)


@dataclass
class _Roles:
    imports: list[Cell] = field(default_factory=list)
    functions: list[Cell] = field(default_factory=list)
    parameters: list[Cell] = field(default_factory=list)
    metrics: list[Cell] = field(default_factory=list)
    skip: list[Cell] = field(default_factory=list)
    steps: dict[str, _StepDraft] = field(default_factory=dict)


def _make_cell(
    raw_index: int,
    cell_id: str,
    source: str,
    tags: tuple[str, ...],
    role: str,
    step: str | None,
    diags: list[Diagnostic],
) -> Cell:
    code = source
    if role != "skip":
        try:
            code = transform_source(source)
        except Exception as exc:  # IPython's transformer raises for unbalanced input
            diags.append(Diagnostic("error", f"cannot read the cell: {exc}", raw_index, cell_id))
    return Cell(raw_index, cell_id, source, code, tags, role, step)  # type: ignore[arg-type]


_CONTROL = ("%mlk", "%load_ext jupyter_mlk", "%reload_ext jupyter_mlk")


def _is_control_cell(source: str) -> bool:
    """A cell of only ``%mlk`` lines (and ``%load_ext jupyter_mlk``, comments)."""
    lines = [ln.strip() for ln in source.splitlines() if ln.strip()]
    code = [ln for ln in lines if not ln.startswith("#")]
    return bool(code) and all(ln.startswith(_CONTROL) for ln in code)


def assign_roles(nb: LoadedNotebook, diags: list[Diagnostic]) -> _Roles:
    """Give every code cell its role.

    Untagged cells continue the role of the cell before them (Kale), with two exceptions
    that follow papermill and Kale's own processor: a ``parameters`` cell covers only itself
    (the untagged cells after it continue the step before it, or form the default step),
    and in a notebook with steps, untagged cells before the first tag belong to no step.
    """
    roles = _Roles()
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    parsed_cells = [(c, parse_tags(c.tags)) for c in code_cells]
    has_steps = any(p.role == "step" for _, p in parsed_cells)
    current: tuple[str, str | None] | None = None if has_steps else ("step", DEFAULT_STEP)
    last_step: str | None = None if has_steps else DEFAULT_STEP
    dropped: list[int] = []
    for raw, parsed in parsed_cells:
        if _is_control_cell(raw.source):
            continue  # `%mlk run` in the notebook drives the pipeline; it is never part of it
        for problem in parsed.problems:
            diags.append(Diagnostic("error", problem, raw.index, raw.id))
        if parsed.role == "skip":
            roles.skip.append(
                _make_cell(raw.index, raw.id, raw.source, raw.tags, "skip", None, diags)
            )
            continue
        if parsed.role == "step":
            current = ("step", parsed.step)
            last_step = parsed.step
        elif parsed.role == "parameters" and "pipeline-parameters" not in raw.tags:
            roles.parameters.append(
                _make_cell(raw.index, raw.id, raw.source, raw.tags, "parameters", None, diags)
            )
            current = ("step", last_step) if last_step else None
            continue
        elif parsed.role:
            current = (parsed.role, None)
        elif current is not None and not has_steps and current[0] != "step":
            current = ("step", DEFAULT_STEP)  # no step tags: the untagged code is one step
        elif current is None:
            if raw.source.strip():
                dropped.append(raw.index)
                roles.skip.append(
                    _make_cell(raw.index, raw.id, raw.source, raw.tags, "skip", None, diags)
                )
            continue
        role, step = current
        if parsed.has_step_options and role != "step":
            diags.append(
                Diagnostic(
                    "error",
                    f"step options {', '.join(t for t in raw.tags if ':' in t)} are on a {role} "
                    "cell; put them on a cell of the step they are for",
                    raw.index,
                    raw.id,
                )
            )
        if not raw.source.strip():
            if step and step not in roles.steps:
                roles.steps[step] = _StepDraft(step)
            if step:
                roles.steps[step].tags.append(parsed)
            continue
        cell = _make_cell(raw.index, raw.id, raw.source, raw.tags, role, step, diags)
        if role == "step" and step is not None:
            draft = roles.steps.setdefault(step, _StepDraft(step))
            draft.cells.append(cell)
            draft.tags.append(parsed)
        else:
            getattr(roles, role).append(cell)
    if dropped:
        cells = ", ".join(str(i) for i in dropped)
        diags.append(
            Diagnostic(
                "warning",
                f"untagged cell(s) {cells} come before the first tag and belong to no step, "
                "as in Kale; tag them imports (run in every step) or step:NAME to run them",
                dropped[0],
                next(c.id for c in code_cells if c.index == dropped[0]),
            )
        )
    return roles


def _check_clashes(roles: _Roles, diags: list[Diagnostic]) -> None:
    by_sanitized: dict[str, list[_StepDraft]] = defaultdict(list)
    for draft in roles.steps.values():
        by_sanitized[sanitize_name(draft.name)].append(draft)
    for sanitized, drafts in by_sanitized.items():
        if len(drafts) < 2:
            continue
        described = " and ".join(
            f"{d.name!r} (cell {d.cells[0].index}, id {d.cells[0].id})"
            if d.cells
            else repr(d.name)
            for d in drafts
        )
        first = drafts[1].cells[0] if drafts[1].cells else None
        diags.append(
            Diagnostic(
                "error",
                f"steps {described} have the same sanitised name {sanitized!r} (DNS-1123, used "
                "for KFP task names and Kubernetes objects); how to fix: rename one of the steps",
                first.index if first else None,
                first.id if first else None,
                drafts[1].name,
            )
        )


def _merge_options(
    draft: _StepDraft, param_names: set[str], diags: list[Diagnostic]
) -> tuple[list[str], Condition | None, Resources]:
    prev: list[str] = []
    condition: Condition | None = None
    limits: dict[str, str] = {}
    gpus = 0
    image: str | None = None
    cache = True
    node_selector: dict[str, str] = {}
    tolerations: list[str] = []
    first = draft.cells[0] if draft.cells else None
    deploy: tuple[str, str | None] | None = None
    canary: int | None = None
    for t in draft.tags:
        prev += [p for p in t.prev if p not in prev]
        if t.condition:
            left, op, right, is_name, text = t.condition
            new = Condition(left, op, right, is_name, text)
            if condition and condition != new:
                diags.append(
                    Diagnostic(
                        "error",
                        f"step {draft.name} has two conditions: if:{condition.text} and "
                        f"if:{text}; keep one",
                        first.index if first else None,
                        first.id if first else None,
                        draft.name,
                    )
                )
            condition = new
        limits.update(t.limits)
        gpus = max(gpus, t.gpus or 0)
        if t.image:
            if image and image != t.image:
                diags.append(
                    Diagnostic(
                        "error",
                        f"step {draft.name} names two images: {image} and {t.image}",
                        first.index if first else None,
                        first.id if first else None,
                        draft.name,
                    )
                )
            image = t.image
        if t.cache is False:
            cache = False
        node_selector.update(t.node_selector)
        tolerations += t.tolerations
        if t.deploy:
            deploy = t.deploy
        if t.canary is not None:
            canary = t.canary
    resources = Resources(
        deploy=deploy[0] if deploy else None,
        deploy_variable=deploy[1] if deploy else None,
        canary=canary,
        limits=tuple(sorted(limits.items())),
        gpus=gpus,
        image=image,
        cache=cache,
        node_selector=tuple(sorted(node_selector.items())),
        tolerations=tuple(tolerations),
    )
    return prev, condition, resources


def _scan_support(cells: list[Cell], diags: list[Diagnostic]) -> CodeScanner:
    scanner = CodeScanner()
    for cell in cells:
        tree = _parse(cell, diags)
        if tree is not None:
            scanner.scan(tree, cell.index)
    return scanner


def _parse(cell: Cell, diags: list[Diagnostic]) -> ast.Module | None:
    try:
        return ast.parse(cell.code)
    except SyntaxError as exc:
        diags.append(
            Diagnostic(
                "error", f"syntax error: {exc.msg}", cell.index, cell.id, cell.step, exc.lineno
            )
        )
        return None


def _star_names(
    modules: list[str], diags: list[Diagnostic], cell: Cell | None
) -> tuple[set[str], bool]:
    """Names star imports provide, by importing the modules; False when one failed."""
    names: set[str] = set()
    complete = True
    for module in modules:
        try:
            mod = importlib.import_module(module)
        except Exception as exc:
            complete = False
            diags.append(
                Diagnostic(
                    "warning",
                    f"'from {module} import *' could not be resolved ({exc}); names it "
                    "may provide are not checked",
                    cell.index if cell else None,
                    cell.id if cell else None,
                )
            )
            continue
        public = getattr(mod, "__all__", None)
        names.update(
            public if public is not None else [n for n in dir(mod) if not n.startswith("_")]
        )
    return names, complete


@dataclass
class _StepScan:
    draft: _StepDraft
    scanner: CodeScanner
    prev: list[str]
    condition: Condition | None
    resources: Resources


def build_graph(source: str | Path | LoadedNotebook) -> StepGraph:
    """Read a notebook and build its step graph; problems are in ``graph.diagnostics``."""
    nb = source if isinstance(source, LoadedNotebook) else load_notebook(source)
    diags: list[Diagnostic] = [Diagnostic("warning", w) for w in nb.warnings[:1]]
    roles = assign_roles(nb, diags)
    _check_clashes(roles, diags)

    imports_code = [c.code for c in roles.imports]
    params, param_diags = extract_parameters(
        [(c.index, c.id, c.code) for c in roles.parameters], imports_code
    )
    diags += param_diags
    param_names = {p.name for p in params}

    support = _scan_support([*roles.imports, *roles.parameters, *roles.functions], diags)
    support_cells = roles.imports or roles.functions
    star, star_complete = _star_names(
        support.info.star_imports, diags, support_cells[0] if support_cells else None
    )
    functions = dict(support.info.functions)
    mutates = dict(support.info.mutates)
    not_values = set(BUILTIN_NAMES | set(support.info.stores) | star) - param_names

    # Functions defined in a step are known to the steps after it (in notebook order):
    # calling one there reads its free variables and may change its arguments.
    scans: list[_StepScan] = []
    known_globals: dict[str, frozenset[str]] = {}
    drafts = sorted((d for d in roles.steps.values() if d.cells), key=lambda d: d.cells[0].index)
    for draft in drafts:
        scan = _scan_step(draft, functions, mutates, known_globals, param_names, diags)
        scans.append(scan)
        functions = {**functions, **scan.scanner.info.functions}
        mutates = {**mutates, **scan.scanner.info.mutates}
        known_globals = {**known_globals, **scan.scanner.function_globals}
    if not scans:
        diags.append(
            Diagnostic(
                "error",
                "the notebook has no code to run: every code cell is imports, parameters, "
                "functions, metrics or skip; tag the work with step:NAME or leave it untagged",
            )
        )
    scans.sort(key=lambda s: s.draft.cells[0].index)
    _attach_metrics(roles.metrics, scans, functions, diags)
    skip_scan = _scan_support(roles.skip, [])
    steps, metrics = _resolve(scans, params, not_values, star_complete, skip_scan, diags)

    diags.sort(key=lambda d: d.cell_index if d.cell_index is not None else -1)
    return StepGraph(
        path=nb.path,
        steps=tuple(steps),
        parameters=tuple(params),
        metrics=metrics,
        imports_cells=tuple(roles.imports),
        parameters_cells=tuple(roles.parameters),
        functions_cells=tuple(roles.functions),
        diagnostics=tuple(diags),
        kernel=nb.kernel,
        nbformat=nb.nbformat,
    )


def _scan_step(
    draft: _StepDraft,
    functions: dict[str, frozenset[str]],
    mutates: dict[str, frozenset[int | str]],
    known_globals: dict[str, frozenset[str]],
    param_names: set[str],
    diags: list[Diagnostic],
) -> _StepScan:
    prev, condition, resources = _merge_options(draft, param_names, diags)
    scanner = CodeScanner(functions, mutates, known_globals)
    for cell in draft.cells:
        tree = _parse(cell, diags)
        if tree is not None:
            scanner.scan(tree, cell.index)
    return _StepScan(draft, scanner, prev, condition, resources)


def _attach_metrics(
    metric_cells: list[Cell],
    scans: list[_StepScan],
    functions: dict[str, frozenset[str]],
    diags: list[Diagnostic],
) -> None:
    """Run each metrics cell at the end of the last step that produces what it reads."""
    for cell in metric_cells:
        tree = _parse(cell, diags)
        if tree is None:
            continue
        probe = CodeScanner(functions)
        probe.scan(tree, cell.index)
        wanted = set(probe.info.read_names())
        owner = None
        for scan in scans:
            if wanted & (set(scan.scanner.info.stores) | scan.scanner.info.changed):
                owner = scan
        if owner is None:
            diags.append(
                Diagnostic(
                    "error",
                    "this metrics cell reads nothing a step produces "
                    f"({', '.join(sorted(wanted)) or 'no names'}); metrics name values of steps",
                    cell.index,
                    cell.id,
                )
            )
            continue
        owner.draft.metric_cells.append(cell)
        owner.scanner.scan(tree, cell.index)
        for m in probe.info.printed + probe.info.stores:
            if m not in owner.draft.metric_names:
                owner.draft.metric_names.append(m)


def _resolve(
    scans: list[_StepScan],
    params: list[Parameter],
    not_values: set[str],
    star_complete: bool,
    skip_scan: CodeScanner,
    diags: list[Diagnostic],
) -> tuple[list[Step], dict[str, str]]:
    param_names = {p.name for p in params}
    names_order = {s.draft.name: i for i, s in enumerate(scans)}
    producer: dict[str, str] = {}
    ufs: dict[str, _UnionFind] = {}
    produced_by: dict[str, set[str]] = {}
    later_stores: dict[str, str] = {}
    for scan in scans:
        for n in [*scan.scanner.info.stores, *scan.scanner.info.changed]:
            later_stores.setdefault(n, scan.draft.name)

    read_anywhere = {r.name for s in scans for r in s.scanner.info.reads}
    inputs_of: dict[str, dict[str, str]] = {}
    alias_of: dict[str, dict[str, str]] = {}
    params_of: dict[str, list[str]] = {}
    for scan in scans:
        name = scan.draft.name
        info = scan.scanner.info
        inputs: dict[str, str] = {}
        used_params: set[str] = set()
        reported: set[str] = set()
        reads = list(info.reads)
        cond = scan.condition
        first = scan.draft.cells[0]
        from jupyter_mlk.notebook.analysis import Read

        if scan.resources.deploy is not None:  # the model it deploys is an input
            reads.append(Read(scan.resources.deploy_variable or "model", first.index, 1))
        if cond is not None:
            reads.append(Read(cond.left, first.index, 1))
            if cond.right_is_parameter:
                if cond.right in param_names:
                    used_params.add(str(cond.right))
                else:
                    diags.append(
                        Diagnostic(
                            "error",
                            f"if:{cond.text} compares with {cond.right!r}, which is not a "
                            "parameter; use a literal or one of: "
                            + ", ".join(sorted(param_names)),
                            first.index,
                            first.id,
                            name,
                        )
                    )
        for r in reads:
            if r.name in producer:
                inputs[r.name] = producer[r.name]
            elif r.name in param_names:
                used_params.add(r.name)
            elif r.name in not_values or not star_complete:
                continue
            elif r.name not in reported:
                reported.add(r.name)
                diags.append(
                    _unknown_name(
                        r.name, name, r.cell, r.line, scans, later_stores, skip_scan, scan
                    )
                )
        uf = _UnionFind()
        for a, b in info.aliases:
            uf.union(a, b)
        alias_inputs: dict[str, str] = {}
        for n, src in inputs.items():
            for m in ufs[src].group(n, produced_by[src]):
                uf.union(n, m)
                if m not in inputs and producer.get(m) == src and m in read_anywhere:
                    alias_inputs[m] = src
        loaded = set(inputs) | set(alias_inputs)
        stores = set(info.stores)
        changed: set[str] = set()
        for root in info.changed:
            changed |= uf.group(root, loaded | stores | {root})
        produced = {n for n in stores | changed if n not in not_values or n in param_names}
        for n in produced:
            producer[n] = name
        produced_by[name] = produced
        ufs[name] = uf
        inputs_of[name] = inputs
        alias_of[name] = alias_inputs
        params_of[name] = sorted(used_params)

    readers: dict[str, set[str]] = defaultdict(set)
    for name in inputs_of:
        for n, src in [*inputs_of[name].items(), *alias_of[name].items()]:
            readers[src].add(n)

    known_steps = set(names_order)
    steps: list[Step] = []
    metrics: dict[str, str] = {}
    for scan in scans:
        name = scan.draft.name
        first = scan.draft.cells[0]
        after = {src for src in [*inputs_of[name].values(), *alias_of[name].values()]}
        for p in scan.prev:
            if p not in known_steps:
                diags.append(
                    Diagnostic(
                        "warning",
                        f"prev:{p} names no step, so the edge was dropped; the steps "
                        f"are: {', '.join(names_order)}",
                        first.index,
                        first.id,
                        name,
                    )
                )
            elif p == name:
                diags.append(
                    Diagnostic(
                        "warning",
                        f"prev:{p} names the step itself; dropped",
                        first.index,
                        first.id,
                        name,
                    )
                )
            else:
                after.add(p)
        outputs = sorted(readers[name])
        uf = ufs[name]
        bundles: dict[str, list[str]] = defaultdict(list)
        for n in outputs:
            bundles[uf.find(n)].append(n)
        step_metrics = list(scan.draft.metric_names)
        for m in step_metrics:
            metrics[m] = name
        resources = _check_deploy(scan, inputs_of[name], diags)
        steps.append(
            Step(
                name=name,
                kfp_name=sanitize_name(name),
                cells=tuple(scan.draft.cells),
                params=tuple(params_of[name]),
                inputs=inputs_of[name],
                alias_inputs=alias_of[name],
                outputs=tuple(outputs),
                bundles=tuple(sorted(tuple(b) for b in bundles.values())),
                after=tuple(sorted(after, key=lambda s: names_order.get(s, 0))),
                prev_tags=tuple(scan.prev),
                condition=scan.condition,
                resources=resources,
                functions_used=tuple(scan.scanner.info.functions_used),
                metrics=tuple(step_metrics),
                metric_cells=tuple(scan.draft.metric_cells),
            )
        )
    _check_cycles(steps, diags)
    return steps, metrics


def _check_deploy(scan: _StepScan, inputs: dict[str, str], diags: list[Diagnostic]) -> Resources:
    """``deploy:NAME[:VARIABLE]`` deploys a model the step reads from an earlier step."""
    res = scan.resources
    if res.deploy is None:
        return res
    variable = res.deploy_variable or ("model" if "model" in inputs else None)
    if variable is None or variable not in inputs:
        first = scan.draft.cells[0]
        reads = ", ".join(sorted(inputs)) or "nothing from other steps"
        diags.append(
            Diagnostic(
                "error",
                f"deploy:{res.deploy} deploys a model the step reads from an earlier step, and "
                f"{variable or 'model'!r} is not one (the step reads: {reads}); write "
                f"deploy:{res.deploy}:VARIABLE",
                first.index,
                first.id,
                scan.draft.name,
            )
        )
        return res
    from dataclasses import replace

    return replace(res, deploy_variable=variable)


def _unknown_name(
    var: str,
    step: str,
    cell: int,
    line: int,
    scans: list[_StepScan],
    later_stores: dict[str, str],
    skip_scan: CodeScanner,
    scan: _StepScan,
) -> Diagnostic:
    cell_id = next((c.id for c in scan.draft.cells if c.index == cell), None)
    for m in scan.draft.metric_cells:
        if m.index == cell:
            cell_id = m.id
    later = later_stores.get(var)
    producer = next((s for s in scans if s.draft.name == later), None)
    if later and later != step and producer and producer.draft.cells[0].index < cell:
        first = scan.draft.cells[0].index
        why = (
            f"it is set by step {later!r} (cell {producer.draft.cells[0].index}), and step "
            f"{step} starts before it (cell {first}), so {step} runs first even though cell "
            f"{cell} comes after; give cell {cell} a step name of its own"
        )
    elif later and later != step:
        why = (
            f"it is first set by step {later!r}, which comes later in the notebook; "
            "move that code up or tag the cells in notebook order"
        )
    elif var in skip_scan.info.stores:
        why = "it is only set in a cell tagged skip; move that code into an imports cell or a step"
    else:
        why = (
            "no step, parameter, imports or functions cell sets it; define it, import it in "
            "the imports cell, or add it to a parameters cell"
        )
    return Diagnostic(
        "error", f"name {var!r} is read by step {step} but {why}", cell, cell_id, step, line
    )


def _check_cycles(steps: list[Step], diags: list[Diagnostic]) -> None:
    after = {s.name: set(s.after) for s in steps}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for up in sorted(after.get(n, ())):
            if state.get(up) == 1:
                return [*stack[stack.index(up) :], up]
            if up not in state:
                found = visit(up)
                if found:
                    return found
        stack.pop()
        state[n] = 2
        return None

    for s in steps:
        if s.name not in state:
            cycle = visit(s.name)
            if cycle:
                diags.append(
                    Diagnostic(
                        "error",
                        "the steps form a cycle through prev: tags: "
                        + " <- ".join(cycle)
                        + "; remove one of those prev: tags",
                        step=cycle[0],
                    )
                )
                return
