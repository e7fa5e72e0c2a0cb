"""The delivery ledger in the ops database: the durable memory of what was sent.

Every statement is one round trip over a batch (``unnest`` of arrays), made by
the dispatcher's one thread, each atomic on its own (autocommit): a claim
before the requests leave, the outcomes before the offsets are committed.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import psycopg
from psycopg.rows import TupleRow

from connectors.errors import SinkError
from connectors.sink.migrate import migrate
from quoteflow.stack.postgres.schema import error_gist

State = Literal["pending", "sent", "rejected", "failed", "ambiguous", "expired"]
FinalState = Literal["sent", "rejected", "failed", "ambiguous", "expired"]


@dataclass(frozen=True, slots=True)
class Claim:
    """The intent to send one trigger, written before any request for it leaves."""

    trigger_id: str
    provider: str
    customer_id: int
    request_id: uuid.UUID
    dedupe_id: str | None
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class Entry:
    """A ledger row as found: what happened to a trigger before."""

    trigger_id: str
    provider: str
    customer_id: int
    state: State
    request_id: uuid.UUID
    dedupe_id: str | None
    attempts: int
    http_status: int | None
    esp_message_id: str | None
    error: str | None
    topic: str
    partition: int
    offset: int
    claimed_at: datetime
    first_attempt_at: datetime | None
    completed_at: datetime | None
    receipt_at: datetime | None
    resolution: str | None

    def read_at(self, topic: str, partition: int, offset: int) -> bool:
        """Whether this entry was written for the record at that position."""
        return (self.topic, self.partition, self.offset) == (topic, partition, offset)

    def redelivered_at(self, topic: str, partition: int, offset: int) -> bool:
        """The same record read again before its receipt was committed (a crash between
        the ledger write and the Kafka commit): its receipt is still owed."""
        return self.receipt_at is None and self.read_at(topic, partition, offset)


@dataclass(frozen=True, slots=True)
class Final:
    """The outcome of one trigger, recorded once."""

    trigger_id: str
    state: FinalState
    attempts: int
    http_status: int | None
    esp_message_id: str | None
    error: str | None
    first_attempt_at: datetime | None
    completed_at: datetime


_SELECT = """
SELECT trigger_id, provider, customer_id, state, request_id, dedupe_id, attempts, http_status,
       esp_message_id, error, source_topic, source_partition, source_offset, claimed_at,
       first_attempt_at, completed_at, receipt_at, resolution
FROM sink_deliveries
"""
_BY_IDS = _SELECT + "WHERE trigger_id = ANY(%s)"
_OPEN = _SELECT + "WHERE state = %s AND resolution IS NULL ORDER BY claimed_at LIMIT %s"

# One JSON document per batch: json.dumps runs in C, where psycopg would adapt every
# element of eight arrays in Python (the dispatcher thread's time is the sink's ceiling).
_CLAIM = """
INSERT INTO sink_deliveries (trigger_id, provider, customer_id, state, request_id, dedupe_id,
                             source_topic, source_partition, source_offset)
SELECT t, p, c, 'pending', r, d, st, sp, so
FROM jsonb_to_recordset(%s::jsonb)
     AS x(t text, p text, c bigint, r uuid, d text, st text, sp int, so bigint)
ON CONFLICT (trigger_id) DO NOTHING
RETURNING trigger_id
"""

_RECORD = """
UPDATE sink_deliveries AS d
SET state = x.s, attempts = x.a, http_status = x.h, esp_message_id = x.m, error = x.e,
    first_attempt_at = x.f, completed_at = x.c
FROM jsonb_to_recordset(%s::jsonb)
     AS x(t text, s text, a int, h int, m text, e text, f timestamptz, c timestamptz)
