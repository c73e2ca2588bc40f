"""The exception tree of jupyter_mlk: one root, one subclass per area.

Every error says what failed, the offending value, and what to do next. ``user_error``
tells the HTTP layer and the CLI whether the caller can fix it (4xx, exit 1/2) or not
(5xx).
"""

from __future__ import annotations


class MlkError(Exception):
    """Root of every error jupyter_mlk raises on purpose."""

    user_error: bool = True


class NotebookError(MlkError):
    """The notebook cannot be read or its tags or code are not understood."""


class GraphError(NotebookError):
    """Analysis found errors in the step graph (the diagnostics list them all)."""

    def __init__(self, message: str, diagnostics: list[dict[str, object]] | None = None):
        super().__init__(message)
        self.diagnostics = diagnostics or []


class ParameterError(MlkError):
    """A parameter override is unknown or cannot be converted to its type."""


class CompileError(MlkError):
    """The step graph cannot be turned into a Kubeflow Pipelines spec."""


class ValueStoreError(MlkError):
    """A value cannot be stored as an artifact or read back."""


class RunError(MlkError):
    """A run cannot be started, found or cancelled."""


class StoreError(MlkError):
    """The workspace state (database, artifact directory) is unusable."""

    user_error = False


class LaunchError(MlkError):
    """A notebook server cannot be launched, found or stopped (see ``spawner.errors``)."""


class ServingError(MlkError):
    """A model cannot be loaded, deployed, found or asked for a prediction."""
