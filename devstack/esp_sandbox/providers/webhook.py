"""The signed webhook (Standard Webhooks) as the sandbox checks it: ``POST /webhook``."""

from __future__ import annotations

from collections.abc import Mapping

from connectors.sink.providers.webhook import EVENT_TYPE, verify
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
    is_undeliverable,
    json_object,
    lower,
)

PATH = "/webhook"


def error(status: int, message: str) -> Invalid:
    """A refusal in the webhook's style: one ``error``."""
    return Invalid(status, {"error": message}, message)


def validate(
    config: SandboxConfig, headers: Mapping[str, str], body: bytes, *, now_s: float
) -> Accepted:
    """``POST /webhook``, signed; answered 200 ``{"ok": true}`` when authentic and valid."""
    problem = verify(config.webhook_secret, headers, body, now_s=now_s)
    if problem is not None:
        raise error(401, problem)
    payload = json_object(body)
    if payload is None:
        raise error(400, "the body must be a JSON object")
    if payload.get("type") != EVENT_TYPE:
        raise error(400, f"type must be {EVENT_TYPE!r}")
    data = payload.get("data")
    if not isinstance(data, dict):
        raise error(400, "data must be an object")
    email = data.get("email")
    if email is not None and not is_email(email):
        raise error(400, "data.email is not a valid address")
    if is_undeliverable(email):
        raise error(400, f"data.email: the email address is invalid: {email}")
    trigger_id = first_trigger_id(data.get("trigger_id"))
    if trigger_id is None:
        raise error(400, "sandbox: data has no trigger_id")
    msg_id = lower(headers)["webhook-id"]  # verify() made sure it is there
    return Accepted("webhook", (Delivery(trigger_id, email, data),), dedupe_id=msg_id)


def identify(payload: dict[str, object], headers: Mapping[str, str]) -> Identity:
    """The event's trigger id; the ``webhook-id`` header is the dedupe id."""
    return Identity(ids(field(payload, "data", "trigger_id")),
                    lower(headers).get("webhook-id") or None)
