"""Customer.io's Track API event as the sandbox checks it (``/api/v1/customers/{id}/events``)."""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from collections.abc import Mapping
from urllib.parse import unquote

from devstack.esp_sandbox.config import SandboxConfig
from devstack.esp_sandbox.providers.common import (
    Accepted,
    Delivery,
    Identity,
    Invalid,
    field,
    first_trigger_id,
    ids,
    is_email,
    is_ulid,
    is_undeliverable,
    json_object,
    lower,
)

PATH = re.compile(r"^/api/v1/customers/([^/]+)/events$")


def error(status: int, message: str) -> Invalid:
    """A refusal in Customer.io's style: ``meta.error``."""
    return Invalid(status, {"meta": {"error": message}}, message)


def validate(
    config: SandboxConfig, path: str, headers: Mapping[str, str], body: bytes
) -> Accepted:
    """``POST /api/v1/customers/{id}/events``; Customer.io answers 200 ``{}`` when valid."""
    if not _basic_ok(headers, config.site_id, config.api_key):
        raise error(401, "Unauthorized request")
    match = PATH.match(path)
    customer = unquote(match.group(1)) if match else ""
    if not customer.strip():
        raise error(400, "customer id is required")
    payload = json_object(body)
    if payload is None:
        raise error(400, "the body must be a JSON object")
    name = payload.get("name")
    if not isinstance(name, str) or not name.strip():
        raise error(400, "event name is required")
    if len(name) > 100:
        raise error(400, "event name must be at most 100 characters")
    event_id = payload.get("id")
    if event_id is not None and not is_ulid(event_id):
        raise error(400, "id must be a valid ULID")
    timestamp = payload.get("timestamp")
    if timestamp is not None and (isinstance(timestamp, bool) or not isinstance(timestamp, int)):
        raise error(400, "timestamp must be an integer (unix seconds)")
    data = payload.get("data", {})
    if not isinstance(data, dict):
        raise error(400, "data must be an object")
    recipient = data.get("recipient")
    if recipient is not None and not is_email(recipient):
        raise error(400, "data.recipient is not a valid address")
    if is_undeliverable(recipient):
        raise error(400, f"data.recipient: the email address is invalid: {recipient}")
    trigger_id = first_trigger_id(data.get("trigger_id"))
    if trigger_id is None:
        raise error(400, "sandbox: data has no trigger_id")
    dedupe = event_id.upper() if isinstance(event_id, str) else None
    return Accepted("customerio", (Delivery(trigger_id, recipient, data),), dedupe_id=dedupe)


def _basic_ok(headers: Mapping[str, str], site_id: str, api_key: str) -> bool:
    scheme, _, token = lower(headers).get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return False
    return hmac.compare_digest(decoded, f"{site_id}:{api_key}")


def identify(payload: dict[str, object]) -> Identity:
    """The event's trigger id; its ULID (upper-cased) is the dedupe id Customer.io keys on."""
    event_id = payload.get("id")
    return Identity(ids(field(payload, "data", "trigger_id")),
                    event_id.upper() if isinstance(event_id, str) and event_id else None)
