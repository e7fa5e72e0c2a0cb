"""Snapshot requests and cancellations: the WAL messages `quoteflow snapshot` writes for the CDC.

A request travels as a ``pg_logical_emit_message`` with prefix
:data:`SIGNAL_PREFIX` rather than as a row in a table of the source database:
no table is written on the legacy database, the request is ordered with the
changes, and it waits in the slot when no connector runs. Its content is a
small JSON naming the table, the request's id (what ``--follow`` and
``--cancel`` name, and what the CDC's progress record is keyed by), the
optional ``--where`` predicate, and the replication slot of the CDC it is for:
every slot on the database decodes the message, and a second pipeline (a test
run, a staging CDC with its own ``cdc.slot_prefix``) must not take a backfill
meant for another. A request of an older quoteflow (table only) still parses:
any CDC of the table takes it, with an id of its choosing and no filter.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass

SIGNAL_PREFIX = "quoteflow.signal"

#: Request ids are short hex strings: safe in a file, a log line and a command to paste.
_ID = re.compile(r"^[0-9a-f]{6,32}$")


@dataclass(frozen=True)
class SnapshotRequest:
    """Snapshot ``table`` (schema.table), only the rows matching ``where`` when given."""

    table: str
    request_id: str | None = None  # None: a request of an older quoteflow
    where: str | None = None
    slot: str | None = None  # None: for any CDC of the table


@dataclass(frozen=True)
class CancelRequest:
    """Stop the snapshot ``request_id`` of ``table`` after the chunk in flight."""

    table: str
    request_id: str
    slot: str | None = None


Request = SnapshotRequest | CancelRequest


def new_request_id() -> str:
    return uuid.uuid4().hex[:12]


def valid_request_id(text: str) -> bool:
    return bool(_ID.match(text))


def encode(request: Request) -> str:
    if isinstance(request, CancelRequest):
        body: dict[str, str] = {"cancel": request.request_id, "table": request.table}
    else:
        body = {"snapshot": request.table}
        if request.request_id is not None:
            body["id"] = request.request_id
        if request.where is not None:
            body["where"] = request.where
    if request.slot is not None:
        body["slot"] = request.slot
    return json.dumps(body, separators=(",", ":"))


def parse(content: bytes) -> Request | None:
    """The request a signal message carries, or None (junk, or not one of ours)."""
    try:
        data = json.loads(content)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    slot = data.get("slot")
    if slot is not None and not isinstance(slot, str):
        return None
    if "cancel" in data:
        table, request_id = data.get("table"), data["cancel"]
        if isinstance(table, str) and isinstance(request_id, str):
            return CancelRequest(table, request_id, slot)
        return None
    table, request_id, where = data.get("snapshot"), data.get("id"), data.get("where")
    if not isinstance(table, str):
        return None
    if request_id is not None and not (isinstance(request_id, str) and _ID.match(request_id)):
        return None
    if where is not None and not isinstance(where, str):
        return None
    return SnapshotRequest(table, request_id, where, slot)


def for_slot(request: Request, table: str, slot: str | None) -> bool:
    """Whether the CDC reading ``table`` through ``slot`` takes ``request``."""
    return request.table == table and (request.slot is None or request.slot == slot)
