"""``quoteflow bench replay`` on the real stack, at a small scale.

Checks the plumbing, not the speeds (those are the benchmark's to report,
never a test's to assert): the JSON last line has its figures, the replay read
every seeded record, and what it wrote to its triggers and decisions topics is
exactly what the core decides on the seeded history, stepped as the reference
semantics steps it (:func:`streams.core.detector.run_in_event_time`).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from confluent_kafka import Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient

from bench import workload as wl
from bench.replay import QUOTES_PER_CUSTOMER, REPLAY_NAME, cleanup, run_replay_bench
from bench.replay_history import DELAY_MINUTES, History, reference_items
from quoteflow.cli import cli
from quoteflow.reporting import silent
from quoteflow.settings import Settings
from quoteflow.topics.catalog import CUSTOMERS, QUOTES, for_environment
from schemas.serde import serde_from_settings
from streams.core.detector import run_in_event_time
from streams.core.model import Trigger
from streams.core.rules import load_rules

pytestmark = pytest.mark.integration

EVENTS = 2_000
EVERY = 50  # watermark records every 30 s of commit time: deadlines fall due between them


def _ms(value: datetime | int) -> int:
    """A timestamp-millis field as epoch ms (the serde gives an aware datetime)."""
    return value if isinstance(value, int) else round(value.timestamp() * 1000)


def _values(settings: Settings, topic: str) -> Iterator[bytes]:
    reader = Consumer({**settings.kafka.as_librdkafka_dict(), "group.id": "test-bench-replay",
                       "enable.partition.eof": True})  # fmt: skip
    try:
        partitions = reader.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: reader.get_watermark_offsets(TopicPartition(topic, p), 10)[1]
                for p in partitions}  # fmt: skip
        todo = {p for p, end in ends.items() if end > 0}
        reader.assign([TopicPartition(topic, p, 0) for p in todo])
        deadline = time.monotonic() + 60
        while todo and time.monotonic() < deadline:
            for message in reader.consume(1_000, 1.0):
                error, partition = message.error(), message.partition() or 0
                if error is None:
                    yield message.value() or b""
                elif error.code() != KafkaError._PARTITION_EOF:
                    raise AssertionError(str(error))
                if error is not None or (message.offset() or 0) + 1 >= ends[partition]:
                    todo.discard(partition)
        assert not todo, f"{topic}: partitions {sorted(todo)} not read to their end"
    finally:
        reader.close()


def test_the_replay_writes_what_the_core_decides_on_the_seeded_history(
    stack: object, settings: Settings, tmp_path: Path
) -> None:
    start_ms = 1_790_000_000_000
    result = run_replay_bench(settings, events=EVENTS, lanes=2, report=silent, sample=500,
                              watermark_every=EVERY, start_ms=start_ms, keep=True)  # fmt: skip
    try:
        shapes = {s.name: s.partitions for s in for_environment(
            settings.topics.replication_factor, settings.topics.partitions)}  # fmt: skip
        history = History(EVENTS, EVENTS // QUOTES_PER_CUSTOMER, start_ms, shapes[QUOTES],
                          shapes[CUSTOMERS], EVERY)  # fmt: skip
        (tmp_path / "rules.toml").write_text(wl.RULES_TOML.format(delay_minutes=DELAY_MINUTES))
        rules = load_rules(tmp_path / "rules.toml")
        _, outputs = run_in_event_time(reference_items(history), rules)
        triggers = {o.trigger_id: (o.quote.quote_id, o.deadline_ms, o.fire_ms)
                    for o in outputs if isinstance(o, Trigger)}  # fmt: skip
        decisions = {o.decision_id: (o.quote.quote_id, o.outcome.value, o.decided_ms)
                     for o in outputs if not isinstance(o, Trigger)}  # fmt: skip
        assert triggers and decisions  # the history makes both, during the replay

        serde = serde_from_settings(settings.schema_registry)
        try:
            base = f"{result.prefix}quoteflow.replay.{REPLAY_NAME}."
            written_triggers = {}
            for value in _values(settings, base + "triggers"):
                record = serde.decode("abandonment_trigger", value, topic=base + "triggers")
                assert record["replay"] is True
                written_triggers[record["trigger_id"]] = (
                    record["quote_id"], _ms(record["deadline_at"]), _ms(record["fired_at"]))
            written_decisions = {}
            for value in _values(settings, base + "decisions"):
                record = serde.decode("abandonment_decision", value, topic=base + "decisions")
                written_decisions[record["decision_id"]] = (
                    record["quote_id"], record["outcome"], _ms(record["decided_at"]))
        finally:
            serde.close()
        assert written_triggers == triggers
        assert written_decisions == decisions

        assert result.events == EVENTS + history.customers
        assert result.triggers == len(triggers) and result.decisions == len(decisions)
        assert result.written == len(triggers) + len(decisions)
        assert result.lanes == 2
        assert result.watermark_records == 2 + 2 * len(history.chunks())
    finally:
        cleanup(settings, result.prefix)


def test_the_command_prints_its_figures_last_and_leaves_nothing_behind(
    stack: object, settings: Settings
) -> None:
    result = CliRunner().invoke(cli, ["bench", "replay", "--events", "1000", "--lanes", "1",
                                      "--sample", "200"])  # fmt: skip
    assert result.exit_code == 0, result.output
    # Its own topics only: other runs (other helpers' benchmarks) may be going on.
    found = re.search(r"into\s+(bench\.replay\.[0-9a-f]+\.)\*", result.output)
    assert found is not None, result.output
    prefix = found.group(1)
    figures = json.loads(result.output.strip().splitlines()[-1])
    for key in ("events_per_s", "baseline_per_s", "decode_per_s", "full_decode_per_s",
                "core_per_s", "seconds", "triggers", "written"):  # fmt: skip
        assert figures[key] > 0, key
    assert figures["events"] == 1000 + 1000 // QUOTES_PER_CUSTOMER
    assert figures["ratio"] == round(figures["events_per_s"] / figures["baseline_per_s"], 2)
    assert figures["lanes"] == 1
    admin = AdminClient(settings.kafka.as_librdkafka_dict())
    assert not [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix)]
