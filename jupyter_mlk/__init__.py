"""jupyter_mlk: turn notebooks into pipelines that run locally or on Kubeflow."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "load_ipython_extension"]


def _jupyter_server_extension_points() -> list[dict[str, object]]:
    """Tells jupyter-server where the extension is (imported only by the server)."""
    from jupyter_mlk.server.app import MlkExtension

    return [{"module": "jupyter_mlk.server.app", "app": MlkExtension}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where JupyterLab finds the built panel."""
    return [{"src": "labextension", "dest": "jupyter-mlk"}]


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext jupyter_mlk``: registers the ``%mlk`` magic."""
    from jupyter_mlk.magics import register

    register(ipython)
