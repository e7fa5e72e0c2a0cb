"""Braze's API-triggered campaign send as the sandbox checks it (``/campaigns/trigger/send``)."""

from __future__ import annotations

from collections.abc import Mapping

from devstack.esp_sandbox.config import SandboxConfig
from devstack.esp_sandbox.providers.common import (
    Accepted,
    Delivery,
    Identity,
    Invalid,
    bearer_ok,
    field,
    first_trigger_id,
    ids,
    is_email,
    is_undeliverable,
    json_object,
)

PATH = "/campaigns/trigger/send"


def error(status: int, message: str) -> Invalid:
    """A refusal in Braze's style: one ``message``."""
    return Invalid(status, {"message": message}, message)


def validate(config: SandboxConfig, headers: Mapping[str, str], body: bytes) -> Accepted:
    """``POST /campaigns/trigger/send``; Braze answers 201 with a dispatch id when valid."""
    if not bearer_ok(headers, config.api_key):
        raise error(401, "Invalid API key")
    payload = json_object(body)
    if payload is None:
        raise error(400, "Received unparseable JSON; the body must be a JSON object")
    campaign_id = payload.get("campaign_id")
    if not isinstance(campaign_id, str) or not campaign_id:
        raise error(400, "Valid campaign_id is required")
    if "broadcast" in payload and not isinstance(payload["broadcast"], bool):
        raise error(400, "broadcast must be a boolean")
    recipients = payload.get("recipients")
    if payload.get("broadcast") is True and recipients is not None:
        raise error(400, "Cannot specify recipients when broadcast is true")
    if not isinstance(recipients, list) or not recipients:
        raise error(400, "recipients must be a non-empty array")
    if len(recipients) > 50:
        raise error(400, "recipients may hold at most 50 objects")
    return Accepted("braze", tuple(_recipient(r, i) for i, r in enumerate(recipients)),
                    status=201)  # fmt: skip


def _recipient(r: object, i: int) -> Delivery:
    if not isinstance(r, dict):
        raise error(400, f"recipients[{i}] must be an object")
    user = r.get("external_user_id")
    if not isinstance(user, str) or not user:
        raise error(400, f"recipients[{i}].external_user_id must be a non-empty string")
    props = r.get("trigger_properties", {})
    if not isinstance(props, dict):
        raise error(400, f"recipients[{i}].trigger_properties must be an object")
    attributes = r.get("attributes", {})
    if not isinstance(attributes, dict):
        raise error(400, f"recipients[{i}].attributes must be an object")
    if "send_to_existing_only" in r and not isinstance(r["send_to_existing_only"], bool):
        raise error(400, f"recipients[{i}].send_to_existing_only must be a boolean")
    if r.get("send_to_existing_only") is False and not attributes:
        raise error(
            400, f"recipients[{i}]: attributes are required when send_to_existing_only is false"
        )
    email = attributes.get("email")
    if email is not None and not is_email(email):
        raise error(400, f"recipients[{i}].attributes.email is not a valid address")
    if is_undeliverable(email):
        raise error(400, f"recipients[{i}]: the email address is invalid: {email}")
    trigger_id = first_trigger_id(props.get("trigger_id"))
    if trigger_id is None:
        raise error(400, f"sandbox: recipients[{i}].trigger_properties has no trigger_id")
    return Delivery(trigger_id, email, props)


def identify(payload: dict[str, object]) -> Identity:
    """Every recipient's trigger id."""
    recipients = payload.get("recipients")
    return Identity(tuple(
        t for r in (recipients if isinstance(recipients, list) else [])
        for t in ids(field(r, "trigger_properties", "trigger_id"))
    ))  # fmt: skip
