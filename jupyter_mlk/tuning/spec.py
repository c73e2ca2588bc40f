"""The sweep spec: Katib's Experiment shape, read from YAML or built from CLI flags.

A user who knows Katib knows this spec, and a Katib Experiment file works as it is: the
local backend uses ``objective``, ``algorithm``, the trial counts, ``parameters`` and
``earlyStopping``, and names in one warning the fields it cannot honour.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from jupyter_mlk.errors import MlkError


class SweepError(MlkError):
    """A sweep spec is invalid, or a sweep cannot be started, found or resumed."""


PARAMETER_TYPES = ("int", "double", "categorical", "discrete")
DISTRIBUTIONS = ("uniform", "logUniform", "normal", "logNormal")
LOCAL_FIELDS = {
    "objective",
    "algorithm",
    "parallelTrialCount",
    "maxTrialCount",
    "maxFailedTrialCount",
    "parameters",
    "earlyStopping",
    "trialTemplate",
}
TRIAL_TEMPLATE_NOTE = "trialTemplate (the local backend runs the notebook itself)"


@dataclass(frozen=True)
class SweepParameter:
    """One searched parameter: a range (int, double) or a list (categorical, discrete)."""

    name: str
    type: str
    min: float | None = None
    max: float | None = None
    step: float | None = None
    values: tuple[str, ...] = ()
    log: bool = False


@dataclass(frozen=True)
class SweepSpec:
    """What to search, for what, and with which budget."""

    objective: str
    goal: str = "maximize"  # maximize or minimize
    target: float | None = None  # stop when reached (Katib's objective.goal)
    additional_metrics: tuple[str, ...] = ()
    algorithm: str = "random"
    algorithm_settings: dict[str, str] = field(default_factory=dict)
    parallel: int = 1
    max_trials: int = 10
    max_failed: int = 3
    parameters: tuple[SweepParameter, ...] = ()
    early_stopping: str | None = None
    early_stopping_settings: dict[str, str] = field(default_factory=dict)
    name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> SweepSpec:
        params = tuple(
            SweepParameter(**{**p, "values": tuple(p.get("values", ()))})
            for p in raw.get("parameters", ())
        )
        fields = {k: v for k, v in raw.items() if k != "parameters"}
        fields["additional_metrics"] = tuple(fields.get("additional_metrics", ()))
        return cls(parameters=params, **fields)


def _number(value: Any, where: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SweepError(f"{where}: {value!r} is not a number") from None
    if not math.isfinite(number):
        raise SweepError(f"{where}: {value!r} is not a finite number")
    return number


def _settings(raw: Any, where: str) -> dict[str, str]:
    if raw in (None, []):
        return {}
    if not isinstance(raw, list) or not all(isinstance(s, dict) and "name" in s for s in raw):
        raise SweepError(f"{where}: write a list of {{name: ..., value: ...}}")
    return {str(s["name"]): str(s.get("value", "")) for s in raw}


def _parameter(raw: Any, i: int) -> SweepParameter:
    where = f"spec.parameters[{i}]"
    if not isinstance(raw, dict) or "name" not in raw:
        raise SweepError(f"{where}: each parameter needs a name, parameterType and feasibleSpace")
    name = str(raw["name"])
    kind = raw.get("parameterType")
    if kind not in PARAMETER_TYPES:
        raise SweepError(
            f"{where}.parameterType: {kind!r} for {name}; use one of {', '.join(PARAMETER_TYPES)}"
        )
    space = raw.get("feasibleSpace") or {}
    if not isinstance(space, dict):
        raise SweepError(f"{where}.feasibleSpace: write an object with min/max/step or list")
    distribution = space.get("distribution", "uniform")
    if distribution not in DISTRIBUTIONS:
        raise SweepError(
            f"{where}.feasibleSpace.distribution: {distribution!r}; use one of "
            + ", ".join(DISTRIBUTIONS)
        )
    if distribution in ("normal", "logNormal"):
        raise SweepError(
            f"{where}.feasibleSpace.distribution: {distribution} has no Optuna equivalent "
            "locally; use uniform or logUniform"
        )
    log = distribution == "logUniform"
    if kind in ("categorical", "discrete"):
        values = space.get("list")
        if not isinstance(values, list) or not values:
            raise SweepError(f"{where}.feasibleSpace.list: {name} needs a non-empty list")
        if kind == "discrete":
            for v in values:
                _number(v, f"{where}.feasibleSpace.list")
        return SweepParameter(name, kind, values=tuple(str(v) for v in values))
    lo = _number(space.get("min"), f"{where}.feasibleSpace.min")
    hi = _number(space.get("max"), f"{where}.feasibleSpace.max")
    step = _number(space["step"], f"{where}.feasibleSpace.step") if space.get("step") else None
    if lo > hi:
        raise SweepError(f"{where}.feasibleSpace: min {lo:g} is above max {hi:g} for {name}")
    if kind == "int" and (not lo.is_integer() or not hi.is_integer()):
        raise SweepError(f"{where}.feasibleSpace: an int parameter needs whole min and max")
    if log and lo <= 0:
        raise SweepError(f"{where}.feasibleSpace.min: logUniform needs min > 0 for {name}")
    if step is not None and step <= 0:
        raise SweepError(f"{where}.feasibleSpace.step: must be positive")
    return SweepParameter(name, kind, min=lo, max=hi, step=step, log=log)


def parse_spec(raw: Any, *, source: str = "spec") -> tuple[SweepSpec, list[str]]:
    """A spec from a Katib Experiment (or its ``spec``) as a dict; plus warnings.

    Raises:
        SweepError: a field is missing or wrong; the message names the field.
    """
    warnings: list[str] = []
    if not isinstance(raw, dict):
        raise SweepError(f"{source}: expected a Katib Experiment or its spec, as a mapping")
    name = None
    if raw.get("kind") == "Experiment" or "apiVersion" in raw:
        name = (raw.get("metadata") or {}).get("name")
        raw = raw.get("spec") or {}
    if not isinstance(raw, dict):
        raise SweepError(f"{source}: spec must be a mapping")
    objective = raw.get("objective") or {}
    if not isinstance(objective, dict) or not objective.get("objectiveMetricName"):
        raise SweepError("spec.objective.objectiveMetricName: name the metric to optimise")
    goal = objective.get("type", "maximize")
    if goal not in ("maximize", "minimize"):
        raise SweepError(f"spec.objective.type: {goal!r}; use maximize or minimize")
    target = objective.get("goal")
    algorithm = raw.get("algorithm") or {}
    early = raw.get("earlyStopping") or {}
    params_raw = raw.get("parameters")
    if not isinstance(params_raw, list) or not params_raw:
        raise SweepError("spec.parameters: list at least one parameter to search")
    counts = {}
    for key, default in (
        ("parallelTrialCount", 1),
        ("maxTrialCount", 10),
        ("maxFailedTrialCount", 3),
    ):
        value = raw.get(key, default)
        if (
            not isinstance(value, int)
            or isinstance(value, bool)
            or value < (0 if key.startswith("maxFailed") else 1)
        ):
            raise SweepError(f"spec.{key}: {value!r} must be a whole number of at least 1")
        counts[key] = value
    ignored = sorted(k for k in raw if k not in LOCAL_FIELDS)
    if "trialTemplate" in raw:
        ignored.append(TRIAL_TEMPLATE_NOTE)
    if objective.get("metricStrategies"):
        ignored.append("objective.metricStrategies (the local backend uses each trial's value)")
    if ignored:
        warnings.append(
            "the local backend does not use these Experiment fields: " + ", ".join(ignored)
        )
    spec = SweepSpec(
        objective=str(objective["objectiveMetricName"]),
        goal=goal,
        target=_number(target, "spec.objective.goal") if target is not None else None,
        additional_metrics=tuple(str(m) for m in objective.get("additionalMetricNames") or ()),
        algorithm=str(algorithm.get("algorithmName", "random")),
        algorithm_settings=_settings(
            algorithm.get("algorithmSettings"), "spec.algorithm.algorithmSettings"
        ),
        parallel=counts["parallelTrialCount"],
        max_trials=counts["maxTrialCount"],
        max_failed=counts["maxFailedTrialCount"],
        parameters=tuple(_parameter(p, i) for i, p in enumerate(params_raw)),
        early_stopping=early.get("algorithmName") if isinstance(early, dict) else None,
        early_stopping_settings=_settings(
            early.get("algorithmSettings") if isinstance(early, dict) else None,
            "spec.earlyStopping.algorithmSettings",
        ),
        name=name,
    )
    names = [p.name for p in spec.parameters]
    if len(set(names)) != len(names):
        raise SweepError("spec.parameters: a parameter is listed twice")
    return spec, warnings


def load_spec(path: str | Path) -> tuple[SweepSpec, list[str]]:
    """Read a sweep spec or Katib Experiment YAML file."""
    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SweepError(f"{p}: no such sweep spec") from None
    except yaml.YAMLError as exc:
        raise SweepError(f"{p}: not valid YAML: {exc}") from None
    return parse_spec(raw, source=str(p))


def parse_param_flag(text: str) -> dict[str, Any]:
    """``lr=double:1e-4:1e-1:log``, ``depth=int:2:8``, ``model=categorical:rf,gbt`` as a
    Katib parameter mapping."""
    name, sep, rest = text.partition("=")
    kind, _, body = rest.partition(":")
    if not sep or not name or kind not in PARAMETER_TYPES or not body:
        raise SweepError(
            f"--param {text!r}: write NAME=TYPE:SPEC, e.g. lr=double:1e-4:1e-1:log, "
            "depth=int:2:8, lr=discrete:0.01,0.1 or model=categorical:rf,gbt"
        )
    if kind in ("categorical", "discrete"):
        return {
            "name": name,
            "parameterType": kind,
            "feasibleSpace": {"list": [v for v in body.split(",") if v]},
        }
    parts = body.split(":")
    if len(parts) < 2:
        raise SweepError(f"--param {text!r}: a {kind} range needs MIN:MAX[:STEP][:log]")
    space: dict[str, Any] = {"min": parts[0], "max": parts[1]}
    for extra in parts[2:]:
        if extra == "log":
            space["distribution"] = "logUniform"
        elif extra:
            space["step"] = extra
    return {"name": name, "parameterType": kind, "feasibleSpace": space}
