"""The local stack's OS edges: commands, apt-get, processes, directories.

Real subprocesses (sh, sleep) and a fake apt-get on PATH; nothing is installed.
"""

from __future__ import annotations

import os
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.stack import system
from quoteflow.errors import StackError

pytestmark = pytest.mark.unit


# -- run ------------------------------------------------------------------------


def test_run_returns_stdout_and_stderr_merged() -> None:
    out = system.run(["sh", "-c", "echo out; echo err >&2"], what="echoing")
    assert out.splitlines() == ["out", "err"]


def test_run_failure_names_the_exit_code_and_the_last_output_lines() -> None:
    script = "for i in $(seq 1 20); do echo line$i; echo; done; echo oops >&2; exit 3"
    with pytest.raises(StackError) as caught:
        system.run(["sh", "-c", script], what="counting")
    message = str(caught.value)
    assert message.startswith("counting failed (exit 3):")
    shown = [line.strip() for line in message.splitlines()[1:]]
    # The last non-empty lines, stdout and stderr merged in order.
    assert shown == [*(f"line{i}" for i in range(10, 21)), "oops"]


def test_run_failure_appends_the_tail_of_the_log_file(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text("starting\nFATAL:  could not bind\n")
    with pytest.raises(StackError, match=r"(?s)exit 1.*see .*server\.log.*FATAL:  could not bind"):
        system.run(["sh", "-c", "exit 1"], what="starting the server", log_file=log)


def test_run_a_missing_command_is_named() -> None:
    with pytest.raises(StackError, match="probing: command 'no-such-tool-qf' not found"):
        system.run(["no-such-tool-qf", "--version"], what="probing")


def test_run_a_command_that_cannot_be_executed_is_named(tmp_path: Path) -> None:
    script = tmp_path / "not-executable"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o644)
    if os.access(script, os.X_OK):
        pytest.skip("the file system ignores mode bits here")
    with pytest.raises(StackError, match=f"probing: cannot run '{script}'"):
        system.run([str(script)], what="probing")


def test_run_timeout_is_a_stack_error() -> None:
    started = time.monotonic()
    with pytest.raises(StackError, match=r"waiting did not finish within 0\.3s \(sleep\)"):
        system.run(["sleep", "30"], what="waiting", timeout_s=0.3)
    assert time.monotonic() - started < 10


def test_run_environment_drops_prefixes_and_adds_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGPORT", "5432")
    monkeypatch.setenv("PGDATA", "/elsewhere")
    monkeypatch.setenv("QF_KEPT", "yes")
    out = system.run(
        ["sh", "-c", 'echo "port=${PGPORT-unset} data=${PGDATA-unset} $QF_KEPT $QF_EXTRA"'],
        what="env",
        env_remove_prefixes=("PG",),
        extra_env={"QF_EXTRA": "added"},
    )
    assert out.strip() == "port=unset data=unset yes added"
    untouched = system.run(["sh", "-c", 'echo "$PGPORT"'], what="env")
    assert untouched.strip() == "5432"


def test_run_streaming_passes_non_empty_lines_on_and_keeps_the_tail_for_errors() -> None:
    seen: list[str] = []
    system.run_streaming(
        ["sh", "-c", "echo one; echo; echo two >&2"], what="x", on_line=seen.append
    )
    assert seen == ["one", "two"]
    with pytest.raises(StackError, match=r"(?s)streaming failed \(exit 4\):.*last words"):
        system.run_streaming(
            ["sh", "-c", "echo last words; exit 4"], what="streaming", on_line=seen.append
        )


# -- pid_alive --------------------------------------------------------------------


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait()


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_pid_alive_for_a_live_child(sleeper: subprocess.Popen[bytes]) -> None:
    assert system.pid_alive(sleeper.pid)
    assert system.pid_alive(sleeper.pid, comm_prefix="sleep")


def test_pid_alive_is_false_when_the_command_name_does_not_match(
    sleeper: subprocess.Popen[bytes],
) -> None:
    assert not system.pid_alive(sleeper.pid, comm_prefix="postgres")


def test_pid_alive_reaps_a_zombie_child() -> None:
    proc = subprocess.Popen(["true"])
    deadline = time.monotonic() + 10
    while _state(proc.pid) != "Z":  # exited, not yet waited for
        assert time.monotonic() < deadline, "child did not exit"
        time.sleep(0.01)
    assert not system.pid_alive(proc.pid)
    assert not Path(f"/proc/{proc.pid}").exists()  # reaped, not left a zombie
    proc.wait()  # Popen copes with a child reaped behind its back


def test_pid_alive_is_false_for_a_reaped_child_and_for_non_pids() -> None:
    proc = subprocess.Popen(["true"])
    proc.wait()
    assert not system.pid_alive(proc.pid)
    assert not system.pid_alive(0)
    assert not system.pid_alive(-1)


# -- apt_install ------------------------------------------------------------------


def test_apt_install_as_non_root_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(system, "is_root", lambda: False)
    with pytest.raises(StackError) as caught:
        system.apt_install(
            ["maven"],
            report=lambda _: None,
            why="Maven is needed",
            alternative="or put mvn on PATH",
        )
    message = str(caught.value)
    assert message.startswith("Maven is needed: ")
    assert "`sudo apt-get install maven`, or put mvn on PATH" in message
    assert not system.can_apt_install()


def test_apt_install_without_apt_get_says_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(system, "is_root", lambda: True)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(StackError, match="apt-get is not available: install maven"):
        system.apt_install(["maven"], report=lambda _: None, why="Maven is needed")


def test_apt_install_as_root_runs_apt_get_non_interactively(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls = tmp_path / "calls"
    fake = tmp_path / "apt-get"
    fake.write_text(
        "#!/bin/sh\n"
        f'echo "$* | $DEBIAN_FRONTEND $UCF_FORCE_CONFFOLD ${{PGPORT-unset}}" >> {calls}\n'
        'echo "Reading package lists..."\n'
        'if [ "$1" = install ]; then echo "Setting up maven (3.8.7-1) ..."; fi\n'
    )
    fake.chmod(0o755)
    monkeypatch.setattr(system, "is_root", lambda: True)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    monkeypatch.setenv("PGPORT", "5432")
    lines: list[str] = []
    system.apt_install(["maven"], report=lines.append, why="unused", env_remove_prefixes=("PG",))
    assert calls.read_text().splitlines() == [
        "update | noninteractive 1 unset",
        "install -y --no-install-recommends -o Dpkg::Options::=--force-confdef"
        " -o Dpkg::Options::=--force-confold maven | noninteractive 1 unset",
    ]
    assert lines == [
        "apt-get update (to install maven)",
        "apt-get install maven (takes a minute or two)",
        "Setting up maven (3.8.7-1) ...",
    ]


# -- makedirs ---------------------------------------------------------------------


def test_makedirs_ignores_the_umask_and_leaves_existing_dirs(tmp_path: Path) -> None:
    existing = tmp_path / "existing"
    existing.mkdir(mode=0o700)
    target = existing / "a" / "b"
    old = os.umask(0o077)
    try:
        system.makedirs(target, 0o755)
    finally:
        os.umask(old)
    assert stat.S_IMODE((existing / "a").stat().st_mode) == 0o755
    assert stat.S_IMODE(target.stat().st_mode) == 0o755
    assert stat.S_IMODE(existing.stat().st_mode) == 0o700
    system.makedirs(target, 0o755)  # already there: nothing to do


def test_makedirs_failure_says_what_to_set(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StackError, match=f"cannot create {blocker / 'dir'}: .*stack.home"):
        system.makedirs(blocker / "dir", 0o755)
