"""The sink dispatcher's state, in one place: what every room of the dispatcher reads.

The dispatcher (:class:`connectors.sink.runner.Sink`) is one object owned by one
thread, split by concern into layered classes: :mod:`.recording` (outcomes into the
ledger, receipts and dead letters out, offsets committed), :mod:`.senders` (the
sender pool), :mod:`.claims` (reading triggers and claiming them) and
:mod:`.dispatch` (what goes out when), each building on the one before.
:class:`SinkState` declares the attributes they share; :class:`~.runner.Sink`
sets them up.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from confluent_kafka import Consumer, Producer

from connectors.sink.breaker import CircuitBreaker
from connectors.sink.delivery import Job, Result, Sender
from connectors.sink.lanes import Lanes
from connectors.sink.ledger import Claim, Final, Ledger
from connectors.sink.offsets import PartitionOffsets
from connectors.sink.providers import Provider
from connectors.sink.ratelimit import RateLimiter
from quoteflow.reporting import Reporter
from quoteflow.settings import Settings, SinkSettings
from quoteflow.topics import DEAD_LETTER, DELIVERIES, TRIGGERS, prefixed
from schemas.serde import Serde

#: A dispatcher turn claims (and records) in batches: one statement per few sends, not
#: per send, unless this long has passed (a trickle of triggers is not held back longer).
BATCH_WAIT_S = 0.005


@dataclass(frozen=True)
class SinkTopics:
    triggers: str
    deliveries: str
    dead_letter: str

    @classmethod
    def with_prefix(cls, prefix: str) -> SinkTopics:
        return cls(prefixed(prefix, TRIGGERS), prefixed(prefix, DELIVERIES),
                   prefixed(prefix, DEAD_LETTER))  # fmt: skip


@dataclass
class SinkStats:
    read: int = 0
    sent: int = 0
    duplicates: int = 0
    rejected: int = 0
    failed: int = 0
    ambiguous: int = 0
    expired: int = 0
    #: Times a trigger was held for quiet hours (each is sent or expires later).
    held: int = 0
    replays_dropped: int = 0
    #: Outcomes found after their claim had been taken over by another sink (kept, logged).
    late_outcomes: int = 0
    undecodable: int = 0
    interrupted: int = 0
    commits: int = 0

    def describe(self) -> str:
        return ", ".join(f"{f.name.replace('_', ' ')} {getattr(self, f.name)}"
                         for f in fields(self))  # fmt: skip


#: A message on its way out in the next transaction: (topic, key, schema, record).
Outgoing = tuple[str, bytes | None, str, dict[str, Any]]


class SinkState:
    """The dispatcher's attributes; only its thread touches them (the senders share
    nothing with it but the two queues, the breaker, the limiter and ``interrupt``)."""

    settings: Settings
    cfg: SinkSettings
    report: Reporter
    stop: threading.Event
    clock: Callable[[], float]
    provider: Provider
    topics: SinkTopics
    stats: SinkStats
    #: This process, as the owner of its claims in the ledger.
    owner: str
    #: The ledger's ownership epoch of each assigned partition (bumped at assignment).
    epochs: dict[tuple[str, int], int]
    #: The claim of each trigger on its way (its epoch fences the outcome's write).
    claims: dict[str, Claim]
    breaker: CircuitBreaker
    limiter: RateLimiter
    #: Set to end waits and requests in flight (a stop, a rebalance).
    interrupt: threading.Event
    resend_unknown: bool
    # The dispatcher's bookkeeping.
    lanes: Lanes[Job]
    #: trigger id -> the same trigger read again while the first is on its way.
    active: dict[str, list[Job]]
    tracks: dict[tuple[str, int], PartitionOffsets]
    committed: dict[tuple[str, int], int]
    #: Jobs handed to the senders and not yet back.
    running: int
    results: queue.SimpleQueue[Result | BaseException]
    finals: list[Final]
    #: (trigger id, epoch) of own claims to release: their requests never left.
    releases: list[tuple[str, int]]
    outbox: list[Outgoing]
    #: Trigger ids whose outcome receipt is in the outbox (marked in the ledger once
    #: the transaction carrying it has committed).
    receipts_owed: list[str]
    #: Triggers held for quiet hours: (judge again at, order, job); each keeps its lane.
    held: list[tuple[int, int, Job]]
    _held_order: itertools.count[int]
    paused: bool
    #: The first configuration failure (one line): the sink stops and raises it.
    refused: str | None
    _batch: int
    _last_dispatch: float
    _last_record: float
    # Set up by run().
    ledger: Ledger
    serde: Serde
    sender: Sender
    jobs: queue.SimpleQueue[Job | None]
    senders: list[threading.Thread]
    consumer: Consumer
    producer: Producer

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)
