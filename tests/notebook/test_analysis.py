"""Static analysis: names read, bound and changed, through IPython syntax and scopes."""

from __future__ import annotations

from pathlib import Path

import pytest

from jupyter_mlk.notebook.graph import build_graph
from jupyter_mlk.notebook.model import StepGraph
from tests.nbutil import write_notebook


def graph_of(tmp_path: Path, cells: list[tuple[list[str], str]]) -> StepGraph:
    return build_graph(write_notebook(tmp_path / "nb.ipynb", cells))


def test_shell_lines_and_magics_are_understood(tmp_path: Path) -> None:
    graph = graph_of(
        tmp_path,
        [
            (
                ["step:a"],
                "files = !ls\n%time count = len(files)\n!echo $count\n%matplotlib inline",
            ),
            (["step:b"], "print(files, count)"),
        ],
    )
    assert not graph.errors
    assert graph.step("b").inputs == {"count": "a", "files": "a"}


def test_cell_magic_bodies_are_not_parsed_as_python(tmp_path: Path) -> None:
    graph = graph_of(
        tmp_path,
        [
            (["step:a"], "%%bash\nfor f in *; do echo $f; done\nif [ -z x ]; then :; fi"),
            (["step:b"], "%%time\ny = 2"),
            (["step:c"], "print(y)"),
        ],
    )
    assert not graph.errors
    assert graph.step("c").inputs == {"y": "b"}


def test_function_free_variables_are_inputs_of_the_steps_that_call_it(tmp_path: Path) -> None:
    graph = graph_of(
        tmp_path,
        [
            (["imports"], "import math"),
            (["functions"], "def scale(v):\n    return v * factor + math.pi\n"),
            (["step:make"], "factor = 3"),
            (["step:other"], "unrelated = 1"),
            (["step:use"], "result = scale(2)"),
        ],
    )
    assert not graph.errors
    assert graph.step("use").inputs == {"factor": "make"}
    assert graph.step("use").functions_used == ("scale",)
    assert graph.step("other").inputs == {}


def test_lambdas_and_functions_defined_in_steps(tmp_path: Path) -> None:
    graph = graph_of(
        tmp_path,
        [
            (["step:a"], "k = 2\nshift = 5"),
            (
                ["step:b"],
                "f = lambda v: v * k\ndef g(v):\n    return v + shift\nout = f(1) + g(1)",
            ),
        ],
    )
    assert graph.step("b").inputs == {"k": "a", "shift": "a"}


def test_comprehension_and_lambda_scopes_are_not_values(tmp_path: Path) -> None:
    graph = graph_of(
        tmp_path,
        [
            (["step:a"], "rows = [1, 2, 3]"),
            (
                ["step:b"],
                "squares = [r * r for r in rows if r]\n"
                "pairs = {i: j for i, j in enumerate(rows)}\n"
                "total = sum(map(lambda q: q + 1, rows))",
            ),
        ],
    )
    assert not graph.errors
    assert graph.step("b").inputs == {"rows": "a"}


def test_star_imports_are_resolved_by_importing_the_module(tmp_path: Path) -> None:
    graph = graph_of(
        tmp_path,
        [
            (["imports"], "from math import *"),
            (["step:a"], "x = sqrt(pi)"),
        ],
    )
    assert not graph.errors


def test_a_name_produced_nowhere_is_an_error_naming_cell_step_and_line(tmp_path: Path) -> None:
    graph = graph_of(
        tmp_path,
        [
            (["skip"], "import pandas as pd"),
            (["step:load"], "x = 1\nframe = pd.DataFrame()"),
            (["step:use"], "print(y)"),
        ],
    )
    messages = {e.message: e for e in graph.errors}
    assert len(messages) == 2
    pd_error = next(e for m, e in messages.items() if "'pd'" in m)
    assert pd_error.step == "load" and pd_error.cell_index == 1 and pd_error.line == 2
    assert "skip" in pd_error.message
    y_error = next(e for m, e in messages.items() if "'y'" in m)
    assert y_error.cell_id == "c2"


def test_reading_what_a_later_step_makes_says_so(tmp_path: Path) -> None:
    graph = graph_of(tmp_path, [(["step:a"], "print(late)"), (["step:b"], "late = 1")])
    assert "later in the notebook" in graph.errors[0].message


