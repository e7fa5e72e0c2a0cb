"""One trigger's attempts until it has an outcome, run in a pool thread.

The rules, in order: ask the circuit breaker (and, for a retry, the rate
limiter) for permission; send; classify the answer (:mod:`.outcome`). Sent and
rejected are final. Unknown is final too — as *ambiguous* — unless the provider
deduplicates or the policy says resend. Transient failures are retried with
back-off (or the ESP's Retry-After) until ``sink.retry_budget_s`` is spent.
An ``interrupt`` (shutdown, rebalance) ends a trigger without an outcome; it
reports whether a request may have reached the ESP, so a clean stop can drop a
claim that certainly never did.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import requests

from connectors.sink.backoff import retry_pause_s
from connectors.sink.breaker import CircuitBreaker
from connectors.sink.outcome import Kind, Verdict, classify_exception, classify_status
from connectors.sink.providers import Provider
from connectors.sink.ratelimit import RateLimiter
from quoteflow.logs import mask_email
from quoteflow.settings import SinkSettings

#: "expired": never sent, older than ``sink.max_trigger_age`` when it would have gone out.
Status = Literal["sent", "rejected", "failed", "ambiguous", "expired", "interrupted"]
#: Enough of an ESP's error body to say what it disliked (masked: it may echo the address).
EXCERPT_CHARS = 300


@dataclass(slots=True)
class Job:
    """A trigger on its way: where it was read and what it will be sent as."""

    trigger: Mapping[str, Any] = field(repr=False)  # personal data
    trigger_id: str
    customer_id: int
    topic: str
    partition: int
    offset: int
    key: bytes | None = field(repr=False)
    value: bytes = field(repr=False)
    request_id: uuid.UUID = field(default_factory=uuid.uuid4)
    dedupe_id: str | None = None
    #: Resending a claim a stopped sink left pending (the provider deduplicates).
    resend: bool = False
    #: time.time() when it was read (the receipt's latency starts at the trigger's fired_at).
    read_at: float = 0.0


@dataclass(frozen=True, slots=True)
class Result:
    job: Job
    status: Status
    attempts: int
    http_status: int | None = None
    message_id: str | None = None
    error: str | None = None
    first_attempt_ms: int | None = None
    completed_ms: int = 0
    #: For an interrupted trigger: whether a request may have reached the ESP.
    maybe_sent: bool = False


class Sender:
    """Sends jobs with a shared session, breaker and limiter; thread-safe."""

    def __init__(self, provider: Provider, session: requests.Session, settings: SinkSettings,
                 breaker: CircuitBreaker, limiter: RateLimiter, interrupt: threading.Event,
                 clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        self.provider, self.session, self.settings = provider, session, settings
        self.breaker, self.limiter, self.interrupt, self.clock = breaker, limiter, interrupt, clock
        self.verify: str | bool = str(settings.ca_bundle) if settings.ca_bundle else True
        self.timeout = (settings.connect_timeout_s, settings.read_timeout_s)
        self.resend_unknown = provider.dedupes or settings.ambiguous == "resend"

    def _attempt(self, job: Job) -> tuple[Verdict, int | None, str | None, str | None]:
        """One request: (verdict, HTTP status, ESP message id, masked body excerpt)."""
        send = self.provider.request(job.trigger, now_s=self.clock())
        headers = {**send.headers, "X-Request-Id": str(job.request_id)}
        try:
            response = self.session.request(send.method, send.url, data=send.body,
                                            headers=headers, timeout=self.timeout,
                                            verify=self.verify)  # fmt: skip
        except requests.RequestException as exc:
            return classify_exception(exc), None, None, None
        with response:
            body = response.content
            verdict = classify_status(response.status_code, response.headers)
            if verdict.kind is Kind.SENT:
                msg_id = self.provider.message_id(response.status_code, response.headers, body)
                return verdict, response.status_code, msg_id, None
            excerpt = mask_email(body[:EXCERPT_CHARS].decode("utf-8", "replace"))
            return verdict, response.status_code, None, excerpt

    def deliver(self, job: Job, first_token: bool = True) -> Result:
        """Attempts until an outcome; ``first_token``: the dispatcher already took a rate token."""
        start = self.clock()
        first_ms: int | None = None
        attempts, status, maybe_sent = 0, None, job.resend
        error: str | None = None
        while True:
            if not self.breaker.acquire(self.interrupt):
                return self._interrupted(job, attempts, status, first_ms, maybe_sent, error)
            if (attempts > 0 or not first_token) and not self.limiter.take(self.interrupt):
                self.breaker.abandon()
                return self._interrupted(job, attempts, status, first_ms, maybe_sent, error)
            attempts += 1
            if first_ms is None:
                first_ms = int(self.clock() * 1000)
            verdict, status, msg_id, excerpt = self._attempt(job)
            kind = verdict.kind
            if kind is Kind.SENT:
                self.breaker.success()
                return Result(job, "sent", attempts, status, msg_id, None, first_ms, self._ms())
            error = verdict.reason + (f": {excerpt}" if excerpt else "")
            if kind is Kind.REJECTED:
                self.breaker.success()  # it answered: the ESP is up, the request is wrong
                return Result(job, "rejected", attempts, status, None, error, first_ms,
                              self._ms())  # fmt: skip
            if kind is Kind.THROTTLED:
                self.breaker.success()
                self.limiter.hold(verdict.wait_s if verdict.wait_s is not None else
                                  self.settings.retry_initial_s)  # fmt: skip
            else:
                self.breaker.failure()
            if kind is Kind.UNKNOWN:
                maybe_sent = True
                if not self.resend_unknown:
                    return Result(job, "ambiguous", attempts, status, None, error, first_ms,
                                  self._ms())  # fmt: skip
            if self.clock() - start >= self.settings.retry_budget_s:
                status_text = f"gave up after {attempts} attempts: {error}"
                final: Status = "ambiguous" if maybe_sent and not self.resend_unknown else "failed"
                return Result(job, final, attempts, status, None, status_text, first_ms,
                              self._ms(), maybe_sent)  # fmt: skip
            pause = retry_pause_s(attempts, verdict.wait_s, initial_s=self.settings.retry_initial_s,
                                  max_s=self.settings.retry_max_s)  # fmt: skip
            if self.interrupt.wait(pause):
                return self._interrupted(job, attempts, status, first_ms, maybe_sent, error)

    def _ms(self) -> int:
        return int(self.clock() * 1000)

    def _interrupted(self, job: Job, attempts: int, status: int | None, first_ms: int | None,
                     maybe_sent: bool, error: str | None) -> Result:  # fmt: skip
        return Result(job, "interrupted", attempts, status, None, error, first_ms, self._ms(),
                      maybe_sent)  # fmt: skip
