"""The delivery ledger's rows and its connection: what a row says, and how it is read.

Shared by the sink's claim and outcome path (:mod:`.ledger`) and a person's
decisions on it (:mod:`.ledger_decisions`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Self

import psycopg
from psycopg.rows import TupleRow

from connectors.errors import SinkError
from connectors.sink.migrate import migrate
from quoteflow.pgerrors import error_gist

State = Literal["pending", "sent", "rejected", "failed", "ambiguous", "expired", "duplicate"]
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
    #: The quote: at most one offer per quote. None only for a trigger without one.
    quote_id: int | None = None
    #: The ownership epoch of ``partition`` when it was read (:meth:`Ledger.assign`).
    epoch: int = 0


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
    quote_id: int | None = None
    duplicate_of: str | None = None
    owner: str | None = None
    epoch: int = 0
    late_outcome: dict[str, Any] | None = None

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
    #: The claim this outcome is for: its epoch fences the write, and a sent trigger
    #: whose row a person removed meanwhile is written back from it.
    claim: Claim | None = None


SELECT = """
SELECT trigger_id, provider, customer_id, state, request_id, dedupe_id, attempts, http_status,
       esp_message_id, error, source_topic, source_partition, source_offset, claimed_at,
       first_attempt_at, completed_at, receipt_at, resolution, quote_id, duplicate_of, owner,
       epoch, late_outcome
FROM sink_deliveries
"""
BY_IDS = SELECT + "WHERE trigger_id = ANY(%s)"
OFFERS = SELECT + "WHERE quote_id = ANY(%s) AND state <> 'duplicate'"


@dataclass(frozen=True, slots=True)
class Late:
    """Outcomes whose claim was no longer this sink's when they were recorded."""

    #: Kept on the row that another sink (or a person) now holds (``late_outcome``).
    kept: list[str]
    #: Written back: the trigger was (maybe) sent and its row was gone.
    restored: list[str]
    #: Neither: nothing to keep them on (not sent, row gone). Logged by the caller.
    dropped: list[str]


class LedgerStore:
    """One connection to the ops database (autocommit: each statement atomic on its own);
    not thread-safe. ``owner`` and ``group``: see :class:`~connectors.sink.ledger.Ledger`."""

    def __init__(self, conninfo: str, owner: str | None = None, group: str | None = None
                 ) -> None:  # fmt: skip
        self.owner, self.group = owner, group
        try:
            self._conn: psycopg.Connection[TupleRow] = psycopg.connect(conninfo, autocommit=True)
            self.applied = migrate(self._conn)
        except psycopg.Error as exc:
            raise SinkError(f"the ops database is not reachable: {error_gist(exc)}") from exc

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self, query: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        try:
            cur = self._conn.execute(query.encode(), params)
            return cur.fetchall() if cur.description else []
        except psycopg.Error as exc:
            raise SinkError(f"ops database: {error_gist(exc)}") from exc

    def entries(self, trigger_ids: Iterable[str]) -> list[Entry]:
        rows = self._run(BY_IDS, [list(trigger_ids)])
        return [Entry(*row) for row in rows]

    def offers(self, quote_ids: Iterable[int | None]) -> list[Entry]:
        """The offer row (any state but duplicate) of each quote that has one."""
        rows = self._run(OFFERS, [[q for q in quote_ids if q is not None]])
        return [Entry(*row) for row in rows]