def test_prev_to_a_missing_step_is_a_warning_and_the_edge_is_dropped(tmp_path: Path) -> None:
    graph = graph_of(tmp_path, [(["step:a"], "x = 1"), (["step:b", "prev:nope"], "y = 2")])
    assert not graph.errors
    assert "prev:nope" in graph.warnings[0].message and "dropped" in graph.warnings[0].message
    assert graph.step("b").after == ()


def test_prev_edges_without_data_are_kept(tmp_path: Path) -> None:
    graph = graph_of(tmp_path, [(["step:a"], "x = 1"), (["step:b", "prev:a"], "y = 2")])
    assert graph.step("b").after == ("a",)


def test_errors_and_warnings_are_all_listed_together(tmp_path: Path) -> None:
    graph = graph_of(
        tmp_path,
        [
            (["step:a", "limit:memory"], "x = 1"),
            (["step:b", "prev:ghost"], "print(nothing)"),
            (["step:c", "gpu:two"], "z = 1"),
        ],
    )
    kinds = sorted((d.severity, d.cell_index) for d in graph.diagnostics)
    assert kinds == [("error", 0), ("error", 1), ("error", 2), ("warning", 1)]
    assert "limit:memory" in graph.errors[0].message


def test_unknown_tags_are_kept_and_ignored(tmp_path: Path) -> None:
    graph = graph_of(tmp_path, [(["step:a", "annotation:x", "my-own-tag"], "x = 1")])
    assert not graph.diagnostics
    assert "my-own-tag" in graph.step("a").cells[0].tags


def test_resource_tags(tmp_path: Path) -> None:
    graph = graph_of(
        tmp_path,
        [
            (
                [
                    "step:train",
                    "limit:memory:4Gi",
                    "limit:cpu:2",
                    "gpu:1",
                    "image:repo/img:1",
                    "cache:off",
                    "node:pool=gpu",
                    "toleration:nvidia.com/gpu:NoSchedule",
                ],
                "x = 1",
            ),
        ],
    )
    res = graph.step("train").resources
    assert dict(res.limits) == {"cpu": "2", "memory": "4Gi"}
    assert (res.gpus, res.image, res.cache) == (1, "repo/img:1", False)
    assert dict(res.node_selector) == {"pool": "gpu"}
    assert res.tolerations == ("nvidia.com/gpu:NoSchedule",)


@pytest.mark.parametrize(
    "tag", ["if:accuracy >= 0.9", "if:acc>>1", "if:", "limit:cpu:lots", "cache:maybe", "step:___"]
)
def test_malformed_known_tags_are_errors_naming_the_cell(tmp_path: Path, tag: str) -> None:
    graph = graph_of(tmp_path, [(["step:a"], "accuracy = 1"), (["step:b", tag], "y = 1")])
    assert graph.errors and graph.errors[0].cell_index == 1


def test_syntax_errors_name_cell_and_line(tmp_path: Path) -> None:
    graph = graph_of(tmp_path, [(["step:a"], "x = 1\ny = (")])
    assert graph.errors[0].cell_index == 0 and graph.errors[0].line == 2


def test_parameters_rebound_by_a_step_flow_from_that_step(tmp_path: Path) -> None:
    graph = graph_of(
        tmp_path,
        [
            (["parameters"], "lr = 0.1"),
            (["step:a"], "print(lr)"),
            (["step:b"], "lr = lr / 2"),
            (["step:c"], "print(lr)"),
        ],
    )
    assert graph.step("a").params == ("lr",)
    assert graph.step("c").inputs == {"lr": "b"}


def test_mutation_through_a_method_makes_the_step_produce_the_value(tmp_path: Path) -> None:
    graph = graph_of(
        tmp_path,
        [
            (["step:a"], "items = []"),
            (["step:b"], "items.append(1)"),
            (["step:c"], "print(len(items))"),
        ],
    )
    assert graph.step("c").inputs == {"items": "b"}


def test_read_only_use_keeps_parallel_branches(tmp_path: Path) -> None:
    graph = graph_of(
        tmp_path,
        [
            (["step:a"], "import numpy as np\nbase = np.arange(3)"),
            (["step:b"], "left = base.sum()"),
            (["step:c"], "right = base.mean()"),
        ],
    )
    assert graph.step("c").inputs == {"base": "a"}


def test_a_prev_cycle_is_an_error(tmp_path: Path) -> None:
    graph = graph_of(tmp_path, [(["step:a", "prev:b"], "x = 1"), (["step:b"], "y = x")])
    assert any("cycle" in e.message for e in graph.errors)


