"""Dispatch: which ready triggers go out now, judged, rate-limited, claimed and handed over.

Concurrency (``sink.concurrency`` senders) and the circuit breaker bound how many
triggers leave a turn; :func:`.timing.decide` judges each at the wall time it would
go out: inside the quiet hours it carries it is *held* (its lane kept, its offset
uncommitted, judged again when the window ends), older than ``sink.max_trigger_age``
it is recorded *expired*, never sent.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections.abc import Hashable
from datetime import UTC, datetime

from connectors.sink.claims import Claiming
from connectors.sink.delivery import Job
from connectors.sink.state import BATCH_WAIT_S
from connectors.sink.timing import Expired, Hold, Send, Verdict, decide, window_of

#: The dispatcher logs as one logger, whichever of its rooms speaks (as before the split).
log = logging.getLogger("connectors.sink.runner")


class Dispatching(Claiming):
    """Each dispatcher turn: take ready triggers, judge them, claim them, send them."""

    def _dispatch(self) -> None:
        if self.stop.is_set():
            return
        if self.breaker.closed:
            wanted = min(self.cfg.concurrency - self.running, self.lanes.ready_count)
        elif self.running == 0 and self.breaker.probe_due():
            # Open, and no sender has a trigger to probe with (each one that failed ended,
            # e.g. as ambiguous): one trigger becomes the probe. Claimed only now, when
            # it goes out at once, not for the length of a cooldown.
            wanted = min(1, self.lanes.ready_count)
        else:
            return
        now = time.monotonic()
        if wanted < min(self._batch, self.lanes.ready_count) and (
            now - self._last_dispatch < BATCH_WAIT_S
        ):
            return  # a few more senders will be free in a moment: claim them together
        self._last_dispatch = now
        if wanted <= 0:
            return
        # Judged before the rate limiter: a held or expired trigger sends nothing, so it
        # takes no token (a night of held triggers would otherwise starve the others).
        now_ms = self._now_ms()
        verdicts: dict[str, Verdict] = {}
        expired: list[Job] = []
        sendable: list[tuple[Hashable, Job]] = []
        for key, job in self.lanes.take_ready(wanted):
            verdict = self._judge(job, now_ms)
            verdicts[job.trigger_id] = verdict
            if isinstance(verdict, Hold):
                self._hold(job, verdict.until_ms)
            elif isinstance(verdict, Expired):
                expired.append(job)
            else:
                sendable.append((key, job))
        granted = self.limiter.try_take(len(sendable)) if sendable else 0
        if granted < len(sendable):
            self.lanes.put_back(sendable[granted:])
        jobs = expired + [job for _, job in sendable[:granted]]
        if not jobs:
            return
        claims = [self._claim_of(j) for j in jobs]
        self.claims.update((c.trigger_id, c) for c in claims)
        found = self.ledger.claim(claims, self.finals)
        fenced = set(self.ledger.fenced)  # the next ledger call (a take-over) resets it
        self.finals = []
        self._note_late()
        for job in jobs:
            if job.trigger_id in fenced:
                self._fenced(job)
            else:
                self._place(job, found.get(job.trigger_id), verdicts[job.trigger_id])

    def _judge(self, job: Job, now_ms: int) -> Verdict:
        """Send, hold or expire, at the wall time the trigger would go out.

        A replay (accepted only by a sink whose provider is a sandbox) is not judged: its
        ``fired_at`` is event time, so last week's replay would all expire or wait, and
        the point of replaying into a sandbox is to see what would have gone out.
        """
        if job.trigger.replay:
            return Send()
        try:
            window, fallback = window_of(job.trigger.quiet_hours)
        except ValueError as exc:
            log.warning("trigger %s: unreadable quiet hours (%s): judged without them",
                        job.trigger_id, exc)  # fmt: skip
            window, fallback = None, None
        return decide(now_ms, fired_at_ms=job.trigger.fired_at, timezone=job.trigger.timezone,
                      window=window, max_age_ms=int(self.cfg.max_trigger_age * 1000),
                      default_timezone=fallback or "UTC")  # fmt: skip

    def _hold(self, job: Job, until_ms: int) -> None:
        """Not now (quiet hours): keep it, lane and offset included, until ``until_ms``."""
        self.stats.held += 1
        heapq.heappush(self.held, (until_ms, next(self._held_order), job))
        log.info("trigger %s held for quiet hours until %s", job.trigger_id,
                 datetime.fromtimestamp(until_ms / 1000, UTC).isoformat())  # fmt: skip

    def _release_held(self) -> None:
        """Held triggers whose time has come go back to the front of the ready queue (their
        lanes are still theirs), to be judged again and claimed."""
        if not self.held:
            return
        now_ms = self._now_ms()
        due: list[tuple[Hashable, Job]] = []
        while self.held and self.held[0][0] <= now_ms:
            job = heapq.heappop(self.held)[2]
            due.append((job.customer_id, job))
        if due:
            self.lanes.put_back(due)
