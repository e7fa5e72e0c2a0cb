"""The topics the processor reads, checked against the broker before a worker starts.

The watermark logic is only safe if it knows how the topics it reads are really
laid out: a partition count taken from the settings instead of the broker can
make deadlines never fire, or fire before changes that were committed in time
have been read. A worker therefore asks the broker once, at start, and refuses
to start (one line naming the topic) rather than run on a wrong assumption.
The decisions are pure functions of the reported counts; only
:func:`partition_counts` talks to Kafka.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from quoteflow.errors import TopicError
from quoteflow.settings import Settings
from streams.core.watermarks import Watermarks
from streams.errors import TopicLayoutError


def expected_watermarks(counts: Mapping[str, int], sources: Mapping[str, str]) -> Watermarks:
    """The markers a deciding partition waits for: one per partition of each change topic.

    ``counts``: topic -> partition count on the broker; ``sources``: change topic ->
    the CDC source that names it in the watermark records. The router sends a
    marker for every change partition it reads, so this must be the change
    topics' own counts, not the by-customer count: with fewer change partitions
    the watermark would wait forever for markers that never come; with more,
    markers of the extra partitions would be ignored and a quote decided before
    an acceptance there, committed in time, had been read.
    """
    missing = sorted(topic for topic in sources if topic not in counts)
    if missing:
        raise TopicLayoutError(f"topic {missing[0]} does not exist (quoteflow topics create)")
    return Watermarks.expecting({source: counts[topic] for topic, source in sources.items()})


def check_watermark_topic(counts: Mapping[str, int], watermarks: str) -> None:
    """Refuse a watermark topic that is missing or has more than one partition.

    The CDC watermark records are one ordered log per source, read from
    partition 0: with more partitions the router would read only some sources'
    records (the watermark never passes a deadline), or records out of order.
    """
    count = counts.get(watermarks)
    if count is None:
        raise TopicLayoutError(f"topic {watermarks} does not exist (quoteflow topics create)")
    if count != 1:
        raise TopicLayoutError(
            f"topic {watermarks} has {count} partitions; it must have exactly 1 (the CDC"
            " watermarks are one ordered log per source): recreate it with 1 partition"
        )


def partition_counts(settings: Settings, names: Sequence[str]) -> dict[str, int]:
    """The partition count of each named topic that exists, as the broker reports it now."""
    admin = AdminClient({**settings.kafka.as_librdkafka_dict(), "client.id": "quoteflow-streams"})
    try:
        topics = admin.list_topics(timeout=settings.topics.request_timeout_s).topics
    except KafkaException as exc:
        where = settings.kafka.bootstrap_servers
        raise TopicError(f"cannot reach Kafka at {where}: {exc.args[0]}") from None
    return {
        name: len(topics[name].partitions)
        for name in names
        if name in topics and topics[name].error is None and topics[name].partitions
    }