def test_a_bare_block_tag_is_no_tag_as_in_kale(tmp_path: Path) -> None:
    graph = graph_of(
        tmp_path,
        [
            (["imports"], "import math"),
            (["block:a"], "x = 1"),
            (["block:"], "x += 1"),
            (["block:b", "prev:a"], "print(x)"),
        ],
    )
    assert not graph.errors
    assert [c.index for c in graph.step("a").cells] == [1, 2]


def test_a_papermill_parameters_cell_covers_only_itself(tmp_path: Path) -> None:
    graph = graph_of(
        tmp_path,
        [
            (["imports"], "import math"),
            (["parameters"], "alpha = 0.5"),
            ([], "result = math.sqrt(alpha)\nprint(result)"),
        ],
    )
    assert not graph.errors
    assert [s.name for s in graph.steps] == ["main"]
    assert [p.name for p in graph.parameters] == ["alpha"]
    assert graph.step("main").params == ("alpha",)


def test_kales_pipeline_parameters_cell_is_continued_by_untagged_cells(tmp_path: Path) -> None:
    graph = graph_of(
        tmp_path,
        [
            (["pipeline-parameters"], "a = 1"),
            ([], "b = 2"),
            (["step:use"], "print(a + b)"),
        ],
    )
    assert [p.name for p in graph.parameters] == ["a", "b"]


def test_untagged_cells_before_the_first_tag_belong_to_no_step(tmp_path: Path) -> None:
    graph = graph_of(tmp_path, [([], "!pip install something"), (["step:a"], "x = 1")])
    assert not graph.errors and [s.name for s in graph.steps] == ["a"]
    assert "before the first tag" in graph.warnings[0].message


def test_a_notebook_with_no_step_to_run_is_an_error(tmp_path: Path) -> None:
    graph = graph_of(tmp_path, [(["imports"], "import math"), (["parameters"], "a = 1")])
    assert any("no code to run" in e.message for e in graph.errors)


@pytest.mark.parametrize(
    "call",
    [
        "np.random.shuffle(arr)",
        "random.shuffle(arr)",
        "np.copyto(arr, 0)",
        "rng.shuffle(arr)",
        "heapq.heappush(arr, 3)",
    ],
)
def test_known_mutating_functions_change_their_first_argument(tmp_path: Path, call: str) -> None:
    graph = graph_of(
        tmp_path,
        [
            (
                ["imports"],
                "import heapq, random\nimport numpy as np\nrng = np.random.default_rng()",
            ),
            (["step:a"], "arr = np.arange(10)"),
            (["step:b"], call),
            (["step:c"], "print(arr)"),
        ],
    )
    assert graph.step("c").inputs == {"arr": "b"}


def test_a_notebook_function_that_changes_its_argument_changes_the_callers_value(
    tmp_path: Path,
) -> None:
    graph = graph_of(
        tmp_path,
        [
            (["functions"], "def add_col(d, key='new'):\n    target = d\n    target[key] = 1\n"),
            (["step:a"], "frame = {}\nother = {}"),
            (["step:b"], "add_col(frame)\nprint(len(other))"),
            (["step:c"], "print(frame, other)"),
        ],
    )
    assert graph.step("c").inputs == {"frame": "b", "other": "a"}


def test_capture_magic_binds_its_variable(tmp_path: Path) -> None:
    graph = graph_of(
        tmp_path,
        [
            (["step:a"], "%%capture cap\nprint('hi')"),
            (["step:b"], "print(cap.stdout)"),
        ],
    )
    assert not graph.errors and graph.step("b").inputs == {"cap": "a"}


def test_a_step_continued_after_another_cannot_read_from_it(tmp_path: Path) -> None:
    graph = graph_of(
        tmp_path,
        [
            (["step:a"], "x = 1"),
            (["step:b"], "y = x + 1"),
            (["step:a"], "x = y * 10"),
        ],
    )
    message = graph.errors[0].message
    assert "give cell 2 a step name of its own" in message and "starts before it" in message


def test_mlk_magic_cells_are_never_part_of_the_pipeline(tmp_path: Path) -> None:
    graph = graph_of(
        tmp_path,
        [
            (["step:a"], "x = 1"),
            (["metrics"], "x"),
            ([], "%load_ext jupyter_mlk\n%mlk run -p x=2"),
            ([], "# drive it\n%mlk graph"),
        ],
    )
    assert not graph.diagnostics
    assert graph.metrics == {"x": "a"}
