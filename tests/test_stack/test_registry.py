"""The local Schema Registry as a process: a private Apicurio Registry, started and restarted.

It gets its own home, its own ports and its own database in the session's
PostgreSQL, so restarting it never disturbs the session's registry that other
tests use. The distribution cache is shared (resolved once per machine).
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from devstack.stack.postgres import PostgresComponent
from devstack.stack.registry import RegistryComponent
from devstack.stack.system import cmdline
from quoteflow.errors import StackError
from quoteflow.reporting import silent
from quoteflow.settings import Settings, load_settings
from schemas import examples
from schemas.serde import serde_from_settings
from schemas.subjects.admin import SubjectAdmin
from schemas.subjects.plan import COMPATIBILITY, Subject
from tests.helpers import free_ports


def _private(settings: Settings, home: Path, database: str, **stack: object) -> Settings:
    registry_port, management_port = free_ports(2)
    return load_settings(
        stack={
            "home": home,
            "postgres_port": settings.stack.postgres_port,
            "registry_port": registry_port,
            "registry_management_port": management_port,
            "registry_database": database,
            **stack,
        }
    )


@pytest.fixture
def private_registry(
    stack: object, settings: Settings, tmp_path: Path
) -> Iterator[tuple[RegistryComponent, Settings]]:
    """A registry of our own, storing in a fresh database of the session's PostgreSQL."""
    database = f"registry_test_{uuid.uuid4().hex[:8]}"
    # The stack's PostgreSQL creates every database its settings name (a repair when running).
    PostgresComponent(load_settings(stack={"registry_database": database})).up(silent)
    private = _private(settings, tmp_path / "stack", database)
    registry = RegistryComponent(private)
    try:
        yield registry, private
    finally:
        registry.down(silent)
        with psycopg.connect(settings.postgres.conninfo("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _listeners(port: int) -> set[str]:
    """Local addresses listening on ``port``, from /proc/net/tcp and tcp6 (state 0A)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


#: 127.0.0.1 as /proc/net shows it: little-endian IPv4, or IPv4-mapped IPv6.
LOOPBACK = {"0100007F", "0000000000000000FFFF00000100007F"}


@pytest.mark.integration
def test_up_restart_and_down_keep_schema_ids_in_postgres(
    private_registry: tuple[RegistryComponent, Settings],
) -> None:
    registry, private = private_registry
    stack = private.stack
    assert registry.status().detail == "stopped"

    started: list[str] = []
    assert registry.up(started.append) is True
    assert any(line.startswith(f"registry healthy at {stack.registry_url}") for line in started)
    status = registry.status()
    assert (status.running, status.healthy) == (True, True)
    assert status.address == stack.registry_url
    assert f"{stack.registry_version}, db {stack.registry_database}" in status.detail
    assert "global compatibility BACKWARD" in status.detail
    assert status.pid is not None and f"-Xmx{stack.registry_heap_mb}m" in cmdline(status.pid)
    # Both the API and Quarkus' management interface, on loopback only.
    for port in (stack.registry_port, stack.registry_management_port):
        assert _listeners(port) and _listeners(port) <= LOOPBACK, port

    topic = f"test.registry.{uuid.uuid4().hex[:8]}"
    subject = Subject(f"{topic}-value", topic, False, "abandonment_decision")
    with SubjectAdmin(private, subject_list=[subject]) as admin:
        [registration] = admin.register()
    [(version, schema_id)] = registration.registered
    assert version.label == "abandonment_decision v1"
    writer = serde_from_settings(private.schema_registry)
    record = examples.abandonment_decision()
    data = writer.encode("abandonment_decision", record, topic=topic)
    writer.close()
    assert int.from_bytes(data[1:5], "big") == schema_id

    assert registry.down(silent) is True
    assert registry.status().detail == "stopped"
    assert registry.up(silent) is True

    # A new client has no cache: the id is answered by the restarted registry, from PostgreSQL.
    reader = serde_from_settings(private.schema_registry)
    try:
        assert reader.decode("abandonment_decision", data, topic=topic) == record
    finally:
        reader.close()
    with SubjectAdmin(private, subject_list=[subject]) as admin:
        [after] = admin.compare()
    assert after.state == "ok" and after.compatibility == COMPATIBILITY
    assert after.registered[-1].schema_id == schema_id

    pid = registry.status().pid
    assert registry.up(silent) is False  # already running: nothing started
    assert registry.status().pid == pid
    assert registry.down(silent) is True
    assert registry.down(silent) is False


@pytest.mark.integration
def test_up_refuses_a_port_held_by_another_process(
    settings: Settings, tmp_path: Path, stack: object
) -> None:
    private = _private(settings, tmp_path / "stack", "registry")
    registry = RegistryComponent(private)
    with socket.socket() as held:
        held.bind(("127.0.0.1", private.stack.registry_management_port))
        held.listen()
        status = registry.status()
        assert not status.running and "in use by a process quoteflow did not start" in status.detail
        with pytest.raises(StackError, match=r"stack\.registry_management_port"):
            registry.up(silent)
    assert not (tmp_path / "stack" / "registry" / "registry.pid").exists()


@pytest.mark.unit
def test_up_without_postgres_says_to_start_it_first(tmp_path: Path) -> None:
    nothing_there, registry_port, management_port = free_ports(3)
    private = load_settings(
        stack={
            "home": tmp_path / "stack",
            "postgres_port": nothing_there,
            "registry_port": registry_port,
            "registry_management_port": management_port,
        }
    )
    with pytest.raises(StackError, match=r"not running .*quoteflow stack up postgres"):
        RegistryComponent(private).up(silent)
