"""The heartbeat's statement: a time no commit still to come in the WAL can be stamped before.

A heartbeat is a non-transactional WAL message; the stream publishes its
content as the source watermark once every event before it is in Kafka. The
promise is "every change committed before watermark_ms has been read", so the
content must be a time T such that every commit record *after* the heartbeat
in the WAL carries a commit time >= T.

The server's clock alone is not such a time. PostgreSQL stamps a commit
(``RecordTransactionCommit``: the stop timestamp) *before* it inserts the commit
record, so a commit stamped at Tc < H can land after a heartbeat whose clock
read H (``tests/test_connectors/test_heartbeat.py`` holds that window open).

What the statement does, in this order:

1. ``taken := clock_timestamp()``;
2. reads ``pg_stat_activity`` (one snapshot per transaction): the oldest
   ``xact_start`` of the *other* client backends of this database that hold a
   transaction id and are not idle in their transaction;
3. writes the heartbeat with ``least(taken, that oldest start)``, floored to ms.

Why it holds. Take a commit C whose record comes after the heartbeat's. C had
not inserted its record when the heartbeat inserted its own, hence not at the
read (2) either, so at (2) C's backend either (a) held its xid and was running
(a commit runs inside the backend's COMMIT or statement: state ``active``),
then C's commit time >= its ``xact_start`` >= the value written; or (b) was
idle in its transaction or had no xid yet, then it stamps C only after (2),
which is after ``taken`` >= the value written. A transaction's clock readings
are ordered with the heartbeat's because they share the server's clock.
Transactions of other databases never reach this database's slot, and
``idle in transaction`` sessions do not hold the watermark back (a long open
transaction would otherwise stall it for nothing: it stamps its commit later).

Limits: sessions of another role are hidden in ``pg_stat_activity`` unless the
connector's role has ``pg_read_all_stats`` (or is superuser): the stream says
so at start (:func:`sees_all_sessions`). Prepared transactions (two-phase
commit) are stamped by ``COMMIT PREPARED``'s backend, which holds no xid of its
own; the QMS does not use them (``max_prepared_transactions`` is 0 by default).
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from connectors.cdc.watermarks import HEARTBEAT_PREFIX

_HEARTBEAT = """
DO $heartbeat$
DECLARE
    taken timestamptz := clock_timestamp();
    oldest timestamptz;
BEGIN
    SELECT min(a.xact_start) INTO oldest
      FROM pg_stat_activity a
     WHERE a.pid <> pg_backend_pid()
       AND a.datname = current_database()
       AND a.backend_type = 'client backend'
       AND a.backend_xid IS NOT NULL
       AND coalesce(a.state, '') NOT IN ('idle in transaction', 'idle in transaction (aborted)');
    PERFORM pg_logical_emit_message(
        false, {prefix}, floor(extract(epoch FROM least(taken, oldest)) * 1000)::bigint::text);
END
$heartbeat$
"""


def write_heartbeat(conn: psycopg.Connection[Any]) -> None:
    """One heartbeat into the WAL (``conn`` in autocommit: one transaction per heartbeat)."""
    conn.execute(sql.SQL(_HEARTBEAT).format(prefix=sql.Literal(HEARTBEAT_PREFIX)))


def sees_all_sessions(conn: psycopg.Connection[Any]) -> bool:
    """Whether this role sees every session's transaction in ``pg_stat_activity``."""
    row = conn.execute(
        "SELECT rolsuper OR pg_has_role('pg_read_all_stats', 'USAGE')"
        " FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    return bool(row and row[0])


def heartbeat_statement() -> str:
    """The heartbeat as one SQL text, for a process that runs it on its own connection:
    Debezium's ``heartbeat.action.query`` (:mod:`connectors.debezium.watermarks`)."""
    return sql.SQL(_HEARTBEAT).format(prefix=sql.Literal(HEARTBEAT_PREFIX)).as_string(None)
