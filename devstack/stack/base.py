"""The contract every local-stack component keeps.

``quoteflow stack up|down|status|logs`` and the pytest session fixture drive
components only through this protocol, so Kafka and PostgreSQL can differ in how
they are installed and supervised (a JVM we start ourselves; ``pg_ctl``) while
the command line and tests stay the same.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from quoteflow.errors import StackError
from quoteflow.reporting import Reporter


@dataclass(frozen=True)
class ComponentStatus:
    """What ``stack status`` shows for one component."""

    name: str
    address: str
    running: bool
    healthy: bool
    detail: str
    pid: int | None = None


class Component(Protocol):
    """One supervised service of the local stack."""

    name: str

    def install(self, report: Reporter) -> None:
        """Make binaries available (apt-get, mvn); a no-op when already there."""

    def up(self, report: Reporter) -> bool:
        """Start and wait until healthy. Return True if started now, False if already up."""

    def down(self, report: Reporter) -> bool:
        """Stop what ``up`` started. Return True if something was stopped."""

    def status(self) -> ComponentStatus:
        """Probe without side effects."""

    def log_file(self) -> Path:
        """The file the component's own output goes to."""


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True if something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def stopped_detail(ports: Iterable[int]) -> str:
    """What ``status`` says of a component of ours that is not running: is a port taken?"""
    busy = [str(port) for port in ports if port_open("127.0.0.1", port)]
    if busy:
        return f"port {', '.join(busy)} in use by a process quoteflow did not start"
    return "stopped"


def wait_until(
    check: Callable[[], bool],
    *,
    timeout_s: float,
    what: str,
    interval_s: float = 0.5,
    alive: Callable[[], bool] | None = None,
    log_file: Path | None = None,
) -> None:
    """Poll ``check`` until it passes; fail fast if the process died, with the log's tail."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        if alive is not None and not alive():
            raise StackError(f"{what} exited during start-up{log_tail_hint(log_file)}")
        time.sleep(interval_s)
    raise StackError(f"{what} not healthy after {timeout_s:.0f}s{log_tail_hint(log_file)}")


def log_tail_hint(log_file: Path | None, lines: int = 8) -> str:
    """The last lines of a log, to put in an error so the user needn't go looking."""
    if log_file is None or not log_file.is_file():
        return ""
    tail = read_tail(log_file, lines)
    if not tail:
        return f"; see {log_file} (empty)"
    return f"; see {log_file}, which ends with:\n  " + "\n  ".join(tail)


def read_tail(path: Path, lines: int, chunk: int = 64 * 1024) -> list[str]:
    """The last ``lines`` lines of a file, read from its end (logs grow without bound)."""
    with path.open("rb") as handle:
        handle.seek(0, 2)
        size = handle.tell()
        handle.seek(max(0, size - chunk))
        data = handle.read()
    return data.decode(errors="replace").splitlines()[-lines:] if lines > 0 else []
