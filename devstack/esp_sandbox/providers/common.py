"""What every provider check shares: the verdicts (Accepted, Invalid), Identity, small checks.

A recipient under the reserved ``.invalid`` top-level domain (RFC 2606: it can
never exist) is refused with a 400 that *names the address*, as real ESPs do for
an invalid or blocked recipient ("The to email address is invalid: <address>").
That is the case where personal data comes back in an error body, and the sink
must mask it before it reaches a dead letter, a receipt or a log line.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: Deliberately plain: what every ESP rejects (no @, spaces, no dot in the domain).
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
#: RFC 2606's reserved TLD: an address under it is well formed but can never be delivered.
UNDELIVERABLE_TLD = ".invalid"
_ULID = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$", re.IGNORECASE)


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


@dataclass(frozen=True, slots=True)
class Identity:
    """Whom a request is about, read without judging it: what the store counts it under."""

    trigger_ids: tuple[str, ...] = ()
    dedupe_id: str | None = None


def lower(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers with lower-case names (HTTP header names are case-insensitive)."""
    return {k.lower(): v for k, v in headers.items()}


def bearer_ok(headers: Mapping[str, str], api_key: str) -> bool:
    """``Authorization: Bearer <api_key>``, compared in constant time."""
    value = lower(headers).get("authorization", "")
    scheme, _, token = value.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip(), api_key)


def json_object(body: bytes) -> dict[str, Any] | None:
    """The body as a JSON object; None when it is not JSON or not an object."""
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


def first_trigger_id(*candidates: object) -> str | None:
    """The first candidate that is a non-empty string: where the request carries its trigger."""
    for value in candidates:
        if isinstance(value, str) and value:
            return value
    return None


def ids(candidates: object) -> tuple[str, ...]:
    """The non-empty strings among ``candidates`` (one value or a list), read leniently."""
    found = candidates if isinstance(candidates, list) else [candidates]
    return tuple(t for t in found if isinstance(t, str) and t)


def field(value: object, *path: str) -> object:
    """``value[path[0]][path[1]]...``, or None where a step is not an object."""
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value
