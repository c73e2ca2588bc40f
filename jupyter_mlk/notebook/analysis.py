"""Static analysis of cell code: which names a piece of code reads, binds and changes.

Cell source first goes through IPython's input transformer, so ``!cmd``, ``x = !ls``, line
and cell magics are plain Python calls. The scanner then walks the module-level statements
in evaluation order and records:

- reads: names loaded before the code bound them (with the cell and line of the first read);
- stores: names bound at module level;
- changed: names the code may change in place (``x[k] = v``, ``x.attr = v``, ``x.append(v)``,
  ``x.fit(...)``, ``inplace=True``), followed through aliases made in the same code
  (``for frame in data``, ``t = x[0]``);
- aliases: pairs of names that may share objects (``data = [a, b]``, ``t = x``);
- functions: for every function, lambda or class bound to a name, the module-level names
  its body reads when called (its free variables), so a call site can read them.

Nested scopes (functions, lambdas, comprehensions, classes) follow Python's scoping rules.
"""

from __future__ import annotations

import ast
import builtins
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from IPython.core.inputtransformer2 import TransformerManager

# Line and cell magics whose argument or body is Python code that runs in the user namespace.
PYTHON_LINE_MAGICS = frozenset({"time", "timeit", "prun", "debug", "capture"})
PYTHON_CELL_MAGICS = frozenset({"time", "timeit", "prun", "capture", "debug"})
# Magic and shell calls whose text may interpolate user variables with $name or {name}.
_SHELL_CALLS = frozenset({"system", "getoutput", "run_line_magic", "run_cell_magic"})
_INTERPOLATION = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)|\{([A-Za-z_][A-Za-z0-9_]*)[^{}]*\}")

# Methods that change their object in place. A call ``x.m(...)`` with ``m`` here means the
# step may change ``x``; any call with ``inplace=True`` counts too.
MUTATING_METHODS = frozenset(
    {
        "append",
        "extend",
        "insert",
        "remove",
        "pop",
        "popitem",
        "clear",
        "update",
        "setdefault",
        "sort",
        "reverse",
        "add",
        "discard",
        "difference_update",
        "intersection_update",
        "symmetric_difference_update",
        "fill",
        "resize",
        "put",
        "itemset",
        "setflags",
        "fit",
        "partial_fit",
        "fit_transform",
        "fit_predict",
        "set_params",
        "load_state_dict",
        "zero_grad",
        "train",
        "eval",
        "compile",
        "__setitem__",
        "__delitem__",
    }
)

# Functions that change their first argument in place: ``np.random.shuffle(x)``,
# ``random.shuffle(x)``, ``np.copyto(x, v)``, ``heapq.heappush(h, v)``, ``setattr(o, ...)``.
MUTATING_FUNCTIONS = frozenset(
    {
        "shuffle",
        "copyto",
        "put",
        "place",
        "putmask",
        "fill_diagonal",
        "heappush",
        "heappop",
        "heapify",
        "heapreplace",
        "heappushpop",
        "insort",
        "insort_left",
        "insort_right",
        "setattr",
        "delattr",
    }
)

IPYTHON_NAMES = frozenset(
    {
        "get_ipython",
        "display",
        "In",
        "Out",
        "exit",
        "quit",
        "_",
        "__",
        "___",
        "_i",
        "_ii",
        "_iii",
        "_ih",
        "_oh",
        "_dh",
        "__name__",
        "__doc__",
        "__builtins__",
        "__file__",
    }
)
BUILTIN_NAMES = frozenset(dir(builtins)) | IPYTHON_NAMES

_transformer: TransformerManager | None = None


def transform_source(source: str) -> str:
    """IPython syntax (magics, ``!`` lines, help) to plain Python, as the kernel does."""
    global _transformer
    if _transformer is None:
        _transformer = TransformerManager()  # type: ignore[no-untyped-call]
    return str(_transformer.transform_cell(source))


@dataclass(frozen=True)
class Read:
    """A name read by code before the code bound it."""

    name: str
    cell: int  # cell index
    line: int


@dataclass
class CodeInfo:
    """What a piece of code does with names, in program order."""

    reads: list[Read] = field(default_factory=list)
    stores: list[str] = field(default_factory=list)
    changed: set[str] = field(default_factory=set)
    aliases: list[tuple[str, str]] = field(default_factory=list)
    functions: dict[str, frozenset[str]] = field(default_factory=dict)
    functions_used: list[str] = field(default_factory=list)
    # function name -> positions and keyword names of the parameters it changes in place
    mutates: dict[str, frozenset[int | str]] = field(default_factory=dict)
    star_imports: list[str] = field(default_factory=list)
    printed: list[str] = field(default_factory=list)  # names printed or shown bare

    def read_names(self) -> list[str]:
        seen: dict[str, None] = {}
        for r in self.reads:
            seen.setdefault(r.name, None)
        return list(seen)


