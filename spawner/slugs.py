"""Turn any user or server name into a valid, collision-free Kubernetes name.

Invariants (checked by property tests in ``tests/spawner/test_slugs.py``):

* :func:`safe_slug` always returns a DNS-1123 label (``[a-z0-9]([-a-z0-9]*[a-z0-9])?``)
  no longer than ``max_length``; with the default prefix letter rule it is also a DNS-1035
  label (starts with a letter), which Service names require.
* A name that already is such a label, has no ``--`` in it and fits is kept unchanged, so
  readable names stay readable.
* Every other name becomes ``<sanitised prefix>---<8 hex of sha256(name)>``. A kept name
  never contains ``--``, so a kept name never equals a hashed one; two hashed names are
  equal only if the first 32 bits of their SHA-256 collide (about 1 in 4 billion per pair).
* :func:`multi_slug` joins several parts (owner, server, role) and always appends the
  hash of the parts joined with a separator that no part can contain, so
  ``("a-b", "c")`` and ``("a", "b-c")`` get different names.
* The output depends only on the input: the same user always gets the same name, after a
  restart too.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
LABEL_MAX = 63
HASH_LENGTH = 8
HASH_SEPARATOR = "---"
_INVALID_RUN = re.compile(r"[^a-z0-9]+")


def is_valid_label(name: str, max_length: int = LABEL_MAX) -> bool:
    """Whether ``name`` is a DNS-1123 label of at most ``max_length`` characters."""
    return len(name) <= max_length and bool(DNS1123_LABEL.match(name))


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_LENGTH]


def _sanitise(name: str) -> str:
    """Lower-case, replace every run of other characters by one dash, trim dashes."""
    return _INVALID_RUN.sub("-", name.lower()).strip("-")


def _is_kept(name: str, max_length: int, need_letter: bool) -> bool:
    pattern = DNS1035_LABEL if need_letter else DNS1123_LABEL
    return len(name) <= max_length and "--" not in name and bool(pattern.match(name))


def _hashed(readable: str, digest: str, max_length: int, need_letter: bool) -> str:
    room = max_length - len(HASH_SEPARATOR) - len(digest)
    readable = readable[:room].rstrip("-")
    if not readable or (need_letter and not readable[:1].isalpha()):
        readable = ("x" + readable)[:room].rstrip("-")
    return f"{readable}{HASH_SEPARATOR}{digest}"


def safe_slug(name: str, max_length: int = LABEL_MAX, need_letter: bool = True) -> str:
    """Return a valid Kubernetes name for ``name`` (see the module invariants).

    Args:
        name: any text, e.g. ``"Jane.Doe@example.org"``.
        max_length: the longest name allowed (63 for labels and Service names).
        need_letter: require a leading letter (DNS-1035, needed by Services).

    Returns:
        ``name`` itself when it is already valid, else ``"jane-doe-example-org---1a2b3c4d"``.
    """
    if max_length < 16:
        raise ValueError(f"max_length must be at least 16, got {max_length}")
    if _is_kept(name, max_length, need_letter):
        return name
    return _hashed(_sanitise(name), _hash(name), max_length, need_letter)


def multi_slug(parts: Sequence[str], max_length: int = LABEL_MAX) -> str:
    """Return one collision-free DNS-1035 name built from several parts.

    Args:
        parts: the pieces that identify the object, e.g. ``["mlk", owner, server]``.
        max_length: the longest name allowed.

    Returns:
        ``"mlk-jane-gpu---1a2b3c4d"``: readable parts joined by ``-``, then the hash of
        all parts separated by NUL (a character no part keeps), so the name is unique per
        tuple of parts.
    """
    if max_length < 16:
        raise ValueError(f"max_length must be at least 16, got {max_length}")
    readable = "-".join(filter(None, (_sanitise(part) for part in parts)))
    readable = re.sub("-{2,}", "-", readable)
    return _hashed(readable, _hash("\0".join(parts)), max_length, need_letter=True)


def label_value(text: str) -> str:
    """Return a valid label value (63 characters, alphanumeric ends) for any text."""
    return safe_slug(text, LABEL_MAX, need_letter=False)
