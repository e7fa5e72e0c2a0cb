"""``[cdc]`` and ``[watermarks]``: which sources are captured, and how the capture paces itself."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, get_args

from pydantic import Field, ValidationInfo, field_validator

from quoteflow.settings.base import Section

#: The CDC sources by server name. Which sources exist is ``connectors.cdc.sources``'
#: (CDC_SOURCES: table, key, columns, publication); the kernel may not import it, and a
#: type checker needs the names spelled out, so they are repeated here once, and
#: tests/test_quoteflow/test_source_names.py holds this to CDC_SOURCES.
CdcSourceName = Literal["qms", "crm"]
#: Every source, in CDC_SOURCES order: the default of ``cdc.sources`` and ``watermarks.sources``.
ALL_SOURCES: tuple[CdcSourceName, ...] = get_args(CdcSourceName)


class CdcSettings(Section):
    """The CDC connector (``quoteflow cdc``): which sources, and how it paces itself."""

    #: Sources by server name, the topic prefix (qms -> qms.public.quotes, crm -> crm...).
    sources: tuple[CdcSourceName, ...] = ALL_SOURCES
    #: Replication slots are named <slot_prefix>_<source>; one slot per source, held by one process.
    slot_prefix: str = Field(default="quoteflow", pattern=r"^[a-z_][a-z0-9_]{0,40}$")
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
    """Debezium connector names, as devstack/debezium's <source>.properties name them."""
    return {name: f"quoteflow-debezium-{name}" for name in ALL_SOURCES}


class WatermarksSettings(Section):
    """``quoteflow watermarks``: the source watermark when Debezium produces the change topics.

    Topic names follow ``topics.prefix`` like ``quoteflow cdc``'s: the change
    topics, Debezium's ``<source>.message`` topics and ``quoteflow.cdc.watermarks``.
    """

    #: The sources Debezium captures, by its ``topic.prefix`` (qms, crm).
    sources: tuple[CdcSourceName, ...] = ALL_SOURCES
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
