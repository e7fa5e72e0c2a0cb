"""`quoteflow demo --quick` end to end, as a newcomer runs it, against the real stack.

The demo is run as a subprocess (its own process group of children, its own
ESP sandbox); what is checked is what a person or a script gets from it: the
exit status, the JSON summary on the last line of stdout, and that nothing of
the run is left behind: no child process, nothing listening where its sandbox
was, no replication slot (a forgotten slot keeps WAL for ever), no topic.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from confluent_kafka.admin import AdminClient

from quoteflow.settings import Settings

pytestmark = pytest.mark.integration


def _running_quoteflow(pid: int) -> bool:
    try:
        return b"quoteflow" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


@pytest.mark.timeout(420)
def test_demo_quick_delivers_every_offer_it_triggers_and_leaves_nothing_running(
    stack: object, settings: Settings
) -> None:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "quoteflow", "demo", "--quick"], env=dict(os.environ),
        capture_output=True, text=True, timeout=400, check=False,
    )  # fmt: skip
    seconds = time.monotonic() - started
    output = done.stdout.strip().splitlines()
    assert done.returncode == 0, f"exit {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr}"
    summary = json.loads(output[-1])
    assert summary["abandoned"] > 0
    assert summary["triggered"] > 0
    assert summary["delivered"] == summary["triggered"]
    assert summary["holdout"] >= 1  # the plan puts one customer in the holdout group
    assert summary["as_planned"], done.stdout[-3000:]
    assert summary["deadline_to_esp_p99_ms"] is not None
    for key in ("quotes", "abandoned", "triggered", "holdout", "delivered",
                "deadline_to_esp_p99_ms"):  # fmt: skip
        assert key in summary
    print(f"quoteflow demo --quick took {seconds:.1f}s (its own count: {summary['seconds']}s)")

    for name, pid in summary["components"].items():
        assert not _running_quoteflow(pid), f"{name} (pid {pid}) still running"
    port = int(summary["inbox"].rstrip("/").rsplit(":", 1)[1])
    with socket.socket() as sock, pytest.raises(OSError):
        sock.connect(("127.0.0.1", port))
    run = summary["run"]
    assert _slots(settings, run) == 0, f"slots of run {run} left"
    admin = AdminClient(settings.kafka.as_librdkafka_dict())
    deadline = time.monotonic() + 30
    while True:  # topic deletion completes on the broker asynchronously
        left = [t for t in admin.list_topics(timeout=10).topics if t.startswith(f"demo.{run}")]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert left == []


def _start_demo() -> tuple[subprocess.Popen[str], dict[str, int], str]:
    """A `quoteflow demo --quick` whose components are all up: (process, pid by name, run)."""
    demo = subprocess.Popen(
        [sys.executable, "-m", "quoteflow", "demo", "--quick"], env=dict(os.environ),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert demo.stdout is not None
    pids: dict[str, int] = {}
    run = ""
    deadline = time.monotonic() + 180
    while "sink" not in pids:
        line = demo.stdout.readline()
        assert line, f"the demo ended before its components were up: {demo.wait()}"
        assert time.monotonic() < deadline
        words = line.split()
        if "this run's under" in line:
            run = line.split("this run's under demo.")[1].split(".")[0]
        if len(words) >= 4 and words[2] == "pid":  # "  2.3s sink: pid 123, log ..."
            pids[words[1].rstrip(":")] = int(words[3].rstrip(","))
    return demo, pids, run


@pytest.mark.timeout(300)
def test_a_component_that_dies_stops_the_demo_at_once_with_its_log(stack: object) -> None:
    demo, pids, _ = _start_demo()
    os.kill(pids["sink"], 9)
    killed = time.monotonic()
    _, err = demo.communicate(timeout=120)
    assert demo.returncode == 1
    # Reported at once: the next check of the main loop (a stop of the others follows).
    assert time.monotonic() - killed < 90
    assert f"sink (pid {pids['sink']}) exited with status -9" in err
    assert "sink.log ends with:" in err
    for name, pid in pids.items():
        assert not _running_quoteflow(pid), f"{name} (pid {pid}) still running"


@pytest.mark.timeout(300)
def test_ctrl_c_stops_every_component_and_says_how_to_run_it_again(stack: object) -> None:
    demo, pids, _ = _start_demo()
    demo.send_signal(2)  # SIGINT, as Ctrl-C in a terminal (the children have their own group)
    _, err = demo.communicate(timeout=120)
    assert demo.returncode == 130
    # Before the workload started there is nothing to resume: run it again.
    assert "interrupted" in err and "to run it again: quoteflow demo --quick" in err
    for name, pid in pids.items():
        assert not _running_quoteflow(pid), f"{name} (pid {pid}) still running"


def _slots(settings: Settings, run: str) -> int:
    """The run's replication slots (the view is cluster-wide: one query sees both sources')."""
    pg = settings.postgres
    with psycopg.connect(pg.conninfo(pg.qms_database), autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE %s",
                           (f"demo_{run}_%",)).fetchone()  # fmt: skip
    return int(row[0]) if row else -1


@pytest.mark.timeout(300)
def test_a_killed_demo_takes_its_children_along_and_the_next_run_removes_its_state(
    stack: object, settings: Settings
) -> None:
    """kill -9 of the demo: no clean-up of its own can run. Its children exit (they are
    told to when their parent dies), and the slots it leaves (which would keep WAL for
    ever) and its topics are removed by the next run's start."""
    from devstack.demo.runs import clean_stale_runs

    demo, pids, run = _start_demo()
    assert run
    demo.kill()
    demo.communicate(timeout=30)
    deadline = time.monotonic() + 60
    while any(_running_quoteflow(pid) for pid in pids.values()):
        assert time.monotonic() < deadline, "children outlived the killed demo"
        time.sleep(0.5)
    assert _slots(settings, run) == 2  # left behind: what the next run must remove
    assert run in clean_stale_runs(settings, current="a-later-run")
    assert _slots(settings, run) == 0
    admin = AdminClient(settings.kafka.as_librdkafka_dict())
    deadline = time.monotonic() + 30
    while True:
        left = [t for t in admin.list_topics(timeout=10).topics if t.startswith(f"demo.{run}")]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert left == []


