"""The launcher imports without the ML stack and without the Kubernetes client."""

from __future__ import annotations

import subprocess
import sys


def test_importing_spawner_loads_no_ml_library_and_no_kubernetes_client() -> None:
    code = (
        "import sys, spawner, spawner.local, jupyter_mlk.cli.launch\n"
        "heavy = [m for m in ('pandas', 'kfp', 'IPython', 'numpy', 'kubernetes', 'tornado')"
        " if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
