"""Every topic quoteflow owns, declared once, and how to compare one with the broker.

Names follow Debezium's ``<prefix>.<schema>.<table>`` for change events, so a
team that already runs Debezium can point it at the same topics. Retention is
long on purpose: replay and backfill read these topics again (design.md).
Topics faust creates for itself (changelogs, repartitions) are not listed: the
processor declares them and owns their configuration.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

DAY_MS = 24 * 60 * 60 * 1000

KeyFormat = Literal["avro", "string"]

# The topics' names, as every module takes them (with ``topics.prefix`` in front, see
# :func:`prefixed`): a rename is one edit here, and tests/test_topics/test_names.py fails
# when a name is spelled out anywhere else in the product.
#: QMS quote changes. Its partition count is also the processor's (:func:`stream_partitions`).
QUOTES = "qms.public.quotes"
#: CRM customer changes.
CUSTOMERS = "crm.public.customers"
TRIGGERS = "quoteflow.abandonment.triggers"
DECISIONS = "quoteflow.abandonment.decisions"
DELIVERIES = "quoteflow.esp.deliveries"
WATERMARKS = "quoteflow.cdc.watermarks"
DEAD_LETTER = "quoteflow.dead-letter"
#: The change topics by CDC source: the name's first part is the source (Debezium's
#: ``topic.prefix``), as in ``<source>.<schema>.<table>``.
CHANGE_TOPICS: Mapping[str, str] = {name.split(".", 1)[0]: name for name in (QUOTES, CUSTOMERS)}


def prefixed(prefix: str, name: str) -> str:
    """``name`` as this deployment spells it: ``topics.prefix`` in front (often empty).

    One prefix for every topic, so a second pipeline on one cluster (a test run, a
    demo, a replay) has its own complete set and never reads another's watermarks.
    """
    return prefix + name


@dataclass(frozen=True)
class TopicSpec:
    """One topic: its shape on the broker and the schemas of its records."""

    name: str
    partitions: int
    cleanup_policy: Literal["delete", "compact", "compact,delete"]
    retention_ms: int  # -1 = keep forever
    value_schema: str
    key_schema: str | None  # Avro schema name; None = UTF-8 string key
    purpose: str
    replication_factor: int = 1
    extra_config: Mapping[str, str] = field(default_factory=dict)
    #: Why ``partitions`` is part of the topic's contract (``topics.partitions`` does not
    #: override it, and a different count on the broker is reported); None: any count works.
    fixed_partitions: str | None = None

    @property
    def key_format(self) -> KeyFormat:
        return "string" if self.key_schema is None else "avro"

    def config(self) -> dict[str, str]:
        """Broker-side topic configs we set and later check for drift."""
        conf = {
            "cleanup.policy": self.cleanup_policy,
            "retention.ms": str(self.retention_ms),
            "min.insync.replicas": str(min_insync_replicas(self.replication_factor)),
        }
        conf.update(self.extra_config)
        return conf


def min_insync_replicas(replication_factor: int) -> int:
    """Tolerate one broker down without losing acknowledged writes (acks=all)."""
    return max(1, replication_factor - 1) if replication_factor >= 3 else 1


CATALOGUE: tuple[TopicSpec, ...] = (
    TopicSpec(
        name=QUOTES,
        partitions=6,
        cleanup_policy="delete",
        retention_ms=90 * DAY_MS,
        key_schema="qms_quote_key",
        value_schema="qms_quote_envelope",
        purpose="QMS quote row changes (CDC, Debezium envelope); keyed by quote_id",
    ),
    TopicSpec(
        name=CUSTOMERS,
        partitions=6,
        cleanup_policy="compact",
        retention_ms=-1,
        key_schema="crm_customer_key",
        value_schema="crm_customer_envelope",
        purpose="CRM customer row changes (CDC); compacted: latest state per customer",
        extra_config={"min.compaction.lag.ms": str(60 * 60 * 1000)},
    ),
    TopicSpec(
        name=TRIGGERS,
        partitions=6,
        cleanup_policy="delete",
        retention_ms=90 * DAY_MS,
        key_schema=None,
        value_schema="abandonment_trigger",
        purpose="one trigger per abandoned quote, for the ESP sink and dashboards",
    ),
    TopicSpec(
        name=DECISIONS,
        partitions=6,
        cleanup_policy="delete",
        retention_ms=90 * DAY_MS,
        key_schema=None,
        value_schema="abandonment_decision",
        purpose="quotes that got no e-mail and why (suppressed, holdout, unmatched, converted)",
    ),
    TopicSpec(
        name=DELIVERIES,
        partitions=6,
        cleanup_policy="delete",
        retention_ms=365 * DAY_MS,
        key_schema=None,
        value_schema="esp_delivery_receipt",
        purpose="what the ESP answered for each trigger",
    ),
    TopicSpec(
        name=WATERMARKS,
        partitions=1,
        cleanup_policy="compact",
        retention_ms=-1,
        key_schema=None,
        value_schema="cdc_watermark",
        purpose="per CDC source: its change topic is complete up to a commit time below offsets",
        # The processor reads it as one log, in order: on several partitions it would
        # read part of the watermarks (and never fire, or fire too early).
        fixed_partitions="one ordered log per source",
    ),
    TopicSpec(
        name=DEAD_LETTER,
        partitions=1,
        cleanup_policy="delete",
        retention_ms=30 * DAY_MS,
        key_schema=None,
        value_schema="dead_letter",
        purpose="records a stage gave up on, with the raw bytes and the error",
    ),
)


def by_name(name: str) -> TopicSpec:
    for spec in CATALOGUE:
        if spec.name == name:
            return spec
    known = ", ".join(s.name for s in CATALOGUE)
    raise KeyError(f"no topic {name!r} in the catalogue (known: {known})")


def stream_partitions(configured: int | None) -> int:
    """The processor's partition count: ``topics.partitions`` when set, else the quotes topic's.

    One answer for the worker, its faust app and the benchmark: two counts would route a
    customer's quotes and customer rows to different partitions of the same worker.
    """
    return configured or by_name(QUOTES).partitions


def for_environment(
    replication_factor: int, partitions: int | None = None, prefix: str = ""
) -> tuple[TopicSpec, ...]:
    """The catalogue as this environment should have it (settings.topics).

    ``partitions`` resizes every topic whose count is not part of its contract;
    ``prefix`` (``topics.prefix``) names the topics as every component will look for them.
    """
    return tuple(
        replace(
            spec,
            name=prefixed(prefix, spec.name),
            replication_factor=replication_factor,
            partitions=(
                partitions
                if partitions is not None and spec.fixed_partitions is None
                else spec.partitions
            ),
        )
        for spec in CATALOGUE
    )


@dataclass(frozen=True)
class ActualTopic:
    """What the broker reports for a topic."""

    name: str
    partitions: int
    replication_factor: int
    config: Mapping[str, str]


def drift(spec: TopicSpec, actual: ActualTopic) -> list[str]:
    """Differences between the catalogue and the broker, one readable line each."""
    found = []
    if actual.partitions != spec.partitions and spec.fixed_partitions is not None:
        found.append(
            f"partitions {actual.partitions}, must be {spec.partitions} ({spec.fixed_partitions};"
            f" recreate the topic with {spec.partitions})"
        )
    elif actual.partitions != spec.partitions:
        found.append(f"partitions {actual.partitions}, declared {spec.partitions}")
    if actual.replication_factor != spec.replication_factor:
        found.append(
            f"replication factor {actual.replication_factor}, declared {spec.replication_factor}"
        )
    for key, want in spec.config().items():
        have = actual.config.get(key)
        if have != want:
            found.append(f"{key}={have}, declared {want}")
    return found


#: What a replay's name may hold: it becomes part of two topic names.
REPLAY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")


def replay_topics(catalogue: tuple[TopicSpec, ...], prefix: str,
                  name: str) -> tuple[TopicSpec, TopicSpec]:  # fmt: skip
    """A replay's own triggers and decisions topics, ``quoteflow.replay.<name>.triggers`` and
    ``.decisions``: shaped like the live ones of ``catalogue`` (an environment's, from
    :func:`for_environment`), so a dashboard pointed at them reads them the same way.
    """
    live = {spec.name: spec for spec in catalogue}
    specs = []
    for topic, suffix in ((TRIGGERS, "triggers"), (DECISIONS, "decisions")):
        spec = live[prefixed(prefix, topic)]
        specs.append(replace(spec, name=prefixed(prefix, f"quoteflow.replay.{name}.{suffix}"),
                             purpose=f"replay {name}: {spec.purpose}"))  # fmt: skip
    return specs[0], specs[1]
