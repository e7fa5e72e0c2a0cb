"""The router's decisions without a broker: markers, unknown partitions, rebalances, aborts.

The Kafka edges are faked: records are confluent-kafka's own ``Message`` objects
(constructible for tests), the consumers and the producer are ``unittest.mock``
doubles (confluent-kafka has none of its own short of librdkafka's mock cluster,
a broker in all but name), and the serde is a table of the envelopes the test made.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Any
from unittest.mock import MagicMock, call

import pytest
from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, Message, TopicPartition

from quoteflow.settings import load_settings
from schemas import examples
from schemas.errors import SerdeError
from streams import router as router_module
from streams.core.items import Markers, decode_item
from streams.core.model import QuoteChange
from streams.core.watermarks import Marker, SourceWatermark
from streams.router import Router, Topics, vouched_markers

pytestmark = pytest.mark.unit

QUOTES, CUSTOMERS = "p.qms.public.quotes", "p.crm.public.customers"
WATERMARKS, BY_CUSTOMER, DEAD_LETTER = "p.quoteflow.cdc.watermarks", "app-by-customer", "p.dl"
TOPICS = Topics(sources={QUOTES: "qms", CUSTOMERS: "crm"}, quotes=QUOTES, watermarks=WATERMARKS,
                by_customer=BY_CUSTOMER, dead_letter=DEAD_LETTER)  # fmt: skip
PARTITIONS = 2  # by-customer


class FakeSerde:
    """Decodes the values the test registered; anything else is undecodable."""

    def __init__(self) -> None:
        self.values: dict[bytes, dict[str, Any]] = {}

    def register(self, value: bytes, record: dict[str, Any]) -> bytes:
        self.values[value] = record
        return value

    def decode(self, schema: str, value: bytes, *, topic: str) -> dict[str, Any]:
        if value not in self.values:
            raise SerdeError(f"cannot decode {value!r} as {schema}")
        return self.values[value]

    def encode(self, schema: str, record: dict[str, Any], *, topic: str) -> bytes:
        return f"{schema}:{record['error_type']}".encode()


@pytest.fixture
def serde() -> FakeSerde:
    return FakeSerde()


@pytest.fixture
def router(clean_env: pytest.MonkeyPatch, serde: FakeSerde) -> Iterator[Router]:
    """A router on the default settings (exactly-once) with its three clients faked."""
    clean_env.setattr(router_module, "Consumer", lambda conf: MagicMock(name=conf["group.id"]))
    clean_env.setattr(router_module, "Producer", lambda conf: MagicMock(name="producer"))
    router = Router(load_settings(), serde, TOPICS, app_id="app",  # type: ignore[arg-type]
                    partitions=PARTITIONS, clock=lambda: 1_795_428_000.0)  # fmt: skip
    reader: Any = router.watermark_reader
    reader.poll.return_value = None  # nothing published
    yield router


def quote(serde: FakeSerde, partition: int, offset: int, *, customer_id: int = 7) -> Message:
    """A change record of the quotes topic: quote ``offset`` of ``customer_id``, created."""
    row = examples.quote_value(quote_id=1000 + offset, customer_id=customer_id)
    envelope = examples.envelope("c", None, row, examples.source(lsn=5000 + offset))
    value = serde.register(f"quote-{partition}-{offset}".encode(), envelope)
    return Message(topic=QUOTES, partition=partition, offset=offset, key=b"k", value=value)


def publish_watermark(router: Router, serde: FakeSerde, source: str, watermark_ms: int,
                      offsets: dict[int, int]) -> None:  # fmt: skip
    """A CDC watermark record, as the router's watermark reader polls it next."""
    record = {"source": source, "watermark_ms": watermark_ms,
              "offsets": [{"partition": p, "offset": o} for p, o in offsets.items()]}  # fmt: skip
    value = serde.register(f"wm-{source}-{watermark_ms}".encode(), record)
    message = Message(topic=WATERMARKS, partition=0, offset=watermark_ms, value=value)
    reader: Any = router.watermark_reader
    reader.poll.side_effect = itertools.chain([message], itertools.repeat(None))


def assign(router: Router, committed: dict[tuple[str, int], int]) -> None:
    """A rebalance hands the router these partitions, committed at these offsets."""
    consumer = MagicMock()
    consumer.committed.return_value = [TopicPartition(t, p, o) for (t, p), o in committed.items()]
    router._assigned(consumer, [TopicPartition(t, p) for t, p in committed])


