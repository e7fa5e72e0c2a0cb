"""A replay stopped with Ctrl-C finishes with the command it prints; lanes change nothing; mistakes
are one line.

The history is synthetic but real on the broker: quote and customer change
events as the CDC writes them (Avro, keyed), with watermark records that move
in event time as a CDC's heartbeats do, so decisions fall due all along the
range (bench.workload builds the envelopes).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shlex
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient

from bench import workload as wl
from quoteflow.settings import Settings
from quoteflow.topics.admin import TopicAdmin
from quoteflow.topics.catalog import CUSTOMERS, QUOTES, WATERMARKS
from schemas.examples import cdc_watermark
from schemas.serde import serde_from_settings
from tests.helpers import end_offsets, read_to_end
from tests.test_integration.running import rules_text

pytestmark = pytest.mark.integration

EVENTS = 100_000
CUSTOMERS_N = 5_000
STEP_MS = 60  # event time between two quote changes: 100k changes span 100 minutes
RULES = rules_text("resume-1", holdout=10)


def _record(source: str, topic: str, watermark_ms: int, ends: dict[int, int]) -> dict[str, Any]:
    return cdc_watermark(source=source, topic=topic, watermark_ms=watermark_ms,
                         offsets=[{"partition": p, "offset": o} for p, o in sorted(ends.items())],
                         emitted_ms=watermark_ms)  # fmt: skip


@pytest.fixture(scope="module")
def history(stack: object, settings: Settings) -> Iterator[str]:
    """A prefix whose change and watermark topics hold EVENTS quote changes."""
    prefix = f"test.replay.resume.{uuid.uuid4().hex[:8]}."
    admin = TopicAdmin(settings)
    specs = [dataclasses.replace(s, name=prefix + s.name) for s in admin.catalogue]
    admin.create(specs)
    serde = serde_from_settings(settings.schema_registry.model_copy(update={"auto_register": True}))
    source = wl.Source(settings, serde, prefix)
    start = int(time.time() * 1000) - 3 * 3600_000
    people = [wl.customer_envelope(c, at_ms=start, lsn=10 + c) for c in range(1, CUSTOMERS_N + 1)]
    source.produce_raw(prefix + CUSTOMERS, source.encode(people, CUSTOMERS),
                       list(range(1, CUSTOMERS_N + 1)), key_topic=CUSTOMERS)  # fmt: skip
    lsn = 10 * CUSTOMERS_N + 100
    chunk = 5_000
    for first in range(0, EVENTS, chunk):
        quotes = []
        for k in range(first, first + chunk):
            lsn += 10
            accept = k % 5 == 4
            quote_id = k - 2 if accept else k
            quotes.append(wl.quote_envelope(
                quote_id, quote_id % CUSTOMERS_N + 1, "ACCEPTED" if accept else "QUOTED",
                updated_ms=start + k * STEP_MS, lsn=lsn, op="u" if accept else "c"))  # fmt: skip
        source.produce_raw(prefix + QUOTES, source.encode(quotes, QUOTES),
                           [q["after"]["quote_id"] for q in quotes], key_topic=QUOTES)  # fmt: skip
        mark = start + (first + chunk) * STEP_MS
        for name, topic in (("qms", QUOTES), ("crm", CUSTOMERS)):
            record = _record(name, prefix + topic, mark, source.end_offsets(prefix + topic))
            value = serde.encode("cdc_watermark", record, topic=prefix + WATERMARKS)
            source.producer.produce(prefix + WATERMARKS, key=name.encode(), value=value)
        source.producer.flush(30)
    source.close()
    serde.close()
    yield prefix
    kafka = AdminClient(settings.kafka.as_librdkafka_dict())
    names = [s.name for s in specs] + [t for t in admin.existing() if t.startswith(prefix)]
    for future in kafka.delete_topics(sorted(set(names))).values():
        with contextlib.suppress(Exception):
            future.result()


def _env(prefix: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUOTEFLOW_")}
    return {**env, "QUOTEFLOW_TOPICS__PREFIX": prefix, "COLUMNS": "250"}


def quoteflow(prefix: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "quoteflow", *args], text=True,
                          capture_output=True, env=_env(prefix), timeout=600)  # fmt: skip


def ids(settings: Settings, prefix: str, name: str) -> Counter[str]:
    serde = serde_from_settings(settings.schema_registry)
    found: Counter[str] = Counter()
    try:
        for suffix, schema, field in (("triggers", "abandonment_trigger", "trigger_id"),
                                      ("decisions", "abandonment_decision", "decision_id")):
            topic = f"{prefix}quoteflow.replay.{name}.{suffix}"
            for _, value in read_to_end(settings, topic, timeout_s=120):
                found[serde.decode(schema, value or b"", topic=topic)[field]] += 1
    finally:
        serde.close()
    return found


def test_ctrl_c_stops_cleanly_and_the_printed_command_finishes_exactly(
    history: str, settings: Settings, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    full = quoteflow(history, "replay", "--name", "full", "--rules", str(rules))
    assert full.returncode == 0, full.stdout + full.stderr
    expected = ids(settings, history, "full")
    assert len(expected) > 10_000 and set(expected.values()) == {1}
    again = quoteflow(history, "replay", "--name", "full", "--rules", str(rules))
    assert again.returncode == 2 and "add --resume to finish it" in again.stderr

    child = subprocess.Popen([sys.executable, "-m", "quoteflow", "replay", "--name", "part",
                              "--rules", str(rules)], text=True, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=_env(history))  # fmt: skip
    topic = f"{history}quoteflow.replay.part.decisions"
    deadline = time.monotonic() + 120
    admin = TopicAdmin(settings)
    # Until it has written some: end offsets, a round trip, not a read of the topic (which
    # took long enough for a fast replay to finish first).
    while time.monotonic() < deadline and child.poll() is None:
        if topic in admin.existing() and sum(end_offsets(settings, topic).values()):
            break
        time.sleep(0.05)
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=120)
    assert child.returncode == 130, out + err
    assert "Traceback" not in err
    command = next(line.strip() for line in out.splitlines()
                   if line.strip().startswith("quoteflow replay"))  # fmt: skip
    words = shlex.split(command)
    assert "--resume" in words and "--to" in words
    partial = ids(settings, history, "part")
    assert 0 < sum(partial.values()) < sum(expected.values())

    resumed = quoteflow(history, *words[1:])
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert ids(settings, history, "part") == expected  # everything, each once


def test_lanes_share_the_customers_and_decide_the_same(history: str, settings: Settings,
                                                         tmp_path: Path) -> None:  # fmt: skip
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    one = quoteflow(history, "replay", "--name", "lanes1", "--rules", str(rules))
    two = quoteflow(history, "replay", "--name", "lanes2", "--rules", str(rules), "--lanes", "2")
    assert one.returncode == 0 and two.returncode == 0, two.stdout + two.stderr
    assert ids(settings, history, "lanes2") == ids(settings, history, "lanes1")


@pytest.mark.parametrize(("args", "message"), [
    (["--from", "yesterday"], "quoteflow: error: --from 'yesterday': not a time"),
    (["--dry-run", "--into", "live"], "quoteflow: error: --dry-run writes nothing"),
])  # fmt: skip
def test_mistakes_are_one_line(history: str, args: list[str], message: str) -> None:
    done = quoteflow(history, "replay", *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr


def test_topics_that_are_not_there_are_named(stack: object) -> None:
    done = quoteflow("test.replay.nothing-here.", "replay", "--dry-run")
    assert done.returncode == 2
    assert "not on the broker" in done.stderr and "Traceback" not in done.stderr
