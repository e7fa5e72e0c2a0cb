"""What the demo shows is read from where the pipeline wrote it, never from the demo itself.

One ``read_committed`` consumer tails the run's own topics (changes, triggers,
decisions) from their beginning: a trigger counts once its transaction
committed, as a dashboard would see it. :meth:`Observer.catch_up` reads every
topic to the end offsets the broker reports at that moment, so the final
numbers are "everything there is", not "what arrived before a timeout". What
was e-mailed is the ESP sandbox's own count, asked over its control API.

Only this run's quotes and customers count. The run's topics keep runs apart,
but the QMS and CRM tables are shared: every other writer's changes (other
tests, a person at ``psql``) are captured, decided and even e-mailed to the
run's sandbox too. They are counted apart (``foreign``), never mixed into the
run's numbers, which are filtered by the plan's ids (the trigger ids too: a
trigger id is derived from the quote id and the rules version).
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Set
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from devstack.esp_sandbox import SandboxClient
from quoteflow.errors import QuoteflowError, TopicError
from quoteflow.settings import Settings
from quoteflow.topics import CUSTOMERS, DECISIONS, QUOTES, TRIGGERS
from schemas.serde import Serde, serde_from_settings

SCHEMAS = {QUOTES: "qms_quote_envelope", CUSTOMERS: "crm_customer_envelope",
           TRIGGERS: "abandonment_trigger", DECISIONS: "abandonment_decision"}  # fmt: skip


@dataclass(frozen=True)
class SeenTrigger:
    trigger_id: str
    quote_id: int
    deadline_ms: int


@dataclass
class Seen:
    """Everything read so far from the run's topics."""

    changes: int = 0
    #: Records of quotes and customers that are not this run's (other writers).
    foreign: int = 0
    #: Latest status of each quote (None: deleted).
    status: dict[int, str | None] = field(default_factory=dict)
    triggers: list[SeenTrigger] = field(default_factory=list)
    #: (quote id, outcome, reason) per decision record.
    decisions: list[tuple[int, str, str]] = field(default_factory=list)

    @property
    def decided(self) -> set[int]:
        return {t.quote_id for t in self.triggers} | {q for q, o, _ in self.decisions
                                                       if o != "CONVERTED"}  # fmt: skip

    def open_quotes(self, offerable: tuple[str, ...] = ("QUOTED",)) -> int:
        """Quotes in the funnel now: offerable and not decided yet."""
        decided = self.decided
        return sum(1 for q, s in self.status.items() if s in offerable and q not in decided)

    def by_reason(self) -> Counter[tuple[str, str]]:
        return Counter((o, r) for _, o, r in self.decisions)


def _ms(value: Any) -> int:
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    return int(value)


