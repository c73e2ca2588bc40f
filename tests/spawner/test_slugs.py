"""Name slugging: valid, short, stable and collision-free Kubernetes names."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from spawner.slugs import is_valid_label, label_value, multi_slug, safe_slug

DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
names = st.text(min_size=0, max_size=120)


@settings(max_examples=300, deadline=None)
@given(names, st.integers(min_value=16, max_value=63))
def test_safe_slug_is_always_a_valid_dns1035_label_within_the_limit(name: str, limit: int) -> None:
    slug = safe_slug(name, limit)
    assert len(slug) <= limit
    assert DNS1035.match(slug), slug
    assert safe_slug(name, limit) == slug


@settings(max_examples=300, deadline=None)
@given(names, names)
def test_different_names_get_different_slugs(first: str, second: str) -> None:
    if first != second:
        assert safe_slug(first) != safe_slug(second)


@settings(max_examples=200, deadline=None)
@given(st.lists(names, min_size=1, max_size=4), st.lists(names, min_size=1, max_size=4))
def test_multi_slug_separates_parts_unambiguously(first: list[str], second: list[str]) -> None:
    a, b = multi_slug(first), multi_slug(second)
    assert DNS1035.match(a) and len(a) <= 63
    if first != second:
        assert a != b


@given(st.from_regex(r"[a-z][a-z0-9]{0,20}(-[a-z0-9]{1,10}){0,3}", fullmatch=True))
def test_readable_valid_names_are_kept_as_they_are(name: str) -> None:
    assert safe_slug(name) == name


def test_known_examples() -> None:
    assert safe_slug("alice") == "alice"
    assert safe_slug("Jane.Doe@example.org").startswith("jane-doe-example-org---")
    assert safe_slug("a--b") != "a--b"
    assert multi_slug(["a-b", "c"]) != multi_slug(["a", "b-c"])
    assert safe_slug("9lives").startswith("x9lives---")
    long = safe_slug("x" * 200)
    assert len(long) == 63 and long.endswith(safe_slug("x" * 200)[-8:])


@given(names)
def test_label_values_are_valid(text: str) -> None:
    value = label_value(text)
    assert is_valid_label(value)
