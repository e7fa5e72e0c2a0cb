"""Examples of the dead-letter topic: an undecodable change event, a bare tombstone."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from schemas.examples.common import Record, merge


def dead_letter(**overrides: Any) -> Record:
    """A change event the processor could not decode."""
    return merge(
        {
            "source_topic": "qms.public.quotes",
            "source_partition": 3,
            "source_offset": 1_234_567_890_123,
            "key": b"\xc3\x01\x00\xff",
            "value": bytes(range(256)),
            "headers": [
                {"key": "traceparent", "value": b"00-4bf92f3577b34da6-00f067aa0ba902b7-01"},
                {"key": "retry", "value": None},
                {"key": "retry", "value": b""},
            ],
            "stage": "processor",
            "error_type": "DecodeError",
            "error_message": (
                "value of topic 'qms.public.quotes': not Avro single-object encoding: "
                "starts with 0001, expected c301"
            ),
            "attempts": 1,
            "failed_at": datetime(2024, 7, 1, 9, 15, 5, 1000, tzinfo=UTC),
        },
        overrides,
    )


def tombstone_dead_letter() -> Record:
    """A dead letter for a message without key, value or headers."""
    return dead_letter(key=None, value=None, headers=[])
