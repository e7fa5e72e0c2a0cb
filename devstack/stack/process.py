"""A server process the stack starts, recognises later and stops: Kafka's JVM, the registry's.

A pid file records the process ``up`` started together with a *marker*: an
argument only our instance has on its command line (the path of its own
configuration file). ``down`` and ``status`` trust a pid only when that process
still runs with the marker, so a recycled pid or someone else's server is
never signalled.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from devstack.stack.system import child_env, cmdline, pid_alive, terminate

#: The largest pid Linux can hand out (pid_max's ceiling, 2**22).
PID_MAX = 4_194_304


class Supervised:
    """One long-running process of ours, identified by ``pid_file`` and ``marker``."""

    def __init__(self, pid_file: Path, marker: str) -> None:
        self.pid_file = pid_file
        self.marker = marker
        # The process outlives this object when started from the CLI; when it is
        # stopped from the same process we reap it through this handle.
        self._proc: subprocess.Popen[bytes] | None = None

    def pid(self) -> int | None:
        """Our process's pid if it runs, else None (also for a missing or garbled pid file)."""
        try:
            record = json.loads(self.pid_file.read_text())
            pid = int(record["pid"])
        except (OSError, ValueError, KeyError, TypeError, OverflowError):
            return None
        if not 0 < pid <= PID_MAX:
            return None  # garbage: the kernel never hands out such a pid
        # An exact argument, not a substring: /tmp/x must not claim /var/tmp/x's server.
        if pid_alive(pid) and self.marker in cmdline(pid):
            return pid
        return None

    def spawn(
        self,
        cmd: Sequence[str],
        *,
        log_file: Path,
        cwd: Path | None = None,
        extra_env: Mapping[str, str] | None = None,
    ) -> int:
        """Start ``cmd`` in its own session, output appended to ``log_file``; record its pid.

        ``cmd`` must contain the marker. Secrets go in ``extra_env``, never in
        ``cmd``: any local user can read a command line, only the owner the
        environment.
        """
        if self.marker not in cmd:
            raise ValueError(f"the command does not carry the marker {self.marker!r}")
        with log_file.open("ab") as sink:
            proc = subprocess.Popen(
                list(cmd),
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=sink,
                cwd=cwd,
                env=child_env(extra=extra_env),
                start_new_session=True,
            )
        self._proc = proc
        record = {"pid": proc.pid, "marker": self.marker, "at": time.time()}
        self.pid_file.write_text(json.dumps(record))
        return proc.pid

    def stop(self, *, grace_s: float) -> int | None:
        """SIGTERM (SIGKILL after ``grace_s``); the pid stopped, or None if none was ours."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return None
        terminate(pid, grace_s=grace_s)
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=10)  # collect the exit status of our own child
            self._proc = None
        self.pid_file.unlink(missing_ok=True)
        return pid
