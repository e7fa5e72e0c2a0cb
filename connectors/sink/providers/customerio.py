"""Customer.io Track API ``POST /api/v1/customers/{id}/events``: an event that triggers a
campaign.

Customer.io deduplicates events by ``id``, which must be a ULID: ours is derived
from the trigger (its deadline as the ULID's time, a hash of its id as the
randomness), so every resend of a trigger carries the same id and Customer.io
processes it once. ``data.recipient`` addresses the e-mail to the trigger's
address. Authentication is HTTP Basic with the site id and the Track API key.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from urllib.parse import quote

from connectors.sink.providers.base import Provider, Send, json_body, offer_data
from quoteflow.settings import SinkSettings
from schemas.wire import AbandonmentTrigger

_CUSTOMER_SEGMENT = re.compile(r"/customers/[^/]+/")
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


@functools.lru_cache(maxsize=8192)  # the sink asks once when it reads, once when it sends
def trigger_ulid(trigger_id: str, time_ms: int) -> str:
    """A deterministic ULID: 48 bits of ``time_ms`` then 80 bits of SHA-256(trigger_id)."""
    if not 0 <= time_ms < 1 << 48:
        raise ValueError(f"time {time_ms} ms does not fit a ULID")
    value = (time_ms << 80) | int.from_bytes(hashlib.sha256(trigger_id.encode()).digest()[:10])
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


class CustomerIo(Provider):
    name = "customerio"
    dedupes = True

    def __init__(self, settings: SinkSettings, endpoint: str, secret: str) -> None:
        super().__init__(settings, endpoint, secret)
        site = settings.customerio.site_id or ""
        token = base64.b64encode(f"{site}:{secret}".encode()).decode()
        self._authorization = f"Basic {token}"

    def display_url(self, url: str) -> str:
        """The route with ``{id}`` for the customer: a log line names no customer."""
        return _CUSTOMER_SEGMENT.sub("/customers/{id}/", super().display_url(url))

    def dedupe_id(self, trigger: AbandonmentTrigger) -> str:
        return trigger_ulid(trigger.trigger_id, trigger.deadline_at)

    def request(self, trigger: AbandonmentTrigger, *, now_s: float) -> Send:
        event_id = self.dedupe_id(trigger)
        data = offer_data(trigger)
        data["recipient"] = trigger.email
        payload = {
            "name": self.settings.customerio.event_name,
            "id": event_id,
            "timestamp": trigger.fired_at // 1000,
            "data": data,
        }
        customer = quote(str(trigger.customer_id), safe="")
        return Send(
            "POST",
            f"{self.endpoint}/api/v1/customers/{customer}/events",
            {"Authorization": self._authorization, "Content-Type": "application/json"},
            json_body(payload),
            dedupe_id=event_id,
        )
