"""Braze ``POST /campaigns/trigger/send``: an API-triggered campaign for one recipient.

The campaign (``sink.braze.campaign_id``) holds the template; the trigger's
fields arrive as ``trigger_properties``. The recipient is the CRM customer id as
Braze's ``external_user_id``, created with its e-mail attribute when Braze does
not know it yet (``send_to_existing_only`` false). Braze answers 201 with a
``dispatch_id``. No idempotency key: an unknown outcome goes to the ambiguous policy.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from connectors.sink.providers.base import Provider, Send, json_body, offer_data
from schemas.wire import AbandonmentTrigger


class Braze(Provider):
    name = "braze"
    dedupes = False

    def request(self, trigger: AbandonmentTrigger, *, now_s: float) -> Send:
        payload = {
            "campaign_id": self.settings.braze.campaign_id or "",
            "broadcast": False,
            "recipients": [
                {
                    "external_user_id": str(trigger.customer_id),
                    "send_to_existing_only": False,
                    "attributes": {"email": trigger.email, "first_name": trigger.first_name},
                    "trigger_properties": offer_data(trigger),
                }
            ],
        }
        return Send(
            "POST",
            f"{self.endpoint}/campaigns/trigger/send",
            {"Authorization": f"Bearer {self._secret}", "Content-Type": "application/json"},
            json_body(payload),
        )

    def message_id(self, status: int, headers: Mapping[str, str], body: bytes) -> str | None:
        try:
            answer = json.loads(body)
        except ValueError:
            return None
        dispatch = answer.get("dispatch_id") if isinstance(answer, dict) else None
        return dispatch if isinstance(dispatch, str) else None
