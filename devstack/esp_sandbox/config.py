"""What a sandbox listens on and the credentials it accepts.

The defaults are well known on purpose (the demo and the tests use them
without setup), which is why the sandbox binds to loopback unless told
otherwise: anyone who can reach it can send with ``sandbox-key``.
"""

from __future__ import annotations

from dataclasses import dataclass

from quoteflow.settings import is_loopback_host

DEFAULT_PORT = 18090
DEFAULT_API_KEY = "sandbox-key"
DEFAULT_SITE_ID = "sandbox-site"
DEFAULT_WEBHOOK_SECRET = "sandbox-webhook-secret"  # noqa: S105 - a sandbox's, well known


@dataclass(frozen=True, slots=True)
class SandboxConfig:
    host: str = "127.0.0.1"
    #: 0: an ephemeral port (tests); :meth:`Sandbox.start` returns the one bound.
    port: int = DEFAULT_PORT
    #: SendGrid's and Braze's bearer key, and Customer.io's Track API key.
    api_key: str = DEFAULT_API_KEY
    #: Customer.io's site id (HTTP Basic user name).
    site_id: str = DEFAULT_SITE_ID
    #: The Standard Webhooks signing secret (``whsec_<base64>`` or plain text).
    webhook_secret: str = DEFAULT_WEBHOOK_SECRET
    #: Latency added to every provider request from the start (faults can change it).
    latency_ms: float = 0.0
    #: One line per provider request on the ``devstack.esp_sandbox`` logger (status,
    #: provider, path): off by default, because at benchmark rates it costs CPU.
    log_requests: bool = False
    #: Larger request bodies are refused with 413: a sink never sends one.
    max_body_bytes: int = 1 << 20


__all__ = ["SandboxConfig", "is_loopback_host"]
