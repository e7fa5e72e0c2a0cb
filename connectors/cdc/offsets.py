"""The change topic's end offsets when a stream starts: the floor of its watermark records.

A watermark record lists, per partition, an offset below which every change
committed before its time lies. Offsets acknowledged during this run are
known; what an earlier run wrote is not, yet it is all below each
partition's end offset *now*: the slot resumes after what was confirmed, and
confirmed means Kafka acknowledged it (``acks=all``: below the high
watermark). Records an earlier run left in flight either made it (below the
end offset) or are sent again by this run (acknowledged, so counted then). So
seeding each partition with its end offset at start lets every record list
every partition — a partition left out would read as "unknown, hold".
"""

from __future__ import annotations

import uuid
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

from connectors.errors import CdcError


def end_offsets(kafka_conf: dict[str, Any], topic: str, timeout_s: float = 10.0) -> dict[int, int]:
    """Partition -> high watermark (the next offset to be written) of every partition."""
    consumer = Consumer(
        {**kafka_conf, "group.id": f"quoteflow-cdc-offsets-{uuid.uuid4().hex[:8]}",
         "enable.auto.commit": False}
    )  # fmt: skip
    try:
        metadata = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
        if metadata is None or metadata.error is not None or not metadata.partitions:
            raise CdcError(f"topic {topic} does not exist: run `quoteflow topics create`")
        return {
            p: int(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s)[1])
            for p in sorted(metadata.partitions)
        }
    except KafkaException as exc:
        raise CdcError(f"cannot read the end offsets of {topic}: {exc}") from exc
    finally:
        consumer.close()
