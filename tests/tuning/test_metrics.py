"""Katib-format metric lines: what counts as a value of which name."""

from __future__ import annotations

import pytest

from jupyter_mlk.tuning.metrics import parse_metric_lines, reported_value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("accuracy=0.98", {"accuracy": [0.98]}),
        ("loss=-7.5e-05", {"loss": [-7.5e-05]}),
        ("accuracy=9.90E-01", {"accuracy": [0.99]}),
        ("accuracy=.98", {"accuracy": [0.98]}),
        ("epochs=888", {"epochs": [888.0]}),
        ("accuracy = 0.5 loss =1.5", {"accuracy": [0.5], "loss": [1.5]}),
        ("epoch 1 accuracy=0.1\repoch 2 accuracy=0.2\r", {"accuracy": [0.1, 0.2]}),
        ("train_accuracy=0.99", {"train_accuracy": [0.99]}),
        ("accuracy=nan loss=inf acc=", {}),
        (
            "RESULT evaluate accuracy=0.9333 correct=42/45",
            {"accuracy": [0.9333], "correct": [42.0]},
        ),
        ("accuracy=+1", {"accuracy": [1.0]}),
    ],
)
def test_metric_lines(text: str, expected: dict[str, list[float]]) -> None:
    assert parse_metric_lines(text) == expected


def test_a_longer_name_never_counts_as_a_shorter_one() -> None:
    assert reported_value("train_accuracy=0.99\nval-accuracy=0.5", "accuracy") is None
    assert reported_value("train_accuracy=0.99 accuracy=0.7", "accuracy") == 0.7


def test_the_last_value_is_reported() -> None:
    assert reported_value("accuracy=0.1\naccuracy=0.3", "accuracy") == 0.3
