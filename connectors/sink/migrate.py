"""The ops database's schema, brought up to date at every sink start, idempotently.

Migrations are the numbered ``migrations/NNNN_name.sql`` files, applied in
order, each in its own transaction together with its row in
``sink_schema_migrations``; an advisory lock makes concurrent starts (two sink
processes) take turns instead of racing. A migration once released is never
edited: a change is a new file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import psycopg

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK = "quoteflow.sink.migrations"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations() -> list[Migration]:
    """The packaged migrations, in version order (a gap or a duplicate is a packaging bug)."""
    found = []
    for entry in files("connectors.sink").joinpath("migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"sink migrations must be numbered 1..n without gaps: {versions}")
    return found


def migrate(conn: psycopg.Connection[Any]) -> list[str]:
    """Apply what is missing; return the names applied now ([] when up to date)."""
    applied_now: list[str] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS sink_schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row[0] for row in conn.execute("SELECT version FROM sink_schema_migrations")}
        for migration in migrations():
            if migration.version in done:
                continue
            with conn.transaction():
                conn.execute(migration.sql.encode())
                conn.execute(
                    "INSERT INTO sink_schema_migrations (version, name) VALUES (%s, %s)",
                    (migration.version, migration.name),
                )
            applied_now.append(f"{migration.version:04d}_{migration.name}")
    return applied_now
