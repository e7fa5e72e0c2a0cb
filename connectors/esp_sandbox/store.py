"""What the sandbox received: the messages it "sent", and the counts the tests assert on.

The question every test of the sink asks is "was each trigger delivered exactly
once?", so deliveries are counted per trigger: a request the provider accepted
and did not drop as a repeat of a dedupe id counts as a delivery (for SendGrid
and Braze, which cannot deduplicate, a resend is a second e-mail, and shows up
here as a second delivery). Everything is in memory behind one lock: a
benchmark run holds some ten thousand messages, a few megabytes.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from connectors.esp_sandbox.validate import Accepted
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
        """Per trigger: deliveries (the exactly-once count), deduplicated and all accepted."""
        with self._lock:
            return {
                trigger: {
                    "delivered": self._delivered[trigger],
                    "deduplicated": self._deduped[trigger],
                    "attempts": attempts,
                }
                for trigger, attempts in self._attempts.items()
            }

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
            }
