"""``quoteflow process`` against the real broker and registry, as a worker process.

Each test runs with topics of its own (``topics.prefix``), writes CDC
change events in the Debezium layout itself (no CDC connector needed), plays
the CDC source watermark (records on its own watermark topic, like heartbeats),
and reads the outputs back with read_committed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from devstack.children import WorkerProcess
from quoteflow.settings import Settings, load_settings
from quoteflow.topics.admin import TopicAdmin
from schemas import examples
from schemas.debezium import zoned_timestamp
from schemas.serde import Serde, serde_from_settings
from tests.helpers import (
    drop_topics,
    end_offsets,
    read_to_end,
    wait_until_consumed,
)

pytestmark = pytest.mark.integration

PARTITIONS = 2
TOPICS = {
    "qms.public.quotes": PARTITIONS, "crm.public.customers": PARTITIONS,
    "quoteflow.abandonment.triggers": PARTITIONS, "quoteflow.abandonment.decisions": PARTITIONS,
    "quoteflow.cdc.watermarks": 1, "quoteflow.dead-letter": 1,
}  # fmt: skip
DELAY_S = 60

RULES = f"""
version = "test-rules-1"
[delay]
default_minutes = {DELAY_S // 60}
[holdout]
percent = 0
[quiet_hours]
start = "00:00"
end = "00:00"
[[offers]]
code = "TEN"
description = "10% off"
discount_pct = 10
template_id = "t-ten"
subject = "Your quote"
"""


@dataclass
class World:
    """One test's topics, settings and the fake CDC source feeding them."""

    settings: Settings
    prefix: str
    serde: Serde
    producer: Producer
    #: The by-customer partition count the worker runs with (``topics.partitions``).
    partitions: int = PARTITIONS
    lsn: int = 1_000
    watermark_paused: bool = False
    #: (change topic, partition) -> offsets the CDC vouches for beyond what is written:
    #: a change committed before the watermark that the processor has not read yet.
    unread: dict[tuple[str, int], int] = field(default_factory=dict)

    def topic(self, name: str) -> str:
        return self.prefix + name

    def send_quote(self, quote_id: int, customer_id: int, status: str, *, updated_s: float,
                   commit_s: float | None = None, op: str = "u",
                   partition: int | None = None) -> None:  # fmt: skip
        self.lsn += 100
        row = examples.quote_value(
            quote_id=quote_id, quote_ref=f"Q-{quote_id}", customer_id=customer_id,
            status=status, premium=Decimal("456.00"),
            created_at=zoned_timestamp(datetime.fromtimestamp(updated_s - 5, UTC)),
            updated_at=zoned_timestamp(datetime.fromtimestamp(updated_s, UTC)),
        )  # fmt: skip
        commit_ms = int((commit_s if commit_s is not None else updated_s) * 1000)
        src = examples.source(ts_ms=commit_ms, lsn=self.lsn)
        value = examples.envelope(op, None, row, src)
        topic = self.topic("qms.public.quotes")
        self.producer.produce(
            topic,
            key=self.serde.encode("qms_quote_key", {"quote_id": quote_id}, topic=topic,
                                  is_key=True),
            value=self.serde.encode("qms_quote_envelope", value, topic=topic),
            **({} if partition is None else {"partition": partition}),
        )  # fmt: skip
        self.producer.flush(10)

    def send_customer(self, customer_id: int, *, consent: bool = True, at_s: float) -> None:
        self.lsn += 100
        row = examples.customer_value(
            customer_id=customer_id, email=f"c{customer_id}@example.com", first_name="Ada",
            marketing_consent=consent,
        )  # fmt: skip
        src = examples.source("customers", "crm", ts_ms=int(at_s * 1000), lsn=self.lsn)
        topic = self.topic("crm.public.customers")
        self.producer.produce(
            topic,
            key=self.serde.encode("crm_customer_key", {"customer_id": customer_id},
                                  topic=topic, is_key=True),
            value=self.serde.encode("crm_customer_envelope",
                                    examples.envelope("c", None, row, src), topic=topic),
        )  # fmt: skip
        self.producer.flush(10)

    def send_raw(self, topic: str, value: bytes | None) -> None:
        self.producer.produce(self.topic(topic), key=b"junk", value=value)
        self.producer.flush(10)

    def publish_watermarks(self) -> None:
        """What `quoteflow cdc` does after each heartbeat: now, with the topic's end offsets."""
        now_ms = int(time.time() * 1000)
        topic = self.topic("quoteflow.cdc.watermarks")
        for source, change_topic in (("qms", "qms.public.quotes"),
                                     ("crm", "crm.public.customers")):  # fmt: skip
            ends = end_offsets(self.settings, self.topic(change_topic))
            for (unread_topic, partition), extra in self.unread.items():
                if unread_topic == change_topic:
                    ends[partition] += extra
            record = examples.cdc_watermark(
                source=source, topic=self.topic(change_topic), watermark_ms=now_ms,
                offsets=[{"partition": p, "offset": o} for p, o in ends.items()],
                emitted_ms=now_ms,
            )  # fmt: skip
            value = self.serde.encode("cdc_watermark", record, topic=topic)
            self.producer.produce(topic, key=source.encode(), value=value)
        self.producer.flush(10)


@pytest.fixture
def new_world(stack: object, tmp_path: Path) -> Iterator[Callable[..., World]]:
    """Makes the test's world: ``topics`` (name -> partitions) are created under its
    prefix (None: the test creates them), and its workers run with ``partitions``
    by-customer partitions."""
    run = uuid.uuid4().hex[:8]
    prefix = f"test.proc.{run}."
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    made: list[World] = []

    def make(topics: Mapping[str, int] | None = TOPICS, *, partitions: int = PARTITIONS) -> World:
        settings = load_settings(
            topics={"partitions": partitions, "prefix": prefix},
            schema_registry={"auto_register": True},
            streams={"app_id": f"test-proc-{run}",
                     "data_dir": tmp_path / "streams", "rules_file": rules,
                     "tick_interval_s": 0.2, "commit_interval_s": 0.2},
        )  # fmt: skip
        if topics:
            admin = AdminClient(settings.kafka.as_librdkafka_dict())
            for future in admin.create_topics(
                [NewTopic(prefix + name, n, 1) for name, n in topics.items()]
            ).values():
                future.result()
        serde = serde_from_settings(settings.schema_registry)
        producer = Producer({**settings.kafka.as_librdkafka_dict(), "acks": "all"})
        made.append(World(settings, prefix, serde, producer, partitions))
        return made[-1]

    try:
        yield make
    finally:
        for world in made:
            world.serde.close()
        if made:
            drop_topics(made[0].settings, (prefix, f"test-proc-{run}"), prefix)


@pytest.fixture
def world(new_world: Callable[..., World]) -> World:
    return new_world()


def _env(settings: Settings) -> dict[str, str]:
    streams = settings.streams
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUOTEFLOW_")}
    env.update({
        "QUOTEFLOW_TOPICS__PARTITIONS": str(settings.topics.partitions),
        "QUOTEFLOW_SCHEMA_REGISTRY__AUTO_REGISTER": "true",
        "QUOTEFLOW_TOPICS__PREFIX": settings.topics.prefix,
        "QUOTEFLOW_STREAMS__APP_ID": streams.app_id,
        "QUOTEFLOW_STREAMS__DATA_DIR": str(streams.data_dir),
        "QUOTEFLOW_STREAMS__RULES_FILE": str(streams.rules_file),
        "QUOTEFLOW_STREAMS__TICK_INTERVAL_S": str(streams.tick_interval_s),
        "QUOTEFLOW_STREAMS__COMMIT_INTERVAL_S": str(streams.commit_interval_s),
        "QUOTEFLOW_STREAMS__SESSION_TIMEOUT_S": "6",
        "QUOTEFLOW_LOG__LEVEL": "WARNING",
    })  # fmt: skip
    return env


class Worker(WorkerProcess):
    """`quoteflow process` as a child process, with its output kept for failures."""

    def __init__(self, world: World, log: Path, **env: str) -> None:
        super().__init__(["-m", "quoteflow", "process"], {**_env(world.settings), **env}, log)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


def read_all(world: World, topic: str, schema: str, *, until: Callable[[list[Any]], bool],
             timeout_s: float, isolation: str = "read_committed") -> list[Any]:  # fmt: skip
    consumer = Consumer({
        **world.settings.kafka.as_librdkafka_dict(),
        "group.id": f"test-read-{uuid.uuid4().hex[:8]}", "auto.offset.reset": "earliest",
        "isolation.level": isolation, "enable.auto.commit": False,
    })  # fmt: skip
    consumer.subscribe([world.topic(topic)])
    records: list[Any] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and not until(records):
            message = consumer.poll(0.2)
            if message is None:
                continue
            if message.error() is not None:
                if message.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise AssertionError(str(message.error()))
            value = message.value() or b""
            records.append(world.serde.decode(schema, value, topic=world.topic(topic)))
    finally:
        consumer.close()
    return records


def _heartbeats(world: World, stop: threading.Event) -> threading.Thread:
    def beat() -> None:
        while not stop.is_set():
            if not world.watermark_paused:
                # A topic just created may have no leader for a moment: the next beat
                # tries again, as the CDC connector's next heartbeat would.
                with contextlib.suppress(KafkaException):
                    world.publish_watermarks()
            stop.wait(0.5)

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    return thread


def test_one_trigger_for_an_abandoned_quote_none_for_one_accepted_in_time(
    world: World, tmp_path: Path
) -> None:
    now = time.time()
    soon = now - DELAY_S + 8  # deadlines 8 s from now
    world.send_customer(1, at_s=now - 100)
    world.send_customer(2, at_s=now - 100)
    world.send_customer(3, at_s=now - 100, consent=False)
    world.send_quote(11, 1, "QUOTED", updated_s=soon, op="c")  # abandoned
    world.send_quote(12, 2, "QUOTED", updated_s=soon, op="c")
    world.send_quote(12, 2, "ACCEPTED", updated_s=soon + 2)  # accepted in time
    world.send_quote(13, 3, "QUOTED", updated_s=soon, op="c")  # no consent: a decision
    world.send_raw("qms.public.quotes", b"\x00\x00\x00\x00\x01not avro")  # dead letter

    stop = threading.Event()
    beats = _heartbeats(world, stop)
    worker = Worker(world, tmp_path / "worker.log")
    try:
        triggers = read_all(world, "quoteflow.abandonment.triggers", "abandonment_trigger",
                            until=lambda rs: len(rs) >= 1, timeout_s=90)  # fmt: skip
        assert [t["quote_id"] for t in triggers] == [11], worker.output()
        (trigger,) = triggers
        assert trigger["email"] == "c1@example.com" and trigger["first_name"] == "Ada"
        assert trigger["offer"]["code"] == "TEN" and trigger["template_id"] == "t-ten"
        assert trigger["rule_version"] == "test-rules-1"
        # The rules' quiet window rides along, for the sink's check just before sending.
        assert trigger["quiet_hours"] == {"start": "00:00", "end": "00:00",
                                          "fallback_timezone": "Europe/London"}  # fmt: skip
        deadline = trigger["deadline_at"].timestamp()
        assert abs(deadline - (soon + DELAY_S)) < 0.01
        assert trigger["source_watermark_at"].timestamp() > deadline
        assert trigger["fired_at"].timestamp() - deadline < 5  # within seconds of the deadline
        read_all(world, "quoteflow.abandonment.decisions", "abandonment_decision",
                 until=lambda rs: len(rs) >= 1, timeout_s=30)  # fmt: skip
        decisions = _everything(world, "quoteflow.abandonment.decisions", "abandonment_decision")
        assert [(d["quote_id"], d["outcome"], d["reason"]) for d in decisions] == [
            (13, "SUPPRESSED", "no marketing consent")
        ]
        read_all(world, "quoteflow.dead-letter", "dead_letter",
                 until=lambda rs: len(rs) >= 1, timeout_s=30)  # fmt: skip
        dead = _everything(world, "quoteflow.dead-letter", "dead_letter")
        assert [d["stage"] for d in dead] == ["streams.route-quotes"]
        again = _all_triggers(world)  # nothing more comes
        assert [t["quote_id"] for t in again] == [11]
        # Replaying the recorded input in event time decides exactly what the live run did.
        replay_triggers, replay_decisions = _replay(world, tmp_path)
        assert replay_triggers == {
            (t["trigger_id"], t["quote_id"], int(t["deadline_at"].timestamp() * 1000))
            for t in again
        }
        live = {(d["decision_id"], d["outcome"], d["reason"]) for d in decisions}
        assert replay_decisions == live
    finally:
        stop.set()
        beats.join(5)
        worker.stop()


def _triggers(world: World, *, until: Callable[[list[Any]], bool],
              timeout_s: float, isolation: str = "read_committed") -> list[Any]:  # fmt: skip
    """Wait for triggers: returns once ``until`` holds (or at the timeout, whatever came)."""
    return read_all(world, "quoteflow.abandonment.triggers", "abandonment_trigger",
                    until=until, timeout_s=timeout_s, isolation=isolation)  # fmt: skip


def _everything(world: World, topic: str, schema: str, *, settled: bool = True,
                isolation: str = "read_committed") -> list[Any]:  # fmt: skip
    """Every record of ``topic``, read to its end offsets: what a "nothing (more) came"
    assertion needs. ``settled``: first wait until the worker has committed its whole
    input as of now, so everything it will ever output for it is in that end."""
    if settled:
        app_id = world.settings.streams.app_id
        wait_until_consumed(world.settings, app_id, f"{app_id}-by-customer")
    read = read_to_end(world.settings, world.topic(topic), isolation=isolation)
    return [world.serde.decode(schema, value, topic=world.topic(topic))
            for _, value in read if value is not None]  # fmt: skip


def _all_triggers(world: World, *, settled: bool = True,
                  isolation: str = "read_committed") -> list[Any]:  # fmt: skip
    return _everything(world, "quoteflow.abandonment.triggers", "abandonment_trigger",
                       settled=settled, isolation=isolation)  # fmt: skip


def test_an_acceptance_in_time_that_arrives_late_is_never_offered(
    world: World, tmp_path: Path
) -> None:
    """The source lags: the watermark stops short of the deadline, the wall clock passes it,
    then the acceptance (committed in time) arrives. No trigger for it; the other fires."""
    now = time.time()
    soon = now - DELAY_S + 10
    deadline = soon + DELAY_S
    world.send_customer(1, at_s=now - 100)
    world.send_customer(2, at_s=now - 100)
    world.send_quote(21, 1, "QUOTED", updated_s=soon, op="c")
    world.send_quote(22, 2, "QUOTED", updated_s=soon, op="c")  # the control: abandoned

    stop = threading.Event()
    beats = _heartbeats(world, stop)
    worker = Worker(world, tmp_path / "worker.log")
    try:
        while time.time() < deadline - 3:
            time.sleep(0.2)
        world.watermark_paused = True  # the CDC source stalls before the deadline
        while time.time() < deadline + 5:
            time.sleep(0.2)
        assert _all_triggers(world) == [], "fired before the watermark passed"
        # The acceptance, committed 2 s before the deadline, reaches Kafka only now.
        world.send_quote(21, 1, "ACCEPTED", updated_s=deadline - 2)
        world.watermark_paused = False
        _triggers(world, until=lambda rs: len(rs) >= 1, timeout_s=60)
        assert [t["quote_id"] for t in _all_triggers(world)] == [22], worker.output()
    finally:
        stop.set()
        beats.join(5)
        worker.stop()


def test_kill_9_between_send_and_commit_leaves_one_committed_trigger(
    world: World, tmp_path: Path
) -> None:
    """The trigger is sent inside the transaction of the input that caused it: killed before
    the commit, it is aborted (visible to read_uncommitted only), and the restarted worker
    sends it again, committed once."""
    now = time.time()
    world.send_customer(1, at_s=now - 100)
    world.send_quote(31, 1, "QUOTED", updated_s=now - DELAY_S + 8, op="c")
    stop = threading.Event()
    beats = _heartbeats(world, stop)
    log = tmp_path / "worker.log"
    first = Worker(world, log, QUOTEFLOW_STREAMS__COMMIT_INTERVAL_S="15")
    try:
        sent = _triggers(world, until=lambda rs: len(rs) >= 1, timeout_s=90,
                         isolation="read_uncommitted")  # fmt: skip
        assert [t["quote_id"] for t in sent] == [31], first.output()
        first.stop(signal.SIGKILL)  # sent, not committed: commits come every 15 s
        assert _all_triggers(world, settled=False) == []  # to the last stable offset

        second = Worker(world, log)
        try:
            _triggers(world, until=lambda rs: len(rs) >= 1, timeout_s=120)
            committed = _all_triggers(world)
            assert [t["trigger_id"] for t in committed] == [sent[0]["trigger_id"]], (
                second.output()
            )
            everything = _all_triggers(world, isolation="read_uncommitted")
            assert len(everything) == 2  # the aborted copy is there, never committed
            # Transaction markers take offsets too: an abort and a commit marker at least.
            ends = end_offsets(world.settings, world.topic("quoteflow.abandonment.triggers"))
            assert sum(ends.values()) >= len(everything) + 2
        finally:
            second.stop()
    finally:
        stop.set()
        beats.join(5)


def _replay(world: World, tmp_path: Path) -> tuple[set[Any], set[Any]]:
    """The input topics read back and run through the core in event time (no faust)."""
    from streams.core.changes import customer_change, quote_changes
    from streams.core.detector import run_in_event_time
    from streams.core.model import Decision, Trigger
    from streams.core.rules import load_rules

    changes: list[Any] = []
    for topic, schema in (("qms.public.quotes", "qms_quote_envelope"),
                          ("crm.public.customers", "crm_customer_envelope")):  # fmt: skip
        ends = end_offsets(world.settings, world.topic(topic))
        raw = _read_raw(world, world.topic(topic), sum(ends.values()))
        for value in raw:
            try:
                decoded = world.serde.decode(schema, value, topic=world.topic(topic))
            except Exception:
                continue
            if schema == "qms_quote_envelope":
                changes.extend(quote_changes(decoded))
            elif (change := customer_change(decoded)) is not None:
                changes.append(change)
    changes.sort(key=lambda c: (c.position.commit_ms, c.position.lsn))
    # The end of the history: now (not "forever": quotes have a maximum age).
    end = int(time.time() * 1000)
    _, outputs = run_in_event_time([*changes, end], load_rules(tmp_path / "rules.toml"))
    triggers = {(o.trigger_id, o.quote.quote_id, o.deadline_ms) for o in outputs
                if isinstance(o, Trigger)}  # fmt: skip
    # Live decisions are made as of the wall clock, a replay's as of the watermark: their
    # times differ, what was decided does not.
    decisions = {(o.decision_id, o.outcome.value, o.reason) for o in outputs
                 if isinstance(o, Decision)}  # fmt: skip
    return triggers, decisions


def _read_raw(world: World, topic: str, count: int) -> list[bytes]:
    consumer = Consumer({
        **world.settings.kafka.as_librdkafka_dict(), "group.id": f"t-{uuid.uuid4().hex[:8]}",
        "auto.offset.reset": "earliest", "enable.auto.commit": False,
    })  # fmt: skip
    consumer.subscribe([topic])
    values: list[bytes] = []
    deadline = time.monotonic() + 30
    try:
        while len(values) < count and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is not None and message.error() is None and message.value():
                values.append(message.value() or b"")
    finally:
        consumer.close()
    assert len(values) == count
    return values


def test_two_workers_share_the_partitions_and_one_survives_the_other(
    world: World, tmp_path: Path
) -> None:
    """Two workers split the partitions; one is killed mid-run; the other takes its
    partitions over (state from the changelog) and every quote still gets one trigger."""
    now = time.time()
    customers = list(range(1, 9))  # customer id % 2 picks the partition: both are used
    for customer_id in customers:
        world.send_customer(customer_id, at_s=now - 100)
    first_wave = {40 + c: c for c in customers[:4]}
    second_wave = {50 + c: c for c in customers[4:]}
    for quote_id, customer_id in first_wave.items():
        world.send_quote(quote_id, customer_id, "QUOTED", updated_s=now - DELAY_S + 15, op="c")
    for quote_id, customer_id in second_wave.items():
        world.send_quote(quote_id, customer_id, "QUOTED", updated_s=now - DELAY_S + 35, op="c")

    stop = threading.Event()
    beats = _heartbeats(world, stop)
    a = Worker(world, tmp_path / "a.log", QUOTEFLOW_STREAMS__DATA_DIR=str(tmp_path / "a"))
    b = Worker(world, tmp_path / "b.log", QUOTEFLOW_STREAMS__DATA_DIR=str(tmp_path / "b"))
    try:
        _triggers(world, until=lambda rs: len(rs) >= len(first_wave), timeout_s=90)
        a.stop(signal.SIGKILL)  # mid-run: the second wave is still ahead
        everyone = len(first_wave) + len(second_wave)
        _triggers(world, until=lambda rs: len(rs) >= everyone, timeout_s=120)
        quote_ids = sorted(t["quote_id"] for t in _all_triggers(world))
        assert quote_ids == sorted([*first_wave, *second_wave]), b.output()
    finally:
        stop.set()
        beats.join(5)
        a.stop()
        b.stop()


def test_empty_values_are_dead_lettered_and_only_null_values_are_tombstones(
    world: World, tmp_path: Path
) -> None:
    """An empty value (b"") on a change topic is an undecodable record like any other:
    dead-lettered with the reason. Only a null value is a tombstone, and produces nothing."""
    now = time.time()
    world.send_customer(1, at_s=now - 100)
    world.send_raw("qms.public.quotes", b"")
    world.send_raw("crm.public.customers", b"")
    world.send_raw("qms.public.quotes", None)  # tombstones: nothing to decide, no dead letter
    world.send_raw("crm.public.customers", None)
    world.send_quote(61, 1, "QUOTED", updated_s=now - DELAY_S + 5, op="c")

    stop = threading.Event()
    beats = _heartbeats(world, stop)
    worker = Worker(world, tmp_path / "worker.log")
    try:
        _triggers(world, until=lambda rs: len(rs) >= 1, timeout_s=90)
        assert [t["quote_id"] for t in _all_triggers(world)] == [61], worker.output()
        dead = _everything(world, "quoteflow.dead-letter", "dead_letter")
        assert sorted(
            (d["source_topic"], d["stage"], d["error_type"], d["value"]) for d in dead
        ) == [
            (world.topic("crm.public.customers"), "streams.route-customers", "DecodeError", b""),
            (world.topic("qms.public.quotes"), "streams.route-quotes", "DecodeError", b""),
        ], worker.output()
        assert all(d["error_message"] for d in dead)  # with the reason
        assert _everything(world, "quoteflow.abandonment.decisions", "abandonment_decision") == []
    finally:
        stop.set()
        beats.join(5)
        worker.stop()


def test_read_to_end_reads_every_committed_record_and_only_those(world: World) -> None:
    """The "nothing arrived" reads: to the end, committed records only, never on a timeout."""
    topic = world.topic("quoteflow.dead-letter")
    producer = Producer({**world.settings.kafka.as_librdkafka_dict(),
                         "transactional.id": f"{world.prefix}read-to-end"})  # fmt: skip
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce(topic, value=b"committed")
    producer.commit_transaction(30)
    producer.begin_transaction()
    producer.produce(topic, value=b"open")
    producer.flush(10)
    try:
        assert read_to_end(world.settings, topic) == [(None, b"committed")]
        uncommitted = read_to_end(world.settings, topic, isolation="read_uncommitted")
        assert uncommitted == [(None, b"committed"), (None, b"open")]
    finally:
        producer.abort_transaction(30)
    assert read_to_end(world.settings, topic) == [(None, b"committed")]


def test_with_six_partitions_everywhere_the_watermark_topic_keeps_one_and_triggers_fire(
    new_world: Callable[..., World], tmp_path: Path
) -> None:
    """``topics.partitions = 6``: `topics create` makes every catalogue topic (under the
    test's prefix) with 6 partitions except the watermarks, one ordered log with one."""
    world = new_world(None, partitions=6)
    admin = TopicAdmin(world.settings)  # topics.prefix is the test's: its catalogue is prefixed
    specs = list(admin.catalogue)
    assert all(spec.name.startswith(world.prefix) for spec in specs)
    admin.create()
    now = time.time()
    world.send_customer(1, at_s=now - 100)
    world.send_quote(71, 1, "QUOTED", updated_s=now - DELAY_S + 5, op="c")

    stop = threading.Event()
    beats = _heartbeats(world, stop)
    worker = Worker(world, tmp_path / "worker.log")
    try:
        _triggers(world, until=lambda rs: len(rs) >= 1, timeout_s=60)
        assert [t["quote_id"] for t in _all_triggers(world)] == [71], worker.output()
    finally:
        stop.set()
        beats.join(5)
        worker.stop()
    watermarks = world.topic("quoteflow.cdc.watermarks")
    assert list(end_offsets(world.settings, watermarks)) == [0]
    assert len(end_offsets(world.settings, world.topic("qms.public.quotes"))) == 6
    assert [(r.spec.name, r.state) for r in admin.report(specs) if r.state != "ok"] == []


def test_a_watermark_topic_of_several_partitions_stops_the_worker_with_one_line(
    new_world: Callable[..., World], tmp_path: Path
) -> None:
    """Reading partition 0 only of a 6-partition watermark topic would never fire (or fire
    on part of the watermarks): the worker refuses to start and says why."""
    world = new_world({**TOPICS, "quoteflow.cdc.watermarks": 6})
    worker = Worker(world, tmp_path / "worker.log")
    try:
        worker.process.wait(60)
    finally:
        worker.stop()
    assert worker.process.returncode not in (0, None), worker.output()
    errors = [line for line in worker.output().splitlines() if "error" in line.lower()]
    topic = world.topic("quoteflow.cdc.watermarks")
    assert errors == [f"quoteflow: error: topic {topic} has 6 partitions; it must have exactly 1"
                      " (the CDC watermarks are one ordered log per source): recreate it"
                      " with 1 partition"], worker.output()  # fmt: skip
    assert "Traceback" not in worker.output()


def _change_topics(partitions: int) -> dict[str, int]:
    return {**TOPICS, "qms.public.quotes": partitions, "crm.public.customers": partitions}


def test_change_topics_with_fewer_partitions_than_by_customer_still_fire(
    new_world: Callable[..., World], tmp_path: Path
) -> None:
    """3 change partitions, 6 by-customer: markers of 3 partitions per source are all
    there is, and the watermark must not wait for 6."""
    world = new_world(_change_topics(3), partitions=6)
    now = time.time()
    world.send_customer(1, at_s=now - 100)
    world.send_quote(81, 1, "QUOTED", updated_s=now - DELAY_S + 5, op="c")

    stop = threading.Event()
    beats = _heartbeats(world, stop)
    worker = Worker(world, tmp_path / "worker.log")
    try:
        _triggers(world, until=lambda rs: len(rs) >= 1, timeout_s=60)
        assert [t["quote_id"] for t in _all_triggers(world)] == [81], worker.output()
    finally:
        stop.set()
        beats.join(5)
        worker.stop()


def test_an_acceptance_on_a_change_partition_beyond_by_customer_is_waited_for(
    new_world: Callable[..., World], tmp_path: Path
) -> None:
    """12 change partitions, 6 by-customer. The CDC vouches that partition 7 holds a change
    committed before the watermark that the processor has not read yet (the acceptance,
    committed in time): nothing is decided until it is read, then only the control fires."""
    world = new_world(_change_topics(12), partitions=6)
    now = time.time()
    soon = now - DELAY_S + 15
    deadline = soon + DELAY_S
    world.send_customer(1, at_s=now - 100)
    world.send_customer(2, at_s=now - 100)
    world.send_quote(91, 1, "QUOTED", updated_s=soon, op="c", partition=7)
    world.send_quote(92, 2, "QUOTED", updated_s=soon, op="c", partition=0)  # the control
    world.unread[("qms.public.quotes", 7)] = 1  # the acceptance, not in Kafka yet

    stop = threading.Event()
    beats = _heartbeats(world, stop)
    worker = Worker(world, tmp_path / "worker.log")
    try:
        while time.time() < deadline + 5:
            time.sleep(0.2)
        assert _all_triggers(world) == [], "decided before partition 7 was read"
        world.send_quote(91, 1, "ACCEPTED", updated_s=deadline - 2, partition=7)
        world.unread.clear()
        _triggers(world, until=lambda rs: len(rs) >= 1, timeout_s=60)
        assert [t["quote_id"] for t in _all_triggers(world)] == [92], worker.output()
    finally:
        stop.set()
        beats.join(5)
        worker.stop()
