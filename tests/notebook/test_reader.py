"""Reading notebooks of every nbformat version into one normalised form."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from jupyter_mlk.errors import NotebookError
from jupyter_mlk.notebook.graph import build_graph
from jupyter_mlk.notebook.reader import load_notebook


def _v4(path: Path, minor: int, cells: list[dict[str, object]], **meta: object) -> Path:
    path.write_text(
        json.dumps({"nbformat": 4, "nbformat_minor": minor, "metadata": meta, "cells": cells})
    )
    return path


def _code(source: str | list[str], tags: list[str] | None = None, **extra: object) -> dict:
    return {
        "cell_type": "code",
        "source": source,
        "metadata": {"tags": tags or []},
        "outputs": [],
        "execution_count": None,
        **extra,
    }


def test_v3_notebooks_are_upgraded(tmp_path: Path) -> None:
    nb = nbformat.v3.new_notebook(
        worksheets=[
            nbformat.v3.new_worksheet(
                cells=[
                    nbformat.v3.new_code_cell(input="x = 1", metadata={"tags": ["step:a"]}),
                    nbformat.v3.new_code_cell(input="print(x)", metadata={"tags": ["step:b"]}),
                ]
            )
        ]
    )
    path = tmp_path / "old.ipynb"
    path.write_text(nbformat.writes(nb, version=3))
    graph = build_graph(path)
    assert [s.name for s in graph.steps] == ["a", "b"]
    assert graph.step("b").inputs == {"x": "a"}


@pytest.mark.parametrize("minor", [0, 1, 2, 3, 4])
def test_old_minor_versions_get_the_same_ids_every_time(tmp_path: Path, minor: int) -> None:
    path = _v4(tmp_path / "nb.ipynb", minor, [_code("a = 1"), _code(["b = ", "a"])])
    first, second = load_notebook(path), load_notebook(path)
    assert [c.id for c in first.cells] == [c.id for c in second.cells]
    assert len({c.id for c in first.cells}) == 2
    assert len(first.warnings) == 1
    assert first.cells[1].source == "b = a"


def test_missing_and_duplicate_ids_in_4_5_are_repaired_with_one_warning(tmp_path: Path) -> None:
    path = _v4(
        tmp_path / "nb.ipynb",
        5,
        [_code("a = 1", id="same"), _code("b = 2", id="same"), _code("c = 3")],
    )
    loaded = load_notebook(path)
    ids = [c.id for c in loaded.cells]
    assert ids[0] == "same" and len(set(ids)) == 3
    assert len(loaded.warnings) == 1
    assert ids == [c.id for c in load_notebook(path).cells]


def test_no_kernelspec_means_python3(tmp_path: Path) -> None:
    path = _v4(tmp_path / "nb.ipynb", 5, [_code("a = 1", id="a")])
    assert load_notebook(path).kernel == "python3"


def test_a_file_that_is_not_utf8_is_named_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "latin.ipynb"
    path.write_bytes('{"cells": [], "x": "caf\xe9"}'.encode("latin-1"))
    with pytest.raises(NotebookError) as info:
        load_notebook(path)
    message = str(info.value)
    assert str(path) in message and "UTF-8" in message and "\n" not in message


@pytest.mark.parametrize("text", ["not json", "[1, 2]", '{"a": 1}'])
def test_a_file_that_is_not_a_notebook_says_so(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.ipynb"
    path.write_text(text)
    with pytest.raises(NotebookError, match="not a notebook"):
        load_notebook(path)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(NotebookError, match="no such notebook"):
        load_notebook(tmp_path / "missing.ipynb")


def test_markdown_raw_and_empty_cells_are_never_steps(tmp_path: Path) -> None:
    path = _v4(
        tmp_path / "nb.ipynb",
        4,
        [
            {"cell_type": "markdown", "source": "x = undefined_name", "metadata": {}},
            {"cell_type": "raw", "source": "y = also_undefined", "metadata": {}},
            _code("", ["step:a"]),
            _code("a = 1"),
            _code("   \n"),
        ],
    )
    graph = build_graph(path)
    assert not graph.errors
    assert [c.index for c in graph.step("a").cells] == [3]


def test_stored_outputs_never_reach_the_graph(tmp_path: Path) -> None:
    cell = _code("a = 1", ["step:a"])
    cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "SECRET-OUTPUT"}]
    graph = build_graph(_v4(tmp_path / "nb.ipynb", 4, [cell]))
    assert "SECRET-OUTPUT" not in json.dumps(graph.to_dict())
