"""The provider endpoints: one ESP request answered after the fault plan, checked, recorded.

Every provider request is logged in the store whatever its answer (an injected
fault or a refusal included), so the counts show what the sender *sent*; an
accepted one is also kept as messages, once per dedupe id. The success answer
is the provider's own: SendGrid's 202 with an ``X-Message-Id``, Braze's 201 with
a dispatch id, Customer.io's ``{}``, the webhook's ``{"ok": true}``.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Mapping

from devstack.esp_sandbox import validate
from devstack.esp_sandbox.config import SandboxConfig
from devstack.esp_sandbox.faults import Decision
from devstack.esp_sandbox.httpd import JSON, Answer, json_body
from devstack.esp_sandbox.store import Outcome, Store


def answer(
    store: Store,
    config: SandboxConfig,
    provider: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
    decision: Decision,
    *,
    received_at: float | None = None,
) -> Answer:
    """The answer to one provider request, after the fault plan's decision; the request
    is logged (:meth:`Store.log`) whatever the answer, faults and refusals included."""
    error = validate.ERROR_STYLES[provider]
    identity = validate.identify(provider, headers, body)
    arrived = time.time() if received_at is None else received_at

    def log(status: int, outcome: Outcome) -> None:
        store.log(provider, identity, received_at=arrived, status=status,
                  outcome=outcome, fault=decision.kind)  # fmt: skip

    if decision.kind in ("down", "status"):
        store.reject(decision.status)
        log(decision.status, "faulted")
        failed = error(decision.status, f"sandbox: injected {decision.status}")
        return Answer(decision.status, json_body(failed.body))
    if decision.kind == "rate_limit":
        store.reject(429)
        log(429, "faulted")
        limited = error(429, "Too many requests")
        return Answer(429, json_body(limited.body), {
            **JSON,
            "Retry-After": str(decision.retry_after_s),
            "X-RateLimit-Limit": str(decision.rate_limit),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(int(time.time()) + decision.retry_after_s),
        })  # fmt: skip
    now = time.time()
    try:
        accepted = validate.validate(provider, config, path, headers, body, now_s=now)
    except validate.Invalid as invalid:
        store.reject(invalid.status)
        log(invalid.status, "rejected")
        return Answer(invalid.status, json_body(invalid.body))
    message_id = _message_id(provider)
    new = store.accept(accepted, message_id=message_id, now_s=now)
    log(accepted.status, "accepted" if new else "duplicate")
    if provider == "sendgrid":
        return Answer(202, b"", {"X-Message-Id": message_id})
    if provider == "braze":
        return Answer(201, json_body({"dispatch_id": message_id, "message": "success"}))
    if provider == "customerio":
        return Answer(200, b"{}")
    return Answer(200, json_body({"ok": True}))


def _message_id(provider: str) -> str:
    """A fresh id in roughly the provider's format (SendGrid's are url-safe base64)."""
    if provider == "sendgrid":
        return secrets.token_urlsafe(16)
    return uuid.uuid4().hex
