"""Liveness for container health checks: the component's own loop says it still turns.

An orchestrator (docker compose, Kubernetes) restarts a component whose health
check fails. An open port or a living PID says little — a worker whose event
loop is stuck, or a CDC whose replication thread hangs on a dead connection,
keeps both. So each long-running component touches a file from the loop that
does its work (``health.file``: the sink's dispatcher turn, the processor's clock
tick, the CDC's watermarks), and ``quoteflow health`` checks the file is younger
than ``health.max_age_s``. Nothing is written unless ``health.file`` is set.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

#: A beat more often than this is not written (the sink's loop turns thousands of times
#: a second; a file's mtime a few seconds old is as good for a 60 s limit).
BEAT_EVERY_S = 2.0


class Heartbeat:
    """Touches ``path`` at most every ``every_s`` seconds; a no-op without a path."""

    def __init__(self, path: Path | None, *, every_s: float = BEAT_EVERY_S,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.path, self.every_s, self._clock = path, every_s, clock
        self._last: float | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.unlink(missing_ok=True)  # a previous run's beat says nothing about this one

    def beat(self) -> None:
        if self.path is None:
            return
        now = self._clock()
        if self._last is not None and now - self._last < self.every_s:
            return
        self._last = now
        self.path.touch()
        # touch() keeps the mtime of an existing file on some filesystems' coarse clocks:
        # set it explicitly, from the wall clock the checker compares with.
        os.utime(self.path)


@dataclass(frozen=True, slots=True)
class Verdict:
    alive: bool
    message: str


def judge(path: Path, max_age_s: float, now_s: float | None = None) -> Verdict:
    """Whether the component behind ``path`` beat within ``max_age_s`` (wall clock)."""
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return Verdict(False, f"no heartbeat yet at {path}: the component has not started"
                              " its work, or runs without health.file")  # fmt: skip
    age = (time.time() if now_s is None else now_s) - mtime
    if age > max_age_s:
        return Verdict(False, f"last heartbeat {age:.0f} s ago (more than health.max_age_s ="
                              f" {max_age_s:g}): its loop is stuck")  # fmt: skip
    return Verdict(True, f"alive: last heartbeat {max(age, 0.0):.1f} s ago")
