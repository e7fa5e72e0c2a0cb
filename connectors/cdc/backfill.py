"""The requesting side of a backfill: check a ``--where``, count its rows, ask, follow, cancel.

`quoteflow snapshot` runs in a process of its own, usually beside a running
`quoteflow cdc`; everything here talks to the source database on ordinary
connections and reads the CDC's own bookkeeping (its state file, its slot),
never the CDC's memory. Every statement that carries the operator's predicate
runs in a read-only transaction with a statement timeout: a typo can fail, it
cannot write or hang the legacy database.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import psycopg
from psycopg import sql

from connectors.cdc import requests
from connectors.cdc.pgoutput import parse_lsn
from connectors.cdc.predicate import predicate_problem
from connectors.cdc.snapshot import emit_request
from connectors.cdc.sources import CdcSource
from connectors.cdc.values import SESSION_OPTIONS
from connectors.errors import CdcError
from quoteflow.pgerrors import error_gist, error_primary

#: Planning a predicate is quick; longer means something is wrong (a lock, a huge IN list).
CHECK_TIMEOUT_S = 10.0

TotalHow = Literal["counted", "estimated", "unknown"]


@dataclass(frozen=True)
class Total:
    """How many rows the snapshot should read, and how that was found out."""

    rows: int | None
    how: TotalHow

    def describe(self) -> str:
        if self.rows is None:
            return "unknown"
        return f"{self.rows:,} ({'counted' if self.how == 'counted' else 'planner estimate'})"


@dataclass(frozen=True)
class SlotStatus:
    """The CDC's replication slot, as the server sees it: is a `quoteflow cdc` reading it?"""

    slot: str
    exists: bool
    active: bool = False
    confirmed_lsn: int = 0


def check_where(conninfo: str, source: CdcSource, where: str) -> Total:
    """Refuse a predicate that is not one boolean condition on ``source``'s table; else
    the planner's estimate of the rows it matches.

    PostgreSQL plans (never runs) ``SELECT 1 FROM <table> WHERE (<predicate>)``: an
    unknown column, a type error, a non-boolean or a syntax error is one line here.
    """
    problem = predicate_problem(where)
    if problem:
        raise CdcError(problem)
    statement = sql.SQL("EXPLAIN (FORMAT JSON) SELECT 1 FROM {} WHERE ({}) AND %s::boolean").format(
        _table(source), _predicate(where)
    )
    rows = _read_only(conninfo, source, statement, (True,), what="--where", timeout_s=None)
    plan = rows[0][0][0]["Plan"]
    return Total(int(plan["Plan Rows"]), "estimated")


def total_rows(
    conninfo: str, source: CdcSource, where: str | None, *, count: bool, timeout_s: float
) -> Total:
    """The rows a snapshot of ``source`` (filtered by ``where``) should read.

    ``count``: an exact ``count(*)`` (one read-only scan), falling back to the
    planner's estimate when it takes longer than ``timeout_s``; else the estimate.
    """
    estimate = (
        check_where(conninfo, source, where) if where is not None else _estimate(conninfo, source)
    )
    if not count:
        return estimate
    statement = sql.SQL("SELECT count(*) FROM {} WHERE %s::boolean").format(_table(source))
    if where is not None:
        statement += sql.SQL(" AND ({})").format(_predicate(where))
    try:
        rows = _read_only(conninfo, source, statement, (True,), what="count", timeout_s=timeout_s)
    except _TimedOut:
        return estimate
    return Total(int(rows[0][0]), "counted")


def slot_status(conninfo: str, slot: str) -> SlotStatus:
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            row = conn.execute(
                "SELECT active, confirmed_flush_lsn::text FROM pg_replication_slots"
                " WHERE slot_name = %s",
                (slot,),
            ).fetchone()
    except psycopg.Error as exc:
        raise CdcError(f"cannot read replication slot {slot}: {error_gist(exc)}") from exc
    if row is None:
        return SlotStatus(slot, exists=False)
    return SlotStatus(slot, True, bool(row[0]), parse_lsn(str(row[1])) if row[1] else 0)


def request_cancel(conninfo: str, source: CdcSource, request_id: str, slot: str) -> str:
    """Ask the CDC of ``slot`` to stop snapshot ``request_id`` after its chunk in flight;
    returns the LSN."""
    request = requests.CancelRequest(source.qualified_table, request_id, slot)
    return emit_request(conninfo, request)


# -- internals ----------------------------------------------------------------------------
class _TimedOut(Exception):
    """A count ran past its statement timeout."""


def _table(source: CdcSource) -> sql.Identifier:
    return sql.Identifier(source.schema, source.table)


def _predicate(where: str) -> sql.SQL:
    """The checked predicate as query text; "%" doubled: the queries carry parameters."""
    return sql.SQL(where.replace("%", "%%"))


def _estimate(conninfo: str, source: CdcSource) -> Total:
    """pg_class.reltuples: what the last ANALYZE or VACUUM counted (-1: never)."""
    statement = sql.SQL(
        "SELECT c.reltuples FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = %s"
    )
    rows = _read_only(
        conninfo, source, statement, (source.schema, source.table), what="estimate",
        timeout_s=CHECK_TIMEOUT_S,
    )  # fmt: skip
    if not rows or rows[0][0] is None or float(rows[0][0]) < 0:
        return Total(None, "unknown")
    return Total(int(rows[0][0]), "estimated")


def _read_only(
    conninfo: str,
    source: CdcSource,
    statement: sql.Composed | sql.SQL,
    params: tuple[Any, ...],
    *,
    what: str,
    timeout_s: float | None,
) -> list[Any]:
    """``statement`` in a read-only transaction with the CDC's session settings (a date in
    the predicate means what it means to the snapshot) and a statement timeout.

    Every statement has parameters, so psycopg uses the extended protocol, which
    refuses a second statement outright; ``what`` names the statement in the error.
    """
    timeout_ms = int((timeout_s or CHECK_TIMEOUT_S) * 1000)
    table = source.qualified_table
    try:
        with (
            psycopg.connect(conninfo, autocommit=True, options=SESSION_OPTIONS) as conn,
            conn.transaction(),
        ):
            conn.execute("SET TRANSACTION READ ONLY")
            conn.execute(sql.SQL("SET LOCAL statement_timeout = {}").format(timeout_ms))
            return conn.execute(statement, params).fetchall()
    except psycopg.errors.QueryCanceled as exc:
        if what == "count":
            raise _TimedOut from exc
        raise CdcError(f"{what} took longer than {timeout_ms / 1000:g}s on {table}") from exc
    except psycopg.errors.SyntaxError as exc:
        raise CdcError(f"{what} is not a valid condition on {table}: {error_primary(exc)}") from exc
    except (psycopg.errors.DataError, psycopg.errors.ProgrammingError) as exc:
        # Unknown column or function, wrong type, a non-boolean condition, a bad literal.
        raise CdcError(f"{what} is not a valid condition on {table}: {error_primary(exc)}") from exc
    except psycopg.Error as exc:
        raise CdcError(f"{what} on {table} failed: {error_primary(exc)}") from exc

