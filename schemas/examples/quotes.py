"""Examples of the QMS quotes change topic (qms.public.quotes): key, row and each op."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from schemas.debezium import zoned_timestamp
from schemas.examples.common import CEST, Record, merge
from schemas.examples.envelope import envelope, source


def quote_key(quote_id: int = 1_000_042) -> Record:
    """Key of a qms.public.quotes change event."""
    return {"quote_id": quote_id}


def quote_value(**overrides: Any) -> Record:
    """One row of the QMS quotes table."""
    return merge(
        {
            "quote_id": 1_000_042,
            "quote_ref": "Q-2024-000042",
            "customer_id": 77_001,
            "product_code": "MOTOR-COMP",
            "channel": "WEB",
            "premium": Decimal("612.37"),
            "currency": "GBP",
            "status": "QUOTED",
            "valid_until": date(2024, 7, 31),
            "created_at": zoned_timestamp(datetime(2024, 7, 1, 9, 15, 3, 123456, tzinfo=UTC)),
            # A CEST wall-clock time on purpose: it becomes "2024-07-01T09:15:03.654321Z".
            "updated_at": zoned_timestamp(datetime(2024, 7, 1, 11, 15, 3, 654321, tzinfo=CEST)),
        },
        overrides,
    )


def quote_created() -> Record:
    """Insert of a new quote (op c)."""
    return envelope("c", None, quote_value(), source())


def quote_accepted() -> Record:
    """Update QUOTED -> ACCEPTED, with transaction metadata (op u)."""
    before = quote_value()
    after = quote_value(
        status="ACCEPTED",
        updated_at=zoned_timestamp(datetime(2024, 7, 1, 9, 40, 0, 1, tzinfo=UTC)),
    )
    transaction = {"id": "5679:24024100", "total_order": 2, "data_collection_order": 1}
    return envelope("u", before, after, source(txId=5679, lsn=24_024_100), transaction)


def quote_deleted() -> Record:
    """Delete (op d): only ``before``."""
    return envelope("d", quote_value(), None, source(txId=5680, lsn=24_024_300))


def quote_snapshot_read() -> Record:
    """Snapshot read (op r): no transaction id or LSN."""
    value = quote_value(quote_id=999, quote_ref="Q-2023-000999", premium=Decimal("0.00"))
    return envelope("r", None, value, source(snapshot="true", txId=None, lsn=None, sequence=None))


def quotes_truncated() -> Record:
    """Truncate (op t): neither before nor after."""
    return envelope("t", None, None, source(txId=5700, lsn=24_030_000))
