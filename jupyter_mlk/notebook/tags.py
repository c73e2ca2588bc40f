"""The cell tag grammar: jupyter_mlk's names and Kale's spellings.

``parse_tags`` turns the tags of one cell into a :class:`CellTags`; a malformed known tag
is reported as a problem naming the tag, unknown tags are kept and ignored.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any

ROLE_ALIASES = {
    "imports": "imports",
    "functions": "functions",
    "parameters": "parameters",
    "pipeline-parameters": "parameters",
    "metrics": "metrics",
    "pipeline-metrics": "metrics",
    "skip": "skip",
}
STEP_PREFIXES = ("step:", "block:")
KNOWN_PREFIXES = (
    "step",
    "block",
    "prev",
    "if",
    "limit",
    "gpu",
    "image",
    "cache",
    "node",
    "toleration",
    "deploy",
    "canary",
)
_DEPLOY_NAME = re.compile(r"^[a-z]([a-z0-9-]{0,43}[a-z0-9])?$")

_CONDITION = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(==|!=|>=|<=|>|<)(\S+)$")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_LIMIT_RESOURCES = ("cpu", "memory", "ephemeral-storage", "nvidia.com/gpu", "amd.com/gpu")


@dataclass
class CellTags:
    """What the tags of one cell say."""

    role: str | None = None  # imports/functions/parameters/metrics/skip, or "step"
    step: str | None = None
    prev: list[str] = field(default_factory=list)
    condition: tuple[str, str, Any, bool, str] | None = None  # left, op, right, is_name, text
    limits: dict[str, str] = field(default_factory=dict)
    gpus: int | None = None
    image: str | None = None
    cache: bool | None = None
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[str] = field(default_factory=list)
    deploy: tuple[str, str | None] | None = None  # deployment name, variable
    canary: int | None = None
    unknown: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def has_step_options(self) -> bool:
        return bool(
            self.prev
            or self.condition
            or self.limits
            or self.gpus is not None
            or self.image
            or self.cache is not None
            or self.node_selector
            or self.tolerations
            or self.deploy
            or self.canary is not None
        )


def sanitize_name(name: str) -> str:
    """The DNS-1123 label form of a step name (KFP task names, Kubernetes names).

    Lower-case; every character outside ``[a-z0-9-]`` becomes ``-``; leading and trailing
    ``-`` removed; at most 63 characters.
    """
    out = re.sub(r"[^a-z0-9-]", "-", name.lower()).strip("-")
    return out[:63].rstrip("-")


def _parse_condition(text: str) -> tuple[str, str, Any, bool, str] | str:
    m = _CONDITION.match(text)
    if not m:
        return (
            f"tag 'if:{text}' is not a condition: write NAME OP VALUE with no spaces, "
            "OP one of == != > >= < <=, e.g. if:accuracy>=0.9 or if:accuracy>=threshold"
        )
    left, op, right = m.groups()
    if _IDENT.match(right) and right not in ("True", "False", "None"):
        return (left, op, right, True, text)
    try:
        value = ast.literal_eval(right)
    except (ValueError, SyntaxError):
        return f"tag 'if:{text}': {right!r} is neither a literal nor a parameter name"
    return (left, op, value, False, text)


def _parse_limit(tags: CellTags, tag: str) -> None:
    rest = tag[len("limit:") :]
    resource, sep, amount = rest.rpartition(":")
    if not sep or not resource or not amount:
        tags.problems.append(
            f"tag {tag!r} needs a resource and an amount: limit:RESOURCE:AMOUNT, "
            "e.g. limit:memory:4Gi, limit:cpu:2 or limit:nvidia.com/gpu:1"
        )
        return
    if not _QUANTITY.match(amount):
        tags.problems.append(
            f"tag {tag!r}: {amount!r} is not a Kubernetes quantity (e.g. 500m, 2, 4Gi)"
        )
        return
    if resource not in _LIMIT_RESOURCES and "/" not in resource:
        known = ", ".join(_LIMIT_RESOURCES)
        tags.problems.append(f"tag {tag!r}: unknown resource {resource!r}; use one of {known}")
        return
    if resource.endswith("/gpu"):
        tags.gpus = int(float(amount))
        if resource != "nvidia.com/gpu":
            tags.limits[resource] = amount
    else:
        tags.limits[resource] = amount


def _parse_option(tags: CellTags, tag: str) -> None:
    prefix, _, value = tag.partition(":")
    if prefix == "prev":
        if not value:
            tags.problems.append("tag 'prev:' names no step: write prev:STEP")
        else:
            tags.prev.append(value)
    elif prefix == "if":
        parsed = _parse_condition(value)
        if isinstance(parsed, str):
            tags.problems.append(parsed)
        else:
            tags.condition = parsed
    elif prefix == "limit":
        _parse_limit(tags, tag)
    elif prefix == "gpu":
        if not value.isdigit():
            tags.problems.append(f"tag {tag!r}: the GPU count must be a whole number, e.g. gpu:1")
        else:
            tags.gpus = int(value)
    elif prefix == "image":
        if not value or any(ch.isspace() for ch in value):
            tags.problems.append(f"tag {tag!r} names no image: write image:REPOSITORY[:TAG]")
        else:
            tags.image = value
    elif prefix == "cache":
        if value not in ("off", "on", "disabled", "enabled"):
            tags.problems.append(f"tag {tag!r}: write cache:off (or cache:on)")
        else:
            tags.cache = value in ("on", "enabled")  # Kale 2.x spells them enabled/disabled
    elif prefix == "node":
        key, sep, val = value.partition("=")
        if not sep or not key:
            tags.problems.append(f"tag {tag!r}: write node:LABEL=VALUE")
        else:
            tags.node_selector[key] = val
    elif prefix == "toleration":
        if not value:
            tags.problems.append(f"tag {tag!r}: write toleration:KEY[=VALUE][:EFFECT]")
        else:
            tags.tolerations.append(value)
    elif prefix == "deploy":
        name, _, variable = value.partition(":")
        if not _DEPLOY_NAME.match(name) or (variable and not _IDENT.match(variable)):
            tags.problems.append(
                f"tag {tag!r}: write deploy:NAME or deploy:NAME:VARIABLE, NAME in lower-case "
                "letters, digits and - (at most 45), e.g. deploy:iris:model"
            )
        else:
            tags.deploy = (name, variable or None)
    elif prefix == "canary":
        if not value.isdigit() or not 1 <= int(value) <= 99:
            tags.problems.append(f"tag {tag!r}: the canary share is a percent, e.g. canary:10")
        else:
            tags.canary = int(value)


def parse_tags(raw: tuple[str, ...]) -> CellTags:
    """Interpret the tags of one cell."""
    tags = CellTags()
    for tag in raw:
        if tag in ROLE_ALIASES:
            role = ROLE_ALIASES[tag]
            if tags.role and tags.role != role:
                tags.problems.append(
                    f"tags {tags.role!r} and {tag!r} on one cell: a cell has one role"
                )
            tags.role = role
            continue
        if tag.startswith(STEP_PREFIXES):
            name = tag.split(":", 1)[1]
            if not name:
                continue  # Kale's extension writes a bare "block:": it means no tag
            if not sanitize_name(name):
                tags.problems.append(
                    f"tag {tag!r} gives no usable step name: use letters, digits, - or _"
                )
                continue
            if tags.step and tags.step != name:
                tags.problems.append(f"two step names on one cell: {tags.step!r} and {name!r}")
            tags.role = tags.role or "step"
            tags.step = name
            continue
        prefix = tag.partition(":")[0]
        if ":" in tag and prefix in KNOWN_PREFIXES:
            _parse_option(tags, tag)
        elif tag in KNOWN_PREFIXES:
            tags.problems.append(f"tag {tag!r} is incomplete: it needs a value after ':'")
        else:
            tags.unknown.append(tag)
    if tags.role == "step" and tags.step is None:
        tags.role = None
    return tags
