"""What only the cluster's superuser can do: the pipeline role and its databases.

The databases are the CDC sources' (QMS, CRM) and the stack's own (the schema
registry's storage): see :func:`stack_databases`.

Done over the private unix socket (trusted: only the server's OS user and root
can enter its directory). Passwords never appear in SQL text or logs: the role's
password is sent as a SCRAM verifier computed client-side.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import psycopg
from psycopg import sql

from connectors.cdc.sources import CDC_SOURCES
from devstack.stack.base import log_tail_hint
from devstack.stack.postgres.cluster import SUPERUSER
from quoteflow.errors import StackError
from quoteflow.pgerrors import error_gist
from quoteflow.reporting import Reporter
from quoteflow.settings import PostgresSettings, Settings


def stack_databases(settings: Settings) -> list[str]:
    """Every database the local stack's cluster holds, owned by the pipeline role."""
    sources = [source.database(settings.postgres) for source in CDC_SOURCES]
    return list(dict.fromkeys([*sources, settings.postgres.ops_database,
                               settings.stack.registry_database]))


def ensure_role_and_databases(
    pg: PostgresSettings,
    databases: Sequence[str],
    socket_dir: Path,
    port: int,
    *,
    log: Path,
    report: Reporter,
) -> None:
    """Create (or update the password of) the pipeline role; create missing ``databases``."""
    try:
        with psycopg.connect(
            host=str(socket_dir),
            port=port,
            user=SUPERUSER,
            dbname="postgres",
            connect_timeout=pg.connect_timeout_s,
            autocommit=True,
        ) as conn:
            # A SCRAM verifier, not the password: the statement text can end up in
            # the server log (e.g. when it fails), the verifier is safe there.
            verifier = conn.pgconn.encrypt_password(
                pg.password.get_secret_value().encode(), pg.user.encode(), b"scram-sha-256"
            ).decode()
            exists = conn.execute(
                "SELECT 1 FROM pg_roles WHERE rolname = %s", (pg.user,)
            ).fetchone()
            statement = (
                sql.SQL("ALTER ROLE {} WITH LOGIN REPLICATION PASSWORD {}")
                if exists
                else sql.SQL("CREATE ROLE {} WITH LOGIN REPLICATION PASSWORD {}")
            )
            if not exists:
                report(f"PostgreSQL: creating role {pg.user}")
            conn.execute(statement.format(sql.Identifier(pg.user), sql.Literal(verifier)))
            wanted = list(databases)
            present = {
                row[0]
                for row in conn.execute(
                    "SELECT datname FROM pg_database WHERE datname = ANY(%s)", (wanted,)
                )
            }
            for database in wanted:
                if database not in present:
                    report(f"PostgreSQL: creating database {database}")
                    conn.execute(
                        sql.SQL("CREATE DATABASE {} OWNER {}").format(
                            sql.Identifier(database), sql.Identifier(pg.user)
                        )
                    )
    except psycopg.Error as exc:
        raise StackError(
            f"could not set up role {pg.user} and databases over the socket in "
            f"{socket_dir}: {error_gist(exc)}{log_tail_hint(log)}"
        ) from exc
