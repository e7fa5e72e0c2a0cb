"""Apache Kafka (KRaft, one node) for the local stack, resolved from Maven Central."""

from devstack.stack.kafka.component import KafkaComponent

__all__ = ["KafkaComponent"]
