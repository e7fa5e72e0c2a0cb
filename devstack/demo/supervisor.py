"""The demo's child processes: started, watched, and stopped in order.

Each component runs as its own ``quoteflow`` process, exactly as an operator
runs it, with its output in a log file under the run's directory. Children get
a process group of their own, so a Ctrl-C reaches the demo only and the demo
stops them in the right order (sink first, source last) instead of all at once;
on Linux they are also told to exit if the demo itself is killed, so a
``kill -9`` of the demo leaves nothing running. A child that exits on its own is
an error the demo reports at once, with the end of its log.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from quoteflow.errors import QuoteflowError

#: SIGTERM first; SIGKILL if a child has not exited after this long.
GRACE_S = 20.0
_PR_SET_PDEATHSIG = 1


class ComponentDied(QuoteflowError):
    """A supervised component exited while the demo needed it."""


def _die_with_parent() -> None:  # pragma: no cover - runs in the child, between fork and exec
    """Linux: SIGTERM this child when the demo dies, however it dies."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def tail(path: Path, lines: int = 12) -> list[str]:
    """The last ``lines`` non-empty lines of a log (what the person needs to see first)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if line.strip()][-lines:]


@dataclass(frozen=True)
class Health:
    """One row of the live view's component table."""

    name: str
    pid: int | None
    alive: bool
    uptime_s: float
    rss_mb: float | None
    exit_code: int | None


class Child:
    """One supervised ``quoteflow`` command."""

    def __init__(self, name: str, argv: Sequence[str], env: Mapping[str, str], log: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.log = log
        self._env = dict(env)
        self._process: subprocess.Popen[bytes] | None = None
        self._started = 0.0
        self.stopping = False

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "quoteflow", *self.argv], env=self._env,
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )  # fmt: skip
        self._started = time.monotonic()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def exit_code(self) -> int | None:
        return self._process.poll() if self._process else None

    def health(self) -> Health:
        alive = self._process is not None and self._process.poll() is None
        return Health(self.name, self.pid, alive,
                      time.monotonic() - self._started if alive else 0.0,
                      _rss_mb(self.pid) if alive and self.pid else None,
                      self.exit_code)  # fmt: skip

    def check(self) -> None:
        """Raise :class:`ComponentDied` (with the log's end) if it exited unasked."""
        code = self.exit_code
        if self._process is not None and code is not None and not self.stopping:
            lines = "\n    ".join(tail(self.log))
            raise ComponentDied(
                f"{self.name} (pid {self.pid}) exited with status {code}; its log {self.log}"
                f" ends with:\n    {lines}"
            )

    def terminate(self) -> None:
        """Ask it to stop (SIGTERM to its process group: a child's own children too)."""
        self.stopping = True
        if self._process is not None and self._process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGTERM)

    def wait(self, until: float) -> bool:
        """Wait for it to exit until the monotonic time ``until``; then SIGKILL it. Clean?"""
        if self._process is None:
            return True
        try:
            self._process.wait(max(until - time.monotonic(), 0.0))
            return True
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(10)
            return False


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


class Supervisor:
    """The children, in start order; stopped in reverse order."""

    def __init__(self) -> None:
        self.children: list[Child] = []

    def start(self, child: Child) -> Child:
        self.children.append(child)
        child.start()
        return child

    def check(self) -> None:
        for child in self.children:
            child.check()

    def health(self) -> list[Health]:
        return [c.health() for c in self.children]

    def stop(self, grace_s: float = GRACE_S) -> list[str]:
        """Stop every child, last started first (the sink stops taking triggers before the
        processor stops making them); the names of those that had to be killed."""
        killed = []
        for child in reversed(self.children):
            child.terminate()
            if not child.wait(time.monotonic() + grace_s):
                killed.append(child.name)
        return killed
