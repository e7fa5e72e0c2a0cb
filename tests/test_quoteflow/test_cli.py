"""The command line as a user meets it: one-line errors, and a whole stack life cycle.

The life-cycle test runs its own stack (private home, other ports) through the
real ``quoteflow`` command, so it never disturbs the session's shared stack.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import free_ports


def quoteflow(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "quoteflow", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        check=False,
    )


@pytest.mark.unit
@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"QUOTEFLOW_STACK__KAFKA_PORT": "not-a-port"}, "setting stack.kafka_port"),
        ({"QUOTEFLOW_STAK__HOME": "/tmp"}, "unknown setting section 'stak'"),
        ({"QUOTEFLOW_CONFIG": "/nonexistent/quoteflow.toml"}, "does not exist"),
    ],
)
def test_bad_configuration_is_one_line_without_traceback(
    env: dict[str, str], fragment: str
) -> None:
    done = quoteflow("stack", "status", env=env)
    assert done.returncode == 2
    assert fragment in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().startswith("quoteflow: error:")


@pytest.mark.unit
def test_unknown_component_is_a_clear_error() -> None:
    done = quoteflow("stack", "logs", "zookeeper")
    assert done.returncode == 1
    assert "unknown component zookeeper (known: postgres, kafka, registry)" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.unit
def test_a_bad_rules_file_stops_the_processor_in_one_line(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('version = "v1"\n[delay]\ndefault_minutes = -5\n')
    result = quoteflow("process", "--rules", str(rules))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert f"rules file {rules}: delay.default_minutes:" in result.stderr
    assert "offers: Field required" in result.stderr


@pytest.mark.unit
def test_an_unusable_streams_data_dir_stops_the_processor_in_one_line(tmp_path: Path) -> None:
    """A data_dir under a file cannot be created: a setting to fix, not a traceback."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    data_dir = blocker / "streams"
    # Kafka unreachable: the data directory is checked before the worker talks to it.
    env = {"QUOTEFLOW_STREAMS__DATA_DIR": str(data_dir),
           "QUOTEFLOW_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    result = quoteflow("process", env=env, timeout=60)
    assert "Traceback" not in result.stderr
    assert result.returncode == 2
    assert result.stderr.strip().startswith(
        f"quoteflow: error: setting streams.data_dir: cannot create {data_dir}:"
    )


@pytest.mark.unit
def test_help_lists_the_subcommands() -> None:
    done = quoteflow("--help")
    assert done.returncode == 0
    for command in ("stack", "topics", "schemas", "cdc", "snapshot", "process", "smoke", "demo"):
        assert command in done.stdout


@pytest.fixture
def private_stack_env() -> Iterator[dict[str, str]]:
    # Under /var/tmp with mode 0755: as root, PostgreSQL runs as its own OS user
    # and must be able to enter the stack home (pytest's tmp dirs are 0700).
    home = Path(tempfile.mkdtemp(prefix="quoteflow-cli-", dir="/var/tmp"))
    home.chmod(0o755)
    kafka_port, controller_port, postgres_port, registry_port, management_port = free_ports(5)
    env = {
        "QUOTEFLOW_STACK__HOME": str(home),
        "QUOTEFLOW_STACK__KAFKA_PORT": str(kafka_port),
        "QUOTEFLOW_STACK__KAFKA_CONTROLLER_PORT": str(controller_port),
        "QUOTEFLOW_STACK__POSTGRES_PORT": str(postgres_port),
        "QUOTEFLOW_STACK__REGISTRY_PORT": str(registry_port),
        "QUOTEFLOW_STACK__REGISTRY_MANAGEMENT_PORT": str(management_port),
        "QUOTEFLOW_TOPICS__PARTITIONS": "1",
    }
    try:
        yield env
    finally:
        quoteflow("stack", "down", env=env)
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.integration
def test_stack_life_cycle_through_the_cli(private_stack_env: dict[str, str]) -> None:
    env = private_stack_env

    def ok(*args: str) -> str:
        """stdout with whitespace collapsed: rich wraps lines at 80 columns when piped."""
        done = quoteflow(*args, env=env)
        assert done.returncode == 0, f"quoteflow {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return " ".join(done.stdout.split())

    down = quoteflow("stack", "status", env=env)
    assert down.returncode == 1 and "stopped" in down.stdout

    installed = ok("stack", "install")
    assert "kafka: installed" in installed and "registry: installed" in installed
    first = ok("stack", "up")
    assert "kafka healthy" in first and "127.0.0.1:" + env["QUOTEFLOW_STACK__KAFKA_PORT"] in first
    registry_url = f"http://127.0.0.1:{env['QUOTEFLOW_STACK__REGISTRY_PORT']}/apis/ccompat/v7"
    assert f"registry healthy at {registry_url}" in first
    assert "already running" in ok("stack", "up")
    status = ok("stack", "status")
    assert "wal_level=logical" in status and "KRaft" in status
    assert "global compatibility BACKWARD" in status

    created = ok("topics", "create")
    assert "created crm.public.customers" in created
    assert "all topics already existed" in ok("topics", "create")
    assert "drift" not in ok("topics", "list")

    # A fresh registry holds nothing: check fails, register fills it, check passes.
    assert quoteflow("schemas", "check", env=env).returncode == 1
    assert "registered qms_quote_envelope v1" in ok("schemas", "register")
    assert "every subject was already registered" in ok("schemas", "register")
    ok("schemas", "check")

    smoke = ok("smoke")
    assert "schema round trip" in smoke and "FAIL" not in smoke
    assert "Confluent wire format" in smoke

    logs = ok("stack", "logs", "--path")
    assert "kafka.log" in logs and "registry.log" in logs
    assert "stopped: registry, kafka, postgres" in ok("stack", "down")
    assert "nothing of ours was running" in ok("stack", "down")

    again = ok("stack", "up")  # up after down: storage and cluster reused
    assert "formatting" not in again and "creating a cluster" not in again
    assert "all topics already existed" in ok("topics", "create")
    ok("schemas", "check")  # the registry's subjects and ids survived the restart


@pytest.mark.unit
@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"QUOTEFLOW_WATERMARKS__CONNECTORS": '{"qms": "dbz-qms"}'},
         "setting watermarks.connectors (env QUOTEFLOW_WATERMARKS__CONNECTORS): Value error,"
         " no connector name for source(s) crm"),
        ({"QUOTEFLOW_WATERMARKS__CONNECT_OFFSETS_TOPIC": "connect offsets"},
         "setting watermarks.connect_offsets_topic"),
    ],
)  # fmt: skip
def test_bad_watermarks_settings_are_one_line_naming_the_key(
    env: dict[str, str], fragment: str
) -> None:
    done = quoteflow("watermarks", env=env)
    assert done.returncode == 2
    assert fragment in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
