"""Operating-system edges of the local stack: commands, Debian packages, processes.

Kept apart so each component says *what* it needs (a package, a command run, a
process stopped) and the translation of OS failures into one clear
:class:`~quoteflow.errors.StackError` happens once.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from quoteflow.errors import StackError
from quoteflow.stack.base import Reporter


def is_root() -> bool:
    return os.geteuid() == 0


def run(
    cmd: Sequence[str],
    *,
    what: str,
    timeout_s: float = 600,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> str:
    """Run a command to completion; on failure raise StackError with its last output lines."""
    try:
        done = subprocess.run(
            list(cmd),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env=None if env is None else {**os.environ, **env},
            cwd=cwd,
            check=False,
        )
    except FileNotFoundError as exc:
        raise StackError(f"{what}: command {cmd[0]!r} not found") from exc
    except subprocess.TimeoutExpired as exc:
        raise StackError(f"{what}: no answer after {timeout_s:.0f}s ({cmd[0]})") from exc
    if done.returncode != 0:
        tail = "\n  ".join((done.stdout + done.stderr).strip().splitlines()[-10:])
        raise StackError(f"{what} failed (exit {done.returncode}):\n  {tail}")
    return done.stdout


def apt_install(packages: Sequence[str], *, report: Reporter, why: str) -> None:
    """Install Debian packages as root; otherwise say exactly what to install."""
    listing = " ".join(packages)
    if not is_root() or shutil.which("apt-get") is None:
        raise StackError(
            f"{why}: install it first, e.g. `sudo apt-get install {listing}`"
            " (quoteflow installs it itself only when run as root on Debian/Ubuntu)"
        )
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    report(f"apt-get update (to install {listing})")
    run(["apt-get", "update", "-q"], what="apt-get update", env=env, timeout_s=900)
    report(f"apt-get install {listing}")
    run(
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages],
        what=f"apt-get install {listing}",
        env=env,
        timeout_s=1800,
    )


def pid_alive(pid: int) -> bool:
    """True if pid runs and is not a zombie (a zombie answers kill(0) but is gone)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our own exited child
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state not in {"Z", "X"}


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def terminate(pid: int, *, grace_s: float) -> None:
    """SIGTERM the process group, wait for a clean exit, SIGKILL after the grace period."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        except PermissionError as exc:
            raise StackError(f"not allowed to stop process {pid}") from exc
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                return
            time.sleep(0.2)
    raise StackError(f"process {pid} did not stop even after SIGKILL")
