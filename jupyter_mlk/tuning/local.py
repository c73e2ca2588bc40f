"""The local sweep backend: an Optuna study whose trials are pipeline runs on this machine.

Each Katib algorithm name maps to its nearest Optuna sampler or pruner (``ALGORITHMS``);
names with no honest equivalent are refused. Trials run ``parallel`` at a time as runs of
the local executor in this process, sharing its warm fork server, and reuse every cached
step whose inputs did not change, so a sweep over a training parameter loads its data
once. The study lives in the workspace (an Optuna journal file), so a sweep survives a
restart and can be resumed.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_mlk.notebook.model import StepGraph
from jupyter_mlk.notebook.params import convert_value
from jupyter_mlk.tuning.metrics import parse_metric_lines, reported_value
from jupyter_mlk.tuning.spec import SweepError, SweepSpec
from jupyter_mlk.tuning.store import SweepStore

log = logging.getLogger(__name__)

# Katib algorithm name -> (Optuna sampler or pruner, what it needs)
ALGORITHMS = {
    "random": "RandomSampler",
    "grid": "GridSampler (int ranges, steps of double ranges, lists)",
    "tpe": "TPESampler",
    "multivariate-tpe": "TPESampler(multivariate=True)",
    "cmaes": "CmaEsSampler (needs the cmaes package)",
    "sobol": "QMCSampler(qmc_type='sobol') (needs scipy)",
    "bayesianoptimization": "GPSampler, a Gaussian-process sampler (needs PyTorch and scipy)",
    "hyperband": "TPESampler with HyperbandPruner",
}
EARLY_STOPPING = {"medianstop": "MedianPruner"}
REFUSED = ("pbt", "enas", "darts")
EventHandler = Callable[[str, dict[str, Any]], None]


def import_optuna() -> Any:
    """Optuna, without the progress-bar warning its tqdm import prints in notebooks."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import optuna

    return optuna


