"""The jupyter-server extension: REST API under ``/mlk/api/`` and run-state events."""

from __future__ import annotations

import os
from pathlib import Path

from jupyter_server.extension.application import ExtensionApp
from traitlets import Enum, Float, Integer, Unicode, default

from jupyter_mlk.server.watcher import EVENT_SCHEMA_PATH, SWEEP_SCHEMA_PATH, RunWatcher


class MlkExtension(ExtensionApp):  # type: ignore[misc]
    """Serves the panel's REST API and tells the browser when runs change state."""

    name = "jupyter_mlk"
    load_other_extensions = True

    workspace = Unicode(
        "",
        config=True,
        help="""Where runs, artifacts and the run history live (its .mlk folder). Defaults to
        $MLK_HOME, else the server's root directory, so runs started with the CLI in that
        folder show up in the panel.""",
    )
    workers = Integer(
        0, config=True, help="Steps a local run executes at once (0: the number of cores)."
    )
    default_image = Unicode(
        "",
        config=True,
        help="Container image for compiled pipelines when the request names none "
        "(empty: the runner image of this version, see docs/compile.md).",
    )
    backend = Enum(
        ["local", "kubernetes"],
        "local",
        config=True,
        help="Where runs started from the panel execute. 'kubernetes' needs the cluster "
        "settings described in the README.",
    )
    poll_interval = Float(
        0.5,
        config=True,
        help="Seconds between two looks at the run history for state changes to announce.",
    )

    @default("workspace")
    def _default_workspace(self) -> str:
        assert self.serverapp is not None
        return os.environ.get("MLK_HOME") or str(self.serverapp.root_dir)

    def initialize_settings(self) -> None:
        serverapp = self.serverapp
        assert serverapp is not None and serverapp.event_logger is not None
        serverapp.event_logger.register_event_schema(EVENT_SCHEMA_PATH)
        serverapp.event_logger.register_event_schema(SWEEP_SCHEMA_PATH)
        from jupyter_mlk.server.launches import LAUNCH_SCHEMA_PATH

        serverapp.event_logger.register_event_schema(LAUNCH_SCHEMA_PATH)
        root = Path(serverapp.root_dir).resolve()
        workspace = Path(self.workspace).resolve()
        # The history exists from the start, so the CLI and kernels in subfolders find it.
        from jupyter_mlk.store.workspace import Workspace

        Workspace(workspace).store.close()
        self.watcher = RunWatcher(workspace, root, serverapp.event_logger, self.poll_interval)
        self.settings.update(
            {
                "mlk_root": root,
                "mlk_workspace": Path(self.workspace).resolve(),
                "mlk_workers": self.workers or None,
                "mlk_image": self.default_image or None,
                "mlk_backend": self.backend,
                "mlk_watcher": self.watcher,
            }
        )
        self.watcher.start()
        self._start_culler(workspace)

    def _start_culler(self, workspace: Path) -> None:
        """Stop launched notebook servers that stay idle past their idle_timeout."""
        from spawner import IdleCuller, Launcher

        launcher = Launcher(workspace)
        self.settings["mlk_launcher"] = launcher
        self.culler = IdleCuller(launcher)
        self.culler.start()

    def initialize_handlers(self) -> None:
        from jupyter_mlk.server.deployments import ROUTES as DEPLOY_ROUTES
        from jupyter_mlk.server.handlers import ROUTES
        from jupyter_mlk.server.launches import ROUTES as LAUNCH_ROUTES
        from jupyter_mlk.server.sweeps import ROUTES as SWEEP_ROUTES

        self.handlers.extend(ROUTES + LAUNCH_ROUTES + SWEEP_ROUTES + DEPLOY_ROUTES)

    async def stop_extension(self) -> None:
        self.watcher.stop()
        self.culler.stop()
