"""A sink test's world: its own topics, a sandbox ESP, triggers in, receipts out.

Every test gets topics of its own (``topics.prefix``) and a consumer group
of its own; trigger ids are unique per test (``make_trigger``), so the shared
ops ledger never mixes two tests. The sink runs in a thread (``start``) or as
a child process (``spawn``, for kill -9).
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from connectors.sink.ledger import Entry, Ledger
from connectors.sink.runner import Sink, SinkStats, SinkTopics
from devstack.children import WorkerProcess, sink_env
from devstack.esp_sandbox import Sandbox, SandboxClient, SandboxConfig
from quoteflow.settings import Settings, load_settings
from schemas.serde import Serde, serde_from_settings
from tests.helpers import delete_subjects, read_to_end

PARTITIONS = 3


def wait_for(what: str, check: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(0.1)


@dataclass
class SinkWorld:
    settings: Settings
    sandbox: Sandbox
    serde: Serde
    producer: Producer
    client: SandboxClient
    topics: SinkTopics
    threads: list[tuple[threading.Thread, threading.Event, list[Any]]] = field(
        default_factory=list)

    def with_sink(self, **sink: Any) -> SinkWorld:
        """The same world with other sink settings (e.g. another provider)."""
        merged = {**self.settings.sink.model_dump(exclude_none=True), **sink}
        settings = self.settings.model_copy(update={"sink": type(self.settings.sink)(**merged)})
        return SinkWorld(settings, self.sandbox, self.serde, self.producer, self.client,
                         self.topics, self.threads)  # fmt: skip

    def produce(self, triggers: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        sent = list(triggers)
        for trigger in sent:
            value = self.serde.encode("abandonment_trigger", trigger, topic=self.topics.triggers)
            self.producer.produce(self.topics.triggers, key=str(trigger["customer_id"]).encode(),
                                  value=value)  # fmt: skip
        assert self.producer.flush(30) == 0
        return sent

    def produce_raw(self, key: bytes, value: bytes) -> None:
        self.producer.produce(self.topics.triggers, key=key, value=value)
        assert self.producer.flush(30) == 0

    def start(self) -> threading.Event:
        """Run a sink in a thread until the returned event is set (``stop_all`` joins it)."""
        stop = threading.Event()
        outcome: list[Any] = []

        def run() -> None:
            try:
                outcome.append(Sink(self.settings, stop=stop).run())
            except BaseException as exc:
                outcome.append(exc)

        thread = threading.Thread(target=run, name="test-sink", daemon=True)
        thread.start()
        self.threads.append((thread, stop, outcome))
        return stop

    def stop_all(self) -> list[SinkStats]:
        stats = []
        for thread, stop, outcome in self.threads:
            stop.set()
            thread.join(60)
            assert not thread.is_alive(), "the sink did not stop within 60 s"
            if outcome and isinstance(outcome[0], BaseException):
                raise outcome[0]
            stats.extend(outcome)
        self.threads.clear()
        return stats

    def spawn(self, log: Path) -> WorkerProcess:
        """`quoteflow sink` as a child process (kill -9 tests)."""
        env = sink_env(self.settings.sink, self.settings.topics.prefix,
                       QUOTEFLOW_SCHEMA_REGISTRY__AUTO_REGISTER="true",
                       QUOTEFLOW_LOG__LEVEL="WARNING")  # fmt: skip
        return WorkerProcess(["-m", "quoteflow", "sink"], env, log)

    def read(self, topic: str, schema: str, *, count: int, timeout_s: float = 60.0,
             isolation: str = "read_committed") -> list[dict[str, Any]]:  # fmt: skip
        """Read ``topic`` from the start until ``count`` records (or the timeout)."""
        consumer = Consumer({
            **self.settings.kafka.as_librdkafka_dict(),
            "group.id": f"test-read-{uuid.uuid4().hex[:8]}", "auto.offset.reset": "earliest",
            "isolation.level": isolation, "enable.auto.commit": False,
        })  # fmt: skip
        consumer.subscribe([topic])
        records: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline and len(records) < count:
                message = consumer.poll(0.2)
                if message is None:
                    continue
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        continue
                    raise AssertionError(str(error))
                records.append(self.serde.decode(schema, message.value() or b"", topic=topic))
        finally:
            consumer.close()
        return records

    def receipts(self, count: int, timeout_s: float = 60.0) -> list[dict[str, Any]]:
        return self.read(self.topics.deliveries, "esp_delivery_receipt", count=count,
                         timeout_s=timeout_s)  # fmt: skip

    def dead_letters(self, count: int, timeout_s: float = 60.0) -> list[dict[str, Any]]:
        return self.read(self.topics.dead_letter, "dead_letter", count=count,
                         timeout_s=timeout_s)  # fmt: skip

    def to_end(self, topic: str, schema: str) -> list[dict[str, Any]]:
        """Every committed record of ``topic`` up to its end offsets now (read_committed):
        for "exactly one" and "nothing else" assertions, which a read that merely stops at
        a count or a timeout cannot make."""
        return [self.serde.decode(schema, value or b"", topic=topic)
                for _, value in read_to_end(self.settings, topic)]  # fmt: skip

    def receipts_to_end(self) -> list[dict[str, Any]]:
        return self.to_end(self.topics.deliveries, "esp_delivery_receipt")

    def dead_letters_to_end(self) -> list[dict[str, Any]]:
        return self.to_end(self.topics.dead_letter, "dead_letter")

    def requests_for(self, triggers: Iterable[dict[str, Any]]) -> dict[str, dict[str, int]]:
        """Per trigger id: the sandbox's counts of the requests it *received* for it
        (``received``, of which ``faulted``, ``rejected``; ``attempts`` accepted, of which
        ``deduplicated`` dropped as repeats): what the sink sent, whatever the ESP did."""
        seen = self.client.triggers()
        zero = dict.fromkeys(("delivered", "deduplicated", "attempts", "received", "rejected",
                              "faulted"), 0)  # fmt: skip
        return {t["trigger_id"]: {**zero, **seen.get(t["trigger_id"], {})} for t in triggers}

    def ledger(self, triggers: Iterable[dict[str, Any]]) -> dict[str, Entry]:
        """The ops ledger's rows of ``triggers`` (trigger id -> entry), as of now."""
        with Ledger(self.settings.postgres.ops_conninfo()) as ledger:
            return {e.trigger_id: e for e in ledger.entries(t["trigger_id"] for t in triggers)}

    def delivered(self, triggers: Iterable[dict[str, Any]]) -> dict[str, int]:
        """Per trigger id: how many times the sandbox accepted it as a new message."""
        seen = self.client.triggers()
        return {t["trigger_id"]: seen.get(t["trigger_id"], {}).get("delivered", 0)
                for t in triggers}  # fmt: skip

    def wait_delivered(self, triggers: list[dict[str, Any]], timeout_s: float = 90.0) -> None:
        wait_for(f"{len(triggers)} deliveries",
                 lambda: all(n >= 1 for n in self.delivered(triggers).values()), timeout_s)