WHERE d.trigger_id = x.t AND d.state = 'pending'
"""


#: Outcomes and the next claims in one round trip (a dispatcher turn usually has both):
#: data-modifying WITH clauses always run to completion, referenced or not.
_RECORD_AND_CLAIM = (
    "WITH recorded AS (" + _RECORD.strip() + "\nRETURNING 1)\n" + _CLAIM.strip()
)


def _final_rows(finals: Sequence[Final]) -> str:
    return json.dumps([
        {"t": f.trigger_id, "s": f.state, "a": f.attempts, "h": f.http_status,
         "m": f.esp_message_id, "e": f.error,
         "f": f.first_attempt_at.isoformat() if f.first_attempt_at else None,
         "c": f.completed_at.isoformat()}
        for f in finals
    ])  # fmt: skip


class Ledger:
    """One connection to the ops database; not thread-safe (the dispatcher owns it)."""

    def __init__(self, conninfo: str) -> None:
        try:
            self._conn: psycopg.Connection[TupleRow] = psycopg.connect(conninfo, autocommit=True)
            self.applied = migrate(self._conn)
        except psycopg.Error as exc:
            raise SinkError(f"the ops database is not reachable: {error_gist(exc)}") from exc

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self, query: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        try:
            cur = self._conn.execute(query.encode(), params)
            return cur.fetchall() if cur.description else []
        except psycopg.Error as exc:
            raise SinkError(f"ops database: {error_gist(exc)}") from exc

    def claim(self, claims: Sequence[Claim], finals: Sequence[Final] = ()) -> dict[str, Entry]:
        """Claim each trigger (recording ``finals`` in the same statement); return the
        existing entries of those already in the ledger."""
        if not claims:
            self.record(finals)
            return {}
        rows = json.dumps([
            {"t": c.trigger_id, "p": c.provider, "c": c.customer_id, "r": str(c.request_id),
             "d": c.dedupe_id, "st": c.topic, "sp": c.partition, "so": c.offset}
            for c in claims
        ])  # fmt: skip
        if finals:
            returned = self._run(_RECORD_AND_CLAIM, [_final_rows(finals), rows])
        else:
            returned = self._run(_CLAIM, [rows])
        claimed = {row[0] for row in returned}
        taken = [c.trigger_id for c in claims if c.trigger_id not in claimed]
        return {e.trigger_id: e for e in self.entries(taken)} if taken else {}

    def entries(self, trigger_ids: Iterable[str]) -> list[Entry]:
        rows = self._run(_BY_IDS, [list(trigger_ids)])
        return [Entry(*row) for row in rows]

    def reclaim(self, trigger_id: str, topic: str, partition: int, offset: int) -> None:
        """A pending leftover of a stopped sink is being sent again from this record."""
        self._run(
            "UPDATE sink_deliveries SET source_topic = %s, source_partition = %s,"
            " source_offset = %s, claimed_at = now() WHERE trigger_id = %s AND state = 'pending'",
            [topic, partition, offset, trigger_id],
        )

    def record(self, finals: Sequence[Final]) -> None:
        """Write outcomes of pending claims (a row already final is left as it is)."""
        if not finals:
            return
        self._run(_RECORD, [_final_rows(finals)])

    def receipted(self, trigger_ids: Sequence[str]) -> None:
        """Their receipts are committed to Kafka: a later read of them is a replay."""
        if trigger_ids:
            self._run("UPDATE sink_deliveries SET receipt_at = now() WHERE trigger_id = ANY(%s)"
                      " AND receipt_at IS NULL", [list(trigger_ids)])  # fmt: skip

    def release(self, trigger_ids: Sequence[str]) -> None:
        """Forget claims whose requests certainly never reached the ESP (a clean stop)."""
        if trigger_ids:
            self._run(
                "DELETE FROM sink_deliveries WHERE state = 'pending' AND trigger_id = ANY(%s)",
                [list(trigger_ids)],
            )

    def open_entries(self, state: Literal["pending", "ambiguous"], limit: int = 1000
                     ) -> list[Entry]:  # fmt: skip
        rows = self._run(_OPEN, [state, limit])
        return [Entry(*row) for row in rows]

    def resolve(self, trigger_id: str, resolution: Literal["sent", "resend"], by: str) -> Entry:
        """A person's decision on an ambiguous delivery.

        ``sent``: they found it in the ESP; it counts as sent. ``resend``: it was
        not sent; the row is removed, so the trigger is delivered the next time it
        is read (replay the sink's group to it). The decision is kept in the log
        of this call's caller; the row records who decided.
        """
        rows = self._run(_BY_IDS, [[trigger_id]])
        if not rows:
            raise SinkError(f"trigger {trigger_id} is not in the delivery ledger")
        entry = Entry(*rows[0])
        if entry.state != "ambiguous":
            raise SinkError(f"trigger {trigger_id} is {entry.state}, not ambiguous: nothing to do")
        if resolution == "sent":
            self._run(
                "UPDATE sink_deliveries SET state = 'sent', resolution = 'sent', resolved_at ="
                " now(), resolved_by = %s WHERE trigger_id = %s AND state = 'ambiguous'",
                [by, trigger_id],
            )
        else:
            self._run("DELETE FROM sink_deliveries WHERE trigger_id = %s AND state = 'ambiguous'",
                      [trigger_id])  # fmt: skip
        return entry
