"""Write small tagged notebooks for tests, and check on processes they start."""

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


def process_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting to be reaped counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False
