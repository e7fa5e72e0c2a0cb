"""One trigger's attempts until it has an outcome, run in a pool thread.

The rules, in order: ask the circuit breaker (and, for a retry, the rate
limiter) for permission; send (redirects are not followed: an API endpoint that
redirects is a wrong ``sink.base_url``); classify the answer (:mod:`.outcome`,
which knows whether the provider deduplicates). Sent and rejected (400/422: this
message is invalid) are final. Unknown — a read timeout, a dropped connection,
or a 5xx from a provider without deduplication — is final too, as *ambiguous*,
unless the provider deduplicates or ``sink.ambiguous`` says resend: never a
blind resend. Transient failures (refused connections, 408, 429, a deduplicating
provider's 5xx) are retried with back-off (or the ESP's Retry-After) until
``sink.retry_budget_s`` is spent; each one but a 429 counts towards opening the
circuit breaker, so an outage of a non-deduplicating ESP makes a bounded number
of ambiguous deliveries before the circuit opens.

A *configuration* failure (401/403/404/405/407/413, another 4xx, a 3xx, a URL that
cannot be sent to) halts the breaker — no sender sends again — and ends the
trigger without an outcome (``refused`` says why): the ESP certainly did not act
on it, the sink stops, and the trigger is sent once the mistake is fixed.
An ``interrupt`` (shutdown, rebalance) ends a trigger without an outcome; it
reports whether a request may have reached the ESP, so a clean stop can drop a
claim that certainly never did.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import requests

from connectors.sink.backoff import retry_pause_s
from connectors.sink.breaker import CircuitBreaker
from connectors.sink.outcome import Kind, Verdict, classify_exception, classify_status
from connectors.sink.providers import Provider
from connectors.sink.ratelimit import RateLimiter
from quoteflow.logs import mask_email
from quoteflow.settings import SinkSettings
from schemas.wire import AbandonmentTrigger

#: "expired": never sent, older than ``sink.max_trigger_age`` when it would have gone out.
Status = Literal["sent", "rejected", "failed", "ambiguous", "expired", "interrupted"]
#: Enough of an ESP's error body to say what it disliked (masked: it may echo the address).
EXCERPT_CHARS = 300


@dataclass(slots=True)
class Job:
    """A trigger on its way: where it was read and what it will be sent as."""

    trigger: AbandonmentTrigger = field(repr=False)  # personal data
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

    @property
    def trigger_id(self) -> str:
        return self.trigger.trigger_id

    @property
    def customer_id(self) -> int:
        """Its lane: one customer's triggers go out one after the other."""
        return self.trigger.customer_id


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
    #: Set when a configuration failure ended it: what was refused, one line, no secret.
    refused: str | None = None


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

    def _attempt(self, job: Job) -> tuple[Verdict, int | None, str | None, str | None, str]:
        """One request: (verdict, HTTP status, ESP message id, masked body excerpt, where it
        went as a log may show it)."""
        send = self.provider.request(job.trigger, now_s=self.clock())
        headers = {**send.headers, "X-Request-Id": str(job.request_id)}
        where = f"{send.method} {self.provider.display_url(send.url)}"
        try:
            response = self.session.request(send.method, send.url, data=send.body,
                                            headers=headers, timeout=self.timeout,
                                            verify=self.verify,
                                            allow_redirects=False)  # fmt: skip
        except requests.RequestException as exc:
            return classify_exception(exc), None, None, None, where
        with response:
            body = response.content
            verdict = classify_status(response.status_code, response.headers,
                                      dedupes=self.provider.dedupes)  # fmt: skip
            if verdict.kind is Kind.SENT:
                msg_id = self.provider.message_id(response.status_code, response.headers, body)
                return verdict, response.status_code, msg_id, None, where
            text = body[:EXCERPT_CHARS].decode("utf-8", "replace")
            excerpt = self.provider.redact(mask_email(" ".join(text.split())))
            return verdict, response.status_code, None, excerpt, where

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
            verdict, status, msg_id, excerpt, where = self._attempt(job)
            kind = verdict.kind
            if kind is Kind.SENT:
                self.breaker.success()
                return Result(job, "sent", attempts, status, msg_id, None, first_ms, self._ms())
            error = verdict.reason + (f": {excerpt}" if excerpt else "")
            if kind is Kind.CONFIG:
                # Every other trigger would meet the same answer: nobody sends again. This
                # request was refused, not acted on; earlier attempts keep their maybe_sent.
                self.breaker.halt()
                return Result(job, "interrupted", attempts, status, None, error, first_ms,
                              self._ms(), maybe_sent, refused=f"{verdict.reason} from {where}"
                              + (f" ({excerpt[:120]})" if excerpt else ""))  # fmt: skip
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
