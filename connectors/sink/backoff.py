"""Exponential back-off with full jitter (retry storms of many sinks do not line up)."""

from __future__ import annotations

import random
from collections.abc import Callable


def backoff_s(attempt: int, *, initial_s: float, max_s: float,
              rand: Callable[[], float] = random.random) -> float:  # fmt: skip
    """The pause after the ``attempt``-th failure (1-based): uniform in [0, min(max, i*2^(n-1))],
    never below a tenth of the initial pause so a tight loop cannot hammer the ESP."""
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    ceiling: float = min(max_s, initial_s * 2.0 ** min(attempt - 1, 62))
    return max(initial_s / 10, ceiling * rand())


def retry_pause_s(attempt: int, asked_s: float | None, *, initial_s: float, max_s: float,
                  rand: Callable[[], float] = random.random) -> float:  # fmt: skip
    """What the ESP asked for when it asked (Retry-After), else the jittered back-off.

    An ESP's explicit wait is honoured even past ``max_s``: sending sooner only
    earns another 429.
    """
    if asked_s is not None:
        return asked_s
    return backoff_s(attempt, initial_s=initial_s, max_s=max_s, rand=rand)
