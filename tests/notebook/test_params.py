"""Typed parameter overrides: converted to the type of the default, or refused clearly."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from jupyter_mlk.errors import ParameterError
from jupyter_mlk.notebook.model import Parameter
from jupyter_mlk.notebook.params import (
    convert_value,
    from_json_value,
    parse_assignments,
    resolve_overrides,
    to_json_value,
)


def param(default: Any, choices: tuple[Any, ...] | None = None) -> Parameter:
    from jupyter_mlk.notebook.params import type_name

    return Parameter("p", type_name(default), default, repr(default), choices=choices)


@pytest.mark.parametrize(
    ("default", "text", "value"),
    [
        (1, "-7", -7),
        (1, " 1_000 ", 1000),
        (0.5, "1e-3", 0.001),
        (0.5, "-1", -1.0),
        (True, "TRUE", True),
        (True, "no", False),
        (False, "1", True),
        (False, "Yes", True),
        ([1], "[2, 3]", [2, 3]),
        ([1], "(2, 3)", [2, 3]),
        ((1, 2), "[2, 5]", (2, 5)),
        ({"a": 1}, '{"b": 2}', {"b": 2}),
        (None, "3", 3),
        (None, "hello", "hello"),
        (datetime.date(2024, 1, 1), "2024-03-15", datetime.date(2024, 3, 15)),
        ("x", "a=b # c 'q' \"d\" \\n\nline two", "a=b # c 'q' \"d\" \\n\nline two"),
        ("x", "", ""),
    ],
)
def test_overrides_take_the_type_of_the_default(default: Any, text: str, value: Any) -> None:
    got = convert_value(param(default), text)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize(
    ("default", "text", "needle"),
    [
        (1, "1.5", "whole number"),
        (1, "minus three", "whole number"),
        (0.5, "half", "number"),
        (True, "maybe", "true/false"),
        ([1], "{1: 2}", "list"),
        ({"a": 1}, "[1]", "dict"),
        (datetime.date(2024, 1, 1), "31/01/2024", "YYYY-MM-DD"),
    ],
)
def test_bad_values_are_refused_with_name_type_and_value(
    default: Any, text: str, needle: str
) -> None:
    with pytest.raises(ParameterError) as info:
        convert_value(param(default), text)
    message = str(info.value)
    assert "parameter p" in message and repr(text) in message and needle in message


def test_literal_choices_are_enforced() -> None:
    with pytest.raises(ParameterError, match="'fast', 'exact'"):
        convert_value(param("fast", ("fast", "exact")), "slow")


def test_unknown_names_list_the_known_ones_and_suggest_the_closest() -> None:
    with pytest.raises(ParameterError) as info:
        resolve_overrides([Parameter("offset", "int", 1, "1")], {"offsett": "2"})
    assert "offsett" in str(info.value) and "Did you mean offset?" in str(info.value)


def test_assignments_split_on_the_first_equals_only() -> None:
    assert parse_assignments(["a=b=c", "s= x "]) == {"a": "b=c", "s": " x "}
    with pytest.raises(ParameterError):
        parse_assignments(["novalue"])


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("int", 50),
        ("float", 2e-05),
        ("tuple", (3, 4)),
        ("date", datetime.date(2024, 1, 31)),
        ("dict", {"a": [1, 2]}),
        ("bool", True),
        ("str", "run#1"),
    ],
)
def test_json_round_trip_restores_the_type(kind: str, value: Any) -> None:
    assert from_json_value(kind, to_json_value(value)) == value


def test_kfp_integer_floats_come_back_as_ints() -> None:
    assert from_json_value("int", 50.0) == 50 and isinstance(from_json_value("int", 50.0), int)
