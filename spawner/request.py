"""The launch request: what one notebook server needs, and how profiles fill it in.

A request is resolved once per launch by :func:`resolve_request` from three layers, each
copied, never shared: built-in defaults, then the named profile (configuration, like
KubeSpawner's ``profile_list``), then the caller's explicit overrides. The result is a
frozen :class:`LaunchRequest`; nothing one launch changes can reach the next.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from spawner.errors import ProfileError

BACKENDS = ("local", "kubernetes")
SECRET_ENV_PATTERN = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|API_KEY|CREDENTIAL)", re.I)

_MEMORY_UNITS = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}
_QUANTITY = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([kMGT]i?)?\s*$")
_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(s|m|h|d)?\s*$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_memory(value: str | int | float) -> int:
    """Parse a Kubernetes memory quantity (``"16Gi"``, ``"512M"``, ``2**30``) into bytes.

    Raises:
        ProfileError: the value is not a positive quantity.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        number, unit = float(value), ""
    else:
        match = _QUANTITY.match(str(value))
        if not match:
            raise ProfileError(
                f"memory {value!r} is not a quantity", 'write it like "16Gi", "512Mi" or "8G"'
            )
        number, unit = float(match.group(1)), match.group(2) or ""
    if number <= 0:
        raise ProfileError(f"memory {value!r} must be positive", 'for example "4Gi"')
    return int(number * _MEMORY_UNITS[unit])


def parse_cpu(value: str | int | float) -> float:
    """Parse a CPU quantity (``"500m"``, ``2``, ``"1.5"``) into cores.

    Raises:
        ProfileError: the value is not a positive quantity.
    """
    text = str(value).strip()
    try:
        cores = float(text[:-1]) / 1000 if text.endswith("m") else float(text)
    except ValueError:
        raise ProfileError(
            f"cpu {value!r} is not a quantity", 'write "2", "0.5" or "500m"'
        ) from None
    if cores <= 0:
        raise ProfileError(f"cpu {value!r} must be positive", 'for example "1"')
    return cores


def parse_duration(value: str | int | float) -> float:
    """Parse a duration (``"30m"``, ``"2h"``, ``90``) into seconds; 0 means never.

    Raises:
        ProfileError: the value is not a duration.
    """
    match = _DURATION.match(str(value))
    if not match:
        raise ProfileError(f"duration {value!r} is not understood", 'write "90s", "30m" or "2h"')
    return float(match.group(1)) * _DURATION_UNITS[match.group(2) or "s"]


def format_memory(size: int) -> str:
    """Format bytes as the shortest exact Kubernetes quantity (``17179869184 -> "16Gi"``)."""
    for unit in ("Ti", "Gi", "Mi", "Ki"):
        if size % _MEMORY_UNITS[unit] == 0:
            return f"{size // _MEMORY_UNITS[unit]}{unit}"
    return str(size)


def format_cpu(cores: float) -> str:
    """Format cores as a Kubernetes CPU quantity (``0.5 -> "500m"``, ``2.0 -> "2"``)."""
    if float(cores).is_integer():
        return str(int(cores))
    return f"{round(cores * 1000)}m"


@dataclass(frozen=True)
class Toleration:
    """A pod toleration (``key``, ``operator`` Equal or Exists, ``value``, ``effect``)."""

    key: str
    operator: str = "Exists"
    value: str = ""
    effect: str = ""


@dataclass(frozen=True)
class WorkspaceVolume:
    """The server's own home volume: a new claim of ``size`` or an ``existing_claim``."""

    size: int = 10 * 2**30
    storage_class: str = ""
    existing_claim: str = ""
    mount_path: str = "/home/jovyan"


@dataclass(frozen=True)
class DataVolume:
    """An existing claim mounted into the server (shared data sets)."""

    claim: str
    mount_path: str
    read_only: bool = True


