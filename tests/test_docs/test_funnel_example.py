"""docs/examples/funnel.py, the model consumer of docs/output-topics.md, on real topics."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer

from quoteflow.settings import Settings, load_settings
from quoteflow.topics.admin import TopicAdmin
from schemas import examples
from schemas.serde import serde_from_settings
from tests.helpers import drop_topics

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "funnel.py"
TRIGGERS, DECISIONS, RECEIPTS = ("quoteflow.abandonment.triggers",
                                 "quoteflow.abandonment.decisions", "quoteflow.esp.deliveries")


@pytest.fixture
def prefix(stack: object, settings: Settings) -> Iterator[str]:
    prefix = f"test.funnel.{uuid.uuid4().hex[:8]}."
    admin = TopicAdmin(settings)
    admin.create([dataclasses.replace(spec, name=prefix + spec.name) for spec in admin.catalogue
                  if spec.name in (TRIGGERS, DECISIONS, RECEIPTS)])  # fmt: skip
    yield prefix
    drop_topics(settings, (prefix,), prefix)


def test_the_example_counts_quotes_once_and_only_committed_live_records(
    prefix: str, settings: Settings
) -> None:
    writer = load_settings(schema_registry={"auto_register": True})
    serde = serde_from_settings(writer.schema_registry)
    producer = Producer({**settings.kafka.as_librdkafka_dict(), "acks": "all",
                         "transactional.id": f"funnel-{uuid.uuid4().hex[:8]}"})  # fmt: skip
    producer.init_transactions(30)

    def send(topic: str, schema: str, record: dict[str, object]) -> None:
        value = serde.encode(schema, record, topic=prefix + topic)
        producer.produce(prefix + topic, key=str(record.get("customer_id")).encode(), value=value)

    def trigger(quote_id: int, version: str, **more: object) -> dict[str, object]:
        return examples.abandonment_trigger(quote_id=quote_id, trigger_id=f"{quote_id}:{version}",
                                            rule_version=version, **more)  # fmt: skip

    producer.begin_transaction()
    send(TRIGGERS, "abandonment_trigger", trigger(1, "v1"))
    send(TRIGGERS, "abandonment_trigger", trigger(1, "v2"))  # the same quote, re-decided
    send(TRIGGERS, "abandonment_trigger", trigger(2, "v1"))
    send(TRIGGERS, "abandonment_trigger", trigger(2, "v1"))  # the same trigger read again
    send(TRIGGERS, "abandonment_trigger", trigger(3, "v1", replay=True))  # a sandbox replay
    for decision_id, outcome in (("4:v1", "SUPPRESSED"), ("4:v1", "SUPPRESSED"),
                                 ("5:v1", "HOLDOUT")):  # fmt: skip
        send(DECISIONS, "abandonment_decision",
             examples.abandonment_decision(decision_id=decision_id, outcome=outcome))
    for trigger_id, status in (("1:v1", "SENT"), ("1:v1", "DUPLICATE"), ("2:v1", "FAILED")):
        send(RECEIPTS, "esp_delivery_receipt",
             examples.delivery_receipt(trigger_id=trigger_id, status=status))
    producer.commit_transaction(30)
    producer.begin_transaction()  # never committed: no reader of the contract sees it
    send(TRIGGERS, "abandonment_trigger", trigger(6, "v1"))
    producer.flush(30)
    producer.abort_transaction(30)
    serde.close()

    done = subprocess.run(
        [sys.executable, str(EXAMPLE), "--bootstrap", settings.kafka.bootstrap_servers,
         "--registry", str(settings.schema_registry.url), "--prefix", prefix, "--until-end"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary == {
        "triggered_quotes": 2,
        "decisions": {"HOLDOUT": 1, "SUPPRESSED": 1},
        "receipts": {"FAILED": 1, "SENT": 1},
        "delivered_quotes": 1,
    }


def test_a_wrong_prefix_is_one_line_not_a_traceback(stack: object, settings: Settings) -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), "--bootstrap", settings.kafka.bootstrap_servers,
         "--prefix", "no.such.prefix.", "--until-end"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    assert "wrong --prefix?" in done.stderr and "Traceback" not in done.stderr
