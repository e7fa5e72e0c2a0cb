"""Faults the sandbox injects on command: the ways a real ESP misbehaves, on a schedule.

A fault plan is set through ``POST /_sandbox/faults`` (keys given replace those
faults, others stay) and consumed by provider requests, one decision each:

``latency_ms`` (+ up to ``latency_jitter_ms``)
    slept before answering every provider request, faulted or not.
``down_for_s``
    for that many seconds every request is answered 503, as a load balancer in
    front of a dead backend does (to refuse connections, stop the sandbox).
``status_burst`` ``{"status": 503, "count": 20}``
    the next ``count`` requests are answered ``status`` (500, 502, 503 or 504)
    and not recorded.
``rate_limit`` ``{"count": 5, "retry_after_s": 1}``
    the next ``count`` requests are answered 429 with ``Retry-After`` and the
    ``X-RateLimit-*`` headers, and not recorded.
``timeouts`` ``{"count": 3, "delay_s": 5}``
    the next ``count`` requests are processed and recorded as accepted, then
    answered only after ``delay_s``: longer than the client's read timeout, the
    sender never learns its e-mail went out (the case that makes duplicates).

One request meets at most one of the counted faults, in the order above, so a
burst and a rate limit set together play out one after the other.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

INJECTABLE_STATUSES = frozenset({500, 502, 503, 504})
_KEYS = frozenset(
    {"latency_ms", "latency_jitter_ms", "down_for_s", "status_burst", "rate_limit", "timeouts"}
)


class FaultSpecError(ValueError):
    """A fault request the control API refuses (400), with the reason."""


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one provider request."""

    latency_s: float = 0.0
    #: None (answer normally), "down", "status", "rate_limit" or "timeout".
    kind: str | None = None
    status: int = 0
    retry_after_s: int = 0
    rate_limit: int = 0
    delay_s: float = 0.0


def _number(spec: Mapping[str, Any], key: str, *, low: float, high: float) -> float:
    value = spec.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise FaultSpecError(f"{key} must be a number from {low:g} to {high:g}")
    return float(value)


def _count(spec: Mapping[str, Any], where: str) -> int:
    value = spec.get("count")
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10_000_000:
        raise FaultSpecError(f"{where}.count must be an integer from 0 to 10000000")
    return value


def _object(spec: Mapping[str, Any], key: str, allowed: set[str]) -> Mapping[str, Any]:
    value = spec[key]
    if not isinstance(value, dict):
        raise FaultSpecError(f"{key} must be an object")
    unknown = set(value) - allowed
    if unknown:
        raise FaultSpecError(f"{key}: unknown key(s) {', '.join(sorted(unknown))}")
    return value


