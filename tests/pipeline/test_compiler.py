"""The KFP v2 compiler: every corpus notebook compiles to a loadable, stable, exact spec."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
import yaml
from google.protobuf import json_format
from kfp.components import load_component_from_file
from kfp.pipeline_spec import pipeline_spec_pb2

from jupyter_mlk.errors import CompileError, GraphError, ParameterError
from jupyter_mlk.notebook.graph import build_graph
from jupyter_mlk.pipeline import compiler as compiler_module
from jupyter_mlk.pipeline.compiler import (
    DEFAULT_IMAGE,
    compile_pipeline,
    guess_artifact_type,
    kfp_parameter_type,
    write_pipeline,
)
from tests.conftest import case_dir, expected
from tests.pipeline.kfp_interpreter import run_pipeline

CORPUS = [
    ("01-iris-pipeline", "pipeline.ipynb"),
    ("02-kale-style-tags", "pipeline.ipynb"),
    ("03-rebinding", "pipeline.ipynb"),
    ("04-alias-mutation", "pipeline.ipynb"),
    ("05-diamond-parallel", "pipeline.ipynb"),
    ("06-failing-step", "pipeline.ipynb"),
    ("07-annotated-params", "params.ipynb"),
    ("08-name-clash", "no_clash.ipynb"),
    ("09-rich-outputs", "pipeline.ipynb"),
    ("12-big-values", "pipeline.ipynb"),
]
RUNNER_EXISTS = importlib.util.find_spec("jupyter_mlk.pipeline.runner") is not None


def _notebook(path: Path, cells: list[tuple[list[str], str]]) -> Path:
    """Write a notebook with nbformat's v4 API: one code cell per (tags, source)."""
    nb = nbformat.v4.new_notebook()
    for i, (tags, source) in enumerate(cells):
        cell = nbformat.v4.new_code_cell(source, id=f"cell-{i}")
        cell.metadata["tags"] = tags
        nb.cells.append(cell)
    nbformat.write(nb, str(path))
    return path


def _documents(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d is not None]


def _all_tasks(spec: dict[str, Any]) -> dict[str, tuple[dict[str, Any], list[str]]]:
    """Task name -> (task, names of the condition tasks enclosing it), at any depth."""
    found: dict[str, tuple[dict[str, Any], list[str]]] = {}

    def walk(dag: dict[str, Any], enclosing: list[str]) -> None:
        for name, task in dag["tasks"].items():
            component = spec["components"][task["componentRef"]["name"]]
            if "dag" in component:
                walk(component["dag"], [*enclosing, name])
            else:
                found[name] = (task, enclosing)

    walk(spec["root"]["dag"], [])
    return found


def _effective_dependencies(spec: dict[str, Any], name: str) -> set[str]:
    """A task's dependencies, including those of the condition groups around it."""
    tasks = _all_tasks(spec)
    groups = {n: t for n, t in spec["root"]["dag"]["tasks"].items()}
    for comp in spec["components"].values():
        groups.update(comp.get("dag", {}).get("tasks", {}))
    task, enclosing = tasks[name]
    deps = set(task.get("dependentTasks", []))
    for group in enclosing:
        deps |= set(groups[group].get("dependentTasks", []))
    return {d for d in deps if d in tasks}


@pytest.fixture(scope="module")
def compiled() -> dict[str, str]:
    """The YAML of every corpus notebook, compiled once for the module."""
    out = {}
    for case, name in CORPUS:
        out[case] = compile_pipeline(build_graph(str(case_dir(case) / name)))
    return out


