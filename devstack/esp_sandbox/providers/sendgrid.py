"""SendGrid's v3 mail send as the sandbox checks it: ``POST /v3/mail/send``, dynamic templates."""

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

PATH = "/v3/mail/send"


def error(status: int, message: str, field_name: str | None = None) -> Invalid:
    """A refusal in SendGrid's style: a list of errors, each naming the field at fault."""
    body = {"errors": [{"message": message, "field": field_name, "help": None}]}
    return Invalid(status, body, message)


def validate(config: SandboxConfig, headers: Mapping[str, str], body: bytes) -> Accepted:
    """``POST /v3/mail/send`` with a dynamic template; SendGrid answers 202 when valid."""
    if not bearer_ok(headers, config.api_key):
        raise error(
            401, "The provided authorization grant is invalid, expired, or revoked"
        )
    payload = json_object(body)
    if payload is None:
        raise error(400, "Bad Request: the body must be a JSON object", None)
    personalizations = payload.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        raise error(
            400, "The personalizations field is required and must have at least one "
            "personalization.", "personalizations",
        )  # fmt: skip
    if len(personalizations) > 1000:
        raise error(400, "You may not have more than 1000 personalizations.",
                    "personalizations")  # fmt: skip
    deliveries = [_personalization(p, i) for i, p in enumerate(personalizations)]
    sender = payload.get("from")
    if not isinstance(sender, dict) or not is_email(sender.get("email")):
        raise error(
            400, "The from object must be provided for every email send. It is an object "
            "that requires the email parameter, but may also contain a name parameter.",
            "from.email",
        )  # fmt: skip
    template_id = payload.get("template_id")
    if not isinstance(template_id, str) or not template_id.startswith("d-"):
        raise error(
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
        raise error(
            400, "The categories parameter must be an array of at most 10 unique strings "
            "of at most 255 characters.", "categories",
        )  # fmt: skip
    return Accepted("sendgrid", tuple(deliveries), status=202)


def _personalization(p: object, i: int) -> Delivery:
    where = f"personalizations.{i}"
    if not isinstance(p, dict):
        raise error(400, "Each personalization must be an object.", where)
    to = p.get("to")
    if not isinstance(to, list) or not to:
        raise error(
            400, "The to array is required for all personalization objects, and must have at "
            "least one email object with a valid email address.", f"{where}.to",
        )  # fmt: skip
    for j, recipient in enumerate(to):
        if not isinstance(recipient, dict) or not is_email(recipient.get("email")):
            raise error(
                400, "Does not contain a valid address.", f"{where}.to.{j}.email"
            )
        if is_undeliverable(recipient["email"]):
            raise error(400, f"The to email address is invalid: {recipient['email']}",
                        f"{where}.to.{j}.email")  # fmt: skip
        if "name" in recipient and not isinstance(recipient["name"], str):
            raise error(400, "The name must be a string.", f"{where}.to.{j}.name")
    data = p.get("dynamic_template_data", {})
    if not isinstance(data, dict):
        raise error(400, "The dynamic_template_data must be an object.",
                    f"{where}.dynamic_template_data")  # fmt: skip
    custom_args = p.get("custom_args", {})
    if not isinstance(custom_args, dict) or not all(
        isinstance(v, str) for v in custom_args.values()
    ):
        raise error(400, "Custom args must be an object of string values.",
                    f"{where}.custom_args")  # fmt: skip
    trigger_id = first_trigger_id(custom_args.get("trigger_id"), data.get("trigger_id"))
    if trigger_id is None:
        raise error(
            400, "sandbox: no trigger_id in custom_args or dynamic_template_data",
            f"{where}.custom_args.trigger_id",
        )  # fmt: skip
    return Delivery(trigger_id, to[0]["email"], data)


def identify(payload: dict[str, object]) -> Identity:
    """Every personalization's trigger id (custom_args first, as :func:`validate` reads it)."""
    personalizations = payload.get("personalizations")
    found: list[str] = []
    for p in personalizations if isinstance(personalizations, list) else []:
        found.extend(ids(first_trigger_id(field(p, "custom_args", "trigger_id"),
                                          field(p, "dynamic_template_data", "trigger_id"))))
    return Identity(tuple(found))
