"""PostgreSQL errors as one line a person can act on.

The CDC, the sink's ledger and the local stack all talk to PostgreSQL through
psycopg, whose messages carry libpq's context lines; a log line or CLI error
wants only the server's verdict.
"""

from __future__ import annotations

import psycopg


def error_gist(exc: psycopg.Error) -> str:
    """A psycopg error's gist: its last line (libpq puts the server's FATAL there)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


def error_primary(exc: psycopg.Error) -> str:
    """The server's own message without libpq's LINE/caret context: for errors in SQL a
    person typed, whose gist would otherwise be the caret line."""
    return exc.diag.message_primary or error_gist(exc)