def _require(module: str, algorithm: str, install: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise SweepError(
            f"algorithm {algorithm} maps to Optuna's {ALGORITHMS[algorithm]}; "
            f"{module} is not installed: {install}, or use tpe"
        )


def _int_setting(settings: dict[str, str], key: str, default: int | None) -> int | None:
    if key not in settings:
        return default
    try:
        return int(settings[key])
    except ValueError:
        raise SweepError(
            f"spec.algorithm.algorithmSettings {key}: {settings[key]!r} is not a whole number"
        ) from None


def make_sampler(spec: SweepSpec) -> Any:
    """The Optuna sampler for the spec's Katib algorithm name."""
    import warnings

    optuna = import_optuna()

    with warnings.catch_warnings():
        # QMCSampler and GPSampler are marked experimental in Optuna; chosen knowingly.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return _sampler(spec)


def _sampler(spec: SweepSpec) -> Any:
    optuna = import_optuna()

    name, settings = spec.algorithm, spec.algorithm_settings
    seed = _int_setting(settings, "random_state", None)
    if name in REFUSED:
        raise SweepError(
            f"algorithm {name} has no honest Optuna equivalent and is not run locally; "
            f"supported: {', '.join(ALGORITHMS)} (and early stopping: medianstop). "
            "Use --backend kubernetes to run it with Katib"
        )
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name in ("tpe", "multivariate-tpe", "hyperband"):
        return optuna.samplers.TPESampler(
            seed=seed,
            multivariate=name == "multivariate-tpe",
            n_startup_trials=_int_setting(settings, "n_startup_trials", 10) or 10,
            n_ei_candidates=_int_setting(settings, "n_ei_candidates", 24) or 24,
        )
    if name == "grid":
        return optuna.samplers.GridSampler(grid_space(spec), seed=seed)
    if name == "cmaes":
        _require("cmaes", name, "pip install cmaes")
        return optuna.samplers.CmaEsSampler(seed=seed)
    if name == "sobol":
        _require("scipy", name, "pip install scipy")
        return optuna.samplers.QMCSampler(qmc_type="sobol", seed=seed)
    if name == "bayesianoptimization":
        _require("torch", name, "pip install torch")
        return optuna.samplers.GPSampler(seed=seed)
    raise SweepError(
        f"spec.algorithm.algorithmName: unknown algorithm {name!r}; supported: "
        + ", ".join(ALGORITHMS)
    )


def make_pruner(spec: SweepSpec) -> Any:
    """The Optuna pruner for early stopping (medianstop) or hyperband; none otherwise."""
    optuna = import_optuna()

    if spec.algorithm == "hyperband":
        s = spec.algorithm_settings
        return optuna.pruners.HyperbandPruner(
            max_resource=_int_setting(s, "r_l", None) or "auto",
            reduction_factor=_int_setting(s, "eta", 3) or 3,
        )
    if spec.early_stopping is None:
        return optuna.pruners.NopPruner()
    if spec.early_stopping != "medianstop":
        raise SweepError(
            f"spec.earlyStopping.algorithmName: {spec.early_stopping!r}; the local backend "
            "supports medianstop"
        )
    s = spec.early_stopping_settings
    return optuna.pruners.MedianPruner(
        n_startup_trials=_int_setting(s, "min_trials_required", 3) or 3,
        n_warmup_steps=_int_setting(s, "start_step", 0) or 0,
    )


def grid_space(spec: SweepSpec) -> dict[str, list[Any]]:
    """The grid of every parameter, for the grid algorithm."""
    space: dict[str, list[Any]] = {}
    for p in spec.parameters:
        if p.type in ("categorical", "discrete"):
            space[p.name] = [float(v) if p.type == "discrete" else v for v in p.values]
        elif p.type == "int":
            assert p.min is not None and p.max is not None
            space[p.name] = list(range(int(p.min), int(p.max) + 1, int(p.step or 1)))
        else:
            if p.step is None:
                raise SweepError(
                    f"grid needs a step for double parameter {p.name}: add feasibleSpace.step"
                )
            assert p.min is not None and p.max is not None
            count = round((p.max - p.min) / p.step) + 1
            space[p.name] = [p.min + i * p.step for i in range(count)]
    return space


def distributions(spec: SweepSpec) -> dict[str, Any]:
    """Optuna distributions of the spec's parameters."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    out: dict[str, Any] = {}
    for p in spec.parameters:
        if p.type == "categorical":
            out[p.name] = CategoricalDistribution(list(p.values))
        elif p.type == "discrete":
            out[p.name] = CategoricalDistribution([float(v) for v in p.values])
        elif p.type == "int":
            assert p.min is not None and p.max is not None
            out[p.name] = IntDistribution(
                int(p.min), int(p.max), log=p.log, step=1 if p.log else int(p.step or 1)
            )
        else:
            assert p.min is not None and p.max is not None
            out[p.name] = FloatDistribution(
                p.min, p.max, log=p.log, step=None if p.log else p.step
            )
    return out


def check_against_notebook(spec: SweepSpec, graph: StepGraph) -> list[str]:
    """Refuse parameters the notebook lacks; warn when the objective is no metric of it."""
    known = {p.name for p in graph.parameters}
    for i, p in enumerate(spec.parameters):
        if p.name not in known:
            raise SweepError(
                f"spec.parameters[{i}].name: {p.name!r} is not a parameter of the notebook; "
                f"its parameters are: {', '.join(sorted(known)) or '(none)'}"
            )
    if spec.objective not in graph.metrics:
        return [
            f"objective {spec.objective} is not a metric of the notebook (metrics: "
            f"{', '.join(graph.metrics) or 'none'}); a step must print {spec.objective}=VALUE"
        ]
    return []


@dataclass
class TrialOutcome:
    """What one trial ended with."""

    number: int
    run_id: str
    state: str  # SUCCEEDED, FAILED, CANCELLED, PRUNED
    objective: float | None
    error: str | None


def trial_workdir(notebook_dir: Path, target: Path) -> Path:
    """A private working folder for a trial, mirroring the notebook's folder.

    Folders are real, files are symbolic links: a trial reads the notebook's data as it is
    and writes its own files (``model/model.joblib``) into its own folder, so parallel
    trials never overwrite each other's outputs.
    """
    skip = {".mlk", ".git", "node_modules", "__pycache__", ".ipynb_checkpoints"}
    for root, dirs, files in os.walk(notebook_dir):
        dirs[:] = [d for d in dirs if d not in skip and not d.startswith(".")]
        rel = Path(root).relative_to(notebook_dir)
        dest = target / rel
        dest.mkdir(parents=True, exist_ok=True)
        for name in files:
            link = dest / name
            if not link.exists():
                link.symlink_to(Path(root) / name)
    return target


class LocalSweep:
    """Runs one sweep to its end: trials, failure budget, goal, cancel."""

    def __init__(
        self,
        workspace_root: Path,
        graph: StepGraph,
        spec: SweepSpec,
        base_params: dict[str, str],
        sweep_id: str,
        on_event: EventHandler | None = None,
    ) -> None:
        self.root = workspace_root
        self.graph = graph
        self.spec = spec
        self.base_params = base_params
        self.sweep_id = sweep_id
        self.on_event = on_event or (lambda kind, data: None)
        self.store = SweepStore(workspace_root)
        self._executors: dict[int, Any] = {}
        self._lock = threading.Lock()
        self._cancel = False

    def cancel(self) -> None:
        self._cancel = True
        with self._lock:
            for executor in self._executors.values():
                executor.cancel()

    def _study(self) -> Any:
        optuna = import_optuna()
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        path = self.root / ".mlk" / "optuna-journal.log"
        storage = JournalStorage(JournalFileBackend(str(path)))
        return optuna.create_study(
            study_name=self.sweep_id,
            storage=storage,
            direction="maximize" if self.spec.goal == "maximize" else "minimize",
            sampler=make_sampler(self.spec),
            pruner=make_pruner(self.spec),
            load_if_exists=True,
        )

    def run(self) -> dict[str, Any]:
        """Run trials until the budget, the goal, the failure budget or a cancel ends it."""
        optuna = import_optuna()

        study = self._study()
        dists = distributions(self.spec)
        self.store.update_sweep(self.sweep_id, state="RUNNING", started=time.time())
        done = self.store.trials(self.sweep_id)
        failures = sum(1 for t in done if t["state"] == "FAILED")
        started = len(done)
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            study.tell(t.number, state=optuna.trial.TrialState.FAIL)  # from a dead process
        if self.spec.algorithm == "grid":
            grid = grid_space(self.spec)
            size = 1
            for values in grid.values():
                size *= len(values)
            budget = min(self.spec.max_trials, size)
        else:
            budget = self.spec.max_trials
        state, reason = "SUCCEEDED", f"maxTrialCount {budget} reached"
        running: dict[Future[TrialOutcome], Any] = {}
        with ThreadPoolExecutor(max_workers=self.spec.parallel) as pool:
            try:
                while True:
                    if self._cancel or self.store.is_cancel_requested(self.sweep_id):
                        state, reason = "CANCELLED", "cancelled"
                        break
                    while len(running) < self.spec.parallel and started < budget:
                        trial = study.ask(dists)
                        started += 1
                        future = pool.submit(self._run_trial, trial)
                        running[future] = trial
                    if not running:
                        break
                    finished, _ = wait(list(running), timeout=0.5, return_when=FIRST_COMPLETED)
                    for trial in running.values():
                        self._report_intermediate(trial)
                    for future in finished:
                        trial = running.pop(future)
                        outcome = future.result()
                        failures += self._tell(study, trial, outcome)
                    if failures > self.spec.max_failed:
                        state = "FAILED"
                        reason = (
                            f"{failures} trials failed, more than maxFailedTrialCount "
                            f"{self.spec.max_failed}"
                        )
                        break
                    if self._goal_reached(study):
                        state, reason = (
                            "SUCCEEDED",
                            (
                                f"the goal {self.spec.objective} "
                                f"{'>=' if self.spec.goal == 'maximize' else '<='} "
                                f"{self.spec.target:g} was reached"
                            ),
                        )
                        break
            except KeyboardInterrupt:
                state, reason = "CANCELLED", "cancelled"
            finally:
                if running:
                    self.cancel()
                    for future, trial in list(running.items()):
                        self._tell(study, trial, future.result())
        best = self._best(study)
        if state == "SUCCEEDED" and best is None:
            state = "FAILED"
            reason = (
                f"no trial reported the objective {self.spec.objective}; see the trials' errors"
            )
        self.store.update_sweep(
            self.sweep_id, state=state, finished=time.time(), reason=reason, best=best
        )
        self.on_event("sweep", {"state": state, "reason": reason, "best": best})
        return self.store.get_sweep(self.sweep_id)

    def _goal_reached(self, study: Any) -> bool:
        if self.spec.target is None:
            return False
        best = self._best(study)
        if best is None:
            return False
        value = best["objective"]
        return bool(
            value >= self.spec.target
            if self.spec.goal == "maximize"
            else value <= self.spec.target
        )

    @staticmethod
    def _best(study: Any) -> dict[str, Any] | None:
        try:
            trial = study.best_trial
        except ValueError:
            return None
        return {
            "number": trial.number,
            "objective": trial.value,
            "params": trial.params,
            "run_id": trial.user_attrs.get("run_id"),
        }

    def _tell(self, study: Any, trial: Any, outcome: TrialOutcome) -> int:
        optuna = import_optuna()

        states = {
            "SUCCEEDED": optuna.trial.TrialState.COMPLETE,
            "PRUNED": optuna.trial.TrialState.PRUNED,
        }
        trial.set_user_attr("run_id", outcome.run_id)
        if outcome.state == "SUCCEEDED" and outcome.objective is not None:
            study.tell(trial, outcome.objective)
        else:
            study.tell(trial, state=states.get(outcome.state, optuna.trial.TrialState.FAIL))
        self.store.finish_trial(
            self.sweep_id, outcome.number, outcome.state, outcome.objective, outcome.error
        )
        self.store.update_sweep(self.sweep_id, best=self._best(study))
        self.on_event(
            "trial",
            {
                "number": outcome.number,
                "state": outcome.state,
                "objective": outcome.objective,
                "error": outcome.error,
            },
        )
        return 1 if outcome.state == "FAILED" else 0

    def _values(self, trial_params: dict[str, Any]) -> dict[str, Any]:
        from jupyter_mlk.notebook.params import resolve_overrides

        values = resolve_overrides(self.graph.parameters, self.base_params)
        for name, value in trial_params.items():
            param = self.graph.parameter(name)
            text = (
                str(int(value))
                if param.type == "int" and float(value).is_integer()
                else str(value)
            )
            values[name] = convert_value(param, text)
        return values

    def _run_trial(self, trial: Any) -> TrialOutcome:
        """Run one trial in this worker thread; any failure is the trial's, not the sweep's."""
        try:
            return self._trial(trial)
        except Exception as exc:
            log.exception("sweep %s: trial %s failed to run", self.sweep_id, trial.number)
            return TrialOutcome(
                trial.number,
                trial.user_attrs.get("run_id", ""),
                "FAILED",
                None,
                f"{type(exc).__name__}: {exc}",
            )

    def _trial(self, trial: Any) -> TrialOutcome:
        from jupyter_mlk.pipeline.executor import LocalExecutor
        from jupyter_mlk.store.workspace import Workspace

        ws = Workspace(self.root)
        store = SweepStore(self.root)  # SQLite connections stay in their thread
        number = trial.number
        try:
            values = self._values(dict(trial.params))
        except Exception as exc:
            return TrialOutcome(number, "", "FAILED", None, str(exc))
        workers = max(1, (os.cpu_count() or 1) // self.spec.parallel)
        executor = LocalExecutor(ws, workers=workers)
        run_id = executor.start(
            self.graph, values, labels={"sweep": self.sweep_id, "trial": number}
        )
        trial.set_user_attr("run_id", run_id)
        store.start_trial(self.sweep_id, number, run_id, dict(trial.params))
        store.close()
        self.on_event(
            "trial",
            {"number": number, "state": "RUNNING", "run_id": run_id, "params": dict(trial.params)},
        )
        with self._lock:
            if self._cancel:
                executor.cancel()
            self._executors[number] = executor
        workdir = trial_workdir(
            Path(self.graph.path).resolve().parent,
            ws.state / "sweeps" / self.sweep_id / f"trial-{number}",
        )
        try:
            result = executor.run(self.graph, values, run_id=run_id, workdir=workdir)
        finally:
            with self._lock:
                self._executors.pop(number, None)
            ws.close()
        if getattr(trial, "_mlk_pruned", False):
            return TrialOutcome(number, run_id, "PRUNED", None, "stopped early (medianstop)")
        if result.state != "SUCCEEDED":
            state = "CANCELLED" if result.state == "CANCELLED" else "FAILED"
            return TrialOutcome(number, run_id, state, None, result.error or result.state)
        value = result.metrics.get(self.spec.objective)
        if value is None:
            value = reported_value(self._stdout(run_id), self.spec.objective)
        if value is None:
            return TrialOutcome(
                number, run_id, "FAILED", None, f"objective {self.spec.objective} was not reported"
            )
        return TrialOutcome(number, run_id, "SUCCEEDED", value, None)

    def _stdout(self, run_id: str) -> str:
        run_dir = self.root / ".mlk" / "runs" / run_id
        parts = []
        for path in sorted(run_dir.glob("*/stdout.log"), key=lambda p: p.stat().st_mtime):
            parts.append(path.read_text(errors="replace"))
        return "\n".join(parts)

    def _report_intermediate(self, trial: Any) -> None:
        """Objective values printed so far are intermediate values; a pruner may stop it."""
        if self.spec.early_stopping is None and self.spec.algorithm != "hyperband":
            return
        run_id = trial.user_attrs.get("run_id")
        if not run_id:
            return
        values = parse_metric_lines(self._stdout(run_id)).get(self.spec.objective, [])
        seen = getattr(trial, "_mlk_reported", 0)
        for step in range(seen, len(values)):
            trial.report(values[step], step)
        trial._mlk_reported = len(values)
        if values and not getattr(trial, "_mlk_pruned", False) and trial.should_prune():
            trial._mlk_pruned = True
            with self._lock:
                executor = self._executors.get(trial.number)
            if executor is not None:
                executor.cancel()


def remove_trial_folders(workspace_root: Path, sweep_id: str) -> None:
    """Delete the trials' working folders of a sweep."""
    shutil.rmtree(workspace_root / ".mlk" / "sweeps" / sweep_id, ignore_errors=True)
