"""Examples of the CDC watermark topic: a source complete to a heartbeat, an idle one."""

from __future__ import annotations

from typing import Any

from schemas.examples.common import Record, merge


def cdc_watermark(**overrides: Any) -> Record:
    """The QMS change topic is complete up to a heartbeat at 09:15:04 UTC."""
    return merge(
        {
            "source": "qms",
            "topic": "qms.public.quotes",
            "watermark_ms": 1_719_825_304_000,
            "lsn": 24_024_512,
            "offsets": [{"partition": 0, "offset": 1_042}, {"partition": 3, "offset": 77}],
            "emitted_ms": 1_719_825_304_180,
        },
        overrides,
    )


def idle_source_watermark() -> Record:
    """A source with no change yet: complete up to the heartbeat with nothing to read."""
    return cdc_watermark(source="crm", topic="crm.public.customers", offsets=[])
