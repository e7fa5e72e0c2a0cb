"""What one HTTP attempt meant, decided from the status code, headers or exception alone.

The distinction that matters for effect-once delivery is between a request the
ESP certainly did not act on (refused connection, 429, 5xx: safe to send again)
and one it may have acted on (the request left, no answer came back: a read
timeout or a dropped connection). The second is *unknown*: repeating it is safe
only with the provider's dedupe id; otherwise the sink's ambiguous policy decides.
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
    RETRY = "retry"  # certainly not acted on: send again after a pause
    THROTTLED = "throttled"  # 429: not acted on, and the account must slow down
    UNKNOWN = "unknown"  # may have been acted on: no answer after the request left
    REJECTED = "rejected"  # a permanent refusal (other 4xx): never retried


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: Kind
    #: Seconds the ESP asked us to wait (Retry-After, or an exhausted rate-limit window).
    wait_s: float | None = None
    #: For logs and the dead-letter record: never personal data.
    reason: str = ""


#: Statuses worth another try: the ESP says it did not process the request.
_RETRY_STATUSES = frozenset({408, 500, 502, 503, 504})


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


def classify_status(status: int, headers: Mapping[str, str], now_s: float | None = None
                    ) -> Verdict:  # fmt: skip
    if 200 <= status < 300:
        return Verdict(Kind.SENT)
    if status == 429:
        return Verdict(Kind.THROTTLED, wait_from_headers(headers, now_s), "HTTP 429")
    if status in _RETRY_STATUSES or status >= 500:
        return Verdict(Kind.RETRY, wait_from_headers(headers, now_s), f"HTTP {status}")
    return Verdict(Kind.REJECTED, None, f"HTTP {status}")


def classify_exception(exc: requests.RequestException) -> Verdict:
    """Connection failures before the request left are safe to retry; after, unknown."""
    name = type(exc).__name__
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
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
        return Verdict(Kind.REJECTED, None, f"invalid request ({name})")
    return Verdict(Kind.UNKNOWN, None, f"request failed ({name})")