def turn(router: Router, messages: Sequence[Message] = ()) -> list[tuple[str, int | None, Any]]:
    """One loop turn over ``messages``: what it produced (topic, partition, decoded item)."""
    producer: Any = router.producer
    producer.reset_mock()
    router._read_watermarks()
    router._route(list(messages))
    sent = []
    for produced in producer.produce.call_args_list:
        topic, value = produced.args[0], produced.kwargs["value"]
        item = decode_item(value) if topic == BY_CUSTOMER else value
        sent.append((topic, produced.kwargs.get("partition"), item))
    return sent


def markers(sent: list[tuple[str, int | None, Any]]) -> list[tuple[int | None, tuple[Marker, ...]]]:
    return [(partition, item.markers) for _, partition, item in sent if isinstance(item, Markers)]


# -- markers follow committed positions -----------------------------------------------------
def test_markers_wait_until_the_committed_positions_pass_the_watermarks_offsets(
    router: Router, serde: FakeSerde
) -> None:
    assign(router, {(QUOTES, 0): 0})
    publish_watermark(router, serde, "qms", 5_000, {0: 3})  # below offset 3 of partition 0

    sent = turn(router, [quote(serde, 0, 0), quote(serde, 0, 1)])
    assert [type(item) for _, _, item in sent] == [QuoteChange, QuoteChange]
    assert markers(sent) == [] and router.sent == {}

    sent = turn(router, [quote(serde, 0, 2)])  # position 3: everything below it forwarded
    marker = (Marker("qms", 0, 5_000),)
    assert isinstance(sent[0][2], QuoteChange)  # the change first, then its markers
    assert markers(sent) == [(p, marker) for p in range(PARTITIONS)]  # to every partition
    assert router.sent == {("qms", 0): 5_000}
    producer: Any = router.producer
    # One transaction: the changes, the markers and the input offset together.
    assert [c[0] for c in producer.method_calls if c[0] != "produce"] == [
        "begin_transaction", "send_offsets_to_transaction", "commit_transaction"]
    (offsets, _metadata, _timeout) = producer.send_offsets_to_transaction.call_args.args
    assert [(tp.topic, tp.partition, tp.offset) for tp in offsets] == [(QUOTES, 0, 3)]

    assert markers(turn(router)) == []  # markers only move forward: none again


def test_a_newer_record_the_position_has_not_passed_does_not_hold_an_older_one(
    router: Router, serde: FakeSerde
) -> None:
    assign(router, {(QUOTES, 0): 4})
    publish_watermark(router, serde, "qms", 5_000, {0: 4})
    turn(router)
    publish_watermark(router, serde, "qms", 6_000, {0: 9})  # ahead of the position
    assert markers(turn(router)) == []
    sent = turn(router, [quote(serde, 0, o) for o in range(4, 9)])
    assert markers(sent)[0][1] == (Marker("qms", 0, 6_000),)


def test_a_partition_the_watermark_record_does_not_list_holds(
    router: Router, serde: FakeSerde
) -> None:
    """Absent is unknown, not empty: no marker for it on that record's word."""
    assign(router, {(QUOTES, 0): 10, (QUOTES, 1): 10})
    publish_watermark(router, serde, "qms", 5_000, {0: 5})  # partition 1 not listed
    sent = turn(router)
    assert {m for _, ms in markers(sent) for m in ms} == {Marker("qms", 0, 5_000)}
    assert router.sent == {("qms", 0): 5_000}


def test_vouched_markers_per_source_and_partition() -> None:
    recent = {"qms": [SourceWatermark("qms", 5_000, {0: 3, 1: 8})],
              "crm": [SourceWatermark("crm", 4_000, {0: 1})]}  # fmt: skip
    positions = {(QUOTES, 0): 3, (QUOTES, 1): 7, (CUSTOMERS, 0): 2}
    assert vouched_markers(positions, TOPICS.sources, recent, {}) == [
        Marker("qms", 0, 5_000), Marker("crm", 0, 4_000)]  # qms 1 short of its offset
    assert vouched_markers(positions, TOPICS.sources, recent, {("qms", 0): 5_000}) == [
        Marker("crm", 0, 4_000)]  # already sent
    assert vouched_markers(positions, TOPICS.sources, {"qms": [], "crm": []}, {}) == []


