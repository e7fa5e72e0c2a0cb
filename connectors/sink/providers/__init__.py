"""ESP adapters by name. A new provider: a module with a :class:`Provider` subclass, a line
here, its request shape in the ESP sandbox, and a literal in ``SinkSettings.provider``."""

from __future__ import annotations

from connectors.sink.providers.base import Provider, Send
from connectors.sink.providers.braze import Braze
from connectors.sink.providers.customerio import CustomerIo
from connectors.sink.providers.sendgrid import SendGrid
from connectors.sink.providers.webhook import Webhook

PROVIDERS: dict[str, type[Provider]] = {
    p.name: p for p in (SendGrid, Braze, CustomerIo, Webhook)
}

__all__ = ["PROVIDERS", "Provider", "Send"]
