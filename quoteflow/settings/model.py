"""The root :class:`Settings`: every section, read from arguments, environment and TOML.

Sources, highest priority first: keyword arguments (tests), environment
variables (``QUOTEFLOW_<SECTION>__<KEY>``, e.g. ``QUOTEFLOW_KAFKA__BOOTSTRAP_SERVERS``),
then an optional TOML file (``QUOTEFLOW_CONFIG`` or ``--config``; ``quoteflow.toml``
in the working directory when present), then each section's defaults, which match
the local stack (:mod:`quoteflow.settings.local_stack`) and ``docker-compose.yml``.

Unknown keys are rejected, so a typo in a TOML file or variable name fails at
start instead of being silently ignored. Validation errors are turned into a
:class:`~quoteflow.errors.ConfigError` whose message names the key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from quoteflow.errors import ConfigError
from quoteflow.settings.cdc import CdcSettings, WatermarksSettings
from quoteflow.settings.kafka import KafkaSettings
from quoteflow.settings.local_stack import local_kafka_bootstrap
from quoteflow.settings.observe import HealthSettings, LogSettings
from quoteflow.settings.postgres import PostgresSettings
from quoteflow.settings.registry import SchemaRegistrySettings
from quoteflow.settings.sink import SinkSettings
from quoteflow.settings.stack import StackSettings
from quoteflow.settings.streams import StreamsSettings
from quoteflow.settings.topics import TopicsSettings

ENV_PREFIX = "QUOTEFLOW_"
CONFIG_ENV = "QUOTEFLOW_CONFIG"
DEFAULT_CONFIG_FILE = Path("quoteflow.toml")


class Settings(BaseSettings):
    """Every setting of quoteflow. Build it with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        toml_file=None,
    )

    stack: StackSettings = Field(default_factory=StackSettings)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    schema_registry: SchemaRegistrySettings = Field(default_factory=SchemaRegistrySettings)
    postgres: PostgresSettings = Field(default_factory=PostgresSettings)
    topics: TopicsSettings = Field(default_factory=TopicsSettings)
    streams: StreamsSettings = Field(default_factory=StreamsSettings)
    cdc: CdcSettings = Field(default_factory=CdcSettings)
    watermarks: WatermarksSettings = Field(default_factory=WatermarksSettings)
    sink: SinkSettings = Field(default_factory=SinkSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    health: HealthSettings = Field(default_factory=HealthSettings)

    @model_validator(mode="after")
    def _fill_from_stack(self) -> Settings:
        """Point clients at the local stack unless told otherwise (one port setting, not two).

        An unset client section means the local development stack (see
        :mod:`quoteflow.settings.local_stack`), at the ports ``stack.*`` gives it:
        a private stack on other ports (tests) takes its clients along.
        """
        if not self.kafka.bootstrap_servers:
            kafka = self.kafka.model_copy(
                update={"bootstrap_servers": local_kafka_bootstrap(self.stack.kafka_port)}
            )
            object.__setattr__(self, "kafka", kafka)
        if self.postgres.port is None:
            pg = self.postgres.model_copy(update={"port": self.stack.postgres_port})
            object.__setattr__(self, "postgres", pg)
        if self.schema_registry.mode == "registry" and self.schema_registry.url is None:
            registry = self.schema_registry.model_copy(update={"url": self.stack.registry_url})
            object.__setattr__(self, "schema_registry", registry)
        if self.cdc.state_dir is None:
            cdc = self.cdc.model_copy(update={"state_dir": self.stack.home / "cdc"})
            object.__setattr__(self, "cdc", cdc)
        if self.streams.data_dir is None:
            streams = self.streams.model_copy(update={"data_dir": self.stack.home / "streams"})
            object.__setattr__(self, "streams", streams)
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as the plain model with the same values, so settings reach a process
        (a replay lane, a benchmark's seeder): :func:`load_settings` binds the config
        file in a class made at run time, which pickle cannot find by name, and the
        values are already read and checked (the process reads no file or variable)."""
        return (_unpickle, ({name: getattr(self, name) for name in Settings.model_fields},))

    @model_validator(mode="after")
    def _liveness_outlasts_cdc_heartbeats(self) -> Settings:
        """The CDC beats when each source has published a watermark since its last beat."""
        every = self.cdc.heartbeat_interval_s
        if self.health.file is not None and every is not None and 3 * every > self.health.max_age_s:
            raise ValueError(
                f"health.max_age_s ({self.health.max_age_s:g}) must be at least three"
                f" cdc.heartbeat_interval_s ({every:g}): the CDC proves it is alive by its"
                " watermarks"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # toml_file is None unless load_settings chose a file (then the source reads it).
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))


def _choose_config_file(explicit: Path | str | None, environ: Mapping[str, str]) -> Path | None:
    if explicit is not None:
        path = Path(explicit)
    elif environ.get(CONFIG_ENV):
        path = Path(environ[CONFIG_ENV])
    elif DEFAULT_CONFIG_FILE.is_file():
        return DEFAULT_CONFIG_FILE
    else:
        return None
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist (from --config or {CONFIG_ENV})")
    return path


#: Settings that moved, with where to: an old config gets told, not just "unknown".
MOVED = {
    f"{section}.topic_prefix": "moved to topics.prefix (one prefix for every component's topics)"
    for section in ("cdc", "streams", "sink")
}


def _describe(error: Mapping[str, Any]) -> str:
    key = ".".join(str(part) for part in error.get("loc", ()))
    env_name = ENV_PREFIX + "__".join(str(p) for p in error.get("loc", ())).upper()
    message = str(error.get("msg", "invalid value"))
    if error.get("type") == "extra_forbidden":
        message = MOVED.get(key, "unknown setting (check the spelling; see docs/configuration.md)")
    if not key:
        return f"settings: {message}"
    return f"setting {key} (env {env_name}): {message}"


def _reject_unknown_sections(environ: Mapping[str, str]) -> None:
    """pydantic-settings ignores prefixed variables matching no section; a typo deserves a word."""
    known = {name.upper() for name in Settings.model_fields} | {"CONFIG"}
    for name in sorted(environ):
        if name.startswith(ENV_PREFIX):
            section = name[len(ENV_PREFIX) :].split("__", 1)[0]
            if section not in known:
                raise ConfigError(
                    f"environment variable {name}: unknown setting section {section.lower()!r}"
                    f" (known: {', '.join(sorted(k.lower() for k in known - {'CONFIG'}))})"
                )


def _unpickle(values: dict[str, Any]) -> Settings:
    return Settings.model_construct(**values)


def load_settings(config_file: Path | str | None = None, **overrides: Any) -> Settings:
    """Read and validate settings; raise ConfigError naming the first bad key."""
    _reject_unknown_sections(os.environ)
    path = _choose_config_file(config_file, os.environ)
    # A subclass carries the chosen file: pydantic-settings reads it from model_config.
    config = {**Settings.model_config, "toml_file": path}
    bound: type[Settings] = type("Settings", (Settings,), {"model_config": config})
    try:
        return bound(**overrides)
    except ValidationError as exc:
        errors = exc.errors()
        where = f" in {path}" if path else ""
        first = _describe(errors[0]) + where
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ConfigError(first + more) from None
    except SettingsError as exc:  # e.g. a section given as a non-JSON env value
        raise ConfigError(f"settings: {exc}") from None
    except (OSError, ValueError) as exc:  # unreadable or malformed TOML
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
