"""A real ``TRUNCATE`` of a customers table reaches the compacted topic (issue 15 item 11).

The CRM database is shared by every test, so the table truncated is a scratch
copy of ``public.customers`` (same columns and key) in a schema and publication
of its own, captured by the connector itself (``ChangeStream``) with the
customers topic's schemas into a scratch *compacted* topic: the broker refuses
a keyless record there, so this also proves the reserved key is what lets the
truncate through.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from connectors.cdc.events import RESERVED_KEY_VALUE
from connectors.cdc.sources import CdcSource
from quoteflow.settings import Settings
from quoteflow.topics.admin import TopicAdmin
from quoteflow.topics.catalog import TopicSpec
from tests.helpers import delete_subjects

from .conftest import read_new, streaming

pytestmark = pytest.mark.integration


@pytest.fixture
def scratch_customers(cdc_settings: Settings) -> Iterator[CdcSource]:
    """A copy of public.customers in a schema of its own, with its own publication."""
    name = f"quoteflow_trunc_{uuid.uuid4().hex[:8]}"
    schema, publication = sql.Identifier(name), sql.Identifier(name)
    with psycopg.connect(cdc_settings.postgres.conninfo("crm"), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(schema))
        conn.execute(sql.SQL("CREATE TABLE {}.customers (LIKE public.customers INCLUDING ALL)")
                     .format(schema))  # fmt: skip
        conn.execute(sql.SQL("ALTER TABLE {}.customers REPLICA IDENTITY FULL").format(schema))
        conn.execute(sql.SQL("CREATE PUBLICATION {} FOR TABLE {}.customers")
                     .format(publication, schema))  # fmt: skip
        try:
            yield CdcSource("crm_database", "crm.sql", "customers", name, "crm", schema=name)
        finally:
            conn.execute(sql.SQL("DROP PUBLICATION IF EXISTS {}").format(publication))
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(schema))


def _settings(cdc_settings: Settings) -> Settings:
    """Allowed to register the scratch topic's subjects; no heartbeats (they would go to
    the real watermark topic)."""
    return cdc_settings.model_copy(update={
        "schema_registry": cdc_settings.schema_registry.model_copy(update={"auto_register": True}),
        "cdc": cdc_settings.cdc.model_copy(update={"heartbeat_interval_s": None}),
    })  # fmt: skip


def test_a_customers_truncate_is_published_under_the_reserved_key(
    cdc_settings: Settings, scratch_customers: CdcSource
) -> None:
    settings = _settings(cdc_settings)
    table = sql.SQL("{}.customers").format(sql.Identifier(scratch_customers.schema))
    with TopicAdmin(settings).scratch("quoteflow.test.truncate.",
                                      config={"cleanup.policy": "compact"}) as topic:  # fmt: skip
        spec = TopicSpec(
            name=topic, partitions=1, cleanup_policy="compact", retention_ms=-1,
            key_schema="crm_customer_key", value_schema="crm_customer_envelope",
            purpose="truncate tests",
        )  # fmt: skip
        try:
            with (
                streaming(settings, "crm", source=scratch_customers, topic=topic,
                          catalogue=[spec]) as running,
                psycopg.connect(settings.postgres.conninfo("crm"), autocommit=True) as conn,
            ):  # fmt: skip
                conn.execute(sql.SQL("INSERT INTO {} (first_name, last_name) VALUES"
                                     " ('Ada', 'Lovelace')").format(table))  # fmt: skip
                conn.execute(sql.SQL("TRUNCATE {}").format(table))
                records = read_new(
                    settings, topic, {0: 0}, until=lambda rs: len(rs) >= 2,
                    key_schema="crm_customer_key", value_schema="crm_customer_envelope",
                )  # fmt: skip
            running.finish()
        finally:
            delete_subjects(settings, topic)
    inserted, truncated = records[:2]
    assert inserted.value is not None and inserted.value["op"] == "c"
    assert truncated.key == {"customer_id": RESERVED_KEY_VALUE}
    value: dict[str, Any] | None = truncated.value
    assert value is not None and value["op"] == "t"
    assert value["before"] is None and value["after"] is None
    # Ordered after the insert it removes: the core compares exactly these positions.
    assert value["source"]["lsn"] > inserted.value["source"]["lsn"]
    assert value["source"]["table"] == "customers"
    assert running.stream.stats.skipped_truncates == 0
