"""A logical replication stream over psycopg's libpq layer (COPY BOTH).

psycopg 3's high-level API has no replication support, but ``psycopg.pq``
exposes libpq itself: a connection opened with ``replication=database``
accepts ``START_REPLICATION``, enters COPY BOTH, and then yields the server's
CopyData messages (:func:`connectors.cdc.pgoutput.parse_copy_message`) and
takes ours (standby status updates). The server pushes changes as they
commit: no polling, and no re-decoding of WAL on every call the way
``pg_logical_slot_peek_binary_changes`` does while a long transaction is open.
"""

from __future__ import annotations

import select
import time

from psycopg import pq
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.pq.abc import PGconn

from connectors.cdc.pgoutput import format_lsn
from connectors.cdc.values import SESSION_OPTIONS
from connectors.errors import CdcError


def _gist(pgconn: PGconn) -> str:
    lines = [
        line.strip()
        for line in pgconn.error_message.decode(errors="replace").splitlines()
        if line.strip()
    ]
    return lines[-1] if lines else "connection failed"


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class ReplicationConnection:
    """One walsender session streaming one slot."""

    def __init__(self, conninfo: str) -> None:
        params = conninfo_to_dict(conninfo)
        params.update(replication="database", options=SESSION_OPTIONS)
        self._pg = pq.PGconn.connect(make_conninfo(**params).encode())  # type: ignore[arg-type]
        if self._pg.status != pq.ConnStatus.OK:
            message = _gist(self._pg)
            self._pg.finish()
            raise CdcError(f"cannot open a replication connection: {message}")

    def start(self, slot: str, publication: str, lsn: int = 0) -> None:
        """START_REPLICATION; ``lsn`` 0 resumes at the slot's confirmed position."""
        # messages: pg_logical_emit_message records (snapshot watermarks and signals).
        options = (
            f"proto_version '1', publication_names '{publication.replace(chr(39), chr(39) * 2)}',"
            " messages 'true'"
        )
        command = f"START_REPLICATION SLOT {_quote_ident(slot)} LOGICAL {format_lsn(lsn)}"
        self._pg.send_query(f"{command} ({options})".encode())
        result = self._pg.get_result()
        if result is None or result.status != pq.ExecStatus.COPY_BOTH:
            message = (
                result.error_message.decode(errors="replace").strip()
                if result is not None
                else _gist(self._pg)
            )
            raise CdcError(f"START_REPLICATION on slot {slot} failed: {message}")

    def read(self, timeout_s: float) -> memoryview | None:
        """The next CopyData message, or None if no whole one arrived within ``timeout_s``.

        A large message can arrive in several socket reads: libpq then holds a
        part of it and ``get_copy_data`` says "nothing yet" until the rest is in,
        so this waits for more input until the deadline, not just once.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            size, data = self._pg.get_copy_data(1)
            if size > 0:
                return data
            if size == -1:
                result = self._pg.get_result()
                detail = (
                    result.error_message.decode(errors="replace").strip()
                    if result is not None
                    else ""
                )
                raise CdcError(f"the server ended the replication stream: {detail or 'no reason'}")
            if size == -2:
                raise CdcError(f"replication stream failed: {_gist(self._pg)}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([self._pg.socket], [], [], remaining)
            if not ready:
                return None
            self._pg.consume_input()

    def send(self, message: bytes) -> None:
        if self._pg.put_copy_data(message) != 1 or self._pg.flush() != 0:
            raise CdcError(f"cannot send a status update: {_gist(self._pg)}")

    def close(self) -> None:
        self._pg.finish()
