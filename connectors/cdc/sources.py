"""The CDC's sources: which table in which database, published how.

The one place that names the captured sources (``qms``, ``crm``): the CDC reads
them, ``stack up`` applies their DDL to the local stack, and its health check and
``quoteflow smoke`` (against the configured, possibly remote, server) ask
:func:`source_problems` whether a source is ready for logical decoding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import psycopg

from quoteflow.settings import PostgresSettings

#: pg_class.relreplident, for the problem report.
_REPLICA_IDENTITY = {"d": "DEFAULT", "n": "NOTHING", "f": "FULL", "i": "INDEX"}


@dataclass(frozen=True)
class CdcSource:
    """One captured table: the database it is in (a setting), its DDL and publication."""

    database_setting: Literal["qms_database", "crm_database"]
    ddl_file: str
    table: str
    publication: str
    #: Debezium's topic.prefix (logical server name): topics are <server_name>.<schema>.<table>
    #: whatever the database is called, and ``quoteflow cdc`` names sources by it.
    server_name: str
    schema: str = "public"

    def database(self, pg: PostgresSettings) -> str:
        """The database name the settings give this source."""
        name: str = getattr(pg, self.database_setting)
        return name

    @property
    def qualified_table(self) -> str:
        return f"{self.schema}.{self.table}"

    @property
    def topic(self) -> str:
        return f"{self.server_name}.{self.schema}.{self.table}"


#: What ``stack up`` creates in each database and what the CDC connector captures.
CDC_SOURCES = (
    CdcSource("qms_database", "qms.sql", "quotes", "quoteflow_qms", "qms"),
    CdcSource("crm_database", "crm.sql", "customers", "quoteflow_crm", "crm"),
)

#: Catalogue lookups only: never touches the table's rows, so it is gentle on a
#: legacy server and safe in a read-only transaction.
_PROBE_SQL = """
SELECT current_setting('wal_level'),
       EXISTS (SELECT 1 FROM pg_publication WHERE pubname = %(publication)s),
       EXISTS (SELECT 1 FROM pg_publication_tables WHERE pubname = %(publication)s
               AND schemaname = %(schema)s AND tablename = %(table)s),
       (SELECT c.relreplident FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %(schema)s AND c.relname = %(table)s AND c.relkind IN ('r', 'p'))
"""


def source_problems(conn: psycopg.Connection[Any], source: CdcSource) -> list[str]:
    """Why ``source`` cannot be captured on ``conn``'s database ([] when it can).

    Checks ``wal_level = logical``, that the table exists and is in its
    publication, and REPLICA IDENTITY FULL (updates and deletes carry the old
    row). One read-only catalogue query; psycopg errors are the caller's.
    """
    params = {"publication": source.publication, "schema": source.schema, "table": source.table}
    row = conn.execute(_PROBE_SQL, params).fetchone()
    if row is None:  # a SELECT without FROM always returns its row
        raise AssertionError("catalogue probe returned no row")
    wal_level, publication_exists, published, identity = row
    table = source.qualified_table
    problems = []
    if wal_level != "logical":
        problems.append(f"wal_level is {wal_level}, not logical")
    if identity is None:
        problems.append(f"table {table} does not exist")
    elif identity != "f":
        problems.append(
            f"table {table} has REPLICA IDENTITY {_REPLICA_IDENTITY.get(identity, identity)},"
            " not FULL (updates and deletes would lack the old row)"
        )
    if not publication_exists:
        problems.append(f"publication {source.publication} does not exist")
    elif identity is not None and not published:
        problems.append(f"table {table} is not in publication {source.publication}")
    return problems
