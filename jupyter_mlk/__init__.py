"""jupyter_mlk: turn notebooks into pipelines that run locally or on Kubeflow."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