@dataclass(frozen=True)
class LaunchRequest:
    """Everything one launch needs, fully resolved (see :func:`resolve_request`).

    ``image`` is used by the Kubernetes backend, ``environment`` (a Python environment
    prefix, or a ``python`` executable) by the local one. ``command`` replaces the default
    ``jupyter server`` command line (JupyterHub passes ``jupyterhub-singleuser``).
    ``idle_timeout`` and ``start_timeout`` are seconds; an idle timeout of 0 never culls.
    """

    name: str
    owner: str
    backend: str = "local"
    profile: str = ""
    image: str = "quay.io/jupyter/scipy-notebook:2024-12-09"
    environment: str = ""
    command: tuple[str, ...] = ()
    cpu: float | None = None
    memory: int | None = None
    gpus: int = 0
    gpu_kind: str = ""
    workspace: WorkspaceVolume | None = None
    data_volumes: tuple[DataVolume, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: tuple[Toleration, ...] = ()
    idle_timeout: float = 0.0
    start_timeout: float = 300.0
    port: int | None = None
    base_url: str = "/"
    root_dir: str = ""

    def to_public_dict(self) -> dict[str, Any]:
        """The request as JSON data with environment values removed (they may be secrets)."""
        data = asdict(self)
        data["env"] = sorted(self.env)
        data["command"] = list(self.command)
        return data


_REQUEST_KEYS = set(LaunchRequest.__dataclass_fields__) - {"name", "owner", "profile"}
_PROFILE_ONLY = {"display_name", "description", "default"}


def _as_str_map(key: str, value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise ProfileError(f"{key} must be a mapping of names to values, got {value!r}")
    return {str(k): str(v) for k, v in value.items()}


def _workspace(value: Any) -> WorkspaceVolume | None:
    if value in (None, False, {}):
        return None
    if not isinstance(value, Mapping):
        raise ProfileError(f"workspace must be a mapping, got {value!r}", "see docs/launcher.md")
    unknown = set(value) - {"size", "storage_class", "existing_claim", "mount_path"}
    if unknown:
        raise ProfileError(f"unknown workspace keys {sorted(unknown)}")
    size = parse_memory(value["size"]) if "size" in value else WorkspaceVolume.size
    return WorkspaceVolume(
        size=size,
        storage_class=str(value.get("storage_class", "")),
        existing_claim=str(value.get("existing_claim", "")),
        mount_path=str(value.get("mount_path", WorkspaceVolume.mount_path)),
    )


def _data_volumes(value: Any) -> tuple[DataVolume, ...]:
    volumes = []
    for item in value or ():
        if not isinstance(item, Mapping) or "claim" not in item or "mount_path" not in item:
            raise ProfileError(
                f"data volume {item!r} is incomplete", "give claim and mount_path for each"
            )
        volumes.append(
            DataVolume(
                str(item["claim"]), str(item["mount_path"]), bool(item.get("read_only", True))
            )
        )
    return tuple(volumes)


def _tolerations(value: Any) -> tuple[Toleration, ...]:
    result = []
    for item in value or ():
        if not isinstance(item, Mapping) or "key" not in item:
            raise ProfileError(f"toleration {item!r} needs at least a key")
        operator = str(item.get("operator", "Equal" if item.get("value") else "Exists"))
        result.append(
            Toleration(
                str(item["key"]), operator, str(item.get("value", "")), str(item.get("effect", ""))
            )
        )
    return tuple(result)


def _convert(key: str, value: Any) -> Any:
    if key in ("cpu",):
        return None if value is None else parse_cpu(value)
    if key == "memory":
        return None if value is None else parse_memory(value)
    if key in ("idle_timeout", "start_timeout"):
        return parse_duration(value)
    if key == "gpus":
        if isinstance(value, bool) or not str(value).isdigit():
            raise ProfileError(f"gpus must be a whole number >= 0, got {value!r}")
        return int(value)
    if key == "port":
        return None if value is None else int(value)
    if key == "backend":
        if value not in BACKENDS:
            raise ProfileError(
                f"backend {value!r} is unknown", f"use one of {', '.join(BACKENDS)}"
            )
        return value
    if key in ("env", "node_selector"):
        return _as_str_map(key, value)
    if key == "workspace":
        return _workspace(value)
    if key == "data_volumes":
        return _data_volumes(value)
    if key == "tolerations":
        return _tolerations(value)
    if key == "command":
        if isinstance(value, str) or not isinstance(value, Sequence):
            raise ProfileError(f"command must be a list of arguments, got {value!r}")
        return tuple(str(v) for v in value)
    return str(value)


def find_profile(profiles: Sequence[Mapping[str, Any]], name: str) -> Mapping[str, Any]:
    """Return the profile called ``name``; an empty name picks the default profile.

    Raises:
        ProfileError: no profile has that name.
    """
    if not name:
        defaults = [p for p in profiles if p.get("default")]
        return defaults[0] if defaults else {}
    for profile in profiles:
        if profile.get("name") == name:
            return profile
    known = ", ".join(str(p.get("name")) for p in profiles) or "none configured"
    raise ProfileError(f"profile {name!r} is unknown", f"pick one of: {known}")


def resolve_request(
    name: str,
    owner: str,
    profiles: Sequence[Mapping[str, Any]] = (),
    profile: str = "",
    overrides: Mapping[str, Any] | None = None,
) -> LaunchRequest:
    """Build a fresh request: defaults, then the profile, then explicit overrides.

    Args:
        name: the server name as the user typed it (any characters).
        owner: the user the server belongs to.
        profiles: the configured profiles (mappings of request keys plus ``name``,
            ``display_name``, ``description`` and ``default``).
        profile: the chosen profile name; empty picks the profile marked ``default``.
        overrides: request keys given explicitly (``None`` values are ignored).

    Returns:
        A new :class:`LaunchRequest`; its mappings are copies, shared with nothing.

    Raises:
        ProfileError: unknown profile or key, or a value that cannot be parsed.
    """
    chosen = copy.deepcopy(dict(find_profile(profiles, profile)))
    layers = [
        {k: v for k, v in chosen.items() if k not in _PROFILE_ONLY and k != "name"},
        {k: v for k, v in copy.deepcopy(dict(overrides or {})).items() if v is not None},
    ]
    values: dict[str, Any] = {}
    for layer in layers:
        unknown = set(layer) - _REQUEST_KEYS
        if unknown:
            raise ProfileError(
                f"unknown request keys {sorted(unknown)}",
                f"known keys: {', '.join(sorted(_REQUEST_KEYS))}",
            )
        for key, value in layer.items():
            values[key] = _convert(key, value)
    values["profile"] = str(chosen.get("name", ""))
    if not name.strip():
        raise ProfileError("the server name is empty", "give --name NAME")
    return LaunchRequest(name=name, owner=owner, **values)
