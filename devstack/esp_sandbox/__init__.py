"""A local stand-in for the ESPs the sink supports: ``quoteflow esp-sandbox``.

It accepts SendGrid's, Braze's, Customer.io's and the signed webhook's request
shapes on loopback, refuses malformed ones as the real APIs do, records what
it accepted (the inbox page shows it as e-mails) and injects faults on command,
so the demo, the integration tests and the sink benchmark exercise the sink's
retries, rate limiting and deduplication without e-mailing anyone. Nothing in
the production configuration points at it.
"""

from __future__ import annotations

from devstack.esp_sandbox.client import SandboxClient
from devstack.esp_sandbox.config import SandboxConfig
from devstack.esp_sandbox.server import Sandbox

__all__ = ["Sandbox", "SandboxClient", "SandboxConfig"]
