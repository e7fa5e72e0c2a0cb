"""Read a partition back from the start: the check behind smoke runs and tests.

It reads until it has the records it expects *and* the broker reports the end
of the partition, so "exactly these records and nothing after them" is what a
caller learns — not merely "at least these".
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Literal

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from quoteflow.errors import TopicError

Isolation = Literal["read_committed", "read_uncommitted"]


def read_partition(
    client_conf: Mapping[str, str | int | float | bool],
    topic: str,
    *,
    want: int,
    partition: int = 0,
    isolation: Isolation = "read_committed",
    timeout_s: float = 30.0,
) -> list[Message]:
    """The records of one partition from offset 0: ``want`` of them, then its end."""
    consumer = Consumer(
        {
            **client_conf,
            "group.id": f"quoteflow-readback-{uuid.uuid4().hex[:12]}",
            "enable.auto.commit": False,
            "isolation.level": isolation,
            "enable.partition.eof": True,
            "fetch.wait.max.ms": 10,  # report the partition's end at once, not after 0.5 s
        }
    )
    messages: list[Message] = []
    deadline = time.monotonic() + timeout_s
    try:
        consumer.assign([TopicPartition(topic, partition, 0)])
        while time.monotonic() < deadline:
            message = consumer.poll(0.1)
            if message is None:
                continue
            error = message.error()
            if error is None:
                messages.append(message)
            elif error.code() == KafkaError._PARTITION_EOF:
                if len(messages) >= want:
                    return messages
            else:
                raise TopicError(f"reading {topic}[{partition}] failed: {error}")
    finally:
        consumer.close()
    raise TopicError(
        f"read {len(messages)} of {want} records from {topic}[{partition}] in {timeout_s:.0f}s"
    )


def high_watermark(
    client_conf: Mapping[str, str | int | float | bool], topic: str, partition: int = 0
) -> int:
    """The partition's log end offset (transaction markers included)."""
    consumer = Consumer({**client_conf, "group.id": "quoteflow-readback"})
    try:
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
    finally:
        consumer.close()
    return int(high)
