"""From settings to a ready provider, checked at start: every missing piece named by its key.

Provider-specific settings cannot be required by the settings model itself
(every quoteflow command loads it, and ``stack up`` needs no SendGrid sender),
so the sink checks them here before it touches Kafka or the ESP.
"""

from __future__ import annotations

from pathlib import Path

from connectors.sink.providers import PROVIDERS, Provider
from quoteflow.errors import ConfigError
from quoteflow.settings import SinkSettings


def _required(s: SinkSettings) -> list[tuple[str, str | None]]:
    """The settings ``s.provider`` cannot work without (besides the secret), as (key, value)."""
    return {
        "sendgrid": [("sink.sendgrid.from_email", s.sendgrid.from_email)],
        "braze": [("sink.base_url", s.base_url), ("sink.braze.campaign_id", s.braze.campaign_id)],
        "customerio": [("sink.customerio.site_id", s.customerio.site_id)],
        "webhook": [("sink.base_url", s.base_url)],
    }[s.provider]


def read_secret(settings: SinkSettings) -> str:
    """The provider credential from ``sink.secret`` (env) or ``sink.secret_file``."""
    if settings.secret is not None:
        value = settings.secret.get_secret_value().strip()
        source = "sink.secret (env QUOTEFLOW_SINK__SECRET)"
    elif settings.secret_file is not None:
        path = Path(settings.secret_file)
        source = f"sink.secret_file ({path})"
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"setting {source}: cannot read it: {exc.strerror}") from None
    else:
        raise ConfigError(
            f"the {settings.provider} provider needs a credential: set sink.secret_file (a "
            "file holding it) or the environment variable QUOTEFLOW_SINK__SECRET"
        )
    if not value:
        raise ConfigError(f"setting {source}: the credential is empty")
    return value


def build_provider(settings: SinkSettings) -> Provider:
    """The configured provider, or a ConfigError naming the first missing setting."""
    for key, value in _required(settings):
        if not value:
            raise ConfigError(f"setting {key}: the {settings.provider} provider needs it")
    if settings.ca_bundle is not None and not Path(settings.ca_bundle).is_file():
        raise ConfigError(f"setting sink.ca_bundle: {settings.ca_bundle} is not a file")
    endpoint = settings.endpoint
    if endpoint is None:  # _required covers the providers without a public default
        raise ConfigError(f"setting sink.base_url: the {settings.provider} provider needs it")
    return PROVIDERS[settings.provider](settings, endpoint, read_secret(settings))