@contextlib.contextmanager
def sink_world(provider: str = "customerio",
               **sink: Any) -> Iterator[SinkWorld]:  # fmt: skip
    run = uuid.uuid4().hex[:8]
    prefix = f"test.sink.{run}."
    sandbox = Sandbox(SandboxConfig(port=0))
    sandbox.start()
    overrides = {
        **sandbox.sink_overrides(provider), "group_id": f"test-sink-{run}",
        "retry_initial_s": 0.05, "retry_max_s": 1.0, "breaker_cooldown_s": 0.5,
        "commit_interval_s": 0.1, "read_timeout_s": 2.0, "concurrency": 16,
        "session_timeout_s": 6, **sink,
    }  # fmt: skip
    world_settings = load_settings(schema_registry={"auto_register": True}, sink=overrides,
                                   topics={"prefix": prefix})
    topics = SinkTopics.with_prefix(prefix)
    names = [topics.triggers, topics.deliveries, topics.dead_letter]
    admin = AdminClient(world_settings.kafka.as_librdkafka_dict())
    for future in admin.create_topics([NewTopic(n, PARTITIONS, 1) for n in names]).values():
        future.result()
    serde = serde_from_settings(world_settings.schema_registry)
    producer = Producer({**world_settings.kafka.as_librdkafka_dict(), "acks": "all"})
    client = SandboxClient(sandbox.url)
    world = SinkWorld(world_settings, sandbox, serde, producer, client, topics)
    try:
        yield world
    finally:
        with contextlib.suppress(Exception):
            world.stop_all()
        client.close()
        sandbox.stop()
        serde.close()
        for name in names:
            delete_subjects(world_settings, name)
        for future in admin.delete_topics(names).values():
            with contextlib.suppress(Exception):  # cleanup is best effort
                future.result()
