"""A generic webhook, signed the Standard Webhooks way (HMAC-SHA256).

Headers: ``webhook-id`` (the trigger id: receivers deduplicate on it),
``webhook-timestamp`` (epoch seconds of this attempt) and ``webhook-signature``
= ``v1,`` + base64(HMAC-SHA256(secret, f"{id}.{timestamp}.{body}")). A receiver
recomputes the signature over the raw body and rejects timestamps outside its
replay window (5 minutes, :data:`REPLAY_WINDOW_S`). A secret written
``whsec_<base64>`` is the base64-decoded key, as Standard Webhooks libraries
expect; any other secret is used as UTF-8 bytes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

from connectors.sink.providers.base import Provider, Send, json_body, offer_data
from schemas.wire import AbandonmentTrigger

#: How old a signed request may be before a receiver refuses it (replayed requests).
REPLAY_WINDOW_S = 300
EVENT_TYPE = "quote.abandoned"


def signing_key(secret: str) -> bytes:
    if secret.startswith("whsec_"):
        return base64.b64decode(secret[len("whsec_") :])
    return secret.encode()


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(signing_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(secret: str, headers: Mapping[str, str], body: bytes, *, now_s: float) -> str | None:
    """Why a received webhook is not authentic (None when it is): the receiver's side."""
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id, stamp, sigs = (lower.get(h) for h in ("webhook-id", "webhook-timestamp",
                                                  "webhook-signature"))  # fmt: skip
    if not msg_id or not stamp or not sigs:
        return "missing webhook-id, webhook-timestamp or webhook-signature"
    try:
        timestamp = int(stamp)
    except ValueError:
        return "webhook-timestamp is not an integer"
    if abs(now_s - timestamp) > REPLAY_WINDOW_S:
        return f"webhook-timestamp is outside the {REPLAY_WINDOW_S}s replay window"
    expected = signature(secret, msg_id, timestamp, body)
    if not any(hmac.compare_digest(expected, s) for s in sigs.split()):
        return "no valid signature"
    return None


class Webhook(Provider):
    name = "webhook"
    dedupes = True

    def dedupe_id(self, trigger: AbandonmentTrigger) -> str:
        return trigger.trigger_id

    def request(self, trigger: AbandonmentTrigger, *, now_s: float) -> Send:
        data = offer_data(trigger)
        data["email"] = trigger.email
        data["customer_id"] = trigger.customer_id
        body = json_body({"type": EVENT_TYPE, "data": data})
        msg_id = trigger.trigger_id
        timestamp = int(now_s)
        headers = {
            "Content-Type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature(self._secret, msg_id, timestamp, body),
        }
        return Send("POST", self.endpoint, headers, body, dedupe_id=msg_id)
