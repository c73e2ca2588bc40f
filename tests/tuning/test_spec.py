"""The sweep spec: Katib Experiments accepted, fields checked and named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from openapi_schema_validator import OAS30Validator

from jupyter_mlk.notebook.graph import build_graph
from jupyter_mlk.tuning.local import check_against_notebook, grid_space, make_sampler
from jupyter_mlk.tuning.spec import SweepError, load_spec, parse_param_flag, parse_spec
from tests.conftest import REPO, case_dir


def katib_validator() -> OAS30Validator:
    api = json.loads((REPO.parent / "shared/schemas/katib-v1beta1-openapi.json").read_text())
    schema = {"$ref": "#/components/schemas/v1beta1.Experiment", "components": api["components"]}
    return OAS30Validator(schema)


def test_the_case_experiment_is_valid_katib_and_accepted_locally() -> None:
    path = case_dir("10-sweep-spec") / "experiment.yaml"
    raw = yaml.safe_load(path.read_text())
    katib_validator().validate(raw)
    bad = json.loads(json.dumps(raw))
    bad["spec"]["maxTrialCount"] = "8"
    with pytest.raises(Exception):  # noqa: B017 - any validation error proves the check bites
        katib_validator().validate(bad)
    spec, warnings = load_spec(path)
    assert (spec.objective, spec.goal, spec.algorithm) == ("accuracy", "maximize", "tpe")
    assert (spec.parallel, spec.max_trials, spec.max_failed) == (2, 8, 2)
    assert [(p.name, p.type, p.min, p.max) for p in spec.parameters] == [
        ("n_estimators", "int", 10, 100),
        ("max_depth", "int", 2, 8),
    ]
    assert len(warnings) == 1 and "trialTemplate" in warnings[0]
    graph = build_graph(case_dir("01-iris-pipeline") / "pipeline.ipynb")
    assert check_against_notebook(spec, graph) == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"objective": {}}, "spec.objective.objectiveMetricName"),
        ({"objective": {"objectiveMetricName": "a", "type": "up"}}, "spec.objective.type"),
        ({"parameters": []}, "spec.parameters"),
        (
            {"parameters": [{"name": "x", "parameterType": "float"}]},
            "spec.parameters[0].parameterType",
        ),
        (
            {
                "parameters": [
                    {
                        "name": "x",
                        "parameterType": "int",
                        "feasibleSpace": {"min": "5", "max": "1"},
                    }
                ]
            },
            "spec.parameters[0]",
        ),
        (
            {
                "parameters": [
                    {
                        "name": "x",
                        "parameterType": "double",
                        "feasibleSpace": {"min": "a", "max": "1"},
                    }
                ]
            },
            "spec.parameters[0].feasibleSpace.min",
        ),
        ({"maxTrialCount": "8"}, "spec.maxTrialCount"),
    ],
)
def test_bad_fields_are_named(change: dict[str, object], field: str) -> None:
    raw = {
        "objective": {"objectiveMetricName": "acc"},
        "parameters": [
            {"name": "x", "parameterType": "int", "feasibleSpace": {"min": "1", "max": "3"}}
        ],
    }
    raw.update(change)
    with pytest.raises(SweepError) as info:
        parse_spec(raw)
    assert field in str(info.value)


def test_parameters_must_exist_in_the_notebook() -> None:
    spec, _ = parse_spec(
        {
            "objective": {"objectiveMetricName": "accuracy"},
            "parameters": [parse_param_flag("lr=double:1e-4:1e-1:log")],
        }
    )
    graph = build_graph(case_dir("01-iris-pipeline") / "pipeline.ipynb")
    with pytest.raises(SweepError, match=r"spec.parameters\[0\].name: 'lr' is not a parameter"):
        check_against_notebook(spec, graph)


@pytest.mark.parametrize(
    ("flag", "kind", "expected"),
    [
        ("lr=double:1e-4:1e-1:log", "double", {"min": 1e-4, "max": 0.1, "log": True}),
        ("depth=int:2:8", "int", {"min": 2, "max": 8}),
        ("depth=int:2:8:2", "int", {"step": 2}),
        ("lr=discrete:0.01,0.1", "discrete", {"values": ("0.01", "0.1")}),
        ("model=categorical:rf,gbt", "categorical", {"values": ("rf", "gbt")}),
    ],
)
def test_parameter_flags(flag: str, kind: str, expected: dict[str, object]) -> None:
    spec, _ = parse_spec(
        {"objective": {"objectiveMetricName": "m"}, "parameters": [parse_param_flag(flag)]}
    )
    param = spec.parameters[0]
    assert param.type == kind
    for key, value in expected.items():
        assert getattr(param, key) == value


@pytest.mark.parametrize("name", ["pbt", "enas", "darts"])
def test_algorithms_without_an_equivalent_are_refused_with_the_list(name: str) -> None:
    spec, _ = parse_spec(
        {
            "objective": {"objectiveMetricName": "m"},
            "algorithm": {"algorithmName": name},
            "parameters": [parse_param_flag("x=int:1:3")],
        }
    )
    with pytest.raises(SweepError, match="supported: random, grid, tpe"):
        make_sampler(spec)


@pytest.mark.parametrize(
    "name", ["random", "grid", "tpe", "multivariate-tpe", "sobol", "hyperband"]
)
def test_supported_algorithms_make_samplers(name: str) -> None:
    spec, _ = parse_spec(
        {
            "objective": {"objectiveMetricName": "m"},
            "algorithm": {"algorithmName": name},
            "parameters": [parse_param_flag("x=int:1:3")],
        }
    )
    assert make_sampler(spec) is not None


def test_grid_needs_a_step_for_doubles() -> None:
    spec, _ = parse_spec(
        {
            "objective": {"objectiveMetricName": "m"},
            "parameters": [parse_param_flag("lr=double:0.1:0.3")],
        }
    )
    with pytest.raises(SweepError, match="step"):
        grid_space(spec)
    spec, _ = parse_spec(
        {
            "objective": {"objectiveMetricName": "m"},
            "parameters": [parse_param_flag("lr=double:0.1:0.3:0.1")],
        }
    )
    assert [round(v, 6) for v in grid_space(spec)["lr"]] == [0.1, 0.2, 0.3]
    _ = Path
