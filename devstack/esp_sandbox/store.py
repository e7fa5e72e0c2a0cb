"""What the sandbox received: the messages it "sent", and the counts the tests assert on.

The question every test of the sink asks is "was each trigger delivered exactly
once?", so deliveries are counted per trigger: a request the provider accepted
and did not drop as a repeat of a dedupe id counts as a delivery (for SendGrid
and Braze, which cannot deduplicate, a resend is a second e-mail, and shows up
here as a second delivery). Everything is in memory behind one lock: a
benchmark run holds some ten thousand messages, a few megabytes.

A delivery count alone cannot show a resend the provider dropped (Customer.io
and webhooks deduplicate) or one it never acted on (a 5xx): so every provider
request is also logged as it arrived (:class:`Received`: its trigger ids, dedupe
id, arrival time and what became of it: accepted, duplicate, rejected or
faulted) and counted per trigger and per provider. That is what the sink *sent*,
whatever the provider did with it: the evidence for "never resent", for "the 5xx
burst really happened" and for the sink's rate limit and circuit breaker. The log
keeps the newest :data:`REQUEST_LOG` requests (the counts are not bounded by it).
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from devstack.esp_sandbox.providers.common import Accepted, Identity
from quoteflow.logs import mask_email


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return mask_email(value)
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class Message:
    """One e-mail the provider would have sent."""

    seq: int
    provider: str
    trigger_id: str
    email: str | None
    template_data: Mapping[str, Any]
    received_at: float  # time.time()
    message_id: str
    dedupe_id: str | None
    #: Which request for this trigger it was (1: the first; more: a resend was delivered).
    attempt: int

    def as_json(self, *, redact: bool = False) -> dict[str, Any]:
        """The control API's view; ``redact`` masks every address (what the inbox gets)."""
        masked = mask_email(self.email) if self.email else None
        return {
            "seq": self.seq,
            "provider": self.provider,
            "trigger_id": self.trigger_id,
            "email": masked if redact else self.email,
            "email_masked": masked,
            "template_data": _masked(self.template_data) if redact else dict(self.template_data),
            "received_at": self.received_at,
            "message_id": self.message_id,
            "dedupe_id": self.dedupe_id,
            "attempt": self.attempt,
        }


#: What became of a received request: accepted as new, accepted but dropped as a repeat
#: of its dedupe id, refused by validation (4xx), or answered with an injected fault
#: (5xx, 429) without being acted on. A request answered late (an injected timeout) is
#: accepted or duplicate: the provider acted on it; ``fault`` says it was late.
Outcome = Literal["accepted", "duplicate", "rejected", "faulted"]
OUTCOMES: tuple[Outcome, ...] = ("accepted", "duplicate", "rejected", "faulted")
#: How many requests the log keeps (the newest); at ~100 bytes each, some 20 MB at most.
REQUEST_LOG = 200_000


@dataclass(frozen=True, slots=True)
class Received:
    """One provider request as it arrived, whatever the answer: what the sender sent."""

    seq: int
    provider: str
    trigger_ids: tuple[str, ...]
    dedupe_id: str | None
    #: time.time() when its body had been read, before any injected latency.
    received_at: float
    status: int
    outcome: Outcome
    #: The injected fault that decided or delayed the answer ("down", "status",
    #: "rate_limit", "timeout"), None for a normal answer.
    fault: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "provider": self.provider, "trigger_ids": list(self.trigger_ids),
                "dedupe_id": self.dedupe_id, "received_at": self.received_at,
                "status": self.status, "outcome": self.outcome, "fault": self.fault}  # fmt: skip


