"""One validated settings model for every quoteflow process.

Sources, highest priority first: keyword arguments (tests), environment
variables (``QUOTEFLOW_<SECTION>__<KEY>``, e.g. ``QUOTEFLOW_KAFKA__BOOTSTRAP_SERVERS``),
then an optional TOML file (``QUOTEFLOW_CONFIG`` or ``--config``; ``quoteflow.toml``
in the working directory when present), then the defaults below, which match the
local stack and ``docker-compose.yml``.

Unknown keys are rejected, so a typo in a TOML file or variable name fails at
start instead of being silently ignored. Validation errors are turned into a
:class:`~quoteflow.errors.ConfigError` whose message names the key.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from quoteflow.errors import ConfigError
from quoteflow.kafkalog import CLIENT_LOG

ENV_PREFIX = "QUOTEFLOW_"
CONFIG_ENV = "QUOTEFLOW_CONFIG"
DEFAULT_CONFIG_FILE = Path("quoteflow.toml")
#: Where a Confluent-compatible registry API lives on Apicurio Registry (the local stack's).
APICURIO_CCOMPAT_PATH = "/apis/ccompat/v7"

def _default_stack_home() -> Path:
    """Root runs the stack in /var/lib (PostgreSQL's user must reach it); others in XDG state."""
    if os.geteuid() == 0:
        return Path("/var/lib/quoteflow")
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "quoteflow"


def _default_cache_dir() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "quoteflow"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StackSettings(_Section):
    """The local stack: where it keeps data and logs, and the ports it listens on."""

    home: Path = Field(default_factory=_default_stack_home)
    cache_dir: Path = Field(default_factory=_default_cache_dir)

    @field_validator("home", "cache_dir", mode="before")
    @classmethod
    def _absolute(cls, value: object) -> object:
        """Tools run with other working directories (initdb, the JVM): paths must be absolute."""
        if isinstance(value, str | Path):
            if not str(value).strip():
                raise ValueError("must not be empty")
            return Path(value).expanduser().resolve()
        return value

    kafka_version: str = Field(default="4.4.0", pattern=r"^\d+\.\d+\.\d+$")
    kafka_port: int = Field(default=19092, ge=1024, le=65535)
    kafka_controller_port: int = Field(default=19093, ge=1024, le=65535)
    kafka_heap_mb: int = Field(default=512, ge=128, le=512)
    postgres_port: int = Field(default=55432, ge=1024, le=65535)
    #: Apicurio Registry, pinned: its SQL storage upgrades the database schema on start,
    #: so every machine of a team must run the same version against the same database.
    registry_version: Literal["3.3.3"] = "3.3.3"
    registry_port: int = Field(default=18081, ge=1024, le=65535)
    #: Quarkus' management interface (health checks); bound to loopback like the API.
    registry_management_port: int = Field(default=18082, ge=1024, le=65535)
    registry_heap_mb: int = Field(default=256, ge=128, le=1024)
    #: The database in the stack's PostgreSQL that holds the registry's schemas and ids.
    registry_database: str = Field(default="registry", pattern=r"^[a-z_][a-z0-9_]*$")
    #: A JDK or JRE for the registry (it needs Java 21+); unset: JAVA_HOME, PATH, /usr/lib/jvm.
    registry_java_home: Path | None = None
    start_timeout_s: float = Field(default=90.0, gt=0)

    @field_validator("registry_java_home", mode="before")
    @classmethod
    def _absolute_java_home(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None  # an empty env variable means "not set"
        if isinstance(value, str | Path):
            return Path(value).expanduser().resolve()
        return value

    @model_validator(mode="after")
    def _distinct_ports(self) -> StackSettings:
        names = (
            "kafka_port",
            "kafka_controller_port",
            "postgres_port",
            "registry_port",
            "registry_management_port",
        )
        ports = [getattr(self, name) for name in names]
        if len(set(ports)) != len(ports):
            raise ValueError(f"{', '.join(names[:-1])} and {names[-1]} must all differ")
        return self

    @property
    def registry_url(self) -> str:
        """The local registry's Confluent-compatible API, as clients are configured with it."""
        return f"http://127.0.0.1:{self.registry_port}{APICURIO_CCOMPAT_PATH}"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"


class KafkaSettings(_Section):
    """How pipeline processes reach Kafka. Empty bootstrap means the local stack."""

    bootstrap_servers: str = ""
    client_id: str = "quoteflow"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None

    @model_validator(mode="after")
    def _sasl_complete(self) -> KafkaSettings:
        uses_sasl = self.security_protocol.startswith("SASL_")
        if uses_sasl and (
            self.sasl_mechanism is None or self.sasl_username is None or self.sasl_password is None
        ):
            raise ValueError(
                f"security_protocol {self.security_protocol} needs sasl_mechanism,"
                " sasl_username and sasl_password"
            )
        if not uses_sasl and self.sasl_mechanism is not None:
            raise ValueError("sasl_mechanism is set but security_protocol is not SASL_*")
        return self

    def as_librdkafka_dict(self) -> dict[str, Any]:
        """Client config for confluent-kafka; secrets only leave SecretStr here.

        The client's own log lines go through quoteflow's logging (``logger``),
        never raw to stderr; an idle connection the broker closes is not a line.
        """
        conf: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "client.id": self.client_id,
            "security.protocol": self.security_protocol,
            "logger": CLIENT_LOG,
            "log.connection.close": False,
        }
        if self.sasl_mechanism:
            conf["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username is not None:
            conf["sasl.username"] = self.sasl_username
        if self.sasl_password is not None:
            conf["sasl.password"] = self.sasl_password.get_secret_value()
        return conf


class SchemaRegistrySettings(_Section):
    """How records are framed: Confluent wire format through a registry, or embedded.

    ``mode = "registry"`` (the default) writes what Debezium, Kafka Connect and
    every Kafka tool read; with no ``url`` it is the local stack's registry.
    ``mode = "embedded"`` is for deployments without a registry (Avro
    single-object encoding against the shipped schemas); it is chosen
    explicitly, never fallen back to, so a missing registry is an error rather
    than a silent change of wire format.
    """

    mode: Literal["registry", "embedded"] = "registry"
    #: Empty: the local stack's registry (filled in by Settings); always None when embedded.
    url: str | None = None
    basic_auth_user: str | None = None
    basic_auth_password: SecretStr | None = None
    #: Off: a schema reaches the registry only through `quoteflow schemas register`
    #: (or CI), never as a side effect of a producer writing its first record.
    auto_register: bool = False
    request_timeout_s: float = Field(default=10.0, gt=0, le=300)

    @field_validator("url", mode="before")
    @classmethod
    def _empty_url_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _check(self) -> SchemaRegistrySettings:
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
        if (self.basic_auth_user is None) != (self.basic_auth_password is None):
            raise ValueError("basic_auth_user and basic_auth_password go together")
        if self.mode == "embedded" and (self.url is not None or self.basic_auth_user is not None):
            raise ValueError("url and basic auth are registry settings, but mode is embedded")
        return self

    def basic_auth(self) -> tuple[str, str] | None:
        if self.basic_auth_user is None or self.basic_auth_password is None:
            return None
        return (self.basic_auth_user, self.basic_auth_password.get_secret_value())


class PostgresSettings(_Section):
    """The QMS and CRM databases (and quoteflow's own). Empty port means the local stack's."""

    host: str = "127.0.0.1"
    port: int | None = Field(default=None, ge=1, le=65535)
    user: str = "quoteflow"
    password: SecretStr = SecretStr("quoteflow")
    qms_database: str = Field(default="qms", pattern=r"^[a-z_][a-z0-9_]*$")
    crm_database: str = Field(default="crm", pattern=r"^[a-z_][a-z0-9_]*$")
    #: quoteflow's own operational database (the ESP sink's delivery ledger). Its server is
    #: ``ops_host``/``ops_port`` when set: in production, not the legacy QMS server.
    ops_database: str = Field(default="ops", pattern=r"^[a-z_][a-z0-9_]*$")
    ops_host: str | None = None
    ops_port: int | None = Field(default=None, ge=1, le=65535)
    connect_timeout_s: int = Field(default=10, ge=1)

    def conninfo(self, database: str) -> str:
        """A libpq conninfo; built here so the password is read from SecretStr in one place."""
        from psycopg.conninfo import make_conninfo

        return make_conninfo(
            host=self.host,
            port=str(self.port),
            user=self.user,
            password=self.password.get_secret_value(),
            dbname=database,
            connect_timeout=str(self.connect_timeout_s),
            application_name="quoteflow",
        )

    def ops_conninfo(self) -> str:
        """The ops database's conninfo: its own server when configured, else this one."""
        ops = self.model_copy(
            update={"host": self.ops_host or self.host, "port": self.ops_port or self.port}
        )
        return ops.conninfo(self.ops_database)


class TopicsSettings(_Section):
    """What differs between environments; the topics themselves are in quoteflow.topics."""

    replication_factor: int = Field(default=1, ge=1, le=7)
    #: Overrides every topic's partition count (small local clusters); None keeps the
    #: catalogue's own counts, which size production.
    partitions: int | None = Field(default=None, ge=1, le=1024)
    request_timeout_s: float = Field(default=30.0, gt=0)


class StreamsSettings(_Section):
    """The faust processor."""

    app_id: str = Field(default="quoteflow", pattern=r"^[a-zA-Z0-9._-]+$")
    data_dir: Path | None = None  # defaults to <stack.home>/streams
    processing_guarantee: Literal["exactly_once", "at_least_once"] = "exactly_once"
    #: The marketing rules file; None: the shipped streams/rules.toml.
    rules_file: Path | None = None
    #: Prepended to every topic the processor reads and writes (a staging namespace, or
    #: a test's own topics); "" in production.
    topic_prefix: str = Field(default="", pattern=r"^[a-zA-Z0-9._-]*$")
    #: How often each worker ticks its partitions' clocks (deadlines fire within about this).
    tick_interval_s: float = Field(default=0.25, gt=0, le=10)
    #: faust's commit interval: input offsets, table changes and outputs commit together.
    commit_interval_s: float = Field(default=0.5, gt=0, le=60)
    #: Log a stalled watermark when due quotes wait on it longer than this.
    watermark_stall_s: float = Field(default=30.0, gt=0)
    #: How long the group waits for a silent worker before giving its partitions to the
    #: others (a killed worker's quotes wait this long).
    session_timeout_s: float = Field(default=30.0, ge=6, le=300)


CdcSourceName = Literal["qms", "crm"]


class CdcSettings(_Section):
    """The CDC connector (``quoteflow cdc``): which sources, and how it paces itself."""

    #: Sources by server name, the topic prefix (qms -> qms.public.quotes, crm -> crm...).
    sources: tuple[CdcSourceName, ...] = ("qms", "crm")
    #: Replication slots are named <slot_prefix>_<source>; one slot per source, held by one process.
    slot_prefix: str = Field(default="quoteflow", pattern=r"^[a-z_][a-z0-9_]{0,40}$")
    #: Prefixes the change and watermark topics, like ``streams.topic_prefix``: a second
    #: pipeline (or a test) on the same cluster reads and writes only its own topics.
    topic_prefix: str = Field(default="", pattern=r"^[a-zA-Z0-9._-]*$")
    #: How often the confirmed position is sent to the server (and keepalives answered at once).
    status_interval_s: float = Field(default=1.0, gt=0, le=60)
    #: Events awaiting Kafka's acknowledgement before reading pauses: bounds memory and duplicates.
    max_in_flight: int = Field(default=50_000, ge=1)
    #: librdkafka batching: the latency a change may wait for company in a batch.
    linger_ms: int = Field(default=5, ge=0, le=1000)
    #: On SIGTERM, how long to wait for Kafka to acknowledge what was sent.
    shutdown_timeout_s: float = Field(default=30.0, gt=0)
    #: "initial": a new slot first snapshots the rows that already exist; "never": only changes.
    snapshot: Literal["initial", "never"] = "initial"
    #: Rows per snapshot chunk: one indexed range scan of the legacy table each.
    snapshot_chunk_rows: int = Field(default=5_000, ge=1, le=1_000_000)
    #: At most this many snapshot rows a second (None: as fast as Kafka takes them).
    snapshot_rows_per_s: int | None = Field(default=20_000, ge=1)
    #: Where snapshot progress is kept, one file per slot; default <stack.home>/cdc.
    state_dir: Path | None = None
    #: A heartbeat into the source's WAL this often; each one read and acknowledged becomes a
    #: watermark on quoteflow.cdc.watermarks (None: no heartbeats, no watermarks).
    heartbeat_interval_s: float | None = Field(default=1.0, gt=0, le=3600)
    #: Serve Prometheus metrics (lag in bytes and seconds, counts) on this port; None: off.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    #: The metrics listener's address: loopback unless a scraper elsewhere needs it.
    metrics_host: str = "127.0.0.1"


def _default_connectors() -> dict[CdcSourceName, str]:
    return {"qms": "quoteflow-debezium-qms", "crm": "quoteflow-debezium-crm"}


class WatermarksSettings(_Section):
    """``quoteflow watermarks``: the source watermark when Debezium produces the change topics.

    Topic names follow ``cdc.topic_prefix`` like ``quoteflow cdc``'s: the change
    topics, Debezium's ``<source>.message`` topics and ``quoteflow.cdc.watermarks``.
    """

    #: The sources Debezium captures, by its ``topic.prefix`` (qms, crm).
    sources: tuple[CdcSourceName, ...] = ("qms", "crm")
    #: Kafka Connect's ``offset.storage.topic`` (distributed mode): its committed offsets
    #: are the proof that Kafka acknowledged everything before a heartbeat.
    connect_offsets_topic: str = Field(default="connect-offsets", pattern=r"^[a-zA-Z0-9._-]+$")
    #: Each source's connector name in Connect (the ``name`` of qms/crm.properties).
    connectors: dict[CdcSourceName, str] = Field(default_factory=_default_connectors)
    #: How often new heartbeats and offsets are looked at and watermarks published.
    interval_s: float = Field(default=0.5, gt=0, le=60)
    #: Warn when a source's watermark has not moved for this long (and say why).
    stall_s: float = Field(default=30.0, gt=0)

    @field_validator("connectors")
    @classmethod
    def _every_source_named(
        cls, value: dict[CdcSourceName, str], info: ValidationInfo
    ) -> dict[CdcSourceName, str]:
        missing = [s for s in info.data.get("sources", ()) if not value.get(s)]
        if missing:
            raise ValueError(f"no connector name for source(s) {', '.join(missing)}")
        return value


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


class SendgridSettings(_Section):
    """SendGrid v3 mail send: the sender (a verified sender identity of the account)."""

    from_email: str | None = None
    from_name: str | None = None


class BrazeSettings(_Section):
    """Braze API-triggered campaign: the campaign whose template renders the offer."""

    campaign_id: str | None = None


class CustomerioSettings(_Section):
    """Customer.io Track API: the workspace's site id (the API key is the secret)."""

    site_id: str | None = None
    #: The event name a campaign in Customer.io is triggered by.
    event_name: str = Field(default="quote_abandoned", min_length=1, max_length=100)


class SinkSettings(_Section):
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

    #: Prepended to the topics the sink reads and writes (a test's own); "" in production.
    topic_prefix: str = Field(default="", pattern=r"^[a-zA-Z0-9._-]*$")
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


class HealthSettings(_Section):
    """Liveness for health checks (:mod:`quoteflow.liveness`): off unless ``file`` is set."""

    #: Touched by a running component's loop; one file per process (a container's own).
    file: Path | None = None
    #: ``quoteflow health`` fails when the file is older than this.
    max_age_s: float = Field(default=60.0, gt=0, le=3600)


class LogSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["json", "console"] = "console"


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
        """Point clients at the local stack unless told otherwise (one port setting, not two)."""
        if not self.kafka.bootstrap_servers:
            kafka = self.kafka.model_copy(
                update={"bootstrap_servers": f"127.0.0.1:{self.stack.kafka_port}"}
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


def _describe(error: Mapping[str, Any]) -> str:
    key = ".".join(str(part) for part in error.get("loc", ()))
    env_name = ENV_PREFIX + "__".join(str(p) for p in error.get("loc", ())).upper()
    message = str(error.get("msg", "invalid value"))
    if error.get("type") == "extra_forbidden":
        message = "unknown setting (check the spelling; see docs/configuration.md)"
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
