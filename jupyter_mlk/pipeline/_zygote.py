"""Imported by the executor's fork server: warms it up before any step is forked."""

from __future__ import annotations

from jupyter_mlk.pipeline.worker import warm_up

warm_up()
