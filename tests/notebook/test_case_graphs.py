"""Every case of the shared corpus gives the step graph its expected.json describes."""

from __future__ import annotations

from typing import Any

import pytest

from jupyter_mlk.notebook.graph import build_graph
from jupyter_mlk.notebook.model import StepGraph
from tests.conftest import case_dir, expected

GRAPH_CASES = [
    ("01-iris-pipeline", "pipeline.ipynb", None),
    ("02-kale-style-tags", "pipeline.ipynb", None),
    ("03-rebinding", "pipeline.ipynb", None),
    ("04-alias-mutation", "pipeline.ipynb", None),
    ("05-diamond-parallel", "pipeline.ipynb", None),
    ("06-failing-step", "pipeline.ipynb", None),
    ("06-failing-step", "pipeline_fixed.ipynb", None),
    ("07-annotated-params", "params.ipynb", None),
    ("08-name-clash", "no_clash.ipynb", "no-clash-run"),
    ("09-rich-outputs", "pipeline.ipynb", None),
    ("12-big-values", "pipeline.ipynb", None),
]


def _expected_graph(case: str, run_name: str | None) -> dict[str, Any]:
    exp = expected(case)
    if run_name:
        run = next(r for r in exp["runs"] if r["name"] == run_name)
        return dict(run["graph"])
    return dict(exp["graph"])


def _later_readers(graph: StepGraph, step: str) -> set[str]:
    names = [s.name for s in graph.steps]
    later = names[names.index(step) + 1 :]
    return {n for s in graph.steps if s.name in later for n in s.inputs}


@pytest.mark.parametrize(("case", "notebook", "run"), GRAPH_CASES, ids=lambda v: str(v))
def test_graph_matches_the_expected_steps_inputs_and_edges(
    case: str, notebook: str, run: str | None
) -> None:
    graph = build_graph(case_dir(case) / notebook)
    want = _expected_graph(case, run)
    assert not graph.errors, [d.describe() for d in graph.errors]
    assert [s.name for s in graph.steps] == [s["name"] for s in want["steps"]]
    for step, exp in zip(graph.steps, want["steps"], strict=True):
        assert [c.index for c in step.cells] == exp["cells"], step.name
        if "cell_ids" in exp:
            assert [c.id for c in step.cells] == exp["cell_ids"]
        assert sorted(step.params) == sorted(exp["params"]), step.name
        assert step.inputs == exp["inputs"], step.name
        # Every expected output is passed on; more outputs appear only where the case lists
        # names no later step reads (a product may store more, it must pass these).
        assert set(step.outputs) <= set(exp["outputs"]), step.name
        missing = set(exp["outputs"]) - set(step.outputs)
        assert not (missing & _later_readers(graph, step.name)), step.name
        if "prev_tags" in exp:
            assert list(step.prev_tags) == exp["prev_tags"]
        for fn in exp.get("functions_used", []):
            assert fn in step.functions_used
        for name, src in exp.get("inputs_through_alias", {}).items():
            assert step.alias_inputs.get(name) == src
    edges = {tuple(e) for e in graph.edges}
    want_edges = {tuple(e) for e in want["edges"]}
    if case == "04-alias-mutation":
        assert want_edges <= edges <= want_edges | {("load", "report")}
    else:
        assert edges == want_edges
    if "metrics" in want:
        assert graph.metrics == want["metrics"]


def test_rebinding_reads_the_newest_version_and_makes_no_cycle() -> None:
    graph = build_graph(case_dir("03-rebinding") / "pipeline.ipynb")
    forbidden = expected("03-rebinding")["graph"]["forbidden_inputs"]
    for step, wrong in forbidden.items():
        for name, src in wrong.items():
            assert graph.step(step).inputs[name] != src


def test_alias_group_travels_as_one_bundle() -> None:
    graph = build_graph(case_dir("04-alias-mutation") / "pipeline.ipynb")
    assert graph.step("load").bundles == (("data", "test_df", "train_df"),)
    assert set(graph.step("engineer").outputs) == {"data", "test_df", "train_df"}
    assert graph.step("report").inputs == {
        "data": "engineer",
        "test_df": "engineer",
        "train_df": "engineer",
    }


@pytest.mark.parametrize("case", ["01-iris-pipeline", "02-kale-style-tags", "07-annotated-params"])
def test_parameters_are_typed_from_their_defaults(case: str) -> None:
    want = expected(case)["parameters"]
    graph = build_graph(next(case_dir(case).glob("*.ipynb")))
    got = {p.name: p for p in graph.parameters}
    assert list(got) == list(want)
    for name, spec in want.items():
        py_type = spec["python_type"].replace("datetime.date", "date")
        assert got[name].type == py_type, name
        if py_type == "date":
            assert got[name].default.isoformat() == spec["default"]
        elif py_type == "tuple":
            assert list(got[name].default) == spec["default"]
        else:
            assert got[name].default == spec["default"], name


def test_literal_annotation_choices_are_reported() -> None:
    graph = build_graph(case_dir("07-annotated-params") / "params.ipynb")
    assert graph.parameter("mode").choices == ("fast", "exact")
    assert graph.parameter("start_date").annotation == "datetime.date"


def test_name_clash_is_an_error_naming_both_cells_and_names() -> None:
    graph = build_graph(case_dir("08-name-clash") / "clash.ipynb")
    run = next(r for r in expected("08-name-clash")["runs"] if r["name"] == "clash-graph")
    assert len(graph.errors) == 1
    message = graph.errors[0].message
    for needle in run["error_must_name"]:
        assert needle in message
    assert "cell 2" in message and "cell 3" in message
    assert "rename one of the steps" in message


def test_kale_notebook_ids_are_derived_the_same_way_every_time() -> None:
    path = case_dir("02-kale-style-tags") / "pipeline.ipynb"
    first, second = build_graph(path), build_graph(path)
    ids = [c.id for s in first.steps for c in s.cells]
    assert ids == [c.id for s in second.steps for c in s.cells]
    assert len(set(ids)) == len(ids)
    assert len(first.warnings) == 1
