"""The run's live loop: the workload written on time while the view shows the pipeline at work.

The loop ends when every outcome the plan expects is visible (offers delivered,
decisions recorded) and stragglers had :data:`~devstack.demo.options.SETTLE_S`
to come in; a child dying or the deadline passing ends it with a
:class:`~devstack.demo.options.DemoError` that says what is missing and where to
look. On a terminal the view is a live table; elsewhere (CI, a pipe) one
progress line every ten seconds.
"""

from __future__ import annotations

import contextlib
import os
import time
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass

from rich.console import Console
from rich.live import Live

from devstack.demo.attach import suspect
from devstack.demo.driver import Driver
from devstack.demo.observe import Observer, SandboxView
from devstack.demo.options import DEADLINE_S, SETTLE_S, DemoError
from devstack.demo.plan import Plan
from devstack.demo.summary import outstanding
from devstack.demo.supervisor import Supervisor
from devstack.demo.view import live_view, progress_line


@dataclass
class LiveRun:
    """What the loop watches: the run's plan, workload, observers and children."""

    plan: Plan
    driver: Driver
    observer: Observer
    sandbox: SandboxView
    supervisor: Supervisor
    console: Console
    quick: bool
    #: When the run started (monotonic): the view's elapsed time.
    t0: float
    #: The sandbox's counts for this run's triggers only (see Demo._ours).
    ours: Callable[[dict[str, int]], dict[str, int]]
    topic_prefix: str
    logs_hint: str

    def watch(self, sent: dict[int, bool]) -> None:
        """Until every expected outcome is visible; ``sent`` learns which quotes got an offer
        delivered (the driver asks it, to know which quotes are no longer abandoned)."""
        driver, observer, supervisor = self.driver, self.observer, self.supervisor
        seen = observer.seen
        deadline = time.monotonic() + DEADLINE_S[self.quick]
        settle_until: float | None = None
        last_line = 0.0
        live = Live(console=self.console, refresh_per_second=4, transient=False) \
            if self.console.is_terminal else None  # fmt: skip
        with live if live is not None else contextlib.nullcontext():
            while True:
                supervisor.check()
                driver.due()
                observer.poll(0.2)
                delivered = self.ours(self.sandbox.delivered())
                for t in seen.triggers:
                    if delivered.get(t.trigger_id, 0):
                        sent[t.quote_id] = True
                missing = outstanding(self.plan, seen, delivered)
                phase = "writing the workload" if not driver.finished else (
                    "waiting for deadlines" if missing else "finishing")  # fmt: skip
                elapsed = time.monotonic() - self.t0
                n_delivered = sum(delivered.values())
                if live is not None:
                    live.update(live_view(
                        phase=phase, elapsed_s=elapsed, steps_done=driver.done,
                        steps_total=driver.total, seen=seen, delivered=n_delivered,
                        outstanding=len(missing), health=supervisor.health()))  # fmt: skip
                elif time.monotonic() - last_line >= 10:
                    last_line = time.monotonic()
                    self.console.print(progress_line(
                        phase=phase, elapsed_s=elapsed, seen=seen, delivered=n_delivered,
                        outstanding=len(missing), health=supervisor.health()),
                        markup=False, highlight=False, soft_wrap=True)  # fmt: skip
                if driver.finished and not missing:
                    settle_until = settle_until or time.monotonic() + SETTLE_S
                    if time.monotonic() >= settle_until and n_delivered >= len(seen.triggers):
                        break
                if time.monotonic() > deadline:
                    lines = "; ".join(f"{q.quote_id} ({q.case.value})" for q in missing[:8])
                    raise DemoError(
                        f"{len(missing)} expected outcome(s) missing after"
                        f" {DEADLINE_S[self.quick]:.0f}s: {lines}"
                        f"{'' if driver.finished else '; workload not finished'};"
                        f" {suspect(missing, seen, delivered, self.topic_prefix)}"
                        f" (logs: {self.logs_hint})")  # fmt: skip
                time.sleep(0.25)


def keep_running(supervisor: Supervisor, sandbox_url: str, note: Callable[[str], None]) -> None:
    """--keep: the pipeline stays up for a look at the inbox until Ctrl-C. ``note`` goes
    to stderr: the summary's JSON stays the last line of stdout."""
    url = f"{sandbox_url}/"
    opened = False
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        with contextlib.suppress(webbrowser.Error):
            opened = webbrowser.open(url)
    note(f"the pipeline keeps running; inbox: {url}"
         f"{' (opened in your browser)' if opened else ''} - Ctrl-C stops it")  # fmt: skip
    while True:
        supervisor.check()
        time.sleep(0.5)
