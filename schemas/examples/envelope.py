"""The Debezium change-event frame both CDC topics share: the source block and the envelope."""

from __future__ import annotations

from typing import Any

from schemas.examples.common import Record, merge


def source(table: str = "quotes", db: str = "qms", **overrides: Any) -> Record:
    """Debezium-style source block of a streamed (not snapshot) change."""
    return merge(
        {
            "version": "0.1.0",
            "connector": "postgresql",
            "name": db,
            "ts_ms": 1_719_825_303_123,
            "snapshot": "false",
            "db": db,
            "sequence": '["24023800","24023928"]',
            "schema": "public",
            "table": table,
            "txId": 5678,
            "lsn": 24_023_928,
            "xmin": None,
        },
        overrides,
    )


def envelope(
    op: str,
    before: Record | None,
    after: Record | None,
    src: Record,
    transaction: Record | None = None,
) -> Record:
    """A Debezium envelope around ``before``/``after``."""
    return {
        "before": before,
        "after": after,
        "source": src,
        "op": op,
        "ts_ms": src["ts_ms"] + 412,
        "transaction": transaction,
    }
