"""Pipeline parameters: read them from ``parameters`` cells, convert overrides to their type.

Every top-level assignment in a ``parameters`` cell is a parameter, annotated or not. Its
type follows its default: a literal is read with ``ast.literal_eval``; any other default
(``datetime.date(2024, 1, 31)``) is evaluated after the imports it needs. An override typed
on a command line is converted to that type by :func:`convert_value`, or refused with the
name, type and value.
"""

from __future__ import annotations

import ast
import datetime as _dt
import difflib
import json
import math
from collections.abc import Mapping
from typing import Any

from jupyter_mlk.errors import ParameterError
from jupyter_mlk.notebook.model import Diagnostic, Parameter

SUPPORTED_TYPES = (
    "int",
    "float",
    "bool",
    "str",
    "list",
    "dict",
    "tuple",
    "NoneType",
    "date",
    "datetime",
)
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


def type_name(value: Any) -> str:
    """The parameter type of a default value (see ``SUPPORTED_TYPES``)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, _dt.datetime):
        return "datetime"
    if isinstance(value, _dt.date):
        return "date"
    return type(value).__name__


def to_json_value(value: Any) -> Any:
    """A parameter value in JSON form: dates as ISO text, tuples as lists."""
    if isinstance(value, (_dt.date, _dt.datetime)):
        return value.isoformat()
    if isinstance(value, tuple):
        return [to_json_value(v) for v in value]
    if isinstance(value, list):
        return [to_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_json_value(v) for k, v in value.items()}
    return value


def json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities as None: what strict JSON (browsers) can read."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def from_json_value(type_: str, value: Any) -> Any:
    """Undo :func:`to_json_value` for a parameter of type ``type_`` (the step runner's side).

    KFP hands integers back as floats (``50.0``) and tuples as lists; both are restored.
    """
    if value is None:
        return None
    if type_ == "int" and isinstance(value, float) and value.is_integer():
        return int(value)
    if type_ == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if type_ == "tuple" and isinstance(value, list):
        return tuple(value)
    if type_ == "date" and isinstance(value, str):
        return _dt.date.fromisoformat(value)
    if type_ == "datetime" and isinstance(value, str):
        return _dt.datetime.fromisoformat(value)
    if type_ == "bool" and isinstance(value, str):
        return value.strip().lower() in _TRUE
    return value


def _literal_choices(annotation: ast.expr | None) -> tuple[Any, ...] | None:
    if not isinstance(annotation, ast.Subscript):
        return None
    base = annotation.value
    base_name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "")
    if base_name != "Literal":
        return None
    elts = annotation.slice.elts if isinstance(annotation.slice, ast.Tuple) else [annotation.slice]
    try:
        return tuple(ast.literal_eval(e) for e in elts)
    except ValueError:
        return None


def _import_namespace(imports_code: list[str], needed: set[str]) -> dict[str, Any]:
    """Run only the import statements of the imports cells that bind ``needed`` names."""
    ns: dict[str, Any] = {}
    for code in imports_code:
        try:
            tree = ast.parse(code)
        except SyntaxError:
            continue
        for stmt in tree.body:
            if not isinstance(stmt, (ast.Import, ast.ImportFrom)):
                continue
            bound = {(a.asname or a.name).split(".")[0] for a in stmt.names}
            if bound & needed:
                exec(compile(ast.Module([stmt], []), "<imports>", "exec"), ns)
    return ns


def _evaluate_default(value: ast.expr, imports_code: list[str]) -> tuple[Any, str | None]:
    try:
        return ast.literal_eval(value), None
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        pass
    needed = {n.id for n in ast.walk(value) if isinstance(n, ast.Name)}
    try:
        ns = _import_namespace(imports_code, needed)
        code = compile(ast.Expression(value), "<parameter>", "eval")
        return eval(code, ns), None
    except Exception as exc:
        return None, f"{type(exc).__name__}: {exc}"


def extract_parameters(
    cells: list[tuple[int, str, str]], imports_code: list[str]
) -> tuple[list[Parameter], list[Diagnostic]]:
    """Parameters from ``(index, id, code)`` of each ``parameters`` cell, later cells win."""
    found: dict[str, Parameter] = {}
    problems: list[Diagnostic] = []
    for index, cell_id, code in cells:
        try:
            tree = ast.parse(code)
        except SyntaxError as exc:
            problems.append(
                Diagnostic("error", f"syntax error: {exc.msg}", index, cell_id, line=exc.lineno)
            )
            continue
        for stmt in tree.body:
            for name, value, annotation in _assignments(stmt):
                param, problem = _make_parameter(
                    name, value, annotation, code, index, imports_code
                )
                if problem:
                    problems.append(Diagnostic("error", problem, index, cell_id, line=stmt.lineno))
                if param:
                    found.pop(name, None)
                    found[name] = param
            if not isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.Import, ast.ImportFrom)):
                problems.append(
                    Diagnostic(
                        "warning",
                        "a parameters cell should hold only assignments; this statement "
                        "runs in every step but is not a parameter",
                        index,
                        cell_id,
                        line=stmt.lineno,
                    )
                )
    return list(found.values()), problems


def _assignments(stmt: ast.stmt) -> list[tuple[str, ast.expr, ast.expr | None]]:
    if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value:
        return [(stmt.target.id, stmt.value, stmt.annotation)]
    if not isinstance(stmt, ast.Assign):
        return []
    out: list[tuple[str, ast.expr, ast.expr | None]] = []
    for target in stmt.targets:
        if isinstance(target, ast.Name):
            out.append((target.id, stmt.value, None))
        elif (
            isinstance(target, ast.Tuple)
            and isinstance(stmt.value, ast.Tuple)
            and len(target.elts) == len(stmt.value.elts)
        ):
            for t, v in zip(target.elts, stmt.value.elts, strict=True):
                if isinstance(t, ast.Name):
                    out.append((t.id, v, None))
    return out


def _make_parameter(
    name: str,
    value: ast.expr,
    annotation: ast.expr | None,
    code: str,
    index: int,
    imports_code: list[str],
) -> tuple[Parameter | None, str | None]:
    default, error = _evaluate_default(value, imports_code)
    source = ast.get_source_segment(code, value) or ast.unparse(value)
    if error is not None:
        return None, (
            f"parameter {name}: the default {source!r} could not be evaluated ({error}); "
            "use a literal or a call that only needs the imports cell"
        )
    kind = type_name(default)
    if kind not in SUPPORTED_TYPES:
        return None, (
            f"parameter {name}: default {source!r} is a {kind}; parameters must be one of "
            f"{', '.join(SUPPORTED_TYPES)}: move it to a step or make it a literal"
        )
    return (
        Parameter(
            name=name,
            type=kind,
            default=default,
            source=source,
            annotation=ast.unparse(annotation) if annotation is not None else None,
            choices=_literal_choices(annotation),
            cell_index=index,
        ),
        None,
    )


def _refuse(param: Parameter, text: str, expected: str) -> ParameterError:
    return ParameterError(
        f"parameter {param.name} is a {param.type} (default {param.source}); "
        f"cannot use {text!r}: {expected}"
    )


def convert_value(param: Parameter, text: str) -> Any:
    """Convert an override typed by the user to the type of the parameter's default.

    Raises:
        ParameterError: the text is not a value of that type; the message names the
            parameter, its type and the text, and says what is expected.
    """
    kind = param.type
    value: Any
    if kind == "str":
        value = text
    elif kind == "int":
        try:
            value = int(text.strip().replace("_", ""))
        except ValueError:
            raise _refuse(param, text, "expected a whole number such as 3 or -7") from None
    elif kind == "float":
        try:
            value = float(text.strip())
        except ValueError:
            raise _refuse(param, text, "expected a number such as 0.5, -1 or 1e-3") from None
    elif kind == "bool":
        low = text.strip().lower()
        if low not in _TRUE | _FALSE:
            raise _refuse(param, text, "expected true/false, yes/no or 1/0")
        value = low in _TRUE
    elif kind in ("date", "datetime"):
        cls = _dt.date if kind == "date" else _dt.datetime
        try:
            value = cls.fromisoformat(text.strip())
        except ValueError:
            fmt = "YYYY-MM-DD" if kind == "date" else "YYYY-MM-DDTHH:MM:SS"
            raise _refuse(param, text, f"expected an ISO 8601 {kind} ({fmt})") from None
        if kind == "date" and isinstance(value, _dt.datetime):
            value = value.date()
    else:
        value = _convert_literal(param, text)
    if param.choices is not None and value not in param.choices:
        choices = ", ".join(repr(c) for c in param.choices)
        raise _refuse(param, text, f"the annotation allows only {choices}")
    return value


def _convert_literal(param: Parameter, text: str) -> Any:
    kind = param.type
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        if kind == "NoneType":
            return text
        example = {"list": "[1, 2]", "dict": '{"a": 1}', "tuple": "(2, 5)"}.get(kind, "")
        raise _refuse(param, text, f"expected a Python {kind} literal such as {example}") from None
    if kind == "NoneType":
        return value
    if kind == "tuple" and isinstance(value, list):
        value = tuple(value)
    if kind == "list" and isinstance(value, tuple):
        value = list(value)
    if type_name(value) != kind:
        raise _refuse(param, text, f"expected a {kind}, got a {type_name(value)}")
    return value


def resolve_overrides(
    parameters: tuple[Parameter, ...] | list[Parameter], overrides: Mapping[str, str]
) -> dict[str, Any]:
    """All parameter values for a run: defaults, with typed overrides applied.

    Raises:
        ParameterError: an unknown name (the message lists the known ones) or a value
            that does not convert.
    """
    by_name = {p.name: p for p in parameters}
    values = {p.name: p.default for p in parameters}
    for name, text in overrides.items():
        if name not in by_name:
            known = ", ".join(by_name) or "(none: the notebook has no parameters cell)"
            close = difflib.get_close_matches(name, list(by_name), n=1)
            hint = f" Did you mean {close[0]}?" if close else ""
            raise ParameterError(f"unknown parameter {name!r}; the known ones are: {known}.{hint}")
        values[name] = convert_value(by_name[name], text)
    return values


def parse_assignments(items: list[str] | None) -> dict[str, str]:
    """``["a=1", "b=x=y"]`` to ``{"a": "1", "b": "x=y"}``; the value is kept byte for byte."""
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ParameterError(f"-p {item!r}: write -p NAME=VALUE")
        out[name.strip()] = value
    return out


def encode_values(values: Mapping[str, Any]) -> str:
    """Parameter values as JSON for a step spec (the runner decodes them by type)."""
    return json.dumps({k: to_json_value(v) for k, v in values.items()}, sort_keys=True)
