"""A circuit breaker shared by the sink's senders: when the ESP is down, stop hammering it.

Closed: requests flow. After ``threshold`` transient failures in a row it opens:
no request goes out, the sink stops reading (nothing is dropped or skipped:
the triggers wait in their lanes and in Kafka), and after ``cooldown_s`` one
probe is let through (half-open). The probe's success closes the circuit; its
failure opens it for another cooldown — doubled each time, up to
``max_cooldown_s``: where the provider cannot deduplicate, a probe is a real
send that a 5xx leaves ambiguous, so a long outage must not cost one e-mail's
certainty every few seconds. Thread-safe; the clock is injectable.

A configuration failure (a refused key, a wrong endpoint) *halts* it instead: no
probe, no request ever again from this breaker, whatever answers still arrive;
the sink is stopping, and only a person can fix what a probe would test.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Literal

State = Literal["closed", "open", "half_open", "halted"]


class CircuitBreaker:
    def __init__(self, threshold: int, cooldown_s: float,
                 clock: Callable[[], float] = time.monotonic, *,
                 max_cooldown_s: float | None = None) -> None:  # fmt: skip
        if threshold < 1 or cooldown_s <= 0:
            raise ValueError("threshold >= 1 and cooldown_s > 0")
        self.threshold, self.cooldown_s, self._clock = threshold, cooldown_s, clock
        self.max_cooldown_s = max(cooldown_s, max_cooldown_s or cooldown_s)
        #: The cooldown of the current opening (grows with each failed probe).
        self._cooldown_s = cooldown_s
        self._cond = threading.Condition()
        self._state: State = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False
        #: How many times the circuit opened (metrics, tests).
        self.openings = 0

    @property
    def state(self) -> State:
        with self._cond:
            return self._state

    @property
    def closed(self) -> bool:
        with self._cond:
            return self._state == "closed"

    def acquire(self, stop: threading.Event, poll_s: float = 0.1) -> bool:
        """Block until a request may go out; False if ``stop`` was set first.

        While the circuit is open, exactly one caller per cooldown becomes the probe.
        """
        with self._cond:
            while not stop.is_set():
                if self._state == "closed":
                    return True
                if self._state == "halted":
                    self._cond.wait(timeout=poll_s)
                    continue
                wait = self._opened_at + self._cooldown_s - self._clock()
                if self._state == "open" and wait <= 0 and not self._probing:
                    self._state, self._probing = "half_open", True
                    return True
                self._cond.wait(timeout=min(poll_s, wait) if wait > 0 else poll_s)
            return False

    def probe_due(self) -> bool:
        """Open, and a probe may go out now: the dispatcher hands out one trigger for it
        (senders with nothing to retry would otherwise wait for a probe nobody sends)."""
        with self._cond:
            return (self._state == "open" and not self._probing
                    and self._clock() >= self._opened_at + self._cooldown_s)  # fmt: skip

    def success(self) -> None:
        """The ESP answered (even a permanent refusal: it is up)."""
        with self._cond:
            self._failures, self._probing = 0, False
            if self._state not in ("closed", "halted"):
                self._cooldown_s = self.cooldown_s
                self._state = "closed"
                self._cond.notify_all()

    def failure(self) -> None:
        """A transient failure: connection error, timeout or 5xx."""
        with self._cond:
            self._failures += 1
            if self._state == "halted":
                return
            if self._state == "half_open":  # the probe failed: wait longer this time
                self._cooldown_s = min(2 * self._cooldown_s, self.max_cooldown_s)
            if self._state == "half_open" or (
                self._state == "closed" and self._failures >= self.threshold
            ):
                self._state, self._opened_at, self._probing = "open", self._clock(), False
                self.openings += 1

    def abandon(self) -> None:
        """The probe was interrupted before it had an answer: let another caller probe."""
        with self._cond:
            if self._state == "half_open":
                self._state, self._probing = "open", False
                self._cond.notify_all()

    def halt(self) -> None:
        """A configuration failure: open for good (no probe); the sink stops."""
        with self._cond:
            if self._state != "halted":
                self._state, self._probing = "halted", False
                self.openings += 1
                self._cond.notify_all()
