"""The broker's server.properties, as a pure function of the settings.

One node is both controller and broker (KRaft). The replication factors and ISR
minimums of Kafka's internal topics are lowered to 1: the defaults (3 and 2)
cannot be met by one broker, and transactions — which faust's exactly_once
relies on — would never initialise.
"""

from __future__ import annotations

from pathlib import Path

from devstack.stack.java import render_properties as render
from quoteflow.settings import StackSettings

__all__ = ["NODE_ID", "render", "server_properties"]

NODE_ID = 1


def server_properties(stack: StackSettings, data_dir: Path) -> dict[str, str]:
    """Broker configuration for the local single-node cluster."""
    host = "127.0.0.1"
    return {
        "process.roles": "broker,controller",
        "node.id": str(NODE_ID),
        "controller.quorum.voters": f"{NODE_ID}@{host}:{stack.kafka_controller_port}",
        "listeners": (
            f"PLAINTEXT://{host}:{stack.kafka_port},CONTROLLER://{host}:{stack.kafka_controller_port}"
        ),
        "advertised.listeners": f"PLAINTEXT://{host}:{stack.kafka_port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(data_dir),
        # Topics are declared in quoteflow's catalogue (or by faust for its own);
        # a typo in a topic name should fail, not create a stray topic.
        "auto.create.topics.enable": "false",
        "num.partitions": "1",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        # Consumers in tests join at once instead of waiting 3 s for more members.
        "group.initial.rebalance.delay.ms": "0",
        "log.retention.check.interval.ms": "60000",
    }