# -- rebalances --------------------------------------------------------------------------------
def test_a_revoked_partition_vouches_for_nothing_and_a_reassigned_one_starts_over(
    router: Router, serde: FakeSerde
) -> None:
    assign(router, {(QUOTES, 0): 3})
    publish_watermark(router, serde, "qms", 5_000, {0: 3})
    assert markers(turn(router))  # position 3: marker sent

    router._revoked(MagicMock(), [TopicPartition(QUOTES, 0)])
    assert router.base == {}
    publish_watermark(router, serde, "qms", 6_000, {0: 4})
    # A record of the revoked partition still in the batch moves no position of ours.
    assert markers(turn(router, [quote(serde, 0, 3)])) == []
    assert router.base == {}

    # Back, committed at 4 by another member meanwhile: what it sent was its own.
    assign(router, {(QUOTES, 0): 4})
    assert router.base == {(QUOTES, 0): 4} and router.sent == {}
    assert markers(turn(router))[0][1] == (Marker("qms", 0, 6_000),)


def test_a_partition_never_committed_starts_at_zero(router: Router, serde: FakeSerde) -> None:
    assign(router, {(QUOTES, 0): -1001})  # OFFSET_INVALID: no committed offset yet
    assert router.base == {(QUOTES, 0): 0}
    publish_watermark(router, serde, "qms", 5_000, {0: 0})  # nothing written yet
    assert markers(turn(router))[0][1] == (Marker("qms", 0, 5_000),)


# -- aborted transactions ----------------------------------------------------------------------
def test_an_aborted_transaction_rewinds_to_the_committed_offsets(
    router: Router, serde: FakeSerde
) -> None:
    assign(router, {(QUOTES, 0): 0, (QUOTES, 1): 0})
    publish_watermark(router, serde, "qms", 5_000, {0: 2, 1: 0})
    producer: Any = router.producer
    consumer: Any = router.consumer
    abortable = KafkaError(KafkaError._FENCED, "fenced epoch", txn_requires_abort=True)
    producer.commit_transaction.side_effect = KafkaException(abortable)
    consumer.assignment.return_value = [TopicPartition(QUOTES, 0), TopicPartition(QUOTES, 1)]
    never = -1001  # OFFSET_INVALID: partition 1 has no committed offset yet
    consumer.committed.return_value = [TopicPartition(QUOTES, 0, 0),
                                       TopicPartition(QUOTES, 1, never)]  # fmt: skip

    turn(router, [quote(serde, 0, 0), quote(serde, 0, 1)])

    producer.abort_transaction.assert_called_once_with(30)
    assert consumer.seek.call_args_list == [
        call(TopicPartition(QUOTES, 0, 0)), call(TopicPartition(QUOTES, 1, OFFSET_BEGINNING))]
    assert router.base == {(QUOTES, 0): 0, (QUOTES, 1): 0}  # the batch's positions undone
    assert router.sent == {}  # the markers of the aborted batch count as never sent

    producer.commit_transaction.side_effect = None  # read again, committed this time
    sent = turn(router, [quote(serde, 0, 0), quote(serde, 0, 1)])
    assert {m for _, ms in markers(sent) for m in ms} == {
        Marker("qms", 0, 5_000), Marker("qms", 1, 5_000)}  # fmt: skip
    assert router.base == {(QUOTES, 0): 2, (QUOTES, 1): 0}


def test_an_error_that_needs_no_abort_is_the_routers_failure(
    router: Router, serde: FakeSerde
) -> None:
    assign(router, {(QUOTES, 0): 0})
    producer: Any = router.producer
    fatal = KafkaError(KafkaError._FATAL, "fatal", fatal=True)
    producer.commit_transaction.side_effect = KafkaException(fatal)
    with pytest.raises(KafkaException):
        turn(router, [quote(serde, 0, 0)])
    producer.abort_transaction.assert_not_called()


# -- what is forwarded -------------------------------------------------------------------------
def test_an_undecodable_record_is_dead_lettered_in_the_batchs_transaction(
    router: Router, serde: FakeSerde
) -> None:
    assign(router, {(QUOTES, 0): 0})
    bad = Message(topic=QUOTES, partition=0, offset=1, key=b"k", value=b"not avro")
    sent = turn(router, [quote(serde, 0, 0, customer_id=8), bad])
    assert sent[0][:2] == (BY_CUSTOMER, 8 % PARTITIONS)  # by customer id
    assert sent[1] == (DEAD_LETTER, None, b"dead_letter:SerdeError")
    producer: Any = router.producer
    (offsets, _metadata, _timeout) = producer.send_offsets_to_transaction.call_args.args
    assert [(tp.topic, tp.partition, tp.offset) for tp in offsets] == [(QUOTES, 0, 2)]
