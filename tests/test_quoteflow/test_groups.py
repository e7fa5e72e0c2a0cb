"""`quoteflow groups` against the real broker: lag, and resets planned, applied and refused.

Each test has a topic prefix, app id and sink group of its own, with the whole
catalogue created under that prefix (three partitions a topic): the commands
find the components' topics and groups exactly as they would in production,
and never see another test's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner, Result
from confluent_kafka import Consumer, Producer, TopicPartition

from quoteflow.cli import cli
from quoteflow.errors import GroupError, GroupOptionError
from quoteflow.groups.admin import GroupAdmin
from quoteflow.groups.plan import PlanRow, ResetPlan
from quoteflow.settings import Settings, load_settings
from quoteflow.topics import CUSTOMERS, QUOTES, TRIGGERS
from tests.helpers import committed_offsets, drop_topics

pytestmark = pytest.mark.integration

PARTITIONS = 3
RECORDS = 10  # per partition
T0_MS = 1_790_000_000_000  # the first record's timestamp; one second apart after it


@dataclass(frozen=True)
class Env:
    """This test's settings, and the same as environment variables for the CLI."""

    settings: Settings
    environ: dict[str, str]

    @property
    def triggers(self) -> str:
        return self.settings.topics.prefix + TRIGGERS

    @property
    def sink_group(self) -> str:
        return self.settings.sink.group_id

    def run(self, *args: str, input: str | None = None) -> Result:
        # Wide enough for the tables not to wrap a name (rich reads COLUMNS as it prints).
        environ = {**self.environ, "COLUMNS": "200"}
        return CliRunner().invoke(cli, list(args), env=environ, input=input)

    def committed(self, topic: str | None = None) -> dict[int, int]:
        return committed_offsets(self.settings, self.sink_group, topic or self.triggers)

    def commit(self, group: str, topic: str, offsets: dict[int, int]) -> None:
        """Commit offsets for ``group`` from outside it, as a stopped component left them."""
        consumer = Consumer({**self.settings.kafka.as_librdkafka_dict(), "group.id": group,
                             "enable.auto.commit": False})  # fmt: skip
        try:
            consumer.commit(offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()],
                            asynchronous=False)  # fmt: skip
        finally:
            consumer.close()


@pytest.fixture
def env(stack: object) -> Iterator[Env]:
    from quoteflow.topics.admin import TopicAdmin

    run = uuid.uuid4().hex[:10]
    prefix = f"test-groups-{run}."
    environ = {
        "QUOTEFLOW_TOPICS__PREFIX": prefix,
        "QUOTEFLOW_TOPICS__PARTITIONS": str(PARTITIONS),
        "QUOTEFLOW_STREAMS__APP_ID": f"test-groups-{run}",
        "QUOTEFLOW_SINK__GROUP_ID": f"test-groups-sink-{run}",
    }
    settings = load_settings(
        topics={"prefix": prefix, "partitions": PARTITIONS},
        streams={"app_id": environ["QUOTEFLOW_STREAMS__APP_ID"]},
        sink={"group_id": environ["QUOTEFLOW_SINK__GROUP_ID"]},
    )  # fmt: skip
    TopicAdmin(settings).create()
    producer = Producer(settings.kafka.as_librdkafka_dict())
    for topic in (prefix + TRIGGERS, prefix + QUOTES, prefix + CUSTOMERS):
        for partition in range(PARTITIONS):
            for n in range(RECORDS):
                producer.produce(topic, value=b"x", partition=partition,
                                 timestamp=T0_MS + n * 1000)  # fmt: skip
    assert producer.flush(30) == 0
    try:
        yield Env(settings, environ)
    finally:
        drop_topics(settings, (prefix,), subjects_of=prefix)


def test_lag_per_partition_and_in_total_and_a_group_without_commits(env: Env) -> None:
    env.commit(env.sink_group, env.triggers, {0: 4, 1: RECORDS})
    result = env.run("groups", "lag", "sink", "router", "--json")
    assert result.exit_code == 0, result.output
    found = {g["component"]: g for g in json.loads(result.stdout)["groups"]}
    sink = found["sink"]
    assert (sink["group"], sink["state"], sink["members"], sink["problem"]) == (
        env.sink_group, "Empty", 0, "")  # fmt: skip
    [triggers] = sink["topics"]
    assert triggers["topic"] == env.triggers
    assert [(p["partition"], p["committed"], p["end"], p["lag"])
            for p in triggers["partitions"]] == [
        (0, 4, RECORDS, 6), (1, RECORDS, RECORDS, 0), (2, None, RECORDS, None)]  # fmt: skip
    assert triggers["total"] == 6
    router = found["router"]
    assert router["state"] == "Dead"  # never seen: nothing committed, nobody in it
    assert [t["total"] for t in router["topics"]] == [None, None]
    assert {t["topic"] for t in router["topics"]} == {
        env.settings.topics.prefix + QUOTES, env.settings.topics.prefix + CUSTOMERS}

    table = env.run("groups", "lag", "sink", "processor")
    assert table.exit_code == 0, table.output
    assert env.sink_group in table.stdout and "total" in table.stdout
    assert "topic missing" in table.stdout  # the processor's by-customer topic: no worker ran


