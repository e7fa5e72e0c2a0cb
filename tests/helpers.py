"""Small helpers shared by several test modules (fixtures live in conftest.py)."""

from __future__ import annotations

import contextlib
import socket
import time
from pathlib import Path
from typing import Any

from quoteflow.settings import Settings, StackSettings
from schemas.registry import RegistrySerde
from schemas.serde import make_serde

#: The default stack's ports: a private stack must not take them while the default one is down.
_DEFAULT_STACK_PORTS = frozenset(
    StackSettings.model_fields[name].default
    for name in (
        "kafka_port",
        "kafka_controller_port",
        "postgres_port",
        "registry_port",
        "registry_management_port",
    )
)


def free_ports(n: int) -> list[int]:
    """``n`` different TCP ports on 127.0.0.1 that nothing was bound to a moment ago.

    All the sockets are held at once while the numbers are collected, so the
    kernel cannot hand out one port twice (asking n times, one socket at a
    time, can). The ports are free again on return; another process could
    still take one before the caller binds it, as with any such helper.
    """
    ports: list[int] = []
    with contextlib.ExitStack() as held:
        while len(ports) < n:
            sock = held.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
            if port not in _DEFAULT_STACK_PORTS:
                ports.append(port)
    return ports


def delete_subjects(settings: Settings, topic: str) -> None:
    """Remove a test topic's subjects from the registry for good (soft, then permanent)."""
    from schemas.subjects.admin import delete_subjects as delete

    assert settings.schema_registry.url is not None
    delete(settings, f"{topic}-")


def drop_topics(settings: Settings, starts: tuple[str, ...], subjects_of: str) -> None:
    """Delete a test's topics (names starting with any of ``starts``) and the registry
    subjects of those under ``subjects_of``: best effort, a cleanup never fails a test."""
    import contextlib

    from confluent_kafka.admin import AdminClient

    admin = AdminClient(settings.kafka.as_librdkafka_dict())
    ours = [t for t in admin.list_topics(timeout=10).topics if t.startswith(starts)]
    for name in ours:
        if name.startswith(subjects_of):
            delete_subjects(settings, name)
    for future in (admin.delete_topics(ours) if ours else {}).values():
        with contextlib.suppress(Exception):
            future.result()


def high_watermark(consumer: Any, topic: str, partition: int, timeout_s: float = 15) -> int:
    """A partition's end offset, asked again while its leader is still being elected.

    A topic just created (faust's changelogs) answers NOT_LEADER_FOR_PARTITION or
    LEADER_NOT_AVAILABLE for a moment; seen once in CI in test_partition_loss.
    """
    from confluent_kafka import KafkaError, KafkaException, TopicPartition

    transient = {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE}
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return int(consumer.get_watermark_offsets(TopicPartition(topic, partition),
                                                      timeout=10)[1])  # fmt: skip
        except KafkaException as exc:
            if exc.args[0].code() not in transient or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    """Each partition's end offset (the next offset to be written) of ``topic``, now."""
    from confluent_kafka import Consumer

    consumer = Consumer({**settings.kafka.as_librdkafka_dict(), "group.id": "quoteflow-test"})
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        return {
            p: high_watermark(consumer, topic, p) for p in metadata.partitions
        }
    finally:
        consumer.close()


def read_to_end(
    settings: Settings, topic: str, *, isolation: str = "read_committed", timeout_s: float = 30
) -> list[tuple[bytes | None, bytes | None]]:
    """Every record of ``topic`` (key, value) up to its end as the broker reports it now.

    A test that asserts that *nothing* arrived must have read everything there
    is, not merely waited: a read that times out before reaching the end proves
    nothing. The end is asked with the reader's own isolation level, so a
    ``read_committed`` reader gets the last stable offset (an open transaction's
    records are not "there" yet) and a ``read_uncommitted`` one the high
    watermark. The read stops once the reader's position (which moves past
    transaction markers and aborted records) reaches the end of every
    partition; if it cannot within ``timeout_s``, the test fails.
    """
    import time

    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer({
        **settings.kafka.as_librdkafka_dict(), "group.id": "quoteflow-test-read-to-end",
        "isolation.level": isolation, "enable.auto.commit": False,
    })  # fmt: skip
    try:
        partitions = list(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        ends = {
            p: high_watermark(consumer, topic, p) for p in partitions
        }
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        records: list[tuple[bytes | None, bytes | None]] = []
        deadline = time.monotonic() + timeout_s
        pending = {p for p, end in ends.items() if end > 0}
        while pending:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"could not read {topic} to its end offsets {ends} in {timeout_s} s"
                )
            message = consumer.poll(0.2)
            in_range = message is not None and message.error() is None and (
                (message.offset() or 0) < ends[message.partition() or 0]
            )
            if message is not None and in_range:
                records.append((message.key(), message.value()))
            positions = consumer.position([TopicPartition(topic, p) for p in pending])
            pending = {tp.partition for tp in positions if tp.offset < ends[tp.partition]}
        return records
    finally:
        consumer.close()


