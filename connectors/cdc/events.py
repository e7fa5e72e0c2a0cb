"""From decoded pgoutput changes to the Kafka records of Debezium's layout: pure.

The rules, as Debezium's PostgreSQL connector applies them with its defaults:

* insert -> ``c`` with ``after``;
* update -> ``u`` with ``before`` (the whole old row: REPLICA IDENTITY FULL)
  and ``after``; if the primary key changed, ``d`` (old row) + tombstone (old
  key) + ``c`` (new row) instead, so the old key's history ends;
* delete -> ``d`` with ``before``, then a tombstone (key, null value), which
  lets a compacted topic forget the key;
* truncate -> ``t`` with neither row and no key; on a compacted topic (which
  refuses records without a key) under the *reserved key*: every primary-key
  column :data:`RESERVED_KEY_VALUE`. The topic then keeps the latest truncate
  under it, and compaction keeps the order of what survives, so a reader from
  the beginning applies it after the rows it removed. A real row under that key
  would replace it (and read as a customer): it is held back, and the source
  says so. A compacted topic whose key is not integers gets no truncate.

Every event's ``source`` block carries the change's position: its own LSN,
the transaction id, the commit time, and Debezium's ``sequence``
(``[lastCommitLsn, lsn]`` as a JSON array of decimal strings), so a consumer
can tell a duplicate (same position) from a new change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from connectors.cdc.pgoutput import UNCHANGED_TOAST, Relation, Value
from connectors.cdc.values import UnrepresentableValue, converter

Row = dict[str, Any]


class RowError(ValueError):
    """A row that cannot become an event (names the table and column, never values)."""


@dataclass(frozen=True, slots=True)
class Capture:
    """One captured table and where its events go."""

    schema: str
    table: str
    topic: str
    key_schema: str
    value_schema: str
    primary_key: tuple[str, ...]
    server_name: str  # Debezium's topic.prefix: the topic is <server_name>.<schema>.<table>
    database: str
    compacted: bool  # the broker refuses records without a key

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.table}"


@dataclass(frozen=True, slots=True)
class Position:
    """Where a change is in the source: what makes a redelivered event recognisable."""

    lsn: int
    #: The end LSN of the previous transaction read (where its COMMIT message starts in
    #: the stream), as Debezium's lastCommitLsn; None before the first one of a new slot.
    last_commit_lsn: int | None
    tx_id: int
    commit_ms: int

    def sequence(self) -> str:
        """Debezium's ``["lastCommitLsn","lsn"]`` (decimal digits need no JSON escaping)."""
        last = "null" if self.last_commit_lsn is None else f'"{self.last_commit_lsn}"'
        return f'[{last},"{self.lsn}"]'


@dataclass(frozen=True, slots=True)
class Event:
    """One Kafka record: ``value`` None is a tombstone, ``key`` None a keyless record."""

    topic: str
    key: Row | None
    value: Row | None
    op: Literal["c", "u", "d", "t", "r"] | None  # None: tombstone


#: The primary-key value a TRUNCATE is published under on a compacted topic (the
#: contract with the processor's router; see docs/cdc.md). -1: identities start at 1.
RESERVED_KEY_VALUE = -1
#: int8, int2, int4: the key types that can carry :data:`RESERVED_KEY_VALUE`.
_INTEGER_OIDS = frozenset({20, 21, 23})