def test_dry_run_prints_the_plan_and_changes_nothing(env: Env) -> None:
    env.commit(env.sink_group, env.triggers, {0: 4, 1: 8, 2: 9})
    result = env.run("groups", "reset", "sink", "--to-earliest", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "re-reads 21 record(s), skips 0 record(s)" in result.stdout
    assert "dry run: nothing changed" in result.stdout
    assert env.committed() == {0: 4, 1: 8, 2: 9}


def test_reset_applies_the_plan_to_offsets_a_time_and_the_end(env: Env) -> None:
    env.commit(env.sink_group, env.triggers, {0: 4, 1: 8, 2: 9})
    done = env.run("groups", "reset", "sink", "--to-offset", "0=2,2=7", "--yes")
    assert done.exit_code == 0, done.output
    assert env.committed() == {0: 2, 1: 8, 2: 7}

    at = datetime.fromtimestamp((T0_MS + 5_000) / 1000, UTC).isoformat()
    done = env.run("groups", "reset", "sink", "--to-datetime", at, "--yes")
    assert done.exit_code == 0, done.output
    assert env.committed() == {0: 5, 1: 5, 2: 5}

    done = env.run("groups", "reset", "sink", "--to-latest", "--yes")
    assert done.exit_code == 0, done.output
    assert env.committed() == dict.fromkeys(range(PARTITIONS), RECORDS)


def test_reset_asks_first_and_a_no_changes_nothing(env: Env) -> None:
    env.commit(env.sink_group, env.triggers, {0: 4, 1: 8, 2: 9})
    refused = env.run("groups", "reset", "sink", "--to-earliest", input="n\n")
    assert refused.exit_code == 1
    assert "not confirmed: nothing changed" in refused.stderr
    assert env.committed() == {0: 4, 1: 8, 2: 9}
    agreed = env.run("groups", "reset", "sink", "--to-earliest", input="y\n")
    assert agreed.exit_code == 0, agreed.output
    assert env.committed() == {0: 0, 1: 0, 2: 0}


def test_reset_is_refused_while_a_consumer_of_the_group_is_active(env: Env) -> None:
    env.commit(env.sink_group, env.triggers, {0: 4, 1: 8, 2: 9})
    consumer = Consumer({**env.settings.kafka.as_librdkafka_dict(), "group.id": env.sink_group,
                         "enable.auto.commit": False, "session.timeout.ms": 10_000})  # fmt: skip
    try:
        consumer.subscribe([env.triggers])
        deadline = time.monotonic() + 30
        while not consumer.assignment():
            assert time.monotonic() < deadline, "the consumer was never assigned its partitions"
            consumer.poll(0.2)
        refused = env.run("groups", "reset", "sink", "--to-earliest", "--yes")
        assert isinstance(refused.exception, GroupError), refused.output
        assert "has 1 active member(s)" in str(refused.exception)
        # As a person meets it: one line, exit 1, no traceback.
        done = subprocess.run(
            [sys.executable, "-m", "quoteflow", "groups", "reset", "sink", "--to-earliest",
             "--yes"], capture_output=True, text=True, timeout=120, check=False,
            env={**os.environ, **env.environ, "COLUMNS": "200"},
        )  # fmt: skip
        assert done.returncode == 1
        assert done.stderr.startswith(f"quoteflow: error: group {env.sink_group} has 1 active")
        assert "Traceback" not in done.stderr
        # A consumer that joins between the check and the commit: the broker refuses too.
        plan = ResetPlan(env.sink_group, (PlanRow(env.triggers, 0, 4, 0),))
        with pytest.raises(GroupError, match=f"Kafka refused the reset of group {env.sink_group}"):
            GroupAdmin(env.settings).apply(plan)
        dry = env.run("groups", "reset", "sink", "--to-earliest", "--dry-run")
        assert dry.exit_code == 0 and "a reset would be refused now" in dry.stderr
        assert env.committed() == {0: 4, 1: 8, 2: 9}
    finally:
        consumer.close()  # leaves the group: it is Empty again
    done_after = env.run("groups", "reset", "sink", "--to-earliest", "--yes")
    assert done_after.exit_code == 0, done_after.output
    assert env.committed() == {0: 0, 1: 0, 2: 0}


def test_a_group_of_two_topics_needs_the_topic_named(env: Env) -> None:
    quotes = env.settings.topics.prefix + QUOTES
    router = f"{env.settings.streams.app_id}-router"
    bare = env.run("groups", "reset", "router", "--to-offset", "0=3", "--yes")
    assert isinstance(bare.exception, GroupOptionError), bare.output
    assert "the group reads 2 topics" in str(bare.exception)
    named = env.run("groups", "reset", "router", "--to-offset", f"{quotes}:0=3", "--yes")
    assert named.exit_code == 0, named.output
    assert committed_offsets(env.settings, router, quotes) == {0: 3, 1: -1001, 2: -1001}
    only = env.run("groups", "reset", "router", "--topic", quotes, "--to-offset", "1=2", "--yes")
    assert only.exit_code == 0, only.output
    assert committed_offsets(env.settings, router, quotes) == {0: 3, 1: 2, 2: -1001}
