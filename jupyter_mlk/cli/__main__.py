"""``python -m jupyter_mlk.cli``: the same as ``jupyter mlk``."""

from __future__ import annotations

import sys

from jupyter_mlk.cli import main

sys.exit(main())