def _targets(node: ast.AST) -> Iterator[ast.expr]:
    """Leaf targets of an assignment target (names, attributes, subscripts, starred)."""
    if isinstance(node, (ast.Tuple, ast.List)):
        for elt in node.elts:
            yield from _targets(elt)
    elif isinstance(node, ast.Starred):
        yield from _targets(node.value)
    elif isinstance(node, ast.expr):
        yield node


def root_name(node: ast.AST) -> str | None:
    """``x`` for ``x``, ``x.a``, ``x[0]``, ``x.a[0].b``; None when a call is in the way."""
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Starred)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _names_in(node: ast.AST) -> Iterator[str]:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            yield sub.id


def _pattern_names(pattern: ast.AST) -> Iterator[str]:
    for sub in ast.walk(pattern):
        if isinstance(sub, (ast.MatchAs, ast.MatchStar)) and sub.name:
            yield sub.name
        elif isinstance(sub, ast.MatchMapping) and sub.rest:
            yield sub.rest


class _ScopeNames(ast.NodeVisitor):
    """Free names of one nested scope (function, lambda, class body or comprehension)."""

    def __init__(self) -> None:
        self.loads: set[str] = set()
        self.local: set[str] = set()
        self.declared_global: set[str] = set()

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self.loads.add(node.id)
        else:
            self.local.add(node.id)

    def visit_Global(self, node: ast.Global) -> None:
        self.declared_global.update(node.names)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.target, ast.Name):
            self.loads.add(node.target.id)  # x += 1 reads x first
        self.generic_visit(node)

    def visit_Nonlocal(self, node: ast.Nonlocal) -> None:
        self.local.update(node.names)

    def _nested(self, node: ast.AST) -> None:
        self.loads.update(free_names(node))

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.local.add(node.name)
        for d in node.decorator_list:
            self.visit(d)
        for default in [*node.args.defaults, *node.args.kw_defaults]:
            if default is not None:
                self.visit(default)
        self._nested(node)

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.local.add(node.name)
        for expr in [*node.decorator_list, *node.bases, *(k.value for k in node.keywords)]:
            self.visit(expr)
        self._nested(node)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        for default in [*node.args.defaults, *node.args.kw_defaults]:
            if default is not None:
                self.visit(default)
        self._nested(node)

    def _comprehension(self, node: ast.AST) -> None:
        self._nested(node)

    visit_ListComp = visit_SetComp = visit_GeneratorExp = visit_DictComp = _comprehension

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name != "*":
                self.local.add((alias.asname or alias.name).split(".")[0])

    visit_ImportFrom = visit_Import  # type: ignore[assignment]

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name:
            self.local.add(node.name)
        self.generic_visit(node)

    def visit_MatchAs(self, node: ast.MatchAs) -> None:
        if node.name:
            self.local.add(node.name)
        self.generic_visit(node)


def _arg_names(args: ast.arguments) -> set[str]:
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    names = {a.arg for a in every}
    if args.vararg:
        names.add(args.vararg.arg)
    if args.kwarg:
        names.add(args.kwarg.arg)
    return names


def free_names(node: ast.AST) -> set[str]:
    """Names a nested scope reads from the enclosing (module) scope when it runs."""
    scope = _ScopeNames()
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        scope.local |= _arg_names(node.args)
        for stmt in node.body:
            scope.visit(stmt)
    elif isinstance(node, ast.Lambda):
        scope.local |= _arg_names(node.args)
        scope.visit(node.body)
    elif isinstance(node, ast.ClassDef):
        for stmt in node.body:
            scope.visit(stmt)
    elif isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
        for gen in node.generators:
            for t in _targets(gen.target):
                scope.local.update(_names_in(t))
            scope.visit(gen.iter)
            for cond in gen.ifs:
                scope.visit(cond)
        if isinstance(node, ast.DictComp):
            scope.visit(node.key)
            scope.visit(node.value)
        else:
            scope.visit(node.elt)
    return (scope.loads - scope.local) | (scope.loads & scope.declared_global)


def global_writes(node: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """Module-level names a function binds through ``global`` when it is called."""
    declared: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Global):
            declared.update(sub.names)
    return declared


