"""Each provider's request shape, checked the way the real API checks it: pure functions.

The sandbox is only worth having if a request it accepts would also be accepted
by the real ESP, so every check here mirrors a documented rule of that API
(authentication first, then the body), and a rejection carries the status and
JSON error body in that provider's own style, which is what the sink's failure
classification reads. One rule is the sandbox's own: every delivery must carry
the trigger id, because counting deliveries per trigger is the sandbox's purpose.

A recipient under the reserved ``.invalid`` top-level domain (RFC 2606: it can
never exist) is refused with a 400 that *names the address*, as real ESPs do for
an invalid or blocked recipient ("The to email address is invalid: <address>").
That is the case where personal data comes back in an error body, and the sink
must mask it before it reaches a dead letter, a receipt or a log line.

:func:`identify` reads the trigger ids and dedupe id of any request, valid or
not, so the store can count what the sender *sent* (a faulted or refused request
included), not only what the provider accepted.

Functions take the request as plain values (path, headers, raw body) and return
an :class:`Accepted` or raise :class:`Invalid`; no socket is involved, so each
rejection path is a unit test.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from connectors.sink.providers.webhook import EVENT_TYPE, verify
from devstack.esp_sandbox.config import SandboxConfig

#: Deliberately plain: what every ESP rejects (no @, spaces, no dot in the domain).
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
#: RFC 2606's reserved TLD: an address under it is well formed but can never be delivered.
UNDELIVERABLE_TLD = ".invalid"
_ULID = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$", re.IGNORECASE)
_CUSTOMERIO_PATH = re.compile(r"^/api/v1/customers/([^/]+)/events$")

SENDGRID_PATH = "/v3/mail/send"
BRAZE_PATH = "/campaigns/trigger/send"
WEBHOOK_PATH = "/webhook"


class Invalid(Exception):
    """A request the provider would refuse: its status and the provider-style JSON body."""

    def __init__(self, status: int, body: Mapping[str, Any], reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.body = dict(body)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Delivery:
    """One e-mail the request asks for: what the inbox shows and the counts are keyed on."""

    trigger_id: str
    email: str | None
    template_data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Accepted:
    """A valid request: its deliveries and, for providers that deduplicate, the key."""

    provider: str
    deliveries: tuple[Delivery, ...]
    dedupe_id: str | None = None
    #: The provider's success status (the answer's body depends on the message id).
    status: int = 200


# --- error bodies in each provider's style ---------------------------------------------


def sendgrid_error(status: int, message: str, field_name: str | None = None) -> Invalid:
    body = {"errors": [{"message": message, "field": field_name, "help": None}]}
    return Invalid(status, body, message)


def braze_error(status: int, message: str) -> Invalid:
    return Invalid(status, {"message": message}, message)


def customerio_error(status: int, message: str) -> Invalid:
    return Invalid(status, {"meta": {"error": message}}, message)


def webhook_error(status: int, message: str) -> Invalid:
    return Invalid(status, {"error": message}, message)


ERROR_STYLES: dict[str, Callable[[int, str], Invalid]] = {
    "sendgrid": lambda status, message: sendgrid_error(status, message),
    "braze": braze_error,
    "customerio": customerio_error,
    "webhook": webhook_error,
}


# --- small checks shared by the providers ------------------------------------------------


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def _bearer_ok(headers: Mapping[str, str], api_key: str) -> bool:
    value = _lower(headers).get("authorization", "")
    scheme, _, token = value.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip(), api_key)


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


def is_email(value: object) -> bool:
    return isinstance(value, str) and len(value) <= 254 and bool(_EMAIL.match(value))


def is_undeliverable(value: object) -> bool:
    """A well-formed address the ESP refuses by name (its domain cannot exist)."""
    return isinstance(value, str) and value.lower().endswith(UNDELIVERABLE_TLD)


def is_ulid(value: object) -> bool:
    return isinstance(value, str) and bool(_ULID.match(value))


def _trigger_id(*candidates: object) -> str | None:
    for value in candidates:
        if isinstance(value, str) and value:
            return value
    return None


# --- SendGrid v3 mail send ---------------------------------------------------------------


def sendgrid(config: SandboxConfig, headers: Mapping[str, str], body: bytes) -> Accepted:
    """``POST /v3/mail/send`` with a dynamic template; SendGrid answers 202 when valid."""
    if not _bearer_ok(headers, config.api_key):
        raise sendgrid_error(
            401, "The provided authorization grant is invalid, expired, or revoked"
        )
    payload = _json_object(body)
    if payload is None:
        raise sendgrid_error(400, "Bad Request: the body must be a JSON object", None)
    personalizations = payload.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        raise sendgrid_error(
            400, "The personalizations field is required and must have at least one "
            "personalization.", "personalizations",
        )  # fmt: skip
    if len(personalizations) > 1000:
        raise sendgrid_error(400, "You may not have more than 1000 personalizations.",
                             "personalizations")  # fmt: skip
    deliveries = [_sendgrid_personalization(p, i) for i, p in enumerate(personalizations)]
    sender = payload.get("from")
    if not isinstance(sender, dict) or not is_email(sender.get("email")):
        raise sendgrid_error(
            400, "The from object must be provided for every email send. It is an object "
            "that requires the email parameter, but may also contain a name parameter.",
            "from.email",
        )  # fmt: skip
    template_id = payload.get("template_id")
    if not isinstance(template_id, str) or not template_id.startswith("d-"):
        raise sendgrid_error(
            400, "The template_id must be a valid dynamic template id (d-...) when "
            "dynamic_template_data is used.", "template_id",
        )  # fmt: skip
    categories = payload.get("categories", [])
    if (
        not isinstance(categories, list)
        or len(categories) > 10
        or not all(isinstance(c, str) and 0 < len(c) <= 255 for c in categories)
        or len(set(categories)) != len(categories)
    ):
        raise sendgrid_error(
            400, "The categories parameter must be an array of at most 10 unique strings "
            "of at most 255 characters.", "categories",
        )  # fmt: skip
    return Accepted("sendgrid", tuple(deliveries), status=202)


def _sendgrid_personalization(p: object, i: int) -> Delivery:
    where = f"personalizations.{i}"
    if not isinstance(p, dict):
        raise sendgrid_error(400, "Each personalization must be an object.", where)
    to = p.get("to")
    if not isinstance(to, list) or not to:
        raise sendgrid_error(
            400, "The to array is required for all personalization objects, and must have at "
            "least one email object with a valid email address.", f"{where}.to",
        )  # fmt: skip
    for j, recipient in enumerate(to):
        if not isinstance(recipient, dict) or not is_email(recipient.get("email")):
            raise sendgrid_error(
                400, "Does not contain a valid address.", f"{where}.to.{j}.email"
            )
        if is_undeliverable(recipient["email"]):
            raise sendgrid_error(400, f"The to email address is invalid: {recipient['email']}",
                                 f"{where}.to.{j}.email")  # fmt: skip
        if "name" in recipient and not isinstance(recipient["name"], str):
            raise sendgrid_error(400, "The name must be a string.", f"{where}.to.{j}.name")
    data = p.get("dynamic_template_data", {})
    if not isinstance(data, dict):
        raise sendgrid_error(400, "The dynamic_template_data must be an object.",
                             f"{where}.dynamic_template_data")  # fmt: skip
    custom_args = p.get("custom_args", {})
    if not isinstance(custom_args, dict) or not all(
        isinstance(v, str) for v in custom_args.values()
    ):
        raise sendgrid_error(400, "Custom args must be an object of string values.",
                             f"{where}.custom_args")  # fmt: skip
    trigger_id = _trigger_id(custom_args.get("trigger_id"), data.get("trigger_id"))
    if trigger_id is None:
        raise sendgrid_error(
            400, "sandbox: no trigger_id in custom_args or dynamic_template_data",
            f"{where}.custom_args.trigger_id",
        )  # fmt: skip
    return Delivery(trigger_id, to[0]["email"], data)


# --- Braze API-triggered campaign ---------------------------------------------------------


def braze(config: SandboxConfig, headers: Mapping[str, str], body: bytes) -> Accepted:
    """``POST /campaigns/trigger/send``; Braze answers 201 with a dispatch id when valid."""
    if not _bearer_ok(headers, config.api_key):
        raise braze_error(401, "Invalid API key")
    payload = _json_object(body)
    if payload is None:
        raise braze_error(400, "Received unparseable JSON; the body must be a JSON object")
    campaign_id = payload.get("campaign_id")
    if not isinstance(campaign_id, str) or not campaign_id:
        raise braze_error(400, "Valid campaign_id is required")
    if "broadcast" in payload and not isinstance(payload["broadcast"], bool):
        raise braze_error(400, "broadcast must be a boolean")
    recipients = payload.get("recipients")
    if payload.get("broadcast") is True and recipients is not None:
        raise braze_error(400, "Cannot specify recipients when broadcast is true")
    if not isinstance(recipients, list) or not recipients:
        raise braze_error(400, "recipients must be a non-empty array")
    if len(recipients) > 50:
        raise braze_error(400, "recipients may hold at most 50 objects")
    return Accepted("braze", tuple(_braze_recipient(r, i) for i, r in enumerate(recipients)),
                    status=201)  # fmt: skip


def _braze_recipient(r: object, i: int) -> Delivery:
    if not isinstance(r, dict):
        raise braze_error(400, f"recipients[{i}] must be an object")
    user = r.get("external_user_id")
    if not isinstance(user, str) or not user:
        raise braze_error(400, f"recipients[{i}].external_user_id must be a non-empty string")
    props = r.get("trigger_properties", {})
    if not isinstance(props, dict):
        raise braze_error(400, f"recipients[{i}].trigger_properties must be an object")
    attributes = r.get("attributes", {})
    if not isinstance(attributes, dict):
        raise braze_error(400, f"recipients[{i}].attributes must be an object")
    if "send_to_existing_only" in r and not isinstance(r["send_to_existing_only"], bool):
        raise braze_error(400, f"recipients[{i}].send_to_existing_only must be a boolean")
    if r.get("send_to_existing_only") is False and not attributes:
        raise braze_error(
            400, f"recipients[{i}]: attributes are required when send_to_existing_only is false"
        )
    email = attributes.get("email")
    if email is not None and not is_email(email):
        raise braze_error(400, f"recipients[{i}].attributes.email is not a valid address")
    if is_undeliverable(email):
        raise braze_error(400, f"recipients[{i}]: the email address is invalid: {email}")
    trigger_id = _trigger_id(props.get("trigger_id"))
    if trigger_id is None:
        raise braze_error(400, f"sandbox: recipients[{i}].trigger_properties has no trigger_id")
    return Delivery(trigger_id, email, props)


# --- Customer.io Track API ----------------------------------------------------------------


def customerio(
    config: SandboxConfig, path: str, headers: Mapping[str, str], body: bytes
) -> Accepted:
    """``POST /api/v1/customers/{id}/events``; Customer.io answers 200 ``{}`` when valid."""
    if not _basic_ok(headers, config.site_id, config.api_key):
        raise customerio_error(401, "Unauthorized request")
    match = _CUSTOMERIO_PATH.match(path)
    customer = unquote(match.group(1)) if match else ""
    if not customer.strip():
        raise customerio_error(400, "customer id is required")
    payload = _json_object(body)
    if payload is None:
        raise customerio_error(400, "the body must be a JSON object")
    name = payload.get("name")
    if not isinstance(name, str) or not name.strip():
        raise customerio_error(400, "event name is required")
    if len(name) > 100:
        raise customerio_error(400, "event name must be at most 100 characters")
    event_id = payload.get("id")
    if event_id is not None and not is_ulid(event_id):
        raise customerio_error(400, "id must be a valid ULID")
    timestamp = payload.get("timestamp")
    if timestamp is not None and (isinstance(timestamp, bool) or not isinstance(timestamp, int)):
        raise customerio_error(400, "timestamp must be an integer (unix seconds)")
    data = payload.get("data", {})
    if not isinstance(data, dict):
        raise customerio_error(400, "data must be an object")
    recipient = data.get("recipient")
    if recipient is not None and not is_email(recipient):
        raise customerio_error(400, "data.recipient is not a valid address")
    if is_undeliverable(recipient):
        raise customerio_error(400, f"data.recipient: the email address is invalid: {recipient}")
    trigger_id = _trigger_id(data.get("trigger_id"))
    if trigger_id is None:
        raise customerio_error(400, "sandbox: data has no trigger_id")
    dedupe = event_id.upper() if isinstance(event_id, str) else None
    return Accepted("customerio", (Delivery(trigger_id, recipient, data),), dedupe_id=dedupe)


def _basic_ok(headers: Mapping[str, str], site_id: str, api_key: str) -> bool:
    scheme, _, token = _lower(headers).get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return False
    return hmac.compare_digest(decoded, f"{site_id}:{api_key}")


# --- Standard Webhooks ------------------------------------------------------------------


def webhook(
    config: SandboxConfig, headers: Mapping[str, str], body: bytes, *, now_s: float
) -> Accepted:
    """``POST /webhook``, signed; answered 200 ``{"ok": true}`` when authentic and valid."""
    problem = verify(config.webhook_secret, headers, body, now_s=now_s)
    if problem is not None:
        raise webhook_error(401, problem)
    payload = _json_object(body)
    if payload is None:
        raise webhook_error(400, "the body must be a JSON object")
    if payload.get("type") != EVENT_TYPE:
        raise webhook_error(400, f"type must be {EVENT_TYPE!r}")
    data = payload.get("data")
    if not isinstance(data, dict):
        raise webhook_error(400, "data must be an object")
    email = data.get("email")
    if email is not None and not is_email(email):
        raise webhook_error(400, "data.email is not a valid address")
    if is_undeliverable(email):
        raise webhook_error(400, f"data.email: the email address is invalid: {email}")
    trigger_id = _trigger_id(data.get("trigger_id"))
    if trigger_id is None:
        raise webhook_error(400, "sandbox: data has no trigger_id")
    msg_id = _lower(headers)["webhook-id"]  # verify() made sure it is there
    return Accepted("webhook", (Delivery(trigger_id, email, data),), dedupe_id=msg_id)


@dataclass(frozen=True, slots=True)
class Identity:
    """Whom a request is about, read without judging it: what the store counts it under."""

    trigger_ids: tuple[str, ...] = ()
    dedupe_id: str | None = None


def _ids(candidates: object) -> tuple[str, ...]:
    found = candidates if isinstance(candidates, list) else [candidates]
    return tuple(t for t in found if isinstance(t, str) and t)


def _field(value: object, *path: str) -> object:
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def identify(provider: str, headers: Mapping[str, str], body: bytes) -> Identity:
    """The trigger ids and dedupe id a request carries, read leniently (no auth, no rules).

    Used for every provider request, including those answered with an injected fault
    or refused, so that a resend shows up at the sandbox even when the provider would
    never act on it. A body that cannot be read names no trigger.
    """
    payload = _json_object(body)
    if payload is None:
        return Identity()
    if provider == "sendgrid":
        personalizations = payload.get("personalizations")
        ids: list[str] = []
        for p in personalizations if isinstance(personalizations, list) else []:
            ids.extend(_ids(_trigger_id(_field(p, "custom_args", "trigger_id"),
                                        _field(p, "dynamic_template_data", "trigger_id"))))
        return Identity(tuple(ids))
    if provider == "braze":
        recipients = payload.get("recipients")
        return Identity(tuple(
            t for r in (recipients if isinstance(recipients, list) else [])
            for t in _ids(_field(r, "trigger_properties", "trigger_id"))
        ))  # fmt: skip
    if provider == "customerio":
        event_id = payload.get("id")
        return Identity(_ids(_field(payload, "data", "trigger_id")),
                        event_id.upper() if isinstance(event_id, str) and event_id else None)
    if provider == "webhook":
        return Identity(_ids(_field(payload, "data", "trigger_id")),
                        _lower(headers).get("webhook-id") or None)
    return Identity()


def route(path: str) -> str | None:
    """The provider a request path belongs to (None: not a provider route)."""
    if path == SENDGRID_PATH:
        return "sendgrid"
    if path == BRAZE_PATH:
        return "braze"
    if path == WEBHOOK_PATH:
        return "webhook"
    if _CUSTOMERIO_PATH.match(path):
        return "customerio"
    return None


def validate(
    provider: str,
    config: SandboxConfig,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now_s: float,
) -> Accepted:
    """Check one request to ``provider``'s route; raise :class:`Invalid` as the API would."""
    if provider == "sendgrid":
        return sendgrid(config, headers, body)
    if provider == "braze":
        return braze(config, headers, body)
    if provider == "customerio":
        return customerio(config, path, headers, body)
    if provider == "webhook":
        return webhook(config, headers, body, now_s=now_s)
    raise ValueError(f"unknown provider {provider!r}")