class TestCorpus:
    @pytest.mark.parametrize(("case", "name"), CORPUS, ids=[c for c, _ in CORPUS])
    def test_the_yaml_loads_as_a_component_and_parses_into_the_protos_strictly(
        self, case: str, name: str, compiled: dict[str, str], tmp_path: Path
    ) -> None:
        path = write_pipeline(build_graph(str(case_dir(case) / name)), tmp_path / "p.yaml")
        assert path.read_text(encoding="utf-8") == compiled[case]
        component = load_component_from_file(str(path))
        assert component.pipeline_spec is not None
        docs = _documents(compiled[case])
        json_format.ParseDict(docs[0], pipeline_spec_pb2.PipelineSpec())
        for platform in docs[1:]:
            json_format.ParseDict(platform, pipeline_spec_pb2.PlatformSpec())

    @pytest.mark.parametrize(("case", "name"), CORPUS, ids=[c for c, _ in CORPUS])
    def test_compiling_twice_gives_byte_identical_yaml(
        self, case: str, name: str, compiled: dict[str, str]
    ) -> None:
        again = compile_pipeline(build_graph(str(case_dir(case) / name)))
        assert again == compiled[case]

    def test_another_process_with_another_hash_seed_writes_the_same_bytes(
        self, compiled: dict[str, str]
    ) -> None:
        nb = case_dir("07-annotated-params") / "params.ipynb"
        code = (
            "import sys\nfrom jupyter_mlk.notebook.graph import build_graph\n"
            "from jupyter_mlk.pipeline.compiler import compile_pipeline\n"
            f"sys.stdout.write(compile_pipeline(build_graph({str(nb)!r})))\n"
        )
        env = {**os.environ, "PYTHONHASHSEED": "12345"}
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        assert out.stdout == compiled["07-annotated-params"]

    @pytest.mark.parametrize(("case", "name"), CORPUS, ids=[c for c, _ in CORPUS])
    def test_every_step_is_a_task_running_the_step_runner_in_the_default_image(
        self, case: str, name: str, compiled: dict[str, str]
    ) -> None:
        graph = build_graph(str(case_dir(case) / name))
        spec = _documents(compiled[case])[0]
        assert set(_all_tasks(spec)) == {s.kfp_name for s in graph.steps}
        for executor in spec["deploymentSpec"]["executors"].values():
            container = executor["container"]
            assert container["command"] == ["python", "-m", "jupyter_mlk.pipeline.runner"]
            assert container["args"][0] == "--spec"
            assert container["image"] == DEFAULT_IMAGE

    @pytest.mark.parametrize(("case", "name"), CORPUS, ids=[c for c, _ in CORPUS])
    def test_data_edges_and_prev_edges_become_task_dependencies(
        self, case: str, name: str, compiled: dict[str, str]
    ) -> None:
        graph = build_graph(str(case_dir(case) / name))
        spec = _documents(compiled[case])[0]
        for step in graph.steps:
            wanted = {graph.step(up).kfp_name for up in step.after}
            assert _effective_dependencies(spec, step.kfp_name) == wanted, step.name

    def test_stored_outputs_never_reach_the_yaml(self, compiled: dict[str, str]) -> None:
        for text in compiled.values():
            assert "image/png" not in text
            assert "execute_result" not in text
            assert "/work/" not in text  # nor the notebook's directory

    @pytest.mark.parametrize(("case", "name"), CORPUS[:3], ids=[c for c, _ in CORPUS[:3]])
    def test_the_libyaml_emitter_writes_the_bytes_kfps_own_emitter_writes(
        self, case: str, name: str, compiled: dict[str, str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(compiler_module, "USE_LIBYAML", False)
        assert compile_pipeline(build_graph(str(case_dir(case) / name))) == compiled[case]

    def test_the_libyaml_emitter_keeps_unicode_and_odd_strings_identical(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        source = "é = 'ünïcødé ✓ \\t {{x}} # : - ? |'\nλ = [é] * 3\n" + "z = 1\n" * 50
        nb = _notebook(
            tmp_path / "odd.ipynb",
            [(["parameters"], "s = 'a: b # c'\nt = ''"), (["step:a"], source), (["step:b"], "λ")],
        )
        graph = build_graph(str(nb))
        fast = compile_pipeline(graph)
        monkeypatch.setattr(compiler_module, "USE_LIBYAML", False)
        assert compile_pipeline(graph) == fast


class TestExpectedCompile:
    @pytest.mark.parametrize("case", ["01-iris-pipeline", "07-annotated-params"])
    def test_root_parameters_have_the_expected_types_and_defaults(
        self, case: str, compiled: dict[str, str]
    ) -> None:
        want = expected(case)["compile"]["root_parameters"]
        got = _documents(compiled[case])[0]["root"]["inputDefinitions"]["parameters"]
        assert list(got) == sorted(want)
        for name, body in want.items():
            assert got[name]["parameterType"] == body["parameterType"], name
            assert got[name]["defaultValue"] == body["defaultValue"], name

    @pytest.mark.parametrize(
        "case", ["01-iris-pipeline", "02-kale-style-tags", "05-diamond-parallel"]
    )
    def test_tasks_and_dependencies_match_the_expected_ones(
        self, case: str, compiled: dict[str, str]
    ) -> None:
        want = expected(case)["compile"]
        spec = _documents(compiled[case])[0]
        if "tasks" in want:
            assert set(_all_tasks(spec)) == set(want["tasks"])
        for task, deps in want.get("dependent_tasks_include", {}).items():
            assert set(deps) <= _effective_dependencies(spec, task), task
        for task, deps in want.get("dependent_tasks_exclude", {}).items():
            assert not set(deps) & _effective_dependencies(spec, task), task

    @pytest.mark.parametrize("case", ["01-iris-pipeline", "02-kale-style-tags"])
    def test_the_metrics_step_has_a_metrics_artifact_logging_accuracy(
        self, case: str, compiled: dict[str, str]
    ) -> None:
        spec = _documents(compiled[case])[0]
        comp = spec["components"]["comp-evaluate"]
        metrics = comp["outputDefinitions"]["artifacts"]["metrics"]
        assert metrics["artifactType"]["schemaTitle"] == "system.Metrics"
        assert "accuracy" in metrics["description"]
        args = spec["deploymentSpec"]["executors"]["exec-evaluate"]["container"]["args"]
        assert "--metrics" in args
        assert '"metrics":["accuracy"]' in args[1]

    def test_the_yaml_writes_integer_defaults_as_floats_but_types_them_integer(
        self, compiled: dict[str, str]
    ) -> None:
        text = compiled["01-iris-pipeline"]
        params = _documents(text)[0]["root"]["inputDefinitions"]["parameters"]
        assert params["n_estimators"] == {
            "defaultValue": 50.0,
            "isOptional": True,
            "parameterType": "NUMBER_INTEGER",
        }

    def test_values_between_steps_are_typed_artifacts_wired_producer_to_consumer(
        self, compiled: dict[str, str]
    ) -> None:
        spec = _documents(compiled["01-iris-pipeline"])[0]
        outs = spec["components"]["comp-train"]["outputDefinitions"]["artifacts"]
        assert outs["model"]["artifactType"]["schemaTitle"] == "system.Model"
        loads = spec["components"]["comp-load"]["outputDefinitions"]["artifacts"]
        assert loads["X_train"]["artifactType"]["schemaTitle"] == "system.Dataset"
        evaluate = spec["root"]["dag"]["tasks"]["evaluate"]["inputs"]["artifacts"]
        assert evaluate["train__model"]["taskOutputArtifact"] == {
            "outputArtifactKey": "model",
            "producerTask": "train",
        }


class TestRefusals:
    def test_a_name_clash_is_refused_naming_both_cells_and_nothing_is_written(
        self, tmp_path: Path
    ) -> None:
        graph = build_graph(str(case_dir("08-name-clash") / "clash.ipynb"))
        target = tmp_path / "pipeline.yaml"
        with pytest.raises(GraphError) as info:
            write_pipeline(graph, target)
        message = str(info.value)
        for part in ("nc-train-underscore", "nc-train-hyphen", "cell 2", "cell 3"):
            assert part in message
        assert info.value.diagnostics
        assert list(tmp_path.iterdir()) == []

    def test_an_existing_file_is_left_alone_when_compiling_fails(self, tmp_path: Path) -> None:
        graph = build_graph(str(case_dir("08-name-clash") / "clash.ipynb"))
        target = tmp_path / "pipeline.yaml"
        target.write_text("old")
        with pytest.raises(GraphError):
            write_pipeline(graph, target)
        assert target.read_text() == "old"
        assert [p.name for p in tmp_path.iterdir()] == ["pipeline.yaml"]

    def test_an_unknown_override_is_refused_with_the_known_names(self) -> None:
        graph = build_graph(str(case_dir("01-iris-pipeline") / "pipeline.ipynb"))
        with pytest.raises(ParameterError, match=r"n_estimator.*max_depth"):
            compile_pipeline(graph, overrides={"n_estimator": 3})

    def test_steps_under_two_independent_conditions_are_refused_with_the_fix(
        self, tmp_path: Path
    ) -> None:
        nb = _notebook(
            tmp_path / "two.ipynb",
            [
                (["step:a"], "x = 1\ny = 2"),
                (["step:b", "if:x>0"], "u = x"),
                (["step:c", "if:y>0"], "v = y"),
                (["step:d"], "print(u + v)"),
            ],
        )
        with pytest.raises(CompileError, match="prev:"):
            compile_pipeline(build_graph(str(nb)))

    def test_a_resource_kfp_cannot_express_is_refused(self, tmp_path: Path) -> None:
        nb = _notebook(tmp_path / "eph.ipynb", [(["step:a", "limit:ephemeral-storage:1Gi"], "1")])
        with pytest.raises(CompileError, match="ephemeral-storage"):
            compile_pipeline(build_graph(str(nb)))


class TestTags:
    @pytest.fixture
    def tagged(self, tmp_path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
        nb = _notebook(
            tmp_path / "tags.ipynb",
            [
                (["imports"], "import math"),
                (["parameters"], "threshold = 0.5\nepochs = 3"),
                (["step:load", "limit:cpu:2", "limit:memory:4Gi"], "data = [1, 2, 3]"),
                (
                    [
                        "step:train",
                        "gpu:1",
                        "image:example.com/gpu:1",
                        "cache:off",
                        "node:pool=gpu",
                        "toleration:nvidia.com/gpu:NoSchedule",
                    ],
                    "score = sum(data) / 10 * epochs",
                ),
                (["step:deploy", "if:score>=threshold"], "print('deploy', score)"),
                (["step:notify", "prev:deploy"], "print('after', score)"),
                (["step:audit"], "print('always', data)"),
            ],
        )
        docs = _documents(compile_pipeline(build_graph(str(nb)), image="example.com/cpu:2"))
        return docs[0], docs[1]

    def test_limits_become_cpu_and_memory_requests_and_limits(
        self, tagged: tuple[dict[str, Any], dict[str, Any]]
    ) -> None:
        resources = tagged[0]["deploymentSpec"]["executors"]["exec-load"]["container"]["resources"]
        assert resources["resourceCpuLimit"] == resources["resourceCpuRequest"] == "2"
        assert resources["resourceMemoryLimit"] == resources["resourceMemoryRequest"] == "4Gi"

    def test_gpu_image_and_cache_tags_shape_their_task_only(
        self, tagged: tuple[dict[str, Any], dict[str, Any]]
    ) -> None:
        spec = tagged[0]
        train = spec["deploymentSpec"]["executors"]["exec-train"]["container"]
        assert train["resources"]["accelerator"]["resourceType"] == "nvidia.com/gpu"
        assert train["resources"]["accelerator"]["resourceCount"] == "1"
        assert train["image"] == "example.com/gpu:1"
        audit = spec["deploymentSpec"]["executors"]["exec-audit"]["container"]
        assert audit["image"] == "example.com/cpu:2"
        tasks = spec["root"]["dag"]["tasks"]
        assert tasks["train"]["cachingOptions"] == {}
        assert tasks["load"]["cachingOptions"] == {"enableCache": True}

    def test_node_selectors_and_tolerations_go_to_the_kubernetes_platform_spec(
        self, tagged: tuple[dict[str, Any], dict[str, Any]]
    ) -> None:
        train = tagged[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-train"]
        assert train["nodeSelector"] == {"labels": {"pool": "gpu"}}
        assert train["tolerations"] == [
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
        ]

    def test_an_if_tag_becomes_a_condition_on_the_producers_published_value(
        self, tagged: tuple[dict[str, Any], dict[str, Any]]
    ) -> None:
        spec = tagged[0]
        tasks = _all_tasks(spec)
        assert tasks["deploy"][1] == tasks["notify"][1] == ["condition-1"]
        assert tasks["audit"][1] == []
        group = spec["root"]["dag"]["tasks"]["condition-1"]
        condition = group["triggerPolicy"]["condition"]
        assert "pipelinechannel--train-score_value" in condition
        assert ">=" in condition and "pipelinechannel--threshold" in condition
        outputs = spec["components"]["comp-train"]["outputDefinitions"]["parameters"]
        assert outputs["score_value"]["parameterType"] == "NUMBER_DOUBLE"
        args = spec["deploymentSpec"]["executors"]["exec-train"]["container"]["args"]
        assert "--value" in args
        assert args[args.index("--value") + 1].startswith("score=")


class TestParameters:
    def test_overrides_replace_the_defaults_and_small_floats_survive_yaml_and_proto(
        self, tmp_path: Path
    ) -> None:
        graph = build_graph(str(case_dir("07-annotated-params") / "params.ipynb"))
        text = compile_pipeline(graph, overrides={"drift": 2e-05, "offset": -7})
        params = _documents(text)[0]["root"]["inputDefinitions"]["parameters"]
        assert params["drift"]["defaultValue"] == 2e-05
        assert params["offset"]["defaultValue"] == -7
        proto = json_format.ParseDict(_documents(text)[0], pipeline_spec_pb2.PipelineSpec())
        back = yaml.safe_load(yaml.safe_dump(json_format.MessageToDict(proto)))
        assert back["root"]["inputDefinitions"]["parameters"]["drift"]["defaultValue"] == 2e-05

    @pytest.mark.parametrize(
        ("type_name", "kfp"),
        [
            ("int", "NUMBER_INTEGER"),
            ("float", "NUMBER_DOUBLE"),
            ("bool", "BOOLEAN"),
            ("str", "STRING"),
            ("date", "STRING"),
            ("datetime", "STRING"),
            ("NoneType", "STRING"),
            ("list", "LIST"),
            ("tuple", "LIST"),
            ("dict", "STRUCT"),
        ],
    )
    def test_each_notebook_type_has_its_kfp_type(self, type_name: str, kfp: str) -> None:
        assert kfp_parameter_type(type_name) == kfp

    def test_a_step_receives_only_the_parameters_it_reads(self, compiled: dict[str, str]) -> None:
        spec = _documents(compiled["01-iris-pipeline"])[0]
        args = spec["deploymentSpec"]["executors"]["exec-train"]["container"]["args"]
        params = [args[i + 1] for i, a in enumerate(args) if a == "--param"]
        assert params == [
            "max_depth={{$.inputs.parameters['max_depth']}}",
            "n_estimators={{$.inputs.parameters['n_estimators']}}",
        ]


class TestArtifactTypes:
    @pytest.mark.parametrize(
        ("source", "name", "kind"),
        [
            ("m = RandomForestClassifier()", "m", "Model"),
            ("m = make_pipeline()\nm.fit(x, y)", "m", "Model"),
            ("m = Thing().fit(x)", "m", "Model"),
            ("df = pd.read_csv('x.csv')", "df", "Dataset"),
            ("a, b, c, d = train_test_split(x, y)", "c", "Dataset"),
            ("n = len(x)", "n", "Artifact"),
            ("df = pd.DataFrame()\ndf = 3", "df", "Artifact"),
        ],
    )
    def test_the_artifact_type_follows_how_the_step_binds_the_name(
        self, tmp_path: Path, source: str, name: str, kind: str
    ) -> None:
        nb = _notebook(tmp_path / "t.ipynb", [(["step:s"], f"x = y = 1\n{source}")])
        graph = build_graph(str(nb))
        assert guess_artifact_type(graph.steps[0], [name]) == kind


@pytest.mark.slow
@pytest.mark.skipif(not RUNNER_EXISTS, reason="jupyter_mlk.pipeline.runner is not there yet")
class TestCompiledStepsExecute:
    """The compiled YAML, interpreted as a KFP backend would, really runs the steps."""

    def test_the_iris_pipeline_runs_and_prints_the_expected_results(
        self, compiled: dict[str, str], tmp_path: Path
    ) -> None:
        run = run_pipeline(compiled["01-iris-pipeline"], tmp_path)
        defaults = expected("01-iris-pipeline")["runs"][0]
        for step, lines in defaults["result_lines"].items():
            printed = [ln for ln in run.tasks[step].stdout.splitlines() if ln.startswith("RESULT")]
            assert printed == lines
        metrics = (tmp_path / "evaluate" / "artifacts" / "metrics").read_text()
        assert '"accuracy": 0.9333333333333333' in metrics

    @pytest.mark.parametrize(("threshold", "runs"), [(0.5, True), (0.99, False)])
    def test_a_condition_runs_or_skips_the_guarded_steps(
        self, tmp_path: Path, threshold: float, runs: bool
    ) -> None:
        nb = _notebook(
            tmp_path / "cond.ipynb",
            [
                (["parameters"], "threshold = 0.5\nlabel = 'run#1'"),
                (["step:score"], "score = 0.75\nprint('RESULT score', label)"),
                (["step:deploy", "if:score>=threshold"], "print('RESULT deploy', score)"),
            ],
        )
        text = compile_pipeline(build_graph(str(nb)), overrides={"threshold": threshold})
        run = run_pipeline(text, tmp_path / "run")
        assert "RESULT score run#1" in run.tasks["score"].stdout
        assert run.tasks["score"].outputs == {"score_value": 0.75}
        assert ("deploy" in run.tasks) is runs
        assert (run.skipped == ["condition-1"]) is not runs
