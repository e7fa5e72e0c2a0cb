"""One validated settings model for every quoteflow process, one module per section.

:func:`load_settings` builds :class:`Settings` (:mod:`.model`: sources, validation,
error messages); each ``[section]`` lives in its own module (``stack``, ``kafka``,
``registry``, ``postgres``, ``topics``, ``streams``, ``cdc``, ``sink``,
``observe``), and :mod:`.local_stack` holds the local development stack's address
that unset client sections fall back to. Import from here: the modules are the
layout, this package is the interface.
"""

from __future__ import annotations

from quoteflow.settings.cdc import ALL_SOURCES, CdcSettings, CdcSourceName, WatermarksSettings
from quoteflow.settings.kafka import KafkaSettings
from quoteflow.settings.local_stack import (
    APICURIO_CCOMPAT_PATH,
    LOCAL_HOST,
    LOCAL_KAFKA_CONTROLLER_PORT,
    LOCAL_KAFKA_PORT,
    LOCAL_POSTGRES_PORT,
    LOCAL_REGISTRY_MANAGEMENT_PORT,
    LOCAL_REGISTRY_PORT,
    local_kafka_bootstrap,
    local_registry_url,
)
from quoteflow.settings.model import (
    CONFIG_ENV,
    DEFAULT_CONFIG_FILE,
    ENV_PREFIX,
    Settings,
    load_settings,
)
from quoteflow.settings.observe import HealthSettings, LogSettings
from quoteflow.settings.postgres import PostgresSettings
from quoteflow.settings.registry import SchemaRegistrySettings
from quoteflow.settings.sink import (
    PROVIDER_BASE_URLS,
    BrazeSettings,
    CustomerioSettings,
    SendgridSettings,
    SinkProvider,
    SinkSettings,
    is_loopback_host,
    is_loopback_url,
)
from quoteflow.settings.stack import StackSettings
from quoteflow.settings.streams import StreamsSettings
from quoteflow.settings.topics import TopicsSettings

__all__ = [
    "ALL_SOURCES",
    "APICURIO_CCOMPAT_PATH",
    "CONFIG_ENV",
    "DEFAULT_CONFIG_FILE",
    "ENV_PREFIX",
    "LOCAL_HOST",
    "LOCAL_KAFKA_CONTROLLER_PORT",
    "LOCAL_KAFKA_PORT",
    "LOCAL_POSTGRES_PORT",
    "LOCAL_REGISTRY_MANAGEMENT_PORT",
    "LOCAL_REGISTRY_PORT",
    "PROVIDER_BASE_URLS",
    "BrazeSettings",
    "CdcSettings",
    "CdcSourceName",
    "CustomerioSettings",
    "HealthSettings",
    "KafkaSettings",
    "LogSettings",
    "PostgresSettings",
    "SchemaRegistrySettings",
    "SendgridSettings",
    "Settings",
    "SinkProvider",
    "SinkSettings",
    "StackSettings",
    "StreamsSettings",
    "TopicsSettings",
    "WatermarksSettings",
    "is_loopback_host",
    "is_loopback_url",
    "load_settings",
    "local_kafka_bootstrap",
    "local_registry_url",
]
