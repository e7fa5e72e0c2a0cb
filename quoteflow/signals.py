"""Graceful stop for long-running components: SIGTERM and SIGINT only ask to stop.

The CDC and the sink finish the batch in hand, commit and exit on a signal, so a
supervisor's stop never leaves half-recorded work; both share this handler.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType


def on_signals(stop: threading.Event) -> Callable[[], None]:
    """SIGTERM and SIGINT set ``stop``; returns a function restoring the old handlers."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def handle(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    for sig in previous:
        signal.signal(sig, handle)

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore
