"""SendGrid v3 ``POST /v3/mail/send`` with a dynamic template.

The trigger's ``template_id`` is the dynamic template (``d-…``), personalised
through ``dynamic_template_data``; ``custom_args`` carry the trigger id into
SendGrid's event webhook for attribution. SendGrid answers 202 with the
message id in ``X-Message-Id``. It has no idempotency key: an unknown outcome
goes to the sink's ambiguous policy.
"""

from __future__ import annotations

from collections.abc import Mapping

from connectors.sink.providers.base import Provider, Send, json_body, offer_data
from schemas.wire import AbandonmentTrigger


class SendGrid(Provider):
    name = "sendgrid"
    dedupes = False

    def request(self, trigger: AbandonmentTrigger, *, now_s: float) -> Send:
        sender: dict[str, str] = {"email": self.settings.sendgrid.from_email or ""}
        if self.settings.sendgrid.from_name:
            sender["name"] = self.settings.sendgrid.from_name
        payload = {
            "personalizations": [
                {
                    "to": [{"email": trigger.email, "name": trigger.first_name}],
                    "dynamic_template_data": offer_data(trigger),
                    "custom_args": {"trigger_id": trigger.trigger_id},
                }
            ],
            "from": sender,
            "template_id": trigger.template_id,
            "categories": ["quoteflow", "abandoned-quote"],
        }
        return Send(
            "POST",
            f"{self.endpoint}/v3/mail/send",
            {"Authorization": f"Bearer {self._secret}", "Content-Type": "application/json"},
            json_body(payload),
        )

    def message_id(self, status: int, headers: Mapping[str, str], body: bytes) -> str | None:
        return headers.get("X-Message-Id") or headers.get("x-message-id")