class FaultPlan:
    """The faults still to come; thread-safe (every handler thread takes its decision here)."""

    def __init__(self, *, latency_ms: float = 0.0, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._random = random.Random(seed)  # noqa: S311 - jitter, not secrets
        self._latency_ms = latency_ms
        self._base_latency_ms = latency_ms
        self._jitter_ms = 0.0
        self._down_until = 0.0  # time.monotonic()
        self._burst_status = 503
        self._burst_left = 0
        self._limit_left = 0
        self._retry_after_s = 1
        self._limit = 600
        self._timeouts_left = 0
        self._timeout_delay_s = 5.0
        self.injected: Counter[str] = Counter()

    def configure(self, spec: Mapping[str, Any]) -> None:
        """Apply a control-API request; all of it or (on FaultSpecError) none of it."""
        if not isinstance(spec, Mapping):
            raise FaultSpecError("the body must be a JSON object")
        unknown = set(spec) - _KEYS
        if unknown:
            raise FaultSpecError(f"unknown fault(s): {', '.join(sorted(unknown))}"
                                 f" (known: {', '.join(sorted(_KEYS))})")  # fmt: skip
        changes: dict[str, Any] = {}
        if "latency_ms" in spec:
            changes["_latency_ms"] = _number(spec, "latency_ms", low=0, high=600_000)
        if "latency_jitter_ms" in spec:
            changes["_jitter_ms"] = _number(spec, "latency_jitter_ms", low=0, high=600_000)
        if "down_for_s" in spec:
            down = _number(spec, "down_for_s", low=0, high=86_400)
            changes["_down_until"] = time.monotonic() + down if down else 0.0
        if "status_burst" in spec:
            burst = _object(spec, "status_burst", {"status", "count"})
            status = burst.get("status", 503)
            if status not in INJECTABLE_STATUSES:
                raise FaultSpecError(
                    f"status_burst.status must be one of {sorted(INJECTABLE_STATUSES)}"
                )
            changes["_burst_status"] = status
            changes["_burst_left"] = _count(burst, "status_burst")
        if "rate_limit" in spec:
            limit = _object(spec, "rate_limit", {"count", "retry_after_s", "limit"})
            changes["_limit_left"] = _count(limit, "rate_limit")
            retry = limit.get("retry_after_s", 1)
            if isinstance(retry, bool) or not isinstance(retry, int) or not 0 <= retry <= 3600:
                raise FaultSpecError("rate_limit.retry_after_s must be whole seconds, 0 to 3600")
            changes["_retry_after_s"] = retry
            changes["_limit"] = int(
                _number({"limit": limit.get("limit", 600)}, "limit", low=1, high=1e9)
            )
        if "timeouts" in spec:
            timeouts = _object(spec, "timeouts", {"count", "delay_s"})
            changes["_timeouts_left"] = _count(timeouts, "timeouts")
            changes["_timeout_delay_s"] = _number(
                {"delay_s": timeouts.get("delay_s", 5.0)}, "delay_s", low=0, high=3600
            )
        with self._lock:
            for name, value in changes.items():
                setattr(self, name, value)

    def clear(self) -> None:
        """No faults: back to the configured latency, nothing pending (counters stay)."""
        with self._lock:
            self._latency_ms = self._base_latency_ms
            self._jitter_ms = 0.0
            self._down_until = 0.0
            self._burst_left = self._limit_left = self._timeouts_left = 0

    def reset(self) -> None:
        """:meth:`clear` and forget the counts of injected faults."""
        self.clear()
        with self._lock:
            self.injected.clear()

    def take(self) -> Decision:
        """The decision for one provider request (consumes one count of the first fault due)."""
        with self._lock:
            latency_ms = self._latency_ms
            if self._jitter_ms:
                latency_ms += self._random.uniform(0, self._jitter_ms)
            latency_s = latency_ms / 1000
            if self._down_until and time.monotonic() < self._down_until:
                self.injected["down"] += 1
                return Decision(latency_s, "down", status=503)
            if self._burst_left:
                self._burst_left -= 1
                self.injected["status"] += 1
                return Decision(latency_s, "status", status=self._burst_status)
            if self._limit_left:
                self._limit_left -= 1
                self.injected["rate_limit"] += 1
                return Decision(
                    latency_s, "rate_limit", status=429,
                    retry_after_s=self._retry_after_s, rate_limit=self._limit,
                )  # fmt: skip
            if self._timeouts_left:
                self._timeouts_left -= 1
                self.injected["timeout"] += 1
                return Decision(latency_s, "timeout", delay_s=self._timeout_delay_s)
            return Decision(latency_s)

    def describe(self) -> dict[str, Any]:
        """The plan as the control API shows it: what is still to come."""
        with self._lock:
            down_left = max(0.0, self._down_until - time.monotonic()) if self._down_until else 0.0
            return {
                "latency_ms": self._latency_ms,
                "latency_jitter_ms": self._jitter_ms,
                "down_for_s": round(down_left, 3),
                "status_burst": {"status": self._burst_status, "count": self._burst_left},
                "rate_limit": {
                    "count": self._limit_left,
                    "retry_after_s": self._retry_after_s,
                    "limit": self._limit,
                },
                "timeouts": {"count": self._timeouts_left, "delay_s": self._timeout_delay_s},
                "injected": dict(self.injected),
            }
