"""The one shape of a ``quoteflow.dead-letter`` record, whichever stage gives up on a message."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def dead_letter(topic: str, partition: int, offset: int, key: bytes | None,
                value: bytes | None, *, stage: str, error_type: str, error_message: str,
                attempts: int, now_ms: int,
                headers: Sequence[tuple[str, bytes | None]] = ()) -> dict[str, Any]:  # fmt: skip
    """The raw message and why it was given up on; ``error_message`` must hold no personal
    data (callers pass their own words or a masked excerpt, never the record's values)."""
    return {
        "source_topic": topic, "source_partition": partition, "source_offset": offset,
        "key": key, "value": value,
        "headers": [{"key": k, "value": v} for k, v in headers],
        "stage": stage, "error_type": error_type, "error_message": error_message[:1000],
        "attempts": attempts, "failed_at": now_ms,
    }  # fmt: skip