class Observer:
    """Tails the run's topics (``prefix`` + catalogue names) with one consumer."""

    def __init__(self, settings: Settings, prefix: str, *, quote_ids: Set[int],
                 customer_ids: Set[int], from_end: bool = False) -> None:  # fmt: skip
        self._prefix = prefix
        #: Start at the topics' ends instead of their beginning: a long-running pipeline's
        #: topics hold its history, none of it this run's (its rows are written after).
        self._from_end = from_end
        self._start: dict[tuple[str, int], int] = {}
        self._quote_ids, self._customer_ids = quote_ids, customer_ids
        self._serde: Serde = serde_from_settings(settings.schema_registry)
        self._consumer = Consumer({
            **settings.kafka.as_librdkafka_dict(),
            "group.id": f"quoteflow-demo-observer-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False, "isolation.level": "read_committed",
            "fetch.wait.max.ms": 100,
        })  # fmt: skip
        self._topics = {prefix + name: name for name in SCHEMAS}
        self._partitions: list[TopicPartition] = []
        self.seen = Seen()

    def start(self) -> None:
        try:
            metadata = self._consumer.list_topics(timeout=10).topics
        except KafkaException as exc:
            raise TopicError(f"cannot list topics: {exc}") from None
        for topic in self._topics:
            if topic not in metadata:
                raise TopicError(f"topic {topic} does not exist")
            for p in metadata[topic].partitions:
                offset = OFFSET_BEGINNING
                if self._from_end:
                    offset = self._consumer.get_watermark_offsets(TopicPartition(topic, p),
                                                                  timeout=10)[1]  # fmt: skip
                    self._start[(topic, p)] = offset
                self._partitions.append(TopicPartition(topic, p, offset))
        self._consumer.assign(self._partitions)

    def poll(self, budget_s: float = 0.2) -> int:
        """Read what is there (at most ``budget_s``); records read."""
        read = 0
        deadline = time.monotonic() + budget_s
        while time.monotonic() < deadline:
            batch = self._consumer.consume(500, 0.05)
            if not batch:
                break
            for message in batch:
                if message.error() is None:
                    self._apply(message.topic() or "", message.value())
                    read += 1
        return read

    def _apply(self, topic: str, value: bytes | None) -> None:
        if value is None:
            return  # a delete's tombstone: the delete event before it said everything
        name = self._topics[topic]
        record = self._serde.decode(SCHEMAS[name], value, topic=topic)
        seen = self.seen
        if name in (QUOTES, CUSTOMERS):
            row = record.get("after") or record.get("before") or {}
            key, ours = ("quote_id", self._quote_ids) if name == QUOTES else (
                "customer_id", self._customer_ids)  # fmt: skip
            if row.get(key) not in ours:
                seen.foreign += 1
                return
            seen.changes += 1
            if name == QUOTES:
                seen.status[int(row["quote_id"])] = (
                    None if record.get("op") == "d" else record["after"]["status"])
        elif int(record["quote_id"]) not in self._quote_ids:
            return  # another writer's quote, decided by this run's processor
        elif name == TRIGGERS:
            seen.triggers.append(SeenTrigger(record["trigger_id"], int(record["quote_id"]),
                                             _ms(record["deadline_at"])))  # fmt: skip
        else:
            seen.decisions.append((int(record["quote_id"]), record["outcome"], record["reason"]))

    def catch_up(self, timeout_s: float = 60.0) -> None:
        """Read every topic up to the end offsets the broker reports now (for a
        ``read_committed`` reader: the last stable offset), or fail saying so."""
        ends = {}
        for tp in self._partitions:
            _, high = self._consumer.get_watermark_offsets(tp, timeout=10)
            ends[(tp.topic, tp.partition)] = high
        deadline = time.monotonic() + timeout_s
        while True:
            # A partition that got nothing since the start has nothing to read (and no
            # position to compare until a record is consumed).
            positions = self._consumer.position(
                [TopicPartition(t, p) for (t, p), end in ends.items()
                 if end > self._start.get((t, p), 0)])  # fmt: skip
            behind = [tp for tp in positions if tp.offset < ends[(tp.topic, tp.partition)]]
            if not behind:
                return
            if time.monotonic() > deadline:
                raise TopicError(f"could not read the demo's topics to their end in"
                                 f" {timeout_s:.0f}s ({len(behind)} partitions behind)")
            self.poll(0.5)

    def close(self) -> None:
        self._consumer.close()
        self._serde.close()


class SandboxView:
    """The ESP sandbox's own counts: what it accepted, per trigger, and when."""

    def __init__(self, url: str) -> None:
        self._client = SandboxClient(url, timeout_s=5.0)
        self.url = url

    def wait_ready(self, timeout_s: float) -> None:
        try:
            self._client.wait_ready(timeout_s)
        except QuoteflowError as exc:
            raise QuoteflowError(f"the ESP sandbox did not answer: {exc}") from None

    def delivered(self) -> dict[str, int]:
        """Deliveries per trigger id (a resend that reached the customer counts twice)."""
        return {t: n.get("delivered", 0) for t, n in self._client.triggers().items()}

    def received_ms(self) -> dict[str, int]:
        """When the sandbox first received each delivered trigger (epoch ms)."""
        first: dict[str, int] = {}
        for message in self._client.messages(redact=True):
            at = int(float(message["received_at"]) * 1000)
            first[message["trigger_id"]] = min(first.get(message["trigger_id"], at), at)
        return first

    def close(self) -> None:
        self._client.close()