class CodeScanner(ast.NodeVisitor):
    """Walks module-level code in evaluation order and fills a :class:`CodeInfo`.

    One scanner is used for all cells of a step, in order, so a name bound by an earlier
    cell of the same step is not a read of a later one. ``known_functions`` are the
    functions of ``functions`` cells (name -> free names); calling one reads them.
    """

    def __init__(
        self,
        known_functions: dict[str, frozenset[str]] | None = None,
        known_mutates: dict[str, frozenset[int | str]] | None = None,
        known_globals: dict[str, frozenset[str]] | None = None,
    ) -> None:
        self.info = CodeInfo()
        self.bound: set[str] = set()
        self.known_functions: dict[str, frozenset[str]] = dict(known_functions or {})
        self.known_mutates: dict[str, frozenset[int | str]] = dict(known_mutates or {})
        self.function_globals: dict[str, frozenset[str]] = dict(known_globals or {})
        self.cell = 0
        self.line_offset = 0
        self._stored_order: dict[str, None] = {}

    # ---- entry points -------------------------------------------------------------------
    def scan(self, tree: ast.Module, cell: int) -> None:
        self.cell = cell
        for stmt in tree.body:
            self.visit(stmt)

    # ---- events -------------------------------------------------------------------------
    def _read(self, name: str, line: int) -> None:
        if name not in self.bound:
            self.info.reads.append(Read(name, self.cell, line + self.line_offset))
        self._expand_function(name, line)

    def _expand_function(self, name: str, line: int, seen: set[str] | None = None) -> None:
        """Reading a function's name reads its free variables (it may be called)."""
        free = self.info.functions.get(name) or self.known_functions.get(name)
        if free is None:
            return
        if (
            name not in self.info.functions_used
            and name in self.known_functions
            and name not in self.info.functions
        ):
            self.info.functions_used.append(name)
        seen = seen or set()
        seen.add(name)
        for n in sorted(free):
            if n in seen:
                continue
            if n not in self.bound:
                self.info.reads.append(Read(n, self.cell, line + self.line_offset))
            self._expand_function(n, line, seen)
        for g in self.function_globals.get(name, ()):
            self._store(g)

    def _store(self, name: str) -> None:
        self.bound.add(name)
        self._stored_order.setdefault(name, None)
        self.info.stores = list(self._stored_order)

    def _change(self, node: ast.AST) -> None:
        root = root_name(node)
        if root is not None:
            self.info.changed.add(root)

    # ---- expressions --------------------------------------------------------------------
    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self._read(node.id, node.lineno)
        else:
            self._store(node.id)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        self.visit(node.target)

    def _nested_reads(self, node: ast.AST) -> None:
        line = getattr(node, "lineno", 1)
        for name in sorted(free_names(node)):
            self._read(name, line)
        for sub in ast.walk(node):
            if isinstance(sub, ast.NamedExpr) and isinstance(sub.target, ast.Name):
                self._store(sub.target.id)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        for default in [*node.args.defaults, *node.args.kw_defaults]:
            if default is not None:
                self.visit(default)
        self._nested_reads(node)

    def _comprehension(self, node: ast.AST) -> None:
        self._nested_reads(node)

    visit_ListComp = visit_SetComp = visit_GeneratorExp = visit_DictComp = _comprehension

    def visit_Call(self, node: ast.Call) -> None:
        self.generic_visit(node)
        func = node.func
        callee = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if callee in MUTATING_FUNCTIONS and node.args:
            self._change(node.args[0])
        changes = self.info.mutates.get(str(callee)) or self.known_mutates.get(str(callee))
        if isinstance(func, ast.Name) and changes:
            for i, arg in enumerate(node.args):
                if i in changes:
                    self._change(arg)
            for kw in node.keywords:
                if kw.arg in changes:
                    self._change(kw.value)
        if _is_shell_call(node) and isinstance(func, ast.Attribute):
            self._magic_bindings(node)
        if isinstance(func, ast.Attribute):
            if func.attr in MUTATING_METHODS:
                self._change(func.value)
            if _is_shell_call(node):
                self._interpolated_reads(node)
            if _is_python_magic(node):
                self._python_magic(node)
        for kw in node.keywords:
            if (
                kw.arg == "inplace"
                and isinstance(kw.value, ast.Constant)
                and kw.value.value is True
                and isinstance(func, ast.Attribute)
            ):
                self._change(func.value)

    def _magic_bindings(self, node: ast.Call) -> None:
        """``%%capture cap`` binds ``cap``."""
        assert isinstance(node.func, ast.Attribute)
        if node.func.attr != "run_cell_magic" or len(node.args) < 2:
            return
        name, line = node.args[0], node.args[1]
        if not (isinstance(name, ast.Constant) and name.value == "capture"):
            return
        if isinstance(line, ast.Constant) and isinstance(line.value, str):
            words = [w for w in line.value.split() if not w.startswith("-")]
            if words and words[0].isidentifier():
                self._store(words[0])

    def _interpolated_reads(self, node: ast.Call) -> None:
        # IPython expands $name and {expr} in ! commands and magic lines, never in the
        # body of a cell magic (there $f belongs to bash, not to Python).
        assert isinstance(node.func, ast.Attribute)
        args = node.args[1:2] if node.func.attr == "run_cell_magic" else node.args
        if node.func.attr == "run_line_magic":
            args = node.args[1:]
        for arg in args:
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                for m in _INTERPOLATION.finditer(arg.value):
                    name = m.group(1) or m.group(2)
                    if name:
                        self._read(name, node.lineno)

    def _python_magic(self, node: ast.Call) -> None:
        """``%time x = f()`` and ``%%time`` bodies are Python: scan them in place."""
        assert isinstance(node.func, ast.Attribute)
        body = node.args[-1]
        if not (isinstance(body, ast.Constant) and isinstance(body.value, str)):
            return
        try:
            tree = ast.parse(transform_source(body.value))
        except SyntaxError:
            return
        saved = self.line_offset
        self.line_offset += node.lineno - 1
        for stmt in tree.body:
            self.visit(stmt)
        self.line_offset = saved

    # ---- statements ---------------------------------------------------------------------
    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        for target in node.targets:
            self._assign(target, node.value)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)
            self._assign(node.target, node.value)
        elif not isinstance(node.target, ast.Name):
            self.visit(node.target)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.target, ast.Name):
            self._read(node.target.id, node.lineno)
            self.visit(node.value)
            self._store(node.target.id)
        else:
            self.visit(node.target.value)  # type: ignore[attr-defined]
            self.visit(node.value)
            self._change(node.target)

    def _assign(self, target: ast.expr, value: ast.expr | None) -> None:
        if (
            isinstance(target, (ast.Tuple, ast.List))
            and isinstance(value, (ast.Tuple, ast.List))
            and len(target.elts) == len(value.elts)
            and not any(isinstance(e, ast.Starred) for e in target.elts)
        ):
            for t, v in zip(target.elts, value.elts, strict=True):
                self._assign(t, v)
            return
        for leaf in _targets(target):
            if isinstance(leaf, ast.Name):
                self._store(leaf.id)
                if value is not None:
                    for src in _alias_sources(value):
                        self.info.aliases.append((leaf.id, src))
                    self._bind_function(leaf.id, value)
            else:
                # x.attr = v / x[k] = v: evaluate x and k, then x is changed in place
                self.visit(leaf.value)  # type: ignore[attr-defined]
                if isinstance(leaf, ast.Subscript):
                    self.visit(leaf.slice)
                self._change(leaf)

    def _bind_function(self, name: str, value: ast.expr) -> None:
        if isinstance(value, ast.Lambda):
            self.info.functions[name] = frozenset(free_names(value))

    def visit_Delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            for leaf in _targets(target):
                if isinstance(leaf, ast.Name):
                    self._read(leaf.id, node.lineno)
                else:
                    self.visit(leaf.value)  # type: ignore[attr-defined]
                    self._change(leaf)

    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
        self.visit(node.iter)
        roots = set(_iter_roots(node.iter))
        for leaf in _targets(node.target):
            if isinstance(leaf, ast.Name):
                self._store(leaf.id)
                for r in roots:
                    self.info.aliases.append((leaf.id, r))
            else:
                self._assign(leaf, None)
        for stmt in [*node.body, *node.orelse]:
            self.visit(stmt)

    visit_AsyncFor = visit_For  # type: ignore[assignment]

    def visit_With(self, node: ast.With | ast.AsyncWith) -> None:
        for item in node.items:
            self.visit(item.context_expr)
            if item.optional_vars is not None:
                self._assign(item.optional_vars, None)
        for stmt in node.body:
            self.visit(stmt)

    visit_AsyncWith = visit_With  # type: ignore[assignment]

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for d in node.decorator_list:
            self.visit(d)
        for default in [*node.args.defaults, *node.args.kw_defaults]:
            if default is not None:
                self.visit(default)
        self.info.functions[node.name] = frozenset(free_names(node))
        changed = _changed_parameters(node, self.known_functions, self.known_mutates)
        if changed:
            self.info.mutates[node.name] = changed
        writes = global_writes(node)
        if writes:
            self.function_globals[node.name] = frozenset(writes)
        self._store(node.name)

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for expr in [*node.decorator_list, *node.bases, *(k.value for k in node.keywords)]:
            self.visit(expr)
        self.info.functions[node.name] = frozenset(free_names(node))
        self._store(node.name)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._store((alias.asname or alias.name).split(".")[0])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name == "*":
                if node.module and not node.level:
                    self.info.star_imports.append(node.module)
            else:
                self._store(alias.asname or alias.name)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.type is not None:
            self.visit(node.type)
        if node.name:
            self._store(node.name)
        for stmt in node.body:
            self.visit(stmt)

    def visit_Match(self, node: ast.Match) -> None:
        self.visit(node.subject)
        for case in node.cases:
            for name in _pattern_names(case.pattern):
                self._store(name)
            for sub in ast.walk(case.pattern):
                if isinstance(sub, ast.MatchValue):
                    self.visit(sub.value)
            if case.guard is not None:
                self.visit(case.guard)
            for stmt in case.body:
                self.visit(stmt)

    def visit_Global(self, node: ast.Global) -> None:
        return None

    visit_Nonlocal = visit_Global  # type: ignore[assignment]

    def visit_Expr(self, node: ast.Expr) -> None:
        value = node.value
        if isinstance(value, ast.Name):
            self.info.printed.append(value.id)
        elif (
            isinstance(value, ast.Call)
            and isinstance(value.func, ast.Name)
            and value.func.id in ("print", "display")
        ):
            self.info.printed.extend(a.id for a in value.args if isinstance(a, ast.Name))
        self.visit(value)