class RowDecoder:
    """Turns a relation's tuples into rows, one converter per column (built once)."""

    def __init__(self, relation: Relation, capture: Capture) -> None:
        names = [c.name for c in relation.columns]
        missing = [k for k in capture.primary_key if k not in names]
        if missing:
            raise RowError(
                f"table {capture.qualified_name}: primary key column {', '.join(missing)}"
                " is not in the replicated row"
            )
        self.relation = relation
        self.capture = capture
        self._columns = [(c.name, converter(c.type_oid)) for c in relation.columns]
        self._types = {c.name: c.type_oid for c in relation.columns}
        #: The key a TRUNCATE goes under (None: keyless, or no reserved value for the key).
        self.truncate_key: Row | None = None
        if capture.compacted and all(self._types[k] in _INTEGER_OIDS
                                     for k in capture.primary_key):  # fmt: skip
            self.truncate_key = {k: RESERVED_KEY_VALUE for k in capture.primary_key}

    def row(self, values: Sequence[Value], fill_from: Row | None = None) -> Row:
        """The row; unchanged TOASTed values are taken from ``fill_from`` (the old row)."""
        if len(values) != len(self._columns):
            raise RowError(
                f"table {self.capture.qualified_name}: {len(values)} values for"
                f" {len(self._columns)} columns"
            )
        row: Row = {}
        for (name, convert), text in zip(self._columns, values, strict=True):
            if text is UNCHANGED_TOAST:
                if fill_from is None or name not in fill_from:
                    raise RowError(
                        f"table {self.capture.qualified_name}: column {name} is an unchanged"
                        " TOASTed value and no old row carries it (needs REPLICA IDENTITY FULL)"
                    )
                row[name] = fill_from[name]
            elif text is None:
                row[name] = None
            else:
                try:
                    row[name] = convert(str(text))
                except (UnrepresentableValue, ValueError):
                    # Not the converter's message: it quotes the value, and rows hold
                    # personal data that must not reach logs (the LSN locates the row).
                    raise RowError(
                        f"table {self.capture.qualified_name}, column {name}: a value of type"
                        f" oid {self._types[name]} has no form in the change-event schema"
                        " (a special value such as not-a-number or an unbounded date?)"
                    ) from None
        return row

    def key(self, row: Mapping[str, Any]) -> Row:
        return {name: row[name] for name in self.capture.primary_key}


def source_block(
    capture: Capture, position: Position, *, version: str, snapshot: str = "false"
) -> Row:
    return {
        "version": version,
        "connector": "postgresql",
        "name": capture.server_name,
        "ts_ms": position.commit_ms,
        "snapshot": snapshot,
        "db": capture.database,
        "sequence": position.sequence(),
        "schema": capture.schema,
        "table": capture.table,
        "txId": position.tx_id,
        "lsn": position.lsn,
        "xmin": None,
    }


def _envelope(
    op: str, before: Row | None, after: Row | None, source: Row, now_ms: int
) -> Row:
    return {
        "before": before,
        "after": after,
        "source": source,
        "op": op,
        "ts_ms": now_ms,
        "transaction": None,  # Debezium's default: provide.transaction.metadata=false
    }


def insert_events(decoder: RowDecoder, after: Row, source: Row, now_ms: int) -> list[Event]:
    topic = decoder.capture.topic
    return [Event(topic, decoder.key(after), _envelope("c", None, after, source, now_ms), "c")]


def update_events(
    decoder: RowDecoder, before: Row | None, after: Row, source: Row, now_ms: int
) -> list[Event]:
    topic = decoder.capture.topic
    new_key = decoder.key(after)
    if before is not None:
        old_key = decoder.key(before)
        if old_key != new_key:
            return [
                Event(topic, old_key, _envelope("d", before, None, source, now_ms), "d"),
                Event(topic, old_key, None, None),
                Event(topic, new_key, _envelope("c", None, after, source, now_ms), "c"),
            ]
    return [Event(topic, new_key, _envelope("u", before, after, source, now_ms), "u")]


def delete_events(decoder: RowDecoder, before: Row, source: Row, now_ms: int) -> list[Event]:
    topic = decoder.capture.topic
    key = decoder.key(before)
    return [
        Event(topic, key, _envelope("d", before, None, source, now_ms), "d"),
        Event(topic, key, None, None),
    ]


def read_events(decoder: RowDecoder, row: Row, source: Row, now_ms: int) -> list[Event]:
    """A snapshot row: ``r`` with ``after`` only."""
    topic = decoder.capture.topic
    return [Event(topic, decoder.key(row), _envelope("r", None, row, source, now_ms), "r")]


def truncate_events(decoder: RowDecoder, source: Row, now_ms: int) -> list[Event]:
    """The table's ``t`` event (none on a compacted topic without a reserved key)."""
    capture = decoder.capture
    if capture.compacted and decoder.truncate_key is None:
        return []
    envelope = _envelope("t", None, None, source, now_ms)
    return [Event(capture.topic, decoder.truncate_key, envelope, "t")]


def without_reserved_keys(decoder: RowDecoder, events: list[Event]) -> list[Event]:
    """``events`` but those of a row under the truncates' reserved key (see the module)."""
    reserved = decoder.truncate_key
    if reserved is None:
        return events
    return [e for e in events if e.key != reserved]
