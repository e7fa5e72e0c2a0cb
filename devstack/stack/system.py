"""Operating-system edges of the local stack: commands, Debian packages, processes, directories.

Kept apart so each component says *what* it needs (a package, a command run, a
process stopped) and the translation of OS failures into one clear
:class:`~quoteflow.errors.StackError` happens once. Linux only: processes are
inspected through ``/proc``.
"""

from __future__ import annotations

import collections
import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from devstack.stack.base import log_tail_hint
from quoteflow.errors import StackError
from quoteflow.reporting import Reporter

#: How many non-empty output lines a failed command's error shows.
TAIL_LINES = 12
#: The way out when a directory cannot be created: the stack keeps everything under stack.home.
HOME_HINT = "set stack.home (env QUOTEFLOW_STACK__HOME) to a directory you can write"


def is_root() -> bool:
    return os.geteuid() == 0


def child_env(
    *, remove_prefixes: Sequence[str] = (), extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Our environment without variables starting with ``remove_prefixes``, plus ``extra``.

    PostgreSQL's tools strip ``PG``: a user's PGDATA or PGPORT must not point
    them at another cluster.
    """
    prefixes = tuple(remove_prefixes)
    env = {k: v for k, v in os.environ.items() if not (prefixes and k.startswith(prefixes))}
    env.update(extra or {})
    return env


def _last_lines(lines: Sequence[str]) -> str:
    kept = [line for line in lines if line.strip()][-TAIL_LINES:]
    return "\n  ".join(kept) if kept else "(no output)"


def _start(
    cmd: Sequence[str],
    *,
    what: str,
    cwd: Path | None,
    env_remove_prefixes: Sequence[str],
    extra_env: Mapping[str, str] | None,
) -> subprocess.Popen[str]:
    """Start ``cmd`` with no stdin and stdout and stderr merged into one text pipe."""
    try:
        return subprocess.Popen(
            list(cmd),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            cwd=cwd,
            env=child_env(remove_prefixes=env_remove_prefixes, extra=extra_env),
        )
    except OSError as exc:
        if isinstance(exc, FileNotFoundError) and exc.filename == cmd[0]:
            raise StackError(f"{what}: command {cmd[0]!r} not found") from exc
        # Not executable, or a missing cwd: the error names which.
        raise StackError(f"{what}: cannot run {cmd[0]!r}: {exc.strerror}: {exc.filename}") from exc


def run(
    cmd: Sequence[str],
    *,
    what: str,
    timeout_s: float = 600,
    cwd: Path | None = None,
    log_file: Path | None = None,
    env_remove_prefixes: Sequence[str] = (),
    extra_env: Mapping[str, str] | None = None,
) -> str:
    """Run a short command to completion and return its output (stdout and stderr merged).

    A failure becomes a StackError naming ``what``, the exit code and the last
    output lines, plus the tail of ``log_file`` when the command writes one.
    """
    with _start(
        cmd, what=what, cwd=cwd, env_remove_prefixes=env_remove_prefixes, extra_env=extra_env
    ) as proc:
        try:
            output, _ = proc.communicate(timeout=timeout_s)
        except BaseException as exc:  # a timeout, or Ctrl-C: leave no child behind
            proc.kill()
            if not isinstance(exc, subprocess.TimeoutExpired):
                raise
            raise StackError(
                f"{what} did not finish within {timeout_s:g}s ({cmd[0]}){log_tail_hint(log_file)}"
            ) from exc
    if proc.returncode != 0:
        raise StackError(
            f"{what} failed (exit {proc.returncode}):\n  {_last_lines(output.splitlines())}"
            f"{log_tail_hint(log_file)}"
        )
    return output


def run_streaming(
    cmd: Sequence[str],
    *,
    what: str,
    on_line: Callable[[str], None],
    env_remove_prefixes: Sequence[str] = (),
    extra_env: Mapping[str, str] | None = None,
) -> None:
    """Run a long command (apt-get), passing each non-empty output line on as it comes.

    No timeout: apt-get waits on mirrors at its own pace and the user can
    interrupt it; the last lines are kept for the error message.
    """
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    with _start(
        cmd, what=what, cwd=None, env_remove_prefixes=env_remove_prefixes, extra_env=extra_env
    ) as proc:
        assert proc.stdout is not None  # PIPE was asked for
        for raw in proc.stdout:
            line = raw.rstrip()
            if line:
                tail.append(line)
                on_line(line)
    if proc.returncode != 0:
        raise StackError(f"{what} failed (exit {proc.returncode}):\n  {_last_lines(tail)}")


def can_apt_install() -> bool:
    """Whether :func:`apt_install` can do the work itself (root, with apt-get)."""
    return is_root() and shutil.which("apt-get") is not None


def apt_install(
    packages: Sequence[str],
    *,
    report: Reporter,
    why: str,
    alternative: str = "",
    env_remove_prefixes: Sequence[str] = (),
) -> None:
    """Install Debian packages as root; otherwise say exactly what to install.

    ``why`` opens the error when we cannot (``"Java is needed to run Kafka"``);
    ``alternative`` adds another way out (``"or put ... on PATH"``). Existing
    configuration files are kept when a package brings its own, and only
    apt-get install's "Setting up ..." lines are reported.
    """
    listing = " ".join(packages)
    more = f", {alternative}" if alternative else ""
    if not is_root():
        raise StackError(
            f"{why}: install it first, e.g. `sudo apt-get install {listing}`{more}"
            " (quoteflow installs it itself only when run as root on Debian/Ubuntu)"
        )
    if shutil.which("apt-get") is None:
        raise StackError(
            f"{why}, and apt-get is not available: install {listing} with this system's"
            f" package manager{more}"
        )
    extra_env = {"DEBIAN_FRONTEND": "noninteractive", "UCF_FORCE_CONFFOLD": "1"}

    def progress(line: str) -> None:
        if line.startswith("Setting up "):
            report(line)

    report(f"apt-get update (to install {listing})")
    run_streaming(
        ["apt-get", "update"],
        what="apt-get update",
        on_line=lambda _: None,  # noise; its failure output is kept for the error
        env_remove_prefixes=env_remove_prefixes,
        extra_env=extra_env,
    )
    report(f"apt-get install {listing} (takes a minute or two)")
    run_streaming(
        [
            "apt-get", "install", "-y", "--no-install-recommends",
            "-o", "Dpkg::Options::=--force-confdef",
            "-o", "Dpkg::Options::=--force-confold",
            *packages,
        ],
        what=f"apt-get install {listing}",
        on_line=progress,
        env_remove_prefixes=env_remove_prefixes,
        extra_env=extra_env,
    )  # fmt: skip


def makedirs(path: Path, mode: int, *, hint: str = HOME_HINT) -> None:
    """Create ``path`` and its missing parents with ``mode`` regardless of umask.

    Directories that already exist are left as they are. 0755 lets another OS
    user (PostgreSQL's, under root) traverse them. ``hint`` ends the error, if any.
    """
    missing = [p for p in [*reversed(path.parents), path] if not p.exists()]
    for directory in missing:
        try:
            directory.mkdir(mode=mode)
        except FileExistsError:
            continue
        except OSError as exc:
            advice = f"; {hint}" if hint else ""
            raise StackError(f"cannot create {directory}: {exc.strerror}{advice}") from exc
        directory.chmod(mode)


def pid_alive(pid: int, *, comm_prefix: str | None = None) -> bool:
    """True if ``pid`` runs and is not a zombie (a zombie answers kill(0) but is gone).

    Our own exited child is reaped on the way. With ``comm_prefix`` the process's
    command name must also start with it, so a recycled pid of another program
    is not taken for ours.
    """
    if pid <= 0:
        return False  # 0 and negatives mean process groups to waitpid and kill
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    proc = Path(f"/proc/{pid}")
    try:
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        comm = (proc / "comm").read_text().strip() if comm_prefix is not None else ""
    except (OSError, IndexError):
        return False
    if state in {"Z", "X"}:
        return False
    return comm_prefix is None or comm.startswith(comm_prefix)


def cmdline(pid: int) -> list[str]:
    """The process's arguments, exactly as passed (empty if it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [arg.decode(errors="replace") for arg in raw.split(b"\0") if arg]


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


def apt_knows(package: str) -> bool:
    """Whether apt has a candidate version of ``package`` (from its current lists)."""
    if shutil.which("apt-cache") is None:
        return False
    try:
        out = run(["apt-cache", "policy", package], what="apt-cache policy", timeout_s=60)
    except StackError:
        return False
    return any(
        line.strip().startswith("Candidate:") and "(none)" not in line for line in out.splitlines()
    )
