"""`quoteflow groups` as a person meets it: a wrong option or an unreachable cluster is a line.

These run the real ``quoteflow`` command; none needs the stack: a bad option is
refused before anything is reached, and the unreachable case points every client
at a port nothing listens on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.helpers import free_ports


def quoteflow(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "quoteflow", *args], capture_output=True,
                          text=True, timeout=120, check=False,
                          env={**os.environ, "COLUMNS": "200", **(env or {})})  # fmt: skip


@pytest.mark.unit
@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ((), "give exactly one of --to-datetime, --to-offset, --to-earliest, --to-latest"),
        (("--to-earliest", "--to-latest"), "(got --to-earliest and --to-latest)"),
        (("--to-datetime", "2026-12-06T18:00"), "give the time zone"),
        (("--to-offset", "0:12"), "is not PARTITION=OFFSET"),
    ],
)
def test_a_wrong_reset_option_is_one_line_and_exit_2(args: tuple[str, ...], fragment: str) -> None:
    [port] = free_ports(1)  # never reached: the options are refused first
    done = quoteflow("groups", "reset", "sink", *args,
                     env={"QUOTEFLOW_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{port}"})  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("quoteflow: error: ")
    assert fragment in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.unit
def test_an_unknown_component_is_refused_by_name() -> None:
    done = quoteflow("groups", "reset", "cdc", "--to-earliest")
    assert done.returncode == 2
    assert "'router', 'processor', 'sink'" in done.stderr


@pytest.mark.integration
def test_lag_shows_what_it_cannot_reach_and_exits_1() -> None:
    kafka, postgres = free_ports(2)
    env = {"QUOTEFLOW_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{kafka}",
           "QUOTEFLOW_POSTGRES__PORT": str(postgres), "QUOTEFLOW_POSTGRES__CONNECT_TIMEOUT_S": "2",
           "QUOTEFLOW_TOPICS__REQUEST_TIMEOUT_S": "2"}  # fmt: skip
    done = quoteflow("groups", "lag", "cdc", "sink", "--json", env=env)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    found = json.loads(done.stdout)
    assert {s["source"]: s["state"] for s in found["cdc"]} == {"qms": "unreachable",
                                                               "crm": "unreachable"}  # fmt: skip
    assert all(s["lag_s"] is None and s["seconds_note"] for s in found["cdc"])
    [sink] = found["groups"]
    assert sink["component"] == "sink" and sink["problem"]
    table = quoteflow("groups", "lag", "sink", env=env)
    assert table.returncode == 1 and "unreadable" in table.stdout
