"""pgoutput's row changes of the captured table, as Debezium-layout events.

The relations the publication announces become row decoders; a change of a
table this source does not capture is ignored (with a warning for its
relation), and what the compacted topic cannot carry is held back and counted.
"""

from __future__ import annotations

import logging
import time

from connectors.cdc import pgoutput as pg
from connectors.cdc.events import (
    Capture,
    Event,
    Position,
    RowDecoder,
    RowError,
    delete_events,
    insert_events,
    source_block,
    truncate_events,
    update_events,
    without_reserved_keys,
)
from connectors.cdc.stats import Stats
from connectors.errors import CdcError
from quoteflow import __version__

log = logging.getLogger("quoteflow.cdc")

Change = pg.Insert | pg.Update | pg.Delete | pg.Truncate


class Changes:
    """Owns the row decoders of the relations met in the stream."""

    def __init__(self, capture: Capture, source: str, stats: Stats) -> None:
        """``source`` is the server name, for logs."""
        self._capture, self._source, self._stats = capture, source, stats
        self._decoders: dict[int, RowDecoder | None] = {}

    def relation(self, relation: pg.Relation) -> None:
        """A relation message: how the following changes of that table are decoded."""
        self._decoders[relation.oid] = self._decoder(relation)

    def _decoder(self, relation: pg.Relation) -> RowDecoder | None:
        capture = self._capture
        if relation.qualified_name != capture.qualified_name:
            log.warning(
                "publication carries a table this source does not capture; ignored",
                extra={"table": relation.qualified_name, "source": self._source},
            )
            return None
        try:
            return RowDecoder(relation, capture)
        except RowError as exc:
            raise CdcError(str(exc)) from exc

    def events(self, message: Change, position: Position) -> list[Event]:
        """The events of one change at ``position`` (none for a table not captured)."""
        decoders, capture = self._decoders, self._capture
        now_ms = time.time_ns() // 1_000_000
        source = source_block(capture, position, version=__version__)
        if isinstance(message, pg.Truncate):
            truncated = next((d for oid in message.relation_oids if (d := decoders.get(oid))),
                             None)  # fmt: skip
            if truncated is None:
                return []
            events = truncate_events(truncated, source, now_ms)
            if not events:
                self._stats.skipped_truncates += 1
                log.warning(
                    "TRUNCATE not published: the compacted topic refuses records without a"
                    " key, and its key has no reserved value",
                    extra={"table": capture.qualified_name, "topic": capture.topic},
                )
            return events
        decoder = decoders.get(message.relation_oid)
        if decoder is None:
            return []
        try:
            if isinstance(message, pg.Insert):
                events = insert_events(decoder, decoder.row(message.new), source, now_ms)
            elif isinstance(message, pg.Update):
                full_old = message.old_kind == "O" and message.old is not None
                before = decoder.row(message.old) if full_old and message.old else None
                after = decoder.row(message.new, fill_from=before)
                events = update_events(decoder, before, after, source, now_ms)
            else:
                events = delete_events(decoder, decoder.row(message.old), source, now_ms)
        except RowError as exc:
            raise CdcError(f"{exc} (at LSN {pg.format_lsn(position.lsn)})") from exc
        kept = without_reserved_keys(decoder, events)
        if len(kept) != len(events):
            # Held back, not stopped on: the slot must move on, and the customer's quotes
            # then wait for a row and are decided UNMATCHED, which says so.
            self._stats.reserved_key_rows += 1
            log.warning(
                "a row under the truncates' reserved key was not published",
                extra={"table": capture.qualified_name, "lsn": pg.format_lsn(position.lsn)},
            )
        return kept
