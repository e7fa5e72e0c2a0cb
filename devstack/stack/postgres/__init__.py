"""The local stack's PostgreSQL: one private cluster holding the QMS and CRM databases.

It stands in for the legacy databases quoteflow captures, so it is set up the way
a CDC source must be (``wal_level = logical``, publications, REPLICA IDENTITY
FULL) and never touches another PostgreSQL on the machine: its own data
directory under ``stack.home``, its own port, its own socket directory, and it
only ever stops the postmaster named in its own ``postmaster.pid``.

- ``binaries``: finding (and, as root, installing) the server tools;
- ``config``: the configuration files' text (pure);
- ``cluster``: the data and socket directories, their owners, initdb and pg_ctl;
- ``roles``: the pipeline role and databases, as superuser over the socket;
- ``schema``: the CDC source contract (:data:`CDC_SOURCES`), the DDL, and
  :func:`source_problems`, the read-only check ``smoke`` runs too;
- ``component``: :class:`PostgresComponent`, the stack's Component.

The constants are re-exported for reading; to change one in a test, patch the
module that defines it (e.g. ``binaries.LIB_ROOT``).
"""

from devstack.stack.postgres.binaries import (
    CREATECLUSTER_CONF,
    LIB_ROOT,
    MIN_MAJOR,
    TOOLS,
    PgBinaries,
    find_binaries,
)
from devstack.stack.postgres.cluster import PG_OS_USER, SUPERUSER, first_blocked_dir
from devstack.stack.postgres.component import PostgresComponent
from devstack.stack.postgres.schema import apply_schema, ddl, local_conninfo

__all__ = [
    "CREATECLUSTER_CONF",
    "LIB_ROOT",
    "MIN_MAJOR",
    "PG_OS_USER",
    "SUPERUSER",
    "TOOLS",
    "PgBinaries",
    "PostgresComponent",
    "apply_schema",
    "ddl",
    "find_binaries",
    "first_blocked_dir",
    "local_conninfo",
]
