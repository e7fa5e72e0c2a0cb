"""``[log]`` and ``[health]``: how a process logs and proves it is alive."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from quoteflow.settings.base import Section


class HealthSettings(Section):
    """Liveness for health checks (:mod:`quoteflow.liveness`): off unless ``file`` is set."""

    #: Touched by a running component's loop; one file per process (a container's own).
    file: Path | None = None
    #: ``quoteflow health`` fails when the file is older than this.
    max_age_s: float = Field(default=60.0, gt=0, le=3600)


class LogSettings(Section):
    """How much a process logs, and as JSON lines or for a console."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["json", "console"] = "console"