def _changed_parameters(
    node: ast.FunctionDef | ast.AsyncFunctionDef,
    functions: dict[str, frozenset[str]],
    mutates: dict[str, frozenset[int | str]],
) -> frozenset[int | str]:
    """Positions and names of the parameters a function changes in place."""
    positional = [a.arg for a in [*node.args.posonlyargs, *node.args.args]]
    names = set(positional) | {a.arg for a in node.args.kwonlyargs}
    body = CodeScanner(functions, mutates)
    body.bound = set(names)
    for stmt in node.body:
        body.visit(stmt)
    uf: dict[str, str] = {}

    def root(x: str) -> str:
        while uf.get(x, x) != x:
            x = uf[x]
        return x

    for a, b in body.info.aliases:
        uf[root(a)] = root(b)
    changed = {n for n in names if any(root(c) == root(n) for c in body.info.changed)}
    out: set[int | str] = set(changed)
    out.update(i for i, n in enumerate(positional) if n in changed)
    return frozenset(out)


def _is_shell_call(node: ast.Call) -> bool:
    func = node.func
    return (
        isinstance(func, ast.Attribute)
        and func.attr in _SHELL_CALLS
        and isinstance(func.value, ast.Call)
        and isinstance(func.value.func, ast.Name)
        and func.value.func.id == "get_ipython"
    )


