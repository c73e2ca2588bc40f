"""Write small tagged notebooks for tests."""

from __future__ import annotations

import json
from pathlib import Path


def write_notebook(path: Path, cells: list[tuple[list[str], str]], *, minor: int = 5) -> Path:
    """A notebook whose code cells have the given tags and sources."""
    nb = {
        "nbformat": 4,
        "nbformat_minor": minor,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
        "cells": [
            {
                "cell_type": "code",
                **({"id": f"c{i}"} if minor >= 5 else {}),
                "metadata": {"tags": tags} if tags else {},
                "source": source,
                "outputs": [],
                "execution_count": None,
            }
            for i, (tags, source) in enumerate(cells)
        ],
    }
    path.write_text(json.dumps(nb))
    return path
