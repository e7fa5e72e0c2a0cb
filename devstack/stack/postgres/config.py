"""The cluster's configuration files as text: pure, no I/O.

Our settings go to ``quoteflow.conf``, included last from ``postgresql.conf``
(so they win), and ``pg_hba.conf`` is ours entirely. Both are rewritten on
every ``stack up``, so a changed port takes effect.
"""

from __future__ import annotations

from pathlib import Path

SERVER_CONF = "quoteflow.conf"
INCLUDE_LINE = f"include '{SERVER_CONF}'"

PG_HBA = """\
# Written by quoteflow on every `stack up`; edits are overwritten.
# Trust only on the unix socket, whose directory only the server's OS user (and
# root) can enter; every TCP client, the pipeline included, proves a password.
# TYPE  DATABASE     USER  ADDRESS        METHOD
local   all          all                  trust
local   replication  all                  trust
host    all          all   127.0.0.1/32   scram-sha-256
host    all          all   ::1/128        scram-sha-256
host    replication  all   127.0.0.1/32   scram-sha-256
host    replication  all   ::1/128        scram-sha-256
"""


def quote_conf(value: str) -> str:
    """A string value for postgresql.conf."""
    return "'" + value.replace("'", "''") + "'"


def server_settings(port: int, socket_dir: Path) -> dict[str, str]:
    """What the stack's server needs, as postgresql.conf values."""
    return {
        "listen_addresses": quote_conf("127.0.0.1"),
        "port": str(port),
        "unix_socket_directories": quote_conf(str(socket_dir)),
        # Logical decoding for CDC; slots and senders for several connectors/tests.
        "wal_level": "logical",
        "max_replication_slots": "20",
        "max_wal_senders": "20",
        # An idle or abandoned slot must never fill the disk: past 2GB of WAL
        # the slot is invalidated instead (the connector then re-snapshots).
        "max_slot_wal_keep_size": "2GB",
        "shared_buffers": "128MB",
        # Timestamps in decoded changes and logs do not depend on the host's zone.
        "timezone": quote_conf("UTC"),
        "log_timezone": quote_conf("UTC"),
    }


def render_server_conf(port: int, socket_dir: Path) -> str:
    """The text of ``quoteflow.conf``."""
    return "# Written by quoteflow on every `stack up`; edits are overwritten.\n" + "".join(
        f"{key} = {value}\n" for key, value in server_settings(port, socket_dir).items()
    )


def include_addition(postgresql_conf: str) -> str:
    """What to append to ``postgresql.conf`` so it includes ours last ("" if it does)."""
    if INCLUDE_LINE in postgresql_conf.splitlines():
        return ""
    suffix = "" if not postgresql_conf or postgresql_conf.endswith("\n") else "\n"
    return f"{suffix}# Added by quoteflow; must stay last.\n{INCLUDE_LINE}\n"