@pytest.mark.timeout(420)
def test_an_interrupted_run_resumes_where_it_stopped_and_delivers_every_offer_once(
    stack: object, settings: Settings
) -> None:
    """Ctrl-C in the middle of the workload keeps the run's slots, topics and state and
    prints the command that resumes it; the resumed run writes the rest of the workload
    and its summary counts the deliveries of both parts, each offer exactly once."""
    demo, pids, run = _start_demo()
    assert demo.stdout is not None
    while "workload:" not in demo.stdout.readline():
        pass
    time.sleep(15)  # part of the workload written, offers not yet due
    demo.send_signal(2)
    _, err = demo.communicate(timeout=120)
    assert demo.returncode == 130, err
    assert f"to resume it: quoteflow demo --resume {run}" in err
    for name, pid in pids.items():
        assert not _running_quoteflow(pid), f"{name} (pid {pid}) still running"
    assert _slots(settings, run) == 2  # kept: the changes made meanwhile wait in them

    done = subprocess.run(
        [sys.executable, "-m", "quoteflow", "demo", "--resume", run], env=dict(os.environ),
        capture_output=True, text=True, timeout=400, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"exit {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr}"
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["run"] == run
    assert "resuming run" in done.stdout
    assert summary["triggered"] > 0
    assert summary["delivered"] == summary["triggered"]
    assert _slots(settings, run) == 0
    again = subprocess.run(
        [sys.executable, "-m", "quoteflow", "demo", "--resume", run], env=dict(os.environ),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert again.returncode == 1
    assert f"no interrupted demo run {run} to resume" in again.stderr
