"""Launch requests: parsing, profile resolution, and nothing leaking between launches."""

from __future__ import annotations

import pytest

from spawner.errors import ProfileError
from spawner.request import (
    Toleration,
    format_cpu,
    format_memory,
    parse_cpu,
    parse_duration,
    parse_memory,
    resolve_request,
)

PROFILES = [
    {"name": "cpu", "cpu": 2, "memory": "4Gi", "default": True},
    {
        "name": "gpu-1",
        "display_name": "1 GPU",
        "gpus": 1,
        "memory": "16Gi",
        "env": {"MODE": "gpu"},
        "node_selector": {"pool": "gpu"},
        "tolerations": [{"key": "nvidia.com/gpu", "effect": "NoSchedule"}],
        "workspace": {"size": "20Gi", "storage_class": "fast"},
        "idle_timeout": "2h",
    },
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("16Gi", 16 * 2**30),
        ("512Mi", 512 * 2**20),
        ("1G", 10**9),
        ("1.5Gi", 3 * 2**29),
        (1024, 1024),
    ],
)
def test_memory_quantities_parse_to_bytes(text: str | int, expected: int) -> None:
    assert parse_memory(text) == expected


def test_quantities_round_trip_to_kubernetes_notation() -> None:
    assert format_memory(parse_memory("16Gi")) == "16Gi"
    assert format_cpu(parse_cpu("500m")) == "500m"
    assert format_cpu(parse_cpu(4)) == "4"
    assert parse_duration("30m") == 1800
    assert parse_duration(90) == 90


@pytest.mark.parametrize("bad", ["lots", "-1Gi", "16GB", "0"])
def test_bad_memory_says_how_to_write_it(bad: str) -> None:
    with pytest.raises(ProfileError, match="memory"):
        parse_memory(bad)


def test_profile_fills_the_request_and_overrides_win() -> None:
    request = resolve_request("nb", "jane", PROFILES, "gpu-1", {"memory": "32Gi", "cpu": None})
    assert request.gpus == 1
    assert request.memory == 32 * 2**30
    assert request.cpu is None
    assert request.profile == "gpu-1"
    assert request.tolerations == (Toleration("nvidia.com/gpu", "Exists", "", "NoSchedule"),)
    assert request.workspace is not None and request.workspace.storage_class == "fast"
    assert request.idle_timeout == 7200


def test_empty_profile_name_picks_the_default_profile() -> None:
    request = resolve_request("nb", "jane", PROFILES)
    assert request.profile == "cpu" and request.cpu == 2


def test_each_resolution_is_fresh_and_never_changes_the_profile() -> None:
    first = resolve_request("a", "jane", PROFILES, "gpu-1", {"env": {"EXTRA": "1"}})
    first.env["LEAK"] = "yes"
    first.node_selector["leak"] = "yes"
    second = resolve_request("b", "jane", PROFILES, "gpu-1")
    assert second.env == {"MODE": "gpu"}
    assert second.node_selector == {"pool": "gpu"}
    assert PROFILES[1]["env"] == {"MODE": "gpu"}
    assert second.env is not first.env


def test_unknown_profile_lists_the_known_ones() -> None:
    with pytest.raises(ProfileError, match="cpu, gpu-1"):
        resolve_request("nb", "jane", PROFILES, "gpu-8")


def test_unknown_key_is_an_error_not_ignored() -> None:
    with pytest.raises(ProfileError, match="gpu_count"):
        resolve_request("nb", "jane", [], "", {"gpu_count": 2})


def test_public_dict_drops_environment_values() -> None:
    request = resolve_request("nb", "jane", [], "", {"env": {"API_TOKEN": "s3cret"}})
    data = request.to_public_dict()
    assert data["env"] == ["API_TOKEN"]
    assert "s3cret" not in repr(data)
