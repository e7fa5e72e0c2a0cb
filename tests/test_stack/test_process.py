"""process.Supervised: the pid file and marker behind every JVM the stack runs.

Only a process carrying our marker (the path of its own configuration file) is
ours to report or signal; a recycled pid or someone else's server must never be
stopped, and no pid file, however garbled, may crash ``status`` or ``down``.
Harmless ``sleep`` and Python processes stand in for Kafka's and the
registry's JVMs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.stack import system
from devstack.stack.process import Supervised

pytestmark = pytest.mark.unit


@pytest.fixture
def supervised(tmp_path: Path) -> Supervised:
    return Supervised(tmp_path / "registry.pid", str(tmp_path / "application.properties"))


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "30"])
    try:
        yield proc
    finally:
        _end(proc)


def _record(supervised: Supervised, pid: int) -> None:
    """The pid file as ``spawn`` writes it."""
    record = {"pid": pid, "marker": supervised.marker, "at": 0}
    supervised.pid_file.write_text(json.dumps(record))


def _marked(marker: str) -> list[str]:
    """A harmless process whose command line carries ``marker``, as the JVM's does."""
    return [sys.executable, "-c", "import time; print('ready', flush=True); time.sleep(30)", marker]


def _start_marked(marker: str) -> subprocess.Popen[bytes]:
    """A marked process, returned once it runs its own code.

    Judged before it was up, the check failed once in CI (pid() None for a
    process just started); its "ready" line says the interpreter is running.
    """
    proc = subprocess.Popen(_marked(marker), stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    return proc


def _end(proc: subprocess.Popen[bytes]) -> None:
    proc.kill()
    proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def test_a_live_process_without_the_marker_is_not_ours_and_is_not_signalled(
    supervised: Supervised, sleeper: subprocess.Popen[bytes]
) -> None:
    _record(supervised, sleeper.pid)
    assert system.pid_alive(sleeper.pid)

    assert supervised.pid() is None
    assert supervised.stop(grace_s=1) is None
    assert sleeper.poll() is None  # still running: never signalled
    assert not supervised.pid_file.exists()  # the stale record is gone


def test_a_live_process_with_the_marker_is_ours_until_it_exits(supervised: Supervised) -> None:
    proc = _start_marked(supervised.marker)
    try:
        _record(supervised, proc.pid)
        assert supervised.pid() == proc.pid
    finally:
        _end(proc)
    assert supervised.pid() is None


def test_the_marker_must_be_a_whole_argument(tmp_path: Path) -> None:
    """/tmp/x must not claim the server of /var/tmp/x."""
    other = Supervised(tmp_path / "other.pid", f"/var{tmp_path}/application.properties")
    mine = Supervised(tmp_path / "mine.pid", f"{tmp_path}/application.properties")
    proc = _start_marked(other.marker)
    try:
        _record(mine, proc.pid)
        assert mine.pid() is None
        _record(other, proc.pid)
        assert other.pid() == proc.pid
    finally:
        _end(proc)


def test_spawn_refuses_a_command_without_the_marker(supervised: Supervised, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="marker"):
        supervised.spawn(["sleep", "30"], log_file=tmp_path / "registry.log")
    assert not supervised.pid_file.exists()
    assert not (tmp_path / "registry.log").exists()


def test_spawn_records_our_process_and_stop_ends_it(supervised: Supervised, tmp_path: Path) -> None:
    log_file = tmp_path / "registry.log"
    pid = supervised.spawn(_marked(supervised.marker), log_file=log_file)
    try:
        record = json.loads(supervised.pid_file.read_text())
        assert record["pid"] == pid and record["marker"] == supervised.marker
        assert supervised.pid() == pid

        assert supervised.stop(grace_s=5) == pid

        assert not system.pid_alive(pid)
        assert not supervised.pid_file.exists()
        assert supervised.pid() is None
    finally:
        if system.pid_alive(pid):
            system.terminate(pid, grace_s=1)


@pytest.mark.parametrize(
    "content",
    [
        "",
        "not json",
        "{}",
        '{"pid": "x"}',
        '{"pid": null}',
        "[1]",
        "12",
        '{"pid": 0}',
        '{"pid": -1}',
        '{"pid": NaN}',
    ],
)
def test_a_garbage_pid_file_names_no_process(supervised: Supervised, content: str) -> None:
    supervised.pid_file.write_text(content)
    assert supervised.pid() is None


def test_a_missing_pid_file_names_no_process(supervised: Supervised) -> None:
    assert supervised.pid() is None
    assert supervised.stop(grace_s=1) is None


@pytest.mark.parametrize("content", ['{"pid": 1e400}', '{"pid": 4294967296}'])
def test_a_pid_file_with_an_out_of_range_pid_names_no_process(
    supervised: Supervised, content: str
) -> None:
    supervised.pid_file.write_text(content)
    assert supervised.pid() is None