def committed_offsets(settings: Settings, group: str, topic: str) -> dict[int, int]:
    """The consumer group's committed offset of each partition of ``topic`` (-1: none).

    Asked without ``require_stable`` (read_uncommitted): a read_committed client's fetch
    is refused with UNSTABLE_OFFSET_COMMIT while the group has a transaction with offsets
    open, and retried until it times out when the group commits every half second (a
    running sink). The answer is the same: pending offsets are not committed yet.
    """
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({**settings.kafka.as_librdkafka_dict(), "group.id": group,
                         "enable.auto.commit": False,
                         "isolation.level": "read_uncommitted"})  # fmt: skip
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        committed = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=10)
        return {tp.partition: tp.offset for tp in committed}
    finally:
        consumer.close()


def wait_until_consumed(
    settings: Settings, group: str, topic: str, *, timeout_s: float = 60
) -> None:
    """Return once ``group`` has committed ``topic`` up to its end offsets as of this call.

    "It has processed everything written so far": with exactly-once processing
    a committed input offset means the outputs it caused are committed too, so
    a read of the outputs to their end that follows sees all of them.
    """
    import time

    ends = end_offsets(settings, topic)
    deadline = time.monotonic() + timeout_s
    while True:
        committed = committed_offsets(settings, group, topic)
        if all(committed.get(p, -1) >= end for p, end in ends.items()):
            return
        if time.monotonic() > deadline:
            raise AssertionError(
                f"group {group} committed {committed} of {topic}, not its end {ends},"
                f" in {timeout_s} s; the records between: "
                + _describe_gap(settings, topic, committed, ends)
            )
        time.sleep(0.2)


def _describe_gap(settings: Settings, topic: str, committed: dict[int, int],
                  ends: dict[int, int]) -> str:  # fmt: skip
    """What lies between a group's committed offsets and the ends (for a failure message):
    each record's offset, whether a read_committed reader sees it, and its first bytes."""
    from confluent_kafka import Consumer, TopicPartition

    seen: dict[str, dict[tuple[int, int], bytes]] = {}
    for isolation in ("read_uncommitted", "read_committed"):
        consumer = Consumer({**settings.kafka.as_librdkafka_dict(),
                             "group.id": "quoteflow-gap", "enable.auto.commit": False,
                             "isolation.level": isolation})  # fmt: skip
        found: dict[tuple[int, int], bytes] = {}
        try:
            consumer.assign([TopicPartition(topic, p, max(committed.get(p, 0), 0))
                             for p, end in ends.items() if committed.get(p, -1) < end])  # fmt: skip
            for message in consumer.consume(1000, 3.0):
                partition, offset = message.partition() or 0, message.offset() or 0
                if message.error() is None and offset < ends[partition]:
                    found[(partition, offset)] = (message.value() or b"")[:40]
        finally:
            consumer.close()
        seen[isolation] = found
    return "; ".join(
        f"{p}@{o}{'' if (p, o) in seen['read_committed'] else ' (uncommitted)'}: {v!r}"
        for (p, o), v in sorted(seen["read_uncommitted"].items())
    ) or "none readable (transaction markers only)"


def compose_command(service: str) -> list[str]:
    """The ``quoteflow`` arguments docker-compose.yml runs ``service`` with: the tests run
    the very commands the containers run."""
    import yaml

    compose = yaml.safe_load((Path(__file__).resolve().parents[1] / "docker-compose.yml")
                             .read_text())  # fmt: skip
    command = compose["services"][service]["command"]
    return [str(part) for part in command]


def registry_serde(settings: Settings, *, auto_register: bool) -> RegistrySerde:
    """A fresh :class:`schemas.registry.RegistrySerde` on the stack's registry (a new client:
    nothing cached)."""
    url = settings.schema_registry.url
    assert url is not None, "the integration tests run against the stack's registry"
    serde = make_serde(url, auto_register=auto_register)
    assert isinstance(serde, RegistrySerde)
    return serde
