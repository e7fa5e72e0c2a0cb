"""The per-provider send rate: a token bucket, plus holds when the ESP says "wait".

A configured rate (``sink.rate_limit_per_s``) keeps us under the ESP's
documented limit; a 429's ``Retry-After`` or an exhausted ``X-RateLimit-*``
window holds every sender, because ESPs throttle the account, not one request.
The dispatcher takes tokens without blocking (a trigger is only claimed in the
ledger once it may go out); retries block. Thread-safe; the clock is injectable.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    def __init__(self, rate_per_s: float | None, *, burst: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        if rate_per_s is not None and rate_per_s <= 0:
            raise ValueError("rate_per_s must be positive")
        self.rate = rate_per_s
        # A tenth of a second's worth (at least 1): smooth, yet no starvation at low rates.
        self.burst = burst if burst is not None else max(1.0, (rate_per_s or 0) / 10)
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens = self.burst
        self._stamp = clock()
        self._held_until = 0.0

    def _refill(self, now: float) -> None:
        if self.rate is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def hold(self, seconds: float) -> None:
        """No send for ``seconds`` (the ESP asked): extends, never shortens, a hold."""
        with self._lock:
            self._held_until = max(self._held_until, self._clock() + seconds)

    def try_take(self, n: int) -> int:
        """Take up to ``n`` tokens now; return how many were granted."""
        with self._lock:
            now = self._clock()
            if now < self._held_until:
                return 0
            if self.rate is None:
                return n
            self._refill(now)
            granted = min(n, int(self._tokens + 1e-9))  # float dust must not cost a token
            self._tokens -= granted
            return granted

    def wait_s(self) -> float:
        """Seconds until one token is available (0 when one is)."""
        with self._lock:
            now = self._clock()
            held = max(0.0, self._held_until - now)
            if self.rate is None:
                return held
            self._refill(now)
            return max(held, (1 - self._tokens) / self.rate if self._tokens < 1 else 0.0)

    def take(self, stop: threading.Event) -> bool:
        """Block until a token is granted; False if ``stop`` was set first."""
        while not stop.is_set():
            if self.try_take(1):
                return True
            stop.wait(min(max(self.wait_s(), 0.001), 0.5))
        return False
