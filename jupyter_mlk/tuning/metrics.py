"""Metric lines: the ``name=value`` lines a step prints, in Katib's StdOut collector format.

``accuracy=0.98 loss=1.2e-3`` on one line gives two values; signs, exponents, ``.98`` and
``888`` are numbers; blanks around ``=`` are allowed; carriage-return progress lines count
as lines. A name must match whole: ``train_accuracy=`` never counts as ``accuracy``. NaN,
infinities and empty values are never recorded as numbers.
"""

from __future__ import annotations

import math
import re

_PAIR = re.compile(
    r"(?<![\w.-])([A-Za-z_][\w.-]*)\s*=\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(?![\w.])"
)


def parse_metric_lines(text: str) -> dict[str, list[float]]:
    """Every ``name=value`` pair in ``text``, in order, by name."""
    found: dict[str, list[float]] = {}
    for line in re.split(r"[\r\n]+", text):
        for match in _PAIR.finditer(line):
            try:
                value = float(match.group(2))
            except ValueError:
                continue
            if math.isfinite(value):
                found.setdefault(match.group(1), []).append(value)
    return found


def reported_value(text: str, name: str) -> float | None:
    """The last value printed for ``name``, as Katib's ``latest`` strategy reads it."""
    values = parse_metric_lines(text).get(name)
    return values[-1] if values else None
