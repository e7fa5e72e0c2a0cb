"""A worker that loses a partition mid-transaction, then gets it back, keeps none of the
writes of that transaction.

The scenario of two triggers lost in a loaded CI run, made deterministic. Worker B
owns every partition and has an open transaction holding triggers and the table
writes that mark their quotes offered. Worker A joins and takes some of those
partitions: B's transactions for them can never commit (A's producers abort them),
but faust keeps B's local RocksDB files, and keeps reading the changelog into them
from the offset recorded in them. A dies before committing anything, the partitions
come back to B, and B's tables still say "offered" for quotes whose trigger no
transaction ever committed: those e-mails are never sent.

B's tables have been rebuilt from the changelog once before (a restart) so that
their files record a changelog offset past the customers' committed records: a
store with no recorded offset is read from the start of its changelog, which would
overwrite the aborted writes by chance and hide the loss.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from streams.local_state import OFFSET_KEY, partition_files
from tests.helpers import committed_offsets, read_to_end
from tests.test_streams import test_processor
from tests.test_streams.test_processor import (
    DELAY_S,
    Worker,
    World,
    _all_triggers,
    _heartbeats,
    _triggers,
)

pytestmark = pytest.mark.integration

new_world, world = test_processor.new_world, test_processor.world  # the fixtures

#: Both workers' commit interval: a transaction stays open this long, so the handover
#: (a worker starting and joining: about 10 s) happens in the middle of one. faust commits
#: first after twice the interval, which must stay below the 60 s transaction timeout.
COMMIT_S = 25
CUSTOMERS = (1, 2, 3, 4)  # customer id % 2 is the by-customer partition: both are used


def _by_customer(world: World) -> str:
    return f"{world.settings.streams.app_id}-by-customer"


def _wait_for_a_commit(world: World, timeout_s: float) -> None:
    """Return right after the workers' group commits by-customer offsets it had not."""
    app_id = world.settings.streams.app_id
    before = committed_offsets(world.settings, app_id, _by_customer(world))
    deadline = time.monotonic() + timeout_s
    while committed_offsets(world.settings, app_id, _by_customer(world)) == before:
        assert time.monotonic() < deadline, f"no commit in {timeout_s} s"
        time.sleep(0.2)


def _assignments(world: World) -> list[set[int]]:
    """The by-customer partitions of each member of the workers' group, as the broker
    has them."""
    app_id = world.settings.streams.app_id
    admin = AdminClient(world.settings.kafka.as_librdkafka_dict())
    group = admin.describe_consumer_groups([app_id])[app_id].result(10)
    return [{tp.partition for tp in member.assignment.topic_partitions
             if tp.topic == _by_customer(world)} for member in group.members]  # fmt: skip


def _committed_states(world: World) -> dict[bytes, bytes]:
    """customer key -> the customer's state as the customer-state changelog committed it."""
    topic = f"{world.settings.streams.app_id}-customer-state-changelog"
    states: dict[bytes, bytes] = {}
    for key, value in read_to_end(world.settings, topic, isolation="read_committed"):
        assert key is not None
        if value is None:
            states.pop(key, None)
        else:
            states[key] = value
    return states


def _local_states(data_dir: Path) -> dict[bytes, bytes]:
    """customer key -> the customer's state in a stopped worker's RocksDB files."""
    from rocksdict import AccessType, Options, Rdict

    [tabledir] = {path.parent for path in data_dir.rglob("customer-state-*.db")}
    states: dict[bytes, bytes] = {}
    for store in partition_files(tabledir, "customer-state").values():
        db = Rdict(str(store), Options(raw_mode=True), access_type=AccessType.read_only())
        try:
            states.update((k, v) for k, v in db.items() if k != OFFSET_KEY)
        finally:
            db.close()
    return states


def test_a_partition_lost_mid_transaction_and_regained_keeps_no_aborted_write(
    world: World, tmp_path: Path
) -> None:
    now = time.time()
    for customer_id in CUSTOMERS:
        world.send_customer(customer_id, at_s=now - 100)
    stop = threading.Event()
    beats = _heartbeats(world, stop)
    data_b = tmp_path / "b"
    quotes = {40 + c: c for c in CUSTOMERS}
    workers: list[Worker] = []
    try:
        # B's first run commits the customers; its second rebuilds its tables from the
        # changelog, which records the changelog offset in each partition's files.
        first = Worker(world, tmp_path / "b0.log", QUOTEFLOW_STREAMS__DATA_DIR=str(data_b))
        workers.append(first)
        deadline = time.monotonic() + 60
        while len(_committed_states(world)) < len(CUSTOMERS):
            assert time.monotonic() < deadline, first.output()
            time.sleep(0.5)
        first.stop()
        b = Worker(world, tmp_path / "b.log", QUOTEFLOW_STREAMS__DATA_DIR=str(data_b),
                   QUOTEFLOW_STREAMS__COMMIT_INTERVAL_S=str(COMMIT_S),
                   QUOTEFLOW_LOG__LEVEL="INFO")  # fmt: skip
        workers.append(b)
        # Right after one of B's commits its next transactions stay open for COMMIT_S.
        _wait_for_a_commit(world, timeout_s=2 * COMMIT_S + 30)  # faust: first at 2x
        for quote_id, customer_id in quotes.items():
            world.send_quote(quote_id, customer_id, "QUOTED", updated_s=time.time() - DELAY_S + 2,
                             op="c")  # fmt: skip
        sent = _triggers(world, until=lambda rs: len(rs) >= len(quotes), timeout_s=30,
                         isolation="read_uncommitted")  # fmt: skip
        assert sorted(t["quote_id"] for t in sent) == sorted(quotes), b.output()

        a = Worker(world, tmp_path / "a.log", QUOTEFLOW_STREAMS__DATA_DIR=str(tmp_path / "a"),
                   QUOTEFLOW_STREAMS__COMMIT_INTERVAL_S=str(COMMIT_S))  # fmt: skip
        workers.append(a)
        deadline = time.monotonic() + 30
        while not all(_assignments(world)) or len(_assignments(world)) < 2:
            assert time.monotonic() < deadline, a.output()
            time.sleep(0.2)
        # The scenario holds: the handover came while B's transactions were open.
        early = _all_triggers(world, settled=False)
        assert early == [], "B committed before A took over (too slow a start?)\n" + b.output()
        a.stop(signal.SIGKILL)  # before its first commit: its partitions go back to B

        _triggers(world, until=lambda rs: len(rs) >= len(quotes), timeout_s=COMMIT_S + 50)
        committed = sorted(t["quote_id"] for t in _all_triggers(world))
        assert committed == sorted(quotes), b.output()
        b.stop()
        # B's table holds what the changelog committed, nothing of an aborted transaction.
        assert _local_states(data_b) == _committed_states(world), b.output()
    finally:
        stop.set()
        beats.join(5)
        for worker in workers:
            worker.stop()
