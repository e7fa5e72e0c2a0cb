"""What every ESP adapter provides: the request for one trigger, and how to read the answer.

An adapter only shapes bytes; it never sends. The sink owns the session,
retries, rate limits and the ledger, so adding a provider is one small module
(see :mod:`connectors.sink.providers`) and a line in :data:`PROVIDERS`.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

from quoteflow.settings import SinkSettings
from schemas.wire import AbandonmentTrigger
from schemas.wire.fields import as_datetime


@dataclass(frozen=True, slots=True)
class Send:
    """One HTTP request that delivers one trigger (one attempt: webhooks sign per attempt)."""

    method: str
    url: str
    headers: Mapping[str, str] = field(repr=False)  # credentials
    body: bytes = field(repr=False)  # personal data
    #: The id the ESP deduplicates on, when it has one: a resend is then harmless.
    dedupe_id: str | None = None


class Provider(ABC):
    """One ESP's public API, as a pure function from a trigger to a :class:`Send`."""

    name: ClassVar[str]
    #: True when the ESP drops a repeat of the same dedupe id, so a send whose outcome is
    #: unknown may be repeated safely; False sends such a trigger to the ambiguous policy.
    dedupes: ClassVar[bool]

    def __init__(self, settings: SinkSettings, endpoint: str, secret: str) -> None:
        self.settings = settings
        self.endpoint = endpoint.rstrip("/")
        self._secret = secret

    def __repr__(self) -> str:  # never the secret
        return f"{type(self).__name__}(endpoint={self.endpoint!r})"

    @abstractmethod
    def request(self, trigger: AbandonmentTrigger, *, now_s: float) -> Send:
        """The request delivering ``trigger`` (as the sink decoded it at its edge)."""

    def dedupe_id(self, trigger: AbandonmentTrigger) -> str | None:
        """The id the ESP deduplicates ``trigger``'s sends on (None: it has none)."""
        return None

    def message_id(self, status: int, headers: Mapping[str, str], body: bytes) -> str | None:
        """The ESP's id for an accepted message, when its answer carries one."""
        return None

    def display_url(self, url: str) -> str:
        """``url`` as a log line or an error message may show it: no credentials in the
        authority, no query, and no personal data (an adapter may hide path segments)."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = host + (f":{parts.port}" if parts.port else "")
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))

    def redact(self, text: str) -> str:
        """``text`` (an ESP's answer) with the credential blotted out, should it echo it."""
        return text.replace(self._secret, "[secret]") if self._secret else text


def json_body(payload: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON: what is signed is exactly what is sent."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def iso_utc(ms: int) -> str:
    """Epoch milliseconds as ISO 8601 UTC with a ``Z``, as the templates get times."""
    return as_datetime(ms).isoformat().replace("+00:00", "Z")


def offer_data(trigger: AbandonmentTrigger) -> dict[str, Any]:
    """The personalisation every template gets, JSON-safe: money as a decimal string,
    times in ISO 8601 UTC. The e-mail address is not in it: each API has its own place."""
    offer = trigger.offer
    return {
        "trigger_id": trigger.trigger_id,
        "first_name": trigger.first_name,
        "quote_ref": trigger.quote_ref,
        "quote_id": trigger.quote_id,
        "product_code": trigger.product_code,
        "channel": trigger.channel,
        "premium": str(trigger.premium),
        "currency": trigger.currency,
        "offer_code": offer.code,
        "offer_description": offer.description,
        "discount_pct": offer.discount_pct,
        "subject": trigger.subject,
        "template_id": trigger.template_id,
        "timezone": trigger.timezone,
        "quote_created_at": iso_utc(trigger.quote_created_at),
        "rule_version": trigger.rule_version,
    }
