"""A dashboard's view of quoteflow's output topics: the abandonment funnel.

A model consumer for dashboard builders (docs/output-topics.md is the contract
it follows). It needs nothing of quoteflow: confluent-kafka and the Schema
Registry, as any Avro consumer would.

    python docs/examples/funnel.py --bootstrap 127.0.0.1:19092 \\
        --registry http://127.0.0.1:18081/apis/ccompat/v7 --until-end

What it does right, and a dashboard must too:
- reads with ``isolation.level=read_committed`` (an aborted transaction's records
  are never offers);
- counts quotes, not records: a trigger id or a decision id read twice (a replay,
  a restarted consumer) is counted once, and a quote triggered under two rules
  versions is one triggered quote;
- takes a trigger's outcome from its latest receipt that is not DUPLICATE
  (DUPLICATE only says a second copy was not sent);
- ignores ``replay = true`` records (a replay into a sandbox, not a live offer).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

TOPICS = ("quoteflow.abandonment.triggers", "quoteflow.abandonment.decisions",
          "quoteflow.esp.deliveries")  # fmt: skip


class Funnel:
    """Quotes at each step; idempotent under re-reads."""

    def __init__(self) -> None:
        self.triggered: dict[int, str] = {}  # quote id -> its first trigger id
        self.decisions: dict[str, str] = {}  # decision id -> outcome
        self.outcomes: dict[str, str] = {}  # trigger id -> latest terminal receipt status

    def add(self, topic: str, record: dict[str, Any]) -> None:
        if record.get("replay"):
            return
        if topic.endswith("abandonment.triggers"):
            self.triggered.setdefault(record["quote_id"], record["trigger_id"])
        elif topic.endswith("abandonment.decisions"):
            self.decisions[record["decision_id"]] = record["outcome"]
        elif record["status"] != "DUPLICATE":
            self.outcomes[record["trigger_id"]] = record["status"]

    def summary(self) -> dict[str, Any]:
        offered = set(self.triggered.values())
        statuses = Counter(s for t, s in self.outcomes.items() if t in offered)
        return {
            "triggered_quotes": len(self.triggered),
            "decisions": dict(sorted(Counter(self.decisions.values()).items())),
            "receipts": dict(sorted(statuses.items())),
            "delivered_quotes": statuses.get("SENT", 0),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:19092")
    parser.add_argument("--registry", default="http://127.0.0.1:18081/apis/ccompat/v7")
    parser.add_argument("--prefix", default="", help="topic prefix of the pipeline, if any")
    parser.add_argument("--until-end", action="store_true",
                        help="read from the beginning to the current end, print, exit")
    args = parser.parse_args()

    deserialize = AvroDeserializer(SchemaRegistryClient({"url": args.registry}))
    consumer = Consumer({"bootstrap.servers": args.bootstrap, "group.id": "funnel-example",
                         "isolation.level": "read_committed", "enable.auto.commit": False,
                         "auto.offset.reset": "earliest"})  # fmt: skip
    topics = [args.prefix + t for t in TOPICS]
    ends: dict[tuple[str, int], int] = {}
    if args.until_end:  # every partition from its start; stop at today's end offsets
        metadata = consumer.list_topics(timeout=10).topics
        missing = [t for t in topics if t not in metadata]
        if missing:
            raise SystemExit(f"no topic {', '.join(missing)} on {args.bootstrap}: wrong --prefix?")
        parts = [TopicPartition(t, p, OFFSET_BEGINNING) for t in topics
                 for p in metadata[t].partitions]  # fmt: skip
        for tp in parts:
            low, high = consumer.get_watermark_offsets(tp, timeout=10)
            if high > low:
                ends[(tp.topic, tp.partition)] = high
        consumer.assign(parts)
    else:
        consumer.subscribe(topics)
    funnel = Funnel()
    last_print = time.monotonic()
    try:
        while not args.until_end or ends:
            message = consumer.poll(1.0)
            if message is not None and message.error() is None and message.value():
                topic = message.topic() or ""
                context = SerializationContext(topic, MessageField.VALUE)
                funnel.add(topic, deserialize(message.value(), context))
            if args.until_end:
                # read_committed skips transaction markers: the position, not the last
                # offset read, says whether a partition's end is reached.
                for tp in consumer.position([TopicPartition(t, p) for t, p in ends]):
                    if tp.offset >= ends[(tp.topic, tp.partition)]:
                        del ends[(tp.topic, tp.partition)]
            elif time.monotonic() - last_print >= 5:
                print(json.dumps(funnel.summary()), flush=True)
                last_print = time.monotonic()
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
    print(json.dumps(funnel.summary()))


if __name__ == "__main__":
    main()
