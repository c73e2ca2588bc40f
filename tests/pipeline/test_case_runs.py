"""Every running case of the shared corpus, through the real CLI and real step processes."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from jupyter_mlk.cli import main
from tests.conftest import case_dir, copy_case, expected

pytestmark = pytest.mark.slow


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = main(list(argv))
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


def result_lines(run: dict[str, Any], step: str) -> list[str]:
    path = run["steps"][step]["stdout"]
    if path is None:
        return []
    return [ln for ln in Path(path).read_text().splitlines() if ln.startswith("RESULT ")]


def check_run(run: dict[str, Any], want: dict[str, Any], code: int) -> None:
    assert (code == 0) == (want["exit_code"] == 0), run.get("error")
    assert run["state"] == want["state"]
    for step, states in want.get("step_states", {}).items():
        allowed = set(states.split("|"))
        got = run["steps"][step]["state"]
        if "NOT_STARTED" in allowed:
            allowed.add("CANCELLED")
        assert got in allowed, (step, got)
    for step, lines in want.get("result_lines", {}).items():
        if run["steps"][step]["state"] == "CACHED":
            continue
        patterns = want.get("result_line_patterns", {}).get(step)
        got = result_lines(run, step)
        if patterns:
            assert len(got) == len(patterns)
            for line, pattern in zip(got, patterns, strict=True):
                assert re.match(pattern, line), line
        elif not any("<" in ln for ln in lines):  # placeholders are checked by the test
            assert got == lines, step
    for name, value in want.get("metrics", {}).items():
        assert run["metrics"][name] == pytest.approx(value, abs=1e-9)


def test_iris_runs_with_cache_and_writes_the_model_only_when_good_enough(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy_case("01-iris-pipeline", workspace)
    for want in expected("01-iris-pipeline")["runs"]:
        shutil.rmtree(workspace / "model", ignore_errors=True)
        params = [a for k, v in want["overrides"].items() for a in ("-p", f"{k}={v}")]
        code, run = run_cli(capsys, "run", "pipeline.ipynb", *params, "--json")
        check_run(run, want, code)
        written = [str(p.relative_to(workspace)) for p in (workspace / "model").glob("*")]
        assert written == want["files_written"]["deploy"], want["name"]
        if want["name"] == "threshold-up":
            assert [run["steps"][s]["state"] for s in ("load", "train", "evaluate")] == [
                "CACHED"
            ] * 3


@pytest.mark.parametrize(
    "case", ["02-kale-style-tags", "03-rebinding", "04-alias-mutation", "12-big-values"]
)
def test_case_runs_give_the_expected_results(
    case: str, workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy_case(case, workspace)
    notebook = next(workspace.glob("*.ipynb")).name
    code, run = run_cli(capsys, "run", notebook, "--json")
    check_run(run, expected(case)["runs"][0], code)


def test_diamond_middle_steps_run_at_the_same_time(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy_case("05-diamond-parallel", workspace)
    code, run = run_cli(capsys, "run", "pipeline.ipynb", "--workers", "2", "--json")
    check_run(run, expected("05-diamond-parallel")["runs"][0], code)
    b, c, d = (run["steps"][s] for s in ("b", "c", "d"))
    overlap = min(b["finished"], c["finished"]) - max(b["started"], c["started"])
    assert overlap > 0, "b and c ran one after the other"
    assert d["started"] >= max(b["finished"], c["finished"])


def test_failed_step_names_the_cell_and_line_and_its_fix_reuses_the_cache(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy_case("06-failing-step", workspace)
    want = expected("06-failing-step")
    code, broken = run_cli(capsys, "run", "pipeline.ipynb", "--json")
    check_run(broken, want["runs"][0], code)
    error = broken["steps"]["b"]["error"]
    for key, value in [
        ("ename", "ValueError"),
        ("evalue", "bad row 7"),
        ("cell_id", "fs-b-check"),
        ("cell_index", 5),
        ("line", 3),
    ]:
        assert error[key] == value
    assert error["source_line"].strip() == want["runs"][0]["error"]["source_line"]
    assert broken["steps"]["c"]["started"] is None
    token = result_lines(broken, "a")[1].split("=")[1]

    shutil.copy(workspace / "pipeline_fixed.ipynb", workspace / "pipeline.ipynb")
    code, fixed = run_cli(capsys, "run", "pipeline.ipynb", "--json")
    check_run(fixed, want["runs"][1], code)
    assert result_lines(fixed, "c") == ["RESULT c total=330", f"RESULT c token={token}"]


def test_failed_run_prints_the_error_with_cell_and_line(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy_case("06-failing-step", workspace)
    assert main(["run", "pipeline.ipynb"]) == 1
    out = capsys.readouterr().out
    for needle in ("step b FAILED", "ValueError: bad row 7", "fs-b-check", "cell 5", "line 3"):
        assert needle in out


def test_typed_overrides_and_refusals(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    copy_case("07-annotated-params", workspace)
    for want in expected("07-annotated-params")["runs"]:
        params = [a for k, v in want["overrides"].items() for a in ("-p", f"{k}={v}")]
        code, body = run_cli(capsys, "run", "params.ipynb", *params, "--json")
        if want["exit_code"] == 0:
            check_run(body, want, code)
            continue
        assert code != 0
        for needle in want["error_must_name"] + want.get("error_should_name", []):
            assert needle in body["error"], (want["name"], body["error"])
    code, runs = run_cli(capsys, "runs", "--json")
    assert len(runs) == 3, "refused overrides must not start a run"


def test_name_clash_refuses_graph_compile_and_run(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy_case("08-name-clash", workspace)
    want = {r["name"]: r for r in expected("08-name-clash")["runs"]}
    for verb, argv in [
        ("clash-graph", ["graph", "clash.ipynb", "--json"]),
        ("clash-compile", ["compile", "clash.ipynb", "-o", "clash.yaml", "--json"]),
        ("clash-run", ["run", "clash.ipynb", "--json"]),
    ]:
        code, body = run_cli(capsys, *argv)
        assert code != 0
        text = json.dumps(body)
        for needle in want[verb]["error_must_name"]:
            assert needle in text, (verb, needle)
    assert not (workspace / "clash.yaml").exists()
    assert run_cli(capsys, "runs", "--json")[1] == []
    code, run = run_cli(capsys, "run", "no_clash.ipynb", "--json")
    check_run(run, want["no-clash-run"] | {"state": "SUCCEEDED"}, code)


def test_rich_outputs_are_kept_in_the_step_notebook(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy_case("09-rich-outputs", workspace)
    code, run = run_cli(capsys, "run", "pipeline.ipynb", "--json")
    check_run(run, expected("09-rich-outputs")["runs"][0], code)
    nb = json.loads(Path(run["steps"]["plot"]["notebook"]).read_text())
    by_id = {c["metadata"]["mlk"]["cell_id"]: c["outputs"] for c in nb["cells"]}
    plot, tables = by_id["ro-plot"], by_id["ro-tables"]
    assert plot[0]["output_type"] == "display_data" and "image/png" in plot[0]["data"]
    import base64
    import struct

    png = base64.b64decode(plot[0]["data"]["image/png"])
    assert struct.unpack(">II", png[16:24]) == (400, 300)
    kinds = [(o["output_type"], o.get("name")) for o in tables]
    assert kinds[0] == ("display_data", None) and "<table" in tables[0]["data"]["text/html"]
    stderr = "".join(o["text"] for o in tables if o.get("name") == "stderr")
    assert "dropped 0 rows; 150 rows kept" in stderr
    assert "UserWarning: petal widths are rounded to 0.1 cm" in stderr
    result = tables[-1]
    assert result["output_type"] == "execute_result"
    assert "petal length (cm)" in result["data"]["text/html"]
    logs = Path(run["steps"]["plot"]["stderr"]).read_text()
    assert "UserWarning" in logs
    _ = case_dir
