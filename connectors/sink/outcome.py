"""What one HTTP attempt meant, decided from the status code, headers or exception alone.

Three questions, in this order: did the ESP take it (2xx: *sent*)? Is the fault
the message's or ours? And may the ESP have acted on it?

- **The message's fault** is only a validation error naming it: 400 and 422
  (*rejected*, dead-lettered, never retried).
- **Ours** is every other refusal: 401/403 (a revoked or wrong key, a key without
  the send scope, SendGrid's unverified sender), 404/405/410 and 3xx (a wrong
  endpoint), 407 (a proxy's credentials), 402, 413 (no message of ours is large:
  a gateway's limit), any other 4xx, and a URL the HTTP library cannot even send
  to. These are *configuration* failures: every other message would meet the
  same answer, so the sink stops sending and exits, leaving the triggers
  retryable. When in doubt, stop: a stopped sink loses nothing, a rejection
  loses the e-mail.
- **May it have acted?** No for a refused connection, a connect timeout, a TLS
  failure (no request left), 408, 429 (*retry*/*throttled*). Yes for a read
  timeout or a dropped connection after the request left, and for a **5xx**:
  neither SendGrid nor Braze documents that a 5xx (even a 503 with
  ``Retry-After``) means the message was not queued, and a gateway's 502/504 sits
  in front of a backend that may have taken it. Such an attempt is *unknown*
  unless the provider deduplicates (``dedupes``: Customer.io's event id, the
  webhook id), where repeating it is harmless and a 5xx is simply retried.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import requests


class Kind(enum.Enum):
    SENT = "sent"  # 2xx: the ESP accepted it
    RETRY = "retry"  # certainly not acted on (or deduplicated): send again after a pause
    THROTTLED = "throttled"  # 429: not acted on, and the account must slow down
    UNKNOWN = "unknown"  # may have been acted on, and a repeat could e-mail twice
    REJECTED = "rejected"  # this message is invalid (400, 422): never retried
    CONFIG = "config"  # the sink is misconfigured (key, endpoint): stop sending, lose nothing


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: Kind
    #: Seconds the ESP asked us to wait (Retry-After, or an exhausted rate-limit window).
    wait_s: float | None = None
    #: For logs and the dead-letter record: never personal data.
    reason: str = ""


#: Refusals that name the message itself: the only permanent per-message verdicts.
REJECT_STATUSES = frozenset({400, 422})
#: 4xx answers that say "not now" rather than "no": the request was not acted on.
_RETRY_4XX = frozenset({408})


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive lookup for plain mappings (requests' own is already insensitive)."""
    value = headers.get(name)
    if value is not None:
        return value
    lower = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lower), None)


def wait_from_headers(headers: Mapping[str, str], now_s: float | None = None) -> float | None:
    """How long the ESP asks us to wait: ``Retry-After`` (seconds or an HTTP date), else an
    exhausted rate-limit window (``X-RateLimit-Remaining: 0`` with ``X-RateLimit-Reset``
    as epoch seconds, as SendGrid and Braze send it, or as seconds to go)."""
    now = time.time() if now_s is None else now_s
    retry_after = header(headers, "Retry-After")
    if retry_after:
        text = retry_after.strip()
        try:
            return max(0.0, float(text))
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(text).timestamp() - now)
            except (TypeError, ValueError):
                pass
    remaining, reset = header(headers, "X-RateLimit-Remaining"), header(headers,
                                                                        "X-RateLimit-Reset")
    if remaining is not None and reset is not None:
        try:
            left, at = int(float(remaining)), float(reset)
        except ValueError:
            return None
        if left <= 0:
            # Epoch seconds are ~1.7e9; a window of seconds to go is small.
            return max(0.0, at - now) if at > 1e9 else max(0.0, at)
    return None


def classify_status(status: int, headers: Mapping[str, str], *, dedupes: bool,
                    now_s: float | None = None) -> Verdict:  # fmt: skip
    """The verdict on an HTTP answer; ``dedupes``: the provider drops repeats of the request's
    dedupe id, so an answer that may hide an accepted message is still safe to retry."""
    if 200 <= status < 300:
        return Verdict(Kind.SENT)
    if status == 429:
        return Verdict(Kind.THROTTLED, wait_from_headers(headers, now_s), "HTTP 429")
    if status in _RETRY_4XX:
        return Verdict(Kind.RETRY, wait_from_headers(headers, now_s), f"HTTP {status}")
    if status >= 500:
        wait = wait_from_headers(headers, now_s)
        if dedupes:
            return Verdict(Kind.RETRY, wait, f"HTTP {status}")
        return Verdict(Kind.UNKNOWN, wait, f"HTTP {status}: the ESP may have accepted it")
    if status in REJECT_STATUSES:
        return Verdict(Kind.REJECTED, None, f"HTTP {status}")
    # 1xx/3xx as a final answer, 401, 403, 404, 405, 407, 413 and every other 4xx.
    return Verdict(Kind.CONFIG, None, f"HTTP {status}")


#: Nothing left: the URL (sink.base_url) or its redirect cannot be sent to at all.
_CANNOT_SEND = (
    requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema, requests.exceptions.InvalidHeader,
    requests.exceptions.TooManyRedirects,
)  # fmt: skip


def classify_exception(exc: requests.RequestException) -> Verdict:
    """Connection failures before the request left are safe to retry; after, unknown; a URL
    that cannot be sent to is the configuration's fault."""
    name = type(exc).__name__
    if isinstance(exc, _CANNOT_SEND):
        return Verdict(Kind.CONFIG, None, f"the endpoint cannot be used ({name})")
    if isinstance(exc, requests.ConnectTimeout):
        return Verdict(Kind.RETRY, None, "connect timeout")
    if isinstance(exc, requests.ReadTimeout):
        return Verdict(Kind.UNKNOWN, None, "read timeout: the ESP may have accepted it")
    if isinstance(exc, requests.exceptions.SSLError):
        return Verdict(Kind.RETRY, None, f"TLS error ({name})")
    if isinstance(exc, requests.ConnectionError):
        text = str(exc)
        # urllib3 says NewConnectionError / "Connection refused" when no byte left.
        if "NewConnectionError" in text or "Connection refused" in text or (
            "Failed to resolve" in text
        ):
            return Verdict(Kind.RETRY, None, "cannot connect")
        return Verdict(Kind.UNKNOWN, None, "connection dropped: the ESP may have accepted it")
    return Verdict(Kind.UNKNOWN, None, f"request failed ({name})")
