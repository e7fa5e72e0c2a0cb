"""Each provider's request shape, checked the way the real API checks it: the dispatch.

The sandbox is only worth having if a request it accepts would also be accepted
by the real ESP, so every check mirrors a documented rule of that API
(authentication first, then the body), and a rejection carries the status and
JSON error body in that provider's own style, which is what the sink's failure
classification reads. One rule is the sandbox's own: every delivery must carry
the trigger id, because counting deliveries per trigger is the sandbox's purpose.

The rules live one provider per module under :mod:`devstack.esp_sandbox.providers`
(the shared verdicts and small checks in :mod:`~devstack.esp_sandbox.providers.common`);
this module routes a request to its provider and re-exports what callers use.

:func:`identify` reads the trigger ids and dedupe id of any request, valid or
not, so the store can count what the sender *sent* (a faulted or refused request
included), not only what the provider accepted.

Functions take the request as plain values (path, headers, raw body) and return
an :class:`Accepted` or raise :class:`Invalid`; no socket is involved, so each
rejection path is a unit test.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from devstack.esp_sandbox.config import SandboxConfig
from devstack.esp_sandbox.providers import braze, customerio, sendgrid, webhook
from devstack.esp_sandbox.providers.common import (
    UNDELIVERABLE_TLD,
    Accepted,
    Delivery,
    Identity,
    Invalid,
    is_email,
    is_ulid,
    is_undeliverable,
    json_object,
)

SENDGRID_PATH = sendgrid.PATH
BRAZE_PATH = braze.PATH
WEBHOOK_PATH = webhook.PATH

#: Each provider's refusal, ``(status, message) -> Invalid``, for the injected faults.
ERROR_STYLES: dict[str, Callable[[int, str], Invalid]] = {
    "sendgrid": lambda status, message: sendgrid.error(status, message),
    "braze": braze.error,
    "customerio": customerio.error,
    "webhook": webhook.error,
}


def identify(provider: str, headers: Mapping[str, str], body: bytes) -> Identity:
    """The trigger ids and dedupe id a request carries, read leniently (no auth, no rules).

    Used for every provider request, including those answered with an injected fault
    or refused, so that a resend shows up at the sandbox even when the provider would
    never act on it. A body that cannot be read names no trigger.
    """
    payload = json_object(body)
    if payload is None:
        return Identity()
    if provider == "sendgrid":
        return sendgrid.identify(payload)
    if provider == "braze":
        return braze.identify(payload)
    if provider == "customerio":
        return customerio.identify(payload)
    if provider == "webhook":
        return webhook.identify(payload, headers)
    return Identity()


def route(path: str) -> str | None:
    """The provider a request path belongs to (None: not a provider route)."""
    if path == SENDGRID_PATH:
        return "sendgrid"
    if path == BRAZE_PATH:
        return "braze"
    if path == WEBHOOK_PATH:
        return "webhook"
    if customerio.PATH.match(path):
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
        return sendgrid.validate(config, headers, body)
    if provider == "braze":
        return braze.validate(config, headers, body)
    if provider == "customerio":
        return customerio.validate(config, path, headers, body)
    if provider == "webhook":
        return webhook.validate(config, headers, body, now_s=now_s)
    raise ValueError(f"unknown provider {provider!r}")


__all__ = [
    "BRAZE_PATH",
    "ERROR_STYLES",
    "SENDGRID_PATH",
    "UNDELIVERABLE_TLD",
    "WEBHOOK_PATH",
    "Accepted",
    "Delivery",
    "Identity",
    "Invalid",
    "identify",
    "is_email",
    "is_ulid",
    "is_undeliverable",
    "route",
    "validate",
]
