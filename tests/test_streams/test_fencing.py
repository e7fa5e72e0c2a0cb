"""A fenced worker starts over and goes on: every trigger arrives once, the process lives."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from aiokafka.errors import IllegalOperation, ProducerFenced  # type: ignore[import-untyped]
from confluent_kafka import Producer

from devstack.errors import BenchError
from streams.fencing import is_fenced, pause_before_restart_s
from tests.test_streams import test_processor
from tests.test_streams.test_processor import (
    DELAY_S,
    PARTITIONS,
    Worker,
    World,
    _all_triggers,
    _heartbeats,
    _triggers,
)

# The fixtures of the processor tests: one test's topics and fake CDC source.
new_world, world = test_processor.new_world, test_processor.world


@pytest.mark.unit
def test_a_fence_is_recognised_through_the_errors_that_wrap_it() -> None:
    try:
        try:
            raise ProducerFenced()
        except ProducerFenced as exc:
            raise BenchError("Error while sending") from exc
    except BenchError as wrapped:
        assert is_fenced(wrapped)
    assert not is_fenced(RuntimeError("other")) and not is_fenced(None)
    # What faust crashed with after a fence in a real run: the dead transaction's commit.
    assert is_fenced(IllegalOperation("Not in the middle of a transaction"))


@pytest.mark.unit
def test_restarts_after_fences_pause_longer_each_time_up_to_a_bound() -> None:
    assert [pause_before_restart_s(n) for n in range(8)] == [0, 1, 2, 4, 8, 16, 30, 30]


def _fence(world: World) -> None:
    """Take every transactional id of the worker's partitions over (what a new owner, or
    the broker after a transaction timeout, does): its producers are fenced."""
    app_id = world.settings.streams.app_id
    for group in range(3):  # faust's topic group of the by-customer topic; others are unused
        for partition in range(PARTITIONS):
            producer = Producer({**world.settings.kafka.as_librdkafka_dict(),
                                 "transactional.id": f"{app_id}-{group}-{partition}"})  # fmt: skip
            producer.init_transactions(30)
            producer.flush(5)


@pytest.mark.integration
def test_a_fenced_worker_starts_over_in_place_and_every_trigger_arrives_once(
    world: World, tmp_path: Path
) -> None:
    now = time.time()
    for customer_id in (1, 2):
        world.send_customer(customer_id, at_s=now - 100)
    world.send_quote(11, 1, "QUOTED", updated_s=now - DELAY_S + 6, op="c")
    world.send_quote(22, 2, "QUOTED", updated_s=now - DELAY_S + 30, op="c")
    stop = threading.Event()
    beats = _heartbeats(world, stop)
    worker = Worker(world, tmp_path / "worker.log")
    try:
        first = _triggers(world, until=lambda rs: len(rs) >= 1, timeout_s=90)
        assert [t["quote_id"] for t in first] == [11], worker.output()
        _fence(world)  # quote 22 is still ahead
        both = _triggers(world, until=lambda rs: len(rs) >= 2, timeout_s=90)
        time.sleep(3)
        assert sorted(t["quote_id"] for t in _all_triggers(world)) == [11, 22], worker.output()
        assert [t["quote_id"] for t in both] == [11, 22]
        assert worker.process.poll() is None, worker.output()  # never a crash
        assert "fenced: starting over" in worker.log.read_text(), worker.output()
    finally:
        stop.set()
        beats.join(5)
        worker.stop()
