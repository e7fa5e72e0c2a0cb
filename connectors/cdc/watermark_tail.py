"""The newest source watermark of each source, read from the tail of the watermark topic.

The watermark records (``quoteflow.cdc.watermarks``, one partition, keyed by
source) say "every change committed before watermark_ms is in Kafka": the age
of the newest one is the honest measure of how far behind the source's clock
the change topics are, in seconds, whether or not anything changes (heartbeats
move it; a stopped CDC lets it grow). It is what ``quoteflow_cdc_lag_seconds``
reports from inside the CDC, read here from outside, by anyone.

The topic is compacted but its newest segment is not, so the newest record of
each source is looked for from the end backwards, a window at a time, and the
search gives up after :data:`MAX_SCANNED` records (a source silent for that
long is reported as such, not searched for to the beginning of time).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

from connectors.errors import CdcError

#: Records read back per window, and at most in all, before a source counts as silent.
WINDOW = 500
MAX_SCANNED = 20_000


def newest_by_key(
    records: Iterable[tuple[int, bytes | None, bytes | None]], wanted: Collection[bytes]
) -> dict[bytes, tuple[int, bytes]]:
    """The highest-offset (offset, value) of each wanted key among (offset, key, value)."""
    newest: dict[bytes, tuple[int, bytes]] = {}
    for offset, key, value in records:
        if key is None or key not in wanted or not value:
            continue
        if key not in newest or offset > newest[key][0]:
            newest[key] = (offset, value)
    return newest


def newest_records(
    client_conf: Mapping[str, Any], topic: str, keys: Collection[str], *, timeout_s: float = 10.0
) -> dict[str, bytes]:
    """The newest value of each key (a source name) in ``topic``'s partition 0, where found."""
    consumer = Consumer(
        {
            **client_conf,
            "group.id": f"quoteflow-lag-{uuid.uuid4().hex[:12]}",
            "enable.auto.commit": False,
            "isolation.level": "read_uncommitted",
            "fetch.wait.max.ms": 10,
        }
    )
    wanted = {key.encode() for key in keys}
    found: dict[bytes, tuple[int, bytes]] = {}
    try:
        try:
            low, end = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=timeout_s)
        except KafkaException as exc:
            raise CdcError(f"cannot read {topic}: {exc.args[0].str()}") from None
        stop = max(low, end - MAX_SCANNED)
        while end > stop and not wanted <= found.keys():
            start = max(stop, end - WINDOW)
            window = newest_by_key(_read(consumer, topic, start, end, timeout_s), wanted)
            for key, record in window.items():
                found.setdefault(key, record)  # a newer window's record wins
            end = start
    finally:
        consumer.close()
    return {key.decode(): value for key, (_, value) in found.items()}


def _read(
    consumer: Consumer, topic: str, start: int, end: int, timeout_s: float
) -> list[tuple[int, bytes | None, bytes | None]]:
    """Records of partition 0 in [start, end): compaction leaves gaps, so the reader's
    position, not a count, says when the window is done."""
    consumer.assign([TopicPartition(topic, 0, start)])
    records: list[tuple[int, bytes | None, bytes | None]] = []
    deadline = time.monotonic() + timeout_s
    while True:
        message = consumer.poll(0.1)
        if message is not None and message.error() is None:
            offset = message.offset() or 0
            if offset < end:
                records.append((offset, message.key(), message.value()))
            if offset >= end - 1:
                return records
        position = consumer.position([TopicPartition(topic, 0)])[0].offset
        if position >= end:
            return records
        if time.monotonic() > deadline:
            raise CdcError(
                f"reading {topic} from offset {start} to {end} took over {timeout_s:g} s"
            )
