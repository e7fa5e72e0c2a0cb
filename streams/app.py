"""Build the faust application from settings — a factory, never a module-level app.

A module-level ``app = faust.App(...)`` would read configuration at import time
and make every test share one app; a factory lets each process (and each test)
build its own from the one settings model.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Mapping
from typing import Any

import faust
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from quoteflow.errors import ConfigError, TopicError
from quoteflow.settings import KafkaSettings, Settings
from quoteflow.topics.catalog import stream_partitions


def broker_url(bootstrap_servers: str) -> str:
    """faust's broker URL form for a Kafka bootstrap list ("h1:p1,h2:p2")."""
    hosts = [h.strip() for h in bootstrap_servers.split(",") if h.strip()]
    return ";".join(f"kafka://{h}" for h in hosts)


def broker_credentials(kafka: KafkaSettings) -> Any:
    """faust's credentials for the configured transport; None for PLAINTEXT.

    Without this a SASL_SSL cluster would be spoken to without TLS, or not at all.
    """
    tls = ssl.create_default_context() if kafka.security_protocol.endswith("SSL") else None
    if kafka.security_protocol == "SSL":
        return faust.SSLCredentials(tls)
    if kafka.security_protocol.startswith("SASL_"):
        # The settings model guarantees mechanism, username and password for SASL_*.
        password = kafka.sasl_password.get_secret_value() if kafka.sasl_password else ""
        return faust.SASLCredentials(
            username=kafka.sasl_username,
            password=password,
            ssl_context=tls,
            mechanism=kafka.sasl_mechanism,
        )
    return None


def create_app(settings: Settings, *, app_id: str | None = None, **overrides: Any) -> faust.App:
    """A faust App with RocksDB tables (rocksdict) and the configured processing guarantee.

    RocksDB keeps table state on local disk across restarts, so a restarted
    worker replays only the changelog tail instead of the whole table. Internal
    topics (changelogs, repartitions) get the partition count of the pipeline's
    own topics, so tables stay co-partitioned with the streams that feed them.

    Local state lives under ``<data_dir>/<app_id>``: faust names a table's files
    by table and partition only, so without the app id a worker of another app
    (a second pipeline, or a reprocessing from scratch) took the first app's
    tables as its own (:mod:`streams.local_state` checks the rest).
    """
    data_dir = settings.streams.data_dir
    assert data_dir is not None  # filled from stack.home by the settings model
    app_id = app_id or settings.streams.app_id
    # faust makes its datadir without parents: the per-app directory needs data_dir itself.
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a setting to fix (or stack.home's), not a bug: one line
        raise ConfigError(
            f"setting streams.data_dir: cannot create {data_dir}: {exc.strerror}; choose a"
            " writable directory (env QUOTEFLOW_STREAMS__DATA_DIR; default <stack.home>/streams)"
        ) from None
    options: dict[str, Any] = {
        "broker": broker_url(settings.kafka.bootstrap_servers),
        "broker_client_id": settings.kafka.client_id,
        "store": "rocksdb://",
        "processing_guarantee": settings.streams.processing_guarantee,
        "datadir": str(data_dir / app_id),
        "topic_replication_factor": settings.topics.replication_factor,
        "topic_partitions": stream_partitions(settings.topics.partitions),
        "web_enabled": False,
        "autodiscover": False,
        # Logging is configured by quoteflow, not by faust's worker defaults.
        "loghandlers": [],
    }
    credentials = broker_credentials(settings.kafka)
    if credentials is not None:
        options["broker_credentials"] = credentials
    options.update(overrides)
    return faust.App(app_id, **options)


def raw_topic(app: faust.App, name: str, **options: Any) -> faust.TopicT:
    """A topic of undecoded bytes: quoteflow decodes with its own serde (Avro, the registry)."""
    return app.topic(
        name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw",
        **options,
    )  # fmt: skip


def declare_topics(settings: Settings, topics: Mapping[str, Mapping[str, str]],
                   partitions: int) -> None:  # fmt: skip
    """Create the app's internal topics (name -> config) that do not exist yet, and wait
    until the broker lists them.

    faust declares them itself, but as it starts: a worker whose first rebalance
    came before the by-customer topic existed was assigned none of its partitions
    ("Ignoring missing topic") and decided nothing until its consumer's metadata
    next refreshed, minutes later. Declared before the worker starts, they are
    there for the first assignment.
    """
    admin = AdminClient({**settings.kafka.as_librdkafka_dict(), "client.id": "quoteflow-streams"})
    timeout = settings.topics.request_timeout_s
    try:
        present = set(admin.list_topics(timeout=timeout).topics)
    except KafkaException as exc:
        where = settings.kafka.bootstrap_servers
        raise TopicError(f"cannot reach Kafka at {where}: {exc}") from None
    new = [NewTopic(name, partitions, settings.topics.replication_factor, config=dict(config))
           for name, config in topics.items() if name not in present]  # fmt: skip
    for name, future in (admin.create_topics(new, request_timeout=timeout) if new else {}).items():
        try:
            future.result()
        except KafkaException as exc:
            error = exc.args[0]
            code = error.code() if isinstance(error, KafkaError) else None
            exists = code == KafkaError.TOPIC_ALREADY_EXISTS
            if not exists:  # created concurrently (another worker starting) is fine
                raise TopicError(f"cannot create topic {name}: {error}") from None
    deadline = time.monotonic() + timeout
    while not set(topics) <= set(admin.list_topics(timeout=timeout).topics):
        if time.monotonic() > deadline:
            raise TopicError(f"created {', '.join(topics)} but the broker does not list them yet")
        time.sleep(0.1)
