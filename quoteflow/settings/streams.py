"""``[streams]``: the faust processor's id, state, guarantee and pacing."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from quoteflow.settings.base import Section


class StreamsSettings(Section):
    """The faust processor."""

    app_id: str = Field(default="quoteflow", pattern=r"^[a-zA-Z0-9._-]+$")
    data_dir: Path | None = None  # defaults to <stack.home>/streams
    processing_guarantee: Literal["exactly_once", "at_least_once"] = "exactly_once"
    #: The marketing rules file; None: the shipped streams/rules.toml.
    rules_file: Path | None = None
    #: How often each worker ticks its partitions' clocks (deadlines fire within about this).
    tick_interval_s: float = Field(default=0.25, gt=0, le=10)
    #: faust's commit interval: input offsets, table changes and outputs commit together.
    commit_interval_s: float = Field(default=0.5, gt=0, le=60)
    #: Log a stalled watermark when due quotes wait on it longer than this.
    watermark_stall_s: float = Field(default=30.0, gt=0)
    #: How long the group waits for a silent worker before giving its partitions to the
    #: others (a killed worker's quotes wait this long).
    session_timeout_s: float = Field(default=30.0, ge=6, le=300)