def _is_python_magic(node: ast.Call) -> bool:
    if not _is_shell_call(node) or not node.args:
        return False
    assert isinstance(node.func, ast.Attribute)
    name = node.args[0]
    if not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
        return False
    if node.func.attr == "run_line_magic":
        return name.value in PYTHON_LINE_MAGICS
    if node.func.attr == "run_cell_magic":
        return name.value in PYTHON_CELL_MAGICS
    return False


def _alias_sources(value: ast.expr) -> Iterator[str]:
    """Names whose objects ``value`` may share: ``x``, ``x[0]``, ``x.a``, ``[a, b]``."""
    if isinstance(value, (ast.Name, ast.Attribute, ast.Subscript, ast.Starred)):
        root = root_name(value)
        if root is not None:
            yield root
    elif isinstance(value, (ast.List, ast.Tuple, ast.Set)):
        for elt in value.elts:
            yield from _alias_sources(elt)
    elif isinstance(value, ast.Dict):
        for v in value.values:
            yield from _alias_sources(v)
    elif isinstance(value, ast.IfExp):
        yield from _alias_sources(value.body)
        yield from _alias_sources(value.orelse)


def _iter_roots(node: ast.expr) -> Iterable[str]:
    """Names whose elements a for loop's target may be: ``data``, ``enumerate(data)``."""
    if isinstance(node, ast.Call):
        for arg in node.args:
            yield from _iter_roots(arg)
        if isinstance(node.func, ast.Attribute):  # d.items(), df.iterrows()
            root = root_name(node.func.value)
            if root:
                yield root
    else:
        yield from _alias_sources(node)
