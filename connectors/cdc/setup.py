"""Before streaming: check the source database, create what is missing, refuse what is wrong.

Catalogue queries only, on an ordinary connection: nothing here reads the
captured table's rows, so it is as gentle on a legacy QMS as ``smoke``. Each
problem becomes one :class:`~connectors.errors.CdcError` line that says what
to do: ``wal_level`` not logical, a role without REPLICATION, a table without
a primary key or without REPLICA IDENTITY FULL, a slot held by another
process, a slot the server invalidated (its changes are gone).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from connectors.cdc.events import Capture
from connectors.cdc.pgoutput import parse_lsn
from connectors.cdc.sources import CdcSource
from connectors.errors import CdcError
from quoteflow.pgerrors import error_gist

_IDENTITY = {"d": "DEFAULT", "n": "NOTHING", "f": "FULL", "i": "INDEX"}


@dataclass(frozen=True)
class Prepared:
    """What streaming needs: the table's capture, the slot, where it resumes."""

    capture: Capture
    slot: str
    publication: str
    confirmed_lsn: int
    created_slot: bool


def prepare(
    conn: psycopg.Connection[Any],
    source: CdcSource,
    *,
    database: str,
    slot: str,
    capture_for: Callable[[tuple[str, ...]], Capture],
) -> Prepared:
    """Validate the server, table and role; create the publication and slot if missing.

    ``capture_for(primary_key)`` builds the table's :class:`Capture` once the key
    is known (the topic and schemas come from the caller's catalogue).
    """
    table = source.qualified_table
    row = conn.execute(
        """
        SELECT current_setting('wal_level'),
               (SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user),
               current_user,
               (SELECT c.relreplident FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = %(schema)s AND c.relname = %(table)s AND c.relkind IN ('r', 'p'))
        """,
        {"schema": source.schema, "table": source.table},
    ).fetchone()
    assert row is not None  # a SELECT without FROM always returns its row
    problem = server_problem(
        database=database, table=table, wal_level=row[0], can_replicate=row[1], role=row[2],
        identity=row[3],
    )  # fmt: skip
    if problem:
        raise CdcError(problem)
    primary_key = _primary_key(conn, source)
    if not primary_key:
        raise CdcError(f"table {table} has no primary key: its change events are keyed by it")
    _ensure_publication(conn, source)
    confirmed, created = _ensure_slot(conn, slot, database)
    return Prepared(capture_for(primary_key), slot, source.publication, confirmed, created)


def server_problem(
    *,
    database: str,
    table: str,
    wal_level: str,
    can_replicate: bool | None,
    role: str,
    identity: str | None,
) -> str | None:
    """Why streaming cannot start, from the catalogue's answers (None: it can)."""
    if wal_level != "logical":
        return (
            f"database {database}: wal_level is {wal_level}, not logical; set wal_level = logical"
            " in postgresql.conf and restart the server"
        )
    if not can_replicate:
        return (
            f"role {role} lacks the REPLICATION attribute needed to stream changes:"
            f" ALTER ROLE {role} REPLICATION (as a superuser)"
        )
    if identity is None:
        return f"database {database} has no table {table} to capture"
    if identity != "f":
        return (
            f"table {table} has REPLICA IDENTITY {_IDENTITY.get(identity, identity)}: updates and"
            f" deletes would lack the old row; ALTER TABLE {table} REPLICA IDENTITY FULL"
        )
    return None


def slot_problem(
    *,
    slot: str,
    database: str,
    plugin: str,
    slot_database: str,
    active_pid: int | None,
    wal_status: str | None,
) -> str | None:
    """Why an existing slot cannot be streamed (None: it can)."""
    if plugin != "pgoutput" or slot_database != database:
        return (
            f"replication slot {slot} exists for plugin {plugin} on database {slot_database}, not"
            f" pgoutput on {database}: choose another cdc.slot_prefix"
        )
    if wal_status == "lost":
        return (
            f"REPLICATION SLOT {slot} WAS INVALIDATED: the server removed WAL it still needed"
            " (max_slot_wal_keep_size), so changes are lost. Drop it"
            f" (SELECT pg_drop_replication_slot('{slot}')) and re-snapshot {database}'s tables"
        )
    if active_pid is not None:
        return (
            f"replication slot {slot} is in use by another process (pid {active_pid}):"
            " is another `quoteflow cdc` running for this source?"
        )
    return None


def _primary_key(conn: psycopg.Connection[Any], source: CdcSource) -> tuple[str, ...]:
    rows = conn.execute(
        """
        SELECT a.attname
        FROM pg_index i
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
        WHERE i.indrelid = to_regclass(%s) AND i.indisprimary
        ORDER BY array_position(i.indkey::int2[], a.attnum)
        """,
        (f'"{source.schema}"."{source.table}"',),
    ).fetchall()
    return tuple(str(r[0]) for r in rows)


def _ensure_publication(conn: psycopg.Connection[Any], source: CdcSource) -> None:
    exists, has_table = conn.execute(
        """
        SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = %(pub)s),
               EXISTS (SELECT 1 FROM pg_publication_tables WHERE pubname = %(pub)s
                       AND schemaname = %(schema)s AND tablename = %(table)s)
        """,
        {"pub": source.publication, "schema": source.schema, "table": source.table},
    ).fetchone() or (False, False)
    if has_table:
        return
    table = sql.Identifier(source.schema, source.table)
    statement = (
        sql.SQL("ALTER PUBLICATION {} ADD TABLE {}")
        if exists
        else sql.SQL("CREATE PUBLICATION {} FOR TABLE {}")
    ).format(sql.Identifier(source.publication), table)
    try:
        conn.execute(statement)
    except psycopg.Error as exc:
        raise CdcError(
            f"publication {source.publication} does not cover {source.qualified_table} and"
            f" could not be {'altered' if exists else 'created'}: {error_gist(exc)}"
        ) from exc


def _ensure_slot(conn: psycopg.Connection[Any], slot: str, database: str) -> tuple[int, bool]:
    row = conn.execute(
        """
        SELECT plugin, database, active_pid, wal_status, confirmed_flush_lsn::text
        FROM pg_replication_slots WHERE slot_name = %s
        """,
        (slot,),
    ).fetchone()
    if row is None:
        try:
            created = conn.execute(
                "SELECT lsn::text FROM pg_create_logical_replication_slot(%s, 'pgoutput')", (slot,)
            ).fetchone()
        except psycopg.Error as exc:
            raise CdcError(f"cannot create replication slot {slot}: {error_gist(exc)}") from exc
        assert created is not None
        return parse_lsn(str(created[0])), True
    plugin, slot_db, active_pid, wal_status, confirmed = row
    problem = slot_problem(
        slot=slot, database=database, plugin=plugin, slot_database=slot_db,
        active_pid=active_pid, wal_status=wal_status,
    )  # fmt: skip
    if problem:
        raise CdcError(problem)
    return parse_lsn(str(confirmed)), False
