"""Local table files that hold a write whose transaction never committed are rebuilt.

faust writes a table change to RocksDB at once and stores the changelog offset when
the broker has the record, before the transaction commits. A worker whose last
transaction did not commit (a stop, clean or not, at the wrong moment) left an offer
recorded locally that never went out; kept, it would stop the re-read input from
offering again. Here on a real broker: a changelog with one committed and one aborted
record, and stores whose persisted offsets name each.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from rocksdict import Options, Rdict

from quoteflow.settings import Settings
from streams.local_state import (
    OFFSET_KEY,
    StoreIdentity,
    describe_changelogs,
    invisible_records,
    prepare_tables,
    write_manifest,
)
from tests.helpers import drop_topics

pytestmark = pytest.mark.integration

TABLE = "customer-state"


@pytest.fixture
def changelog(stack: object, settings: Settings) -> Iterator[tuple[str, dict[int, int]]]:
    """Two partitions; partition 0: a committed record; partition 1: a committed and an
    aborted one. Yields the topic and, per partition, the offset of its last record."""
    topic = f"test-state-{uuid.uuid4().hex[:8]}-{TABLE}-changelog"
    admin = AdminClient(settings.kafka.as_librdkafka_dict())
    admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(30)
    producer = Producer({**settings.kafka.as_librdkafka_dict(), "acks": "all",
                         "transactional.id": f"state-{uuid.uuid4().hex[:8]}"})  # fmt: skip
    producer.init_transactions(30)
    last: dict[int, int] = {}

    def delivered(err: object, msg: object) -> None:
        last[msg.partition()] = msg.offset()  # type: ignore[attr-defined]

    producer.begin_transaction()
    for partition in (0, 1):
        producer.produce(topic, key=b"7", value=b"committed", partition=partition,
                         on_delivery=delivered)  # fmt: skip
    producer.commit_transaction(30)
    producer.begin_transaction()
    producer.produce(topic, key=b"7", value=b"offered", partition=1, on_delivery=delivered)
    producer.flush(30)
    producer.abort_transaction(30)
    yield topic, last
    drop_topics(settings, (topic,), topic)


def _store(path: Path, offset: int) -> None:
    db = Rdict(str(path), Options(raw_mode=True))
    db[b"7"] = b"state"
    db[OFFSET_KEY] = str(offset).encode()
    db.close()


def test_only_the_record_whose_transaction_aborted_is_invisible(
    settings: Settings, changelog: tuple[str, dict[int, int]]
) -> None:
    topic, last = changelog
    assert invisible_records(settings, topic, {0: last[0], 1: last[1]}) == {1}
    assert invisible_records(settings, topic, {1: last[1] - 2}) == frozenset()  # committed one


def test_prepare_tables_rebuilds_the_partition_with_an_aborted_write(
    settings: Settings, changelog: tuple[str, dict[int, int]], tmp_path: Path
) -> None:
    topic, last = changelog
    app_id = topic.removesuffix(f"-{TABLE}-changelog")
    (tid,) = [c.topic_id for c in describe_changelogs(settings, [topic]).values()]
    write_manifest(tmp_path, TABLE, StoreIdentity(app_id, topic, tid))
    _store(tmp_path / f"{TABLE}-0.db", last[0])  # a committed write: kept
    _store(tmp_path / f"{TABLE}-1.db", last[1])  # the aborted "offered": rebuilt
    (verdict,) = prepare_tables(settings, tmp_path, app_id, {TABLE: topic})
    assert verdict.discard == {1} and "never committed" in verdict.reason
    assert (tmp_path / f"{TABLE}-0.db").exists()
    assert not (tmp_path / f"{TABLE}-1.db").exists()
