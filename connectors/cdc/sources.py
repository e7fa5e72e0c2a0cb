"""The CDC's sources: which table in which database, with which columns, published how.

The one place that names the captured sources (``qms``, ``crm``): the CDC
reads them, ``stack up`` applies their DDL to the local stack (whose SQL files
a test holds to the columns here), and its health check and ``quoteflow smoke``
(against the configured, possibly remote, server) ask :func:`source_problems`
whether a source is ready for logical decoding.

The kernel's settings may not import this room, so they spell the names once
more (``CdcSourceName``, ``postgres.qms_database``/``crm_database``); a test
(tests/test_quoteflow/test_source_names.py) holds them, and the CLI's choices, to
:data:`CDC_SOURCES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import psycopg

    from quoteflow.settings import PostgresSettings

#: pg_class.relreplident, for the problem report.
_REPLICA_IDENTITY = {"d": "DEFAULT", "n": "NOTHING", "f": "FULL", "i": "INDEX"}


@dataclass(frozen=True)
class Column:
    """One column of a captured table, as its DDL declares it.

    The columns are a contract: the Avro change-event schema mirrors them, and
    Debezium-layout events carry exactly these fields.
    """

    name: str
    #: The PostgreSQL type as the DDL spells it (``bigint``, ``numeric(12,2)``, ``timestamptz``).
    type: str
    nullable: bool


@dataclass(frozen=True)
class CdcSource:
    """One captured table: the database it is in (a setting), its DDL and publication."""

    #: The PostgresSettings field holding the database's name: ``<server_name>_database``.
    database_setting: Literal["qms_database", "crm_database"]
    ddl_file: str
    table: str
    publication: str
    #: Debezium's topic.prefix (logical server name): topics are <server_name>.<schema>.<table>
    #: whatever the database is called, and ``quoteflow cdc`` names sources by it.
    server_name: str
    schema: str = "public"
    #: The primary key's column(s), in key order; empty for ad-hoc tables of tests.
    key: tuple[str, ...] = ()
    #: Every column in table order; empty for ad-hoc tables of tests.
    columns: tuple[Column, ...] = ()

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


def _columns(*spec: tuple[str, str, bool]) -> tuple[Column, ...]:
    return tuple(Column(name, type_, nullable) for name, type_, nullable in spec)


_NULL, _NOT_NULL = True, False

#: The QMS quotes table (devstack/stack/sql/qms.sql creates it on the local stack).
QMS = CdcSource(
    "qms_database",
    "qms.sql",
    "quotes",
    "quoteflow_qms",
    "qms",
    key=("quote_id",),
    columns=_columns(
        ("quote_id", "bigint", _NOT_NULL),
        ("quote_ref", "text", _NOT_NULL),
        ("customer_id", "bigint", _NOT_NULL),
        ("product_code", "text", _NOT_NULL),
        ("channel", "text", _NOT_NULL),
        ("premium", "numeric(12,2)", _NOT_NULL),
        ("currency", "char(3)", _NOT_NULL),
        ("status", "text", _NOT_NULL),
        ("valid_until", "date", _NOT_NULL),
        ("created_at", "timestamptz", _NOT_NULL),
        ("updated_at", "timestamptz", _NOT_NULL),
    ),
)

#: The CRM customers table (devstack/stack/sql/crm.sql creates it on the local stack).
CRM = CdcSource(
    "crm_database",
    "crm.sql",
    "customers",
    "quoteflow_crm",
    "crm",
    key=("customer_id",),
    columns=_columns(
        ("customer_id", "bigint", _NOT_NULL),
        ("first_name", "text", _NOT_NULL),
        ("last_name", "text", _NOT_NULL),
        ("email", "text", _NULL),
        ("phone", "text", _NULL),
        ("marketing_consent", "boolean", _NOT_NULL),
        ("consent_updated_at", "timestamptz", _NULL),
        ("timezone", "text", _NOT_NULL),
        ("segment", "text", _NULL),
        ("created_at", "timestamptz", _NOT_NULL),
        ("updated_at", "timestamptz", _NOT_NULL),
    ),
)

#: What ``stack up`` creates in each database and what the CDC connector captures.
CDC_SOURCES = (QMS, CRM)

#: The sources' server names in CDC_SOURCES order: the settings' and the CLI's choices.
SOURCE_NAMES: tuple[str, ...] = tuple(source.server_name for source in CDC_SOURCES)


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


def slot_name(slot_prefix: str, server_name: str) -> str:
    """A source's replication slot: ``<cdc.slot_prefix>_<source>`` (the stream's, the lag's)."""
    return f"{slot_prefix}_{server_name}"
