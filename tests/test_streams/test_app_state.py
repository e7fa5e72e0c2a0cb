"""Local table state belongs to one app and one changelog: never adopted, never a crash.

Two real cases on the real stack: a worker of a second app id on the same data
directory, and a worker whose changelog topics were deleted and created again
while it was stopped (its stores' persisted offsets then lie beyond the new
changelogs' ends).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from tests.test_streams import test_processor
from tests.test_streams.test_processor import (
    DELAY_S,
    PARTITIONS,
    Worker,
    World,
    _heartbeats,
    _triggers,
)

pytestmark = pytest.mark.integration

# The fixtures of the processor tests: one test's topics and fake CDC source.
new_world, world = test_processor.new_world, test_processor.world

CHANGELOGS = ("customer-state", "watermark-markers")


def _heartbeats_when_ready(world: World, stop: threading.Event) -> threading.Thread:
    """The fake CDC's heartbeats, once the new topics have leaders (under load the broker
    answers NOT_LEADER for a while, and the heartbeat thread would die on it)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            world.publish_watermarks()
            break
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    return _heartbeats(world, stop)


def _first_run(world: World, tmp_path: Path) -> None:
    """A worker offers quote 11 to customer 1 and stops cleanly, leaving its tables."""
    now = time.time()
    world.send_customer(1, at_s=now - 100)
    world.send_quote(11, 1, "QUOTED", updated_s=now - DELAY_S + 6, op="c")
    first = Worker(world, tmp_path / "first.log")
    try:
        sent = _triggers(world, until=lambda rs: len(rs) >= 1, timeout_s=90)
        assert [t["quote_id"] for t in sent] == [11], first.output()
        time.sleep(1)  # the table writes' changelog acknowledgements (persisted offsets)
    finally:
        first.stop()
    assert first.process.returncode == 0, first.output()


def test_a_second_app_on_the_same_data_dir_keeps_its_own_state_and_fires_its_own_trigger(
    world: World, tmp_path: Path
) -> None:
    stop = threading.Event()
    beats = _heartbeats_when_ready(world, stop)
    try:
        _first_run(world, tmp_path)
        first_app = world.settings.streams.app_id
        second_app = f"{first_app}-again"  # the usual way to reprocess from scratch
        second = Worker(world, tmp_path / "second.log", QUOTEFLOW_STREAMS__APP_ID=second_app)
        try:
            # It re-decides history with state of its own: quote 11 is offered again
            # (the sink's effect-once key, the quote, keeps the customer from a second
            # e-mail). Adopting the first app's tables it would see 11 as offered already,
            # or crash in recovery on the first app's persisted offsets.
            both = _triggers(world, until=lambda rs: len(rs) >= 2, timeout_s=90)
            assert [t["quote_id"] for t in both] == [11, 11], second.output()
            assert second.process.poll() is None, second.output()
        finally:
            second.stop()
        data_dir = world.settings.streams.data_dir
        assert data_dir is not None
        for app in (first_app, second_app):
            stores = {p.name for p in (data_dir / app).rglob("customer-state-*.db")}
            assert stores, f"no customer-state store under {data_dir / app}"
    finally:
        stop.set()
        beats.join(5)


def _recreate(world: World, topics: list[str]) -> None:
    admin = AdminClient(world.settings.kafka.as_librdkafka_dict())
    for future in admin.delete_topics(topics, operation_timeout=30).values():
        future.result()
    deadline = time.monotonic() + 60
    pending = list(topics)
    while pending:
        new = [NewTopic(t, PARTITIONS, 1, config={"cleanup.policy": "compact"}) for t in pending]
        for topic, future in admin.create_topics(new, operation_timeout=30).items():
            try:
                future.result()
                pending.remove(topic)
            except KafkaException:  # still being deleted
                if time.monotonic() > deadline:
                    raise
        time.sleep(0.5)


def test_changelogs_deleted_and_created_again_the_worker_rebuilds_instead_of_crashing(
    world: World, tmp_path: Path
) -> None:
    stop = threading.Event()
    beats = _heartbeats_when_ready(world, stop)
    try:
        _first_run(world, tmp_path)
        app_id = world.settings.streams.app_id
        _recreate(world, [f"{app_id}-{name}-changelog" for name in CHANGELOGS])
        second = Worker(world, tmp_path / "second.log")
        try:
            now = time.time()
            world.send_customer(2, at_s=now - 100)
            world.send_quote(21, 2, "QUOTED", updated_s=now - DELAY_S + 6, op="c")
            got = _triggers(world, until=lambda rs: len(rs) >= 2, timeout_s=90)
            assert [t["quote_id"] for t in got] == [11, 21], second.output()
            assert second.process.poll() is None, second.output()
            assert "ConsistencyError" not in second.output()
        finally:
            second.stop()
    finally:
        stop.set()
        beats.join(5)