class Store:
    """Messages and counters, shared by every handler thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._messages: list[Message] = []
            self._seen: set[tuple[str, str]] = set()
            self._received = 0
            self._accepted = 0
            self._deduplicated = 0
            self._rejected: Counter[int] = Counter()
            self._delivered: Counter[str] = Counter()  # per trigger
            self._deduped: Counter[str] = Counter()  # per trigger
            self._attempts: Counter[str] = Counter()  # per trigger, accepted requests
            self._in_flight = 0
            self._max_in_flight = 0
            self._log: deque[Received] = deque(maxlen=REQUEST_LOG)
            self._logged = 0
            self._by_trigger: dict[str, Counter[str]] = {}  # "received" and each outcome
            self._by_provider: dict[str, Counter[str]] = {}

    @contextmanager
    def request(self) -> Iterator[None]:
        """Count a provider request as received and in flight while it is handled."""
        with self._lock:
            self._received += 1
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1

    def log(self, provider: str, identity: Identity, *, received_at: float, status: int,
            outcome: Outcome, fault: str | None = None) -> Received:  # fmt: skip
        """Log one provider request and count it under its provider and each trigger."""
        with self._lock:
            self._logged += 1
            entry = Received(self._logged, provider, identity.trigger_ids, identity.dedupe_id,
                             received_at, status, outcome, fault)  # fmt: skip
            self._log.append(entry)
            counts = self._by_provider.setdefault(provider, Counter())
            counts["received"] += 1
            counts[outcome] += 1
            for trigger in identity.trigger_ids:
                mine = self._by_trigger.setdefault(trigger, Counter())
                mine["received"] += 1
                mine[outcome] += 1
            return entry

    def requests(self, *, provider: str | None = None, trigger_id: str | None = None
                 ) -> list[Received]:  # fmt: skip
        """The logged requests, oldest first (the newest :data:`REQUEST_LOG` of them)."""
        with self._lock:
            return [r for r in self._log
                    if (provider is None or r.provider == provider)
                    and (trigger_id is None or trigger_id in r.trigger_ids)]  # fmt: skip

    def reject(self, status: int) -> None:
        with self._lock:
            self._rejected[status] += 1

    def accept(self, accepted: Accepted, *, message_id: str, now_s: float) -> bool:
        """Record an accepted request; False when it repeats a dedupe id (nothing recorded)."""
        with self._lock:
            self._accepted += 1
            key = (accepted.provider, accepted.dedupe_id) if accepted.dedupe_id else None
            duplicate = key is not None and key in self._seen
            for delivery in accepted.deliveries:
                self._attempts[delivery.trigger_id] += 1
                if duplicate:
                    self._deduped[delivery.trigger_id] += 1
                    continue
                self._delivered[delivery.trigger_id] += 1
                self._messages.append(
                    Message(
                        seq=len(self._messages) + 1,
                        provider=accepted.provider,
                        trigger_id=delivery.trigger_id,
                        email=delivery.email,
                        template_data=delivery.template_data,
                        received_at=now_s,
                        message_id=message_id,
                        dedupe_id=accepted.dedupe_id,
                        attempt=self._attempts[delivery.trigger_id],
                    )
                )
            if duplicate:
                self._deduplicated += 1
                return False
            if key is not None:
                self._seen.add(key)
            return True

    def messages(
        self, *, provider: str | None = None, trigger_id: str | None = None
    ) -> list[Message]:
        with self._lock:
            return [
                m
                for m in self._messages
                if (provider is None or m.provider == provider)
                and (trigger_id is None or m.trigger_id == trigger_id)
            ]

    def triggers(self) -> dict[str, dict[str, int]]:
        """Per trigger: deliveries (the exactly-once count), deduplicated, all accepted
        (``attempts``), and every request that named it (``received``), of which
        ``rejected`` were refused and ``faulted`` answered with an injected fault."""
        with self._lock:
            names = set(self._attempts) | set(self._by_trigger)
            return {
                trigger: {
                    "delivered": self._delivered[trigger],
                    "deduplicated": self._deduped[trigger],
                    "attempts": self._attempts[trigger],
                    **{key: self._by_trigger.get(trigger, Counter())[key]
                       for key in ("received", "rejected", "faulted")},
                }
                for trigger in names
            }  # fmt: skip

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "received": self._received,
                "accepted": self._accepted,
                "deduplicated": self._deduplicated,
                "rejected": {str(status): n for status, n in sorted(self._rejected.items())},
                "messages": len(self._messages),
                "triggers": len(self._attempts),
                "triggers_delivered_more_than_once": sum(
                    1 for n in self._delivered.values() if n > 1
                ),
                "in_flight": self._in_flight,
                "max_in_flight": self._max_in_flight,
                "providers": {
                    provider: {key: counts[key] for key in ("received", *OUTCOMES)}
                    for provider, counts in sorted(self._by_provider.items())
                },
            }
