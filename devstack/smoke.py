"""A smoke round trip through the real components, without touching pipeline data.

Checks that the CDC sources are set up for logical decoding (read-only queries),
that every catalogue topic exists as declared, that the Schema Registry holds
every subject as the repository has it, then sends one example record of
every topic's key and value schema through the broker and back — in a Kafka
transaction, read with ``read_committed`` — on a scratch topic that is deleted
afterwards. Records are encoded for their real topic (so a Schema Registry sees
the real subjects) but never written to it: a smoke test must not make a
processor e-mail a made-up customer.
"""

from __future__ import annotations

import time
import uuid
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from quoteflow.errors import QuoteflowError
from quoteflow.reporting import Reporter
from quoteflow.settings import Settings
from quoteflow.topics.catalog import CATALOGUE, TopicSpec
from quoteflow.topics.readback import read_partition

if TYPE_CHECKING:
    from schemas.serde import Serde

SCRATCH_PREFIX = "devstack.smoke."


@dataclass(frozen=True)
class Check:
    """One line of the smoke report."""

    name: str
    ok: bool
    detail: str
    seconds: float


def run_smoke(settings: Settings, report: Reporter) -> list[Check]:
    """Run every check, carrying on after a failure so the report is complete."""
    checks: list[Check] = []
    for name, step in (
        ("postgres: CDC sources", _check_postgres),
        ("kafka: catalogue topics", _check_topics),
        ("registry: subjects", _check_subjects),
        ("kafka: schema round trip", _round_trip),
    ):
        start = time.monotonic()
        try:
            ok, detail = step(settings, report)
        except QuoteflowError as exc:
            ok, detail = False, str(exc)
        checks.append(Check(name, ok, detail, time.monotonic() - start))
        report(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")
    return checks


def _check_postgres(settings: Settings, report: Reporter) -> tuple[bool, str]:
    """The configured (possibly remote) server's CDC sources, by catalogue queries only."""
    import psycopg

    from connectors.cdc.sources import CDC_SOURCES, source_problems
    from quoteflow.pgerrors import error_gist

    pg = settings.postgres
    found = []
    problems = []
    for source in CDC_SOURCES:
        database = source.database(pg)
        report(f"postgres: checking {database}.{source.table} at {pg.host}:{pg.port}")
        try:
            with psycopg.connect(pg.conninfo(database)) as conn:
                conn.read_only = True  # BEGIN READ ONLY: a check must never write
                problems += [f"{database}: {p}" for p in source_problems(conn, source)]
        except psycopg.Error as exc:
            problems.append(f"{database}: {error_gist(exc)}")
            continue
        found.append(f"{database}.{source.table}")
    if problems:
        return False, "; ".join(problems)
    return True, "wal_level=logical; published, REPLICA IDENTITY FULL: " + ", ".join(found)


def _check_topics(settings: Settings, report: Reporter) -> tuple[bool, str]:
    from quoteflow.topics.admin import TopicAdmin

    report(f"kafka: comparing the topic catalogue with {settings.kafka.bootstrap_servers}")
    reports = TopicAdmin(settings).report()
    bad = [f"{r.spec.name} {r.state}" for r in reports if r.state != "ok"]
    if bad:
        return False, "; ".join(bad) + " (run `quoteflow topics create`)"
    return True, f"{len(reports)} topics as declared"


def _check_subjects(settings: Settings, report: Reporter) -> tuple[bool, str]:
    """Every subject registered as in the repository (what producers will look up)."""
    registry = settings.schema_registry
    if registry.url is None:
        return True, "embedded mode: no registry to check"
    from schemas.subjects.admin import SubjectAdmin

    report(f"registry: comparing subjects with {registry.url}")
    with SubjectAdmin(settings) as admin:
        comparisons = admin.compare()
    bad = [f"{c.subject.name} {c.state}" for c in comparisons if c.state != "ok"]
    if bad:
        return False, "; ".join(bad) + " (run `quoteflow schemas register`)"
    return True, f"{len(comparisons)} subjects as in the repository, BACKWARD_TRANSITIVE"


@dataclass(frozen=True)
class _Sample:
    spec: TopicSpec
    key: Any  # the example key (a dict for Avro keys, a str for string keys)
    value: dict[str, Any]
    key_bytes: bytes
    value_bytes: bytes


def _round_trip(settings: Settings, report: Reporter) -> tuple[bool, str]:
    from schemas.serde import serde_from_settings

    serde = serde_from_settings(settings.schema_registry)
    try:
        return _round_trip_with(settings, serde, report)
    finally:
        serde.close()


def _round_trip_with(settings: Settings, serde: Serde, report: Reporter) -> tuple[bool, str]:
    from schemas.errors import SerdeError
    from schemas.examples import example

    samples = []
    for spec in CATALOGUE:
        value = example(spec.value_schema)
        if spec.key_schema is None:
            key: Any = f"smoke-{spec.value_schema}"
            key_bytes = key.encode()
        else:
            key = example(spec.key_schema)
            key_bytes = serde.encode(spec.key_schema, key, topic=spec.name, is_key=True)
        value_bytes = serde.encode(spec.value_schema, value, topic=spec.name)
        samples.append(_Sample(spec, key, value, key_bytes, value_bytes))

    from quoteflow.topics.admin import TopicAdmin

    wire_format = _wire_format(samples)
    with TopicAdmin(settings).scratch(SCRATCH_PREFIX) as topic:
        report(
            f"kafka: producing {len(samples)} records in one transaction to {topic}"
            f" ({wire_format})"
        )
        _produce_transaction(settings, topic, [(s.key_bytes, s.value_bytes) for s in samples])
        received = read_partition(
            settings.kafka.as_librdkafka_dict(), topic, want=len(samples)
        )
    if len(received) != len(samples):
        return False, f"sent {len(samples)} records, read back {len(received)}"
    mismatches = []
    for sample, message in zip(samples, received, strict=True):
        spec = sample.spec
        key_bytes, value_bytes = message.key() or b"", message.value() or b""
        try:
            value = serde.decode(spec.value_schema, value_bytes, topic=spec.name)
            if spec.key_schema is None:
                key = key_bytes.decode()
            else:
                key = serde.decode(spec.key_schema, key_bytes, topic=spec.name, is_key=True)
        except SerdeError as exc:
            mismatches.append(f"{spec.name} ({exc})")
            continue
        if value != sample.value or key != sample.key:
            mismatches.append(spec.name)
    if mismatches:
        return False, "decoded records differ for " + ", ".join(mismatches)
    total = sum(len(s.key_bytes) + len(s.value_bytes) for s in samples)
    schemas = {s.spec.value_schema for s in samples} | {
        s.spec.key_schema for s in samples if s.spec.key_schema
    }
    return True, (
        f"{len(samples)} topics, {len(schemas)} schemas, {total} bytes, {wire_format},"
        " read_committed"
    )


def _wire_format(samples: list[_Sample]) -> str:
    """The framing the Avro records really have, read off their bytes (not the settings)."""
    from schemas.framing import confluent_schema_id, detect_format

    avro = [s.value_bytes for s in samples] + [
        s.key_bytes for s in samples if s.spec.key_schema is not None
    ]
    formats = {detect_format(data) for data in avro}
    if formats == {"confluent"}:
        ids = sorted({confluent_schema_id(data) for data in avro})
        return f"Confluent wire format, schema ids {', '.join(map(str, ids))}"
    if formats == {"single-object"}:
        return "Avro single-object encoding"
    raise QuoteflowError(f"the serde wrote mixed or unknown framings: {sorted(formats)}")


def _produce_transaction(
    settings: Settings, topic: str, records: list[tuple[bytes, bytes]]
) -> None:
    from confluent_kafka import KafkaException, Producer

    from quoteflow.errors import TopicError

    producer = Producer(
        {**settings.kafka.as_librdkafka_dict(), "transactional.id": f"smoke-{uuid.uuid4()}"}
    )
    try:
        producer.init_transactions(30)
        producer.begin_transaction()
    except KafkaException as exc:
        raise TopicError(f"cannot start a transaction on {topic}: {exc}") from exc
    try:
        for key, value in records:
            producer.produce(topic, key=key, value=value)
        producer.commit_transaction(30)
    except KafkaException as exc:
        with suppress(KafkaException):
            producer.abort_transaction(10)
        raise TopicError(f"transactional produce to {topic} failed: {exc}") from exc
