"""``quoteflow esp-sandbox``: serve until Ctrl-C or SIGTERM, then stop cleanly.

The signal only sets an event; the main thread then stops the server, so
open connections are closed and sleeping handlers woken as in a test's stop,
and a benchmark that terminates its sandbox child gets exit status 0.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType

from devstack.esp_sandbox.config import SandboxConfig
from devstack.esp_sandbox.server import Sandbox

PROVIDERS = ("sendgrid", "braze", "customerio", "webhook")


def run_sandbox(config: SandboxConfig, report: Callable[[str], None]) -> None:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, on_signal)
    sandbox = Sandbox(config)
    try:
        sandbox.start()
        report(f"ESP sandbox listening on {sandbox.url} (Ctrl-C to stop)")
        report(f"inbox: {sandbox.url}/")
        for provider in PROVIDERS:
            report(f"  sink.provider={provider}: sink.base_url={sandbox.base_url(provider)}")
        if config.latency_ms:
            report(f"latency: {config.latency_ms:g} ms per provider request")
        while not stop.wait(0.5):
            pass
        report("stopping")
    finally:
        sandbox.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
