"""The CDC sources' tables in the local stack: their DDL, applied by ``stack up``.

Which tables are captured, with which key and columns, and how, is the CDC's
(``connectors.cdc.sources``); this module only creates them on the development
server, from the SQL files docker-compose.yml mounts too. The files stay
hand-written (constraints, indexes, the updated_at trigger, the publication);
tests/test_stack/test_source_ddl.py holds their tables to the sources'.
"""

from __future__ import annotations

from importlib.resources import files

import psycopg

from connectors.cdc.sources import CDC_SOURCES
from quoteflow.errors import StackError
from quoteflow.pgerrors import error_gist
from quoteflow.reporting import Reporter, silent
from quoteflow.settings import LOCAL_HOST, Settings


def ddl(name: str) -> str:
    """The text of one of the packaged DDL files (``qms.sql``, ``crm.sql``)."""
    return (files("devstack.stack") / "sql" / name).read_text(encoding="utf-8")


def local_conninfo(settings: Settings, database: str) -> str:
    """Conninfo for the local stack's ``database`` as the pipeline role, over TCP.

    The local stack is always 127.0.0.1:<stack.postgres_port>, even when
    ``postgres.host`` points the pipeline at a real legacy server: stack
    commands must never run DDL there.
    """
    local = settings.postgres.model_copy(
        update={"host": LOCAL_HOST, "port": settings.stack.postgres_port}
    )
    return local.conninfo(database)


def apply_schema(settings: Settings, report: Reporter = silent) -> None:
    """Create (or complete) the QMS and CRM tables and publications in the local stack.

    Runs as the pipeline role so it owns the tables, which CREATE PUBLICATION
    requires. Each file runs in one transaction under an advisory lock, so two
    concurrent callers cannot trip over each other and a failure leaves nothing
    half-applied. Idempotent.
    """
    for source in CDC_SOURCES:
        database = source.database(settings.postgres)
        report(f"PostgreSQL: applying {source.ddl_file} to database {database}")
        try:
            with psycopg.connect(local_conninfo(settings, database)) as conn:
                conn.execute("SELECT pg_advisory_xact_lock(hashtext('devstack.stack.schema'))")
                conn.execute(ddl(source.ddl_file).encode())
        except psycopg.Error as exc:
            raise StackError(
                f"could not create table {source.table} in database {database} as role "
                f"{settings.postgres.user}: {error_gist(exc)}"
            ) from exc
