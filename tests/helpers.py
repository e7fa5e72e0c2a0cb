"""Small helpers shared by several test modules (fixtures live in conftest.py)."""

from __future__ import annotations

import contextlib
import socket

from quoteflow.settings import Settings, StackSettings

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
    from quoteflow.subjects.admin import delete_subjects as delete

    assert settings.schema_registry.url is not None
    delete(settings, f"{topic}-")


def end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    """Each partition's end offset (the next offset to be written) of ``topic``, now."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({**settings.kafka.as_librdkafka_dict(), "group.id": "quoteflow-test"})
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in metadata.partitions
        }
    finally:
        consumer.close()
