"""Benchmark: build the graph of a generated 1,000-cell notebook and compile it to KFP v2 YAML.

Run it on its own: ``.venv/bin/python bench/bench_compile.py [--kale PYTHON]``. The goal is
under 1 s for graph + compile on a 2-core machine. The one-off cost of importing kfp (a
few seconds, cold) is reported apart, since a long-lived server or panel pays it once.

``--kale PYTHON`` names the interpreter of a separate virtual environment with
``kubeflow-kale`` installed; the same notebook is then compiled by Kale's own
``NotebookProcessor`` in that interpreter and both times are printed side by side.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

STEPS = 200
CELLS_PER_STEP = 5


def make_notebook(path: Path, steps: int = STEPS, cells_per_step: int = CELLS_PER_STEP) -> Path:
    """A Kale-compatible notebook: imports, parameters, then steps whose values flow on.

    Step ``k`` reads the value of step ``k-1`` and of step ``k-7`` (so the graph has long
    edges, not only a chain) and binds its own; each step has one tagged cell and
    ``cells_per_step - 1`` untagged continuation cells. The total is 1,000 cells at
    the defaults (2 special cells are counted in the last step's share).
    """
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    cells = [
        _cell("import math\nimport json", ["imports"]),
        _cell("scale = 2\nrate = 0.5", ["pipeline-parameters"]),
    ]
    for k in range(steps):
        reads = [f"v{k - 1}"] if k else []
        if k >= 7:
            reads.append(f"v{k - 7}")
        first = f"a{k} = {' + '.join(reads) or '1'} + scale"
        tags = [f"step:step{k}"] + ([f"prev:step{k - 1}"] if k else [])
        cells.append(_cell(first, tags))
        for j in range(1, cells_per_step):
            if len(cells) >= steps * cells_per_step - 1 and j < cells_per_step - 1:
                continue
            src = f"b{k}_{j} = math.sqrt(abs(a{k})) * rate + {j}"
            if j == cells_per_step - 1:
                src = f"v{k} = a{k} + b{k}_1 * {j}"
            cells.append(_cell(src, []))
    nb.cells = cells
    nbformat.write(nb, str(path))
    return path


def _cell(source: str, tags: list[str]) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = tags
    return cell


def time_ours(path: Path, repeat: int) -> dict[str, float]:
    """Seconds for import (once), then the median of ``repeat`` graph + compile rounds."""
    start = time.perf_counter()
    from jupyter_mlk.notebook.graph import build_graph
    from jupyter_mlk.pipeline.compiler import compile_pipeline

    compile_pipeline(build_graph(str(path)))  # warm caches, kfp imports
    first = time.perf_counter() - start
    graph_times, compile_times = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        graph = build_graph(str(path))
        t1 = time.perf_counter()
        compile_pipeline(graph)
        t2 = time.perf_counter()
        graph_times.append(t1 - t0)
        compile_times.append(t2 - t1)
    graph_s = statistics.median(graph_times)
    compile_s = statistics.median(compile_times)
    return {"first_call_s": first, "graph_s": graph_s, "compile_s": compile_s}


def profile_ours(path: Path, top: int) -> str:
    """The top functions by cumulative time of one graph + compile round."""
    from jupyter_mlk.notebook.graph import build_graph
    from jupyter_mlk.pipeline.compiler import compile_pipeline

    prof = cProfile.Profile()
    prof.enable()
    compile_pipeline(build_graph(str(path)))
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(top)
    return out.getvalue()


KALE_SCRIPT = r"""
import json, sys, time
t0 = time.perf_counter()
from kale.common import kfputils
from kale.compiler import Compiler
from kale.processors import NotebookProcessor
t1 = time.perf_counter()
graph, total = [], []
for _ in range(int(sys.argv[2])):
    s = time.perf_counter()
    processor = NotebookProcessor(sys.argv[1], {"experiment_name": "bench",
                                                "pipeline_name": "bench"})
    pipeline = processor.run()
    g = time.perf_counter()
    dsl = Compiler(pipeline, processor.get_imports_and_functions()).compile()
    kfputils.compile_pipeline(dsl, "bench")
    graph.append(g - s)
    total.append(time.perf_counter() - s)
graph.sort(); total.sort()
print(json.dumps({"import_s": t1 - t0, "graph_s": graph[len(graph) // 2],
                  "total_s": total[len(total) // 2]}))
"""


def time_kale(python: str, path: Path, repeat: int) -> dict[str, float] | str:
    """Kale's notebook -> pipeline compile time, in its own interpreter, or why not."""
    proc = subprocess.run(
        [python, "-c", KALE_SCRIPT, str(path), str(repeat)],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=path.parent,
    )
    if proc.returncode != 0:
        return proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    """Generate the notebook, time our graph + compile and optionally Kale's."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--kale", help="python of a venv with kubeflow-kale installed")
    parser.add_argument("--profile", type=int, default=0, help="print the top N functions")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mlk-bench-") as tmp:
        path = make_notebook(Path(tmp) / "big.ipynb")
        cells = len(nbformat.read(str(path), as_version=4).cells)
        ours = time_ours(path, args.repeat)
        total = ours["graph_s"] + ours["compile_s"]
        print(f"notebook: {cells} cells, {STEPS} steps")
        print(f"first call (imports kfp, cold caches): {ours['first_call_s']:.2f} s")
        print(f"jupyter_mlk graph:   {ours['graph_s']:.3f} s (median of {args.repeat})")
        print(f"jupyter_mlk compile: {ours['compile_s']:.3f} s")
        print(f"jupyter_mlk total:   {total:.3f} s (goal < 1 s)")
        if args.profile:
            print(profile_ours(path, args.profile))
        if args.kale:
            kale = time_kale(args.kale, path, max(1, args.repeat // 2))
            if isinstance(kale, str):
                print(f"kale: could not compile: {kale}")
            else:
                graph_s, import_s = kale["graph_s"], kale["import_s"]
                print(f"kale graph:          {graph_s:.3f} s (import {import_s:.2f} s)")
                print(f"kale total:          {kale['total_s']:.3f} s (notebook -> DSL -> YAML)")
                print(f"ratio kale / jupyter_mlk: {kale['total_s'] / total:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
