"""``[sink]``: the ESP sink's provider, credentials, pacing and failure policy."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from quoteflow.settings.base import Section

SinkProvider = Literal["sendgrid", "braze", "customerio", "webhook"]

#: The providers' public API roots; Braze's REST endpoint depends on the account's
#: instance, and a webhook is the user's own URL, so those two have none.
PROVIDER_BASE_URLS: dict[str, str] = {
    "sendgrid": "https://api.sendgrid.com",
    "customerio": "https://track.customer.io",
}


def is_loopback_host(host: str) -> bool:
    """True for names and addresses only this machine can reach."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_loopback_url(url: str) -> bool:
    from urllib.parse import urlsplit

    return is_loopback_host(urlsplit(url).hostname or "")


class SendgridSettings(Section):
    """SendGrid v3 mail send: the sender (a verified sender identity of the account)."""

    from_email: str | None = None
    from_name: str | None = None


class BrazeSettings(Section):
    """Braze API-triggered campaign: the campaign whose template renders the offer."""

    campaign_id: str | None = None


class CustomerioSettings(Section):
    """Customer.io Track API: the workspace's site id (the API key is the secret)."""

    site_id: str | None = None
    #: The event name a campaign in Customer.io is triggered by.
    event_name: str = Field(default="quote_abandoned", min_length=1, max_length=100)


class SinkSettings(Section):
    """The ESP sink (``quoteflow sink``): provider, credentials, pacing, failure policy."""

    provider: SinkProvider = "sendgrid"
    #: The provider's API root (a webhook's full URL). Unset: the provider's public API;
    #: Braze and webhook need one. https unless on loopback (the ESP sandbox).
    base_url: str | None = None
    #: The provider's API key, or the webhook's signing secret. Prefer ``secret_file``
    #: (a mounted secret) or the environment; never put it in a TOML file under git.
    secret: SecretStr | None = None
    secret_file: Path | None = None
    #: A CA bundle for the provider's TLS (corporate proxies); verification is always on.
    ca_bundle: Path | None = None
    sendgrid: SendgridSettings = Field(default_factory=SendgridSettings)
    braze: BrazeSettings = Field(default_factory=BrazeSettings)
    customerio: CustomerioSettings = Field(default_factory=CustomerioSettings)

    group_id: str = Field(default="quoteflow-esp-sink", pattern=r"^[a-zA-Z0-9._-]+$")
    #: Requests in flight at once (threads sharing one HTTP session); per-customer order holds.
    concurrency: int = Field(default=64, ge=1, le=512)
    #: Triggers read but not yet finished before the sink stops reading (memory, redelivery).
    max_in_flight: int = Field(default=2_000, ge=1, le=100_000)
    #: At most this many sends a second to the provider (None: as fast as it answers).
    rate_limit_per_s: float | None = Field(default=None, gt=0)
    connect_timeout_s: float = Field(default=3.05, gt=0, le=60)
    read_timeout_s: float = Field(default=10.0, gt=0, le=300)
    #: Retry back-off: exponential from ``retry_initial_s`` up to ``retry_max_s``, with jitter.
    retry_initial_s: float = Field(default=0.5, gt=0, le=60)
    retry_max_s: float = Field(default=60.0, gt=0, le=3600)
    #: A trigger that still fails after this long goes to the dead-letter topic as FAILED.
    retry_budget_s: float = Field(default=6 * 3600.0, gt=0)
    #: This many transient failures in a row open the circuit: reading pauses, nothing is
    #: dropped, and one probe a ``breaker_cooldown_s`` tests whether the ESP is back.
    breaker_failures: int = Field(default=5, ge=1, le=10_000)
    breaker_cooldown_s: float = Field(default=5.0, gt=0, le=600)
    #: Where the provider cannot deduplicate, a probe is a real send that a 5xx leaves
    #: ambiguous: each failed probe doubles the cooldown, up to this.
    breaker_cooldown_max_s: float = Field(default=300.0, gt=0, le=3600)
    #: A send whose outcome is unknown (a read timeout, a dropped connection, a 5xx; a
    #: pending send found after a crash) to a provider without a dedupe id: "hold" it as
    #: ambiguous for a person to resolve (`quoteflow sink ambiguous`), or "resend" it and
    #: accept a possible duplicate.
    ambiguous: Literal["hold", "resend"] = "hold"
    #: Triggers with replay=true come from a replay into a sandbox: a production sink drops
    #: them. True only for a sink whose provider is itself a sandbox.
    accept_replays: bool = False
    #: How often outcomes are recorded, receipts published and offsets committed.
    commit_interval_s: float = Field(default=0.1, gt=0, le=10)
    #: How long the group waits for a silent sink before giving its partitions to the
    #: others (a killed sink's triggers wait this long).
    session_timeout_s: float = Field(default=30.0, ge=6, le=300)
    #: A trigger older than this (from its fired_at) when it would go out is not sent:
    #: receipt EXPIRED. Seconds, or a duration like "24h", "90m", "2d".
    max_trigger_age: float = Field(default=24 * 3600.0, gt=0)

    @field_validator("max_trigger_age", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        """Seconds as a number, or a number with a unit (s, m, h, d): ages are said in hours."""
        if isinstance(value, str):
            match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", value)
            if match is None:
                raise ValueError("must be seconds or a duration like 24h, 90m, 2d")
            return float(match[1]) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match[2]]
        return value

    @field_validator("base_url", mode="before")
    @classmethod
    def _base_url(cls, value: object) -> object:
        """TLS to the ESP, always: plain http only to a sandbox on this machine."""
        if isinstance(value, str) and not value.strip():
            return None
        if isinstance(value, str):
            if not value.startswith(("http://", "https://")):
                raise ValueError("must start with https:// (or http:// on loopback)")
            if value.startswith("http://") and not is_loopback_url(value):
                raise ValueError("must use https:// unless it is on loopback")
        return value

    @field_validator("secret_file", "ca_bundle", mode="before")
    @classmethod
    def _path_or_unset(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return Path(value).expanduser() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check(self) -> SinkSettings:
        if self.secret is not None and self.secret_file is not None:
            raise ValueError("secret and secret_file are alternatives: set one")
        if self.retry_max_s < self.retry_initial_s:
            raise ValueError("retry_max_s must be at least retry_initial_s")
        return self

    @property
    def endpoint(self) -> str | None:
        """The URL requests go to: the configured one, else the provider's public API."""
        return self.base_url or PROVIDER_BASE_URLS.get(self.provider)
