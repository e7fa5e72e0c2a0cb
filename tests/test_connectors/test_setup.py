"""Set-up of a CDC source: one clear line for each way a source can be unfit to stream.

Against the stack's PostgreSQL where the server can be put in that state for
real (a role without REPLICATION, a slot another process holds, a table
without a primary key or without REPLICA IDENTITY FULL, a missing
publication); as pure decisions where it cannot be cheaply (wal_level needs a
server restart, an invalidated slot 2 GB of WAL).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from connectors.cdc.events import Capture
from connectors.cdc.setup import prepare, server_problem, slot_problem
from connectors.cdc.sources import CDC_SOURCES
from connectors.cdc.stream import ChangeStream
from connectors.errors import CdcError
from devstack.stack.postgres import SUPERUSER
from quoteflow.settings import Settings, load_settings
from schemas.serde import make_serde

from .conftest import drop_slot, streaming

QMS = CDC_SOURCES[0]


def _capture(primary_key: tuple[str, ...]) -> Capture:
    return Capture("public", "t", "topic", "k", "v", primary_key, "qms", "qms", False)


@pytest.fixture
def qms(stack: object, settings: Settings) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(settings.postgres.conninfo("qms"), autocommit=True) as conn:
        yield conn


@pytest.fixture
def scratch_table(qms: psycopg.Connection[Any]) -> Iterator[str]:
    name = f"cdc_setup_{uuid.uuid4().hex[:8]}"
    try:
        yield name
    finally:
        qms.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))


def _prepare(conn: psycopg.Connection[Any], table: str, slot: str = "unused") -> Any:
    source = dataclasses.replace(QMS, table=table, publication=f"pub_{table}")
    return prepare(conn, source, database="qms", slot=slot, capture_for=_capture)


@pytest.mark.integration
def test_a_table_without_primary_key_or_full_identity_or_at_all_is_refused(
    qms: psycopg.Connection[Any], scratch_table: str
) -> None:
    with pytest.raises(CdcError, match=f"database qms has no table public.{scratch_table}"):
        _prepare(qms, scratch_table)
    table = sql.Identifier(scratch_table)
    qms.execute(sql.SQL("CREATE TABLE {} (a int, b text)").format(table))
    with pytest.raises(CdcError, match=r"REPLICA IDENTITY DEFAULT: .*REPLICA IDENTITY FULL$"):
        _prepare(qms, scratch_table)
    qms.execute(sql.SQL("ALTER TABLE {} REPLICA IDENTITY FULL").format(table))
    with pytest.raises(CdcError, match=f"table public.{scratch_table} has no primary key"):
        _prepare(qms, scratch_table)


@pytest.mark.integration
def test_a_missing_publication_is_created_and_a_new_slot_starts_at_the_current_lsn(
    qms: psycopg.Connection[Any], scratch_table: str, settings: Settings
) -> None:
    table = sql.Identifier(scratch_table)
    qms.execute(sql.SQL("CREATE TABLE {} (b text, a int, PRIMARY KEY (a, b))").format(table))
    qms.execute(sql.SQL("ALTER TABLE {} REPLICA IDENTITY FULL").format(table))
    slot = f"test_setup_{uuid.uuid4().hex[:8]}"
    try:
        prepared = _prepare(qms, scratch_table, slot)
        assert prepared.capture.primary_key == ("a", "b")  # the key's order, not the table's
        assert prepared.created_slot
        published = qms.execute(
            "SELECT count(*) FROM pg_publication_tables WHERE pubname = %s AND tablename = %s",
            (prepared.publication, scratch_table),
        ).fetchone()
        assert published == (1,)
        again = _prepare(qms, scratch_table, slot)  # idempotent: the same slot, not a new one
        assert not again.created_slot and again.confirmed_lsn == prepared.confirmed_lsn
    finally:
        drop_slot(settings, QMS, slot)
        qms.execute(
            sql.SQL("DROP PUBLICATION IF EXISTS {}").format(sql.Identifier(f"pub_{scratch_table}"))
        )


@pytest.mark.integration
def test_a_slot_held_by_another_process_is_refused(cdc_settings: Settings) -> None:
    with streaming(cdc_settings, "qms") as running:
        rival = ChangeStream(cdc_settings, QMS, make_serde(None))
        with pytest.raises(CdcError, match=r"slot test_\w+_qms is in use by another process"):
            rival.prepare()
        assert running.thread.is_alive()


@pytest.fixture
def role_without_replication(settings: Settings) -> Iterator[Settings]:
    """A login role that may read qms but not stream (created as superuser over the socket)."""
    name = f"norepl_{uuid.uuid4().hex[:8]}"
    socket_dir = settings.stack.home / "postgres" / "run"
    with psycopg.connect(
        host=str(socket_dir), port=settings.stack.postgres_port, user=SUPERUSER,
        dbname="postgres", autocommit=True,
    ) as admin:  # fmt: skip
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'pw'").format(sql.Identifier(name)))
        try:
            yield load_settings(postgres={"user": name, "password": "pw"})
        finally:
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


@pytest.mark.integration
def test_a_role_without_replication_is_refused_with_the_fix(
    stack: object, role_without_replication: Settings
) -> None:
    role = role_without_replication.postgres.user
    stream = ChangeStream(role_without_replication, QMS, make_serde(None))
    with pytest.raises(CdcError) as caught:
        stream.prepare()
    assert str(caught.value) == (
        f"role {role} lacks the REPLICATION attribute needed to stream changes:"
        f" ALTER ROLE {role} REPLICATION (as a superuser)"
    )


# -- pure decisions -------------------------------------------------------------------


@pytest.mark.unit
def test_wal_level_other_than_logical_says_how_to_fix_it() -> None:
    problem = server_problem(
        database="qms", table="public.quotes", wal_level="replica", can_replicate=True,
        role="quoteflow", identity="f",
    )  # fmt: skip
    assert problem == (
        "database qms: wal_level is replica, not logical; set wal_level = logical in"
        " postgresql.conf and restart the server"
    )


@pytest.mark.unit
def test_a_ready_server_has_no_problem() -> None:
    assert server_problem(
        database="qms", table="public.quotes", wal_level="logical", can_replicate=True,
        role="quoteflow", identity="f",
    ) is None  # fmt: skip


@pytest.mark.unit
def test_an_invalidated_slot_is_reported_loudly_with_what_to_do() -> None:
    problem = slot_problem(
        slot="quoteflow_qms", database="qms", plugin="pgoutput", slot_database="qms",
        active_pid=None, wal_status="lost",
    )  # fmt: skip
    assert problem is not None
    assert problem.startswith("REPLICATION SLOT quoteflow_qms WAS INVALIDATED")
    assert "changes are lost" in problem
    assert "pg_drop_replication_slot('quoteflow_qms')" in problem and "re-snapshot" in problem


@pytest.mark.unit
@pytest.mark.parametrize(("plugin", "database"), [("wal2json", "qms"), ("pgoutput", "crm")])
def test_a_slot_of_another_plugin_or_database_is_refused(plugin: str, database: str) -> None:
    problem = slot_problem(
        slot="s", database="qms", plugin=plugin, slot_database=database, active_pid=None,
        wal_status="reserved",
    )  # fmt: skip
    assert problem is not None and "choose another cdc.slot_prefix" in problem


@pytest.mark.unit
@pytest.mark.parametrize("wal_status", ["reserved", "extended", "unreserved", None])
def test_a_usable_slot_has_no_problem(wal_status: str | None) -> None:
    assert slot_problem(
        slot="s", database="qms", plugin="pgoutput", slot_database="qms", active_pid=None,
        wal_status=wal_status,
    ) is None  # fmt: skip


@pytest.mark.integration
def test_a_missing_topic_is_one_line_naming_the_command(cdc_settings: Settings) -> None:
    stream = ChangeStream(cdc_settings, QMS, make_serde(None), produce_to="no.such.topic")
    with pytest.raises(CdcError) as caught:
        stream.prepare()
    assert str(caught.value) == (
        "topic no.such.topic does not exist: run `quoteflow topics create`"
    )
