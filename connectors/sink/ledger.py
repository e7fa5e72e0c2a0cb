"""The delivery ledger in the ops database: the durable memory of what was sent.

Every statement is one round trip over a batch (``unnest`` of arrays), made by
the dispatcher's one thread, each atomic on its own (autocommit): a claim
before the requests leave, the outcomes before the offsets are committed.

Effect-once is keyed by the **quote**: at most one offer row per quote (any state
but ``duplicate``), whatever its trigger id; a later trigger for the quote is
recorded as a ``duplicate`` of the offer and never sent. A pending claim carries
its ``owner`` (one sink process) and ``epoch`` (the ownership epoch of the
partition it was read from): only that owner and epoch release it, record its
outcome or hand it over, so a sink that lost its partitions cannot delete or
overwrite a claim the partition's next owner has taken over.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import TupleRow

from connectors.errors import SinkError
from connectors.sink.migrate import migrate
from quoteflow.pgerrors import error_gist

State = Literal["pending", "sent", "rejected", "failed", "ambiguous", "expired", "duplicate"]
FinalState = Literal["sent", "rejected", "failed", "ambiguous", "expired"]
#: A claim whose conflicting row vanished before it could be read (a release, a person's
#: resend or re-offer in between) is claimed again, at most this many times.
_CLAIM_ROUNDS = 20


@dataclass(frozen=True, slots=True)
class Claim:
    """The intent to send one trigger, written before any request for it leaves."""

    trigger_id: str
    provider: str
    customer_id: int
    request_id: uuid.UUID
    dedupe_id: str | None
    topic: str
    partition: int
    offset: int
    #: The quote: at most one offer per quote. None only for a trigger without one.
    quote_id: int | None = None
    #: The ownership epoch of ``partition`` when it was read (:meth:`Ledger.assign`).
    epoch: int = 0


@dataclass(frozen=True, slots=True)
class Entry:
    """A ledger row as found: what happened to a trigger before."""

    trigger_id: str
    provider: str
    customer_id: int
    state: State
    request_id: uuid.UUID
    dedupe_id: str | None
    attempts: int
    http_status: int | None
    esp_message_id: str | None
    error: str | None
    topic: str
    partition: int
    offset: int
    claimed_at: datetime
    first_attempt_at: datetime | None
    completed_at: datetime | None
    receipt_at: datetime | None
    resolution: str | None
    quote_id: int | None = None
    duplicate_of: str | None = None
    owner: str | None = None
    epoch: int = 0
    late_outcome: dict[str, Any] | None = None

    def read_at(self, topic: str, partition: int, offset: int) -> bool:
        """Whether this entry was written for the record at that position."""
        return (self.topic, self.partition, self.offset) == (topic, partition, offset)

    def redelivered_at(self, topic: str, partition: int, offset: int) -> bool:
        """The same record read again before its receipt was committed (a crash between
        the ledger write and the Kafka commit): its receipt is still owed."""
        return self.receipt_at is None and self.read_at(topic, partition, offset)


@dataclass(frozen=True, slots=True)
class Final:
    """The outcome of one trigger, recorded once."""

    trigger_id: str
    state: FinalState
    attempts: int
    http_status: int | None
    esp_message_id: str | None
    error: str | None
    first_attempt_at: datetime | None
    completed_at: datetime
    #: The claim this outcome is for: its epoch fences the write, and a sent trigger
    #: whose row a person removed meanwhile is written back from it.
    claim: Claim | None = None


_SELECT = """
SELECT trigger_id, provider, customer_id, state, request_id, dedupe_id, attempts, http_status,
       esp_message_id, error, source_topic, source_partition, source_offset, claimed_at,
       first_attempt_at, completed_at, receipt_at, resolution, quote_id, duplicate_of, owner,
       epoch, late_outcome
FROM sink_deliveries
"""
_BY_IDS = _SELECT + "WHERE trigger_id = ANY(%s)"
_OFFERS = _SELECT + "WHERE quote_id = ANY(%s) AND state <> 'duplicate'"
_OPEN = _SELECT + "WHERE state = %s AND resolution IS NULL ORDER BY claimed_at LIMIT %s"

# One JSON document per batch: json.dumps runs in C, where psycopg would adapt every
# element of eight arrays in Python (the dispatcher thread's time is the sink's ceiling).
#: A sink (an owner) claims only in the current ownership epoch of the record's
#: partition: one that lost the partition and does not know it yet is fenced off.
_CURRENT = """(x.o IS NULL OR EXISTS (
    SELECT 1 FROM sink_partition_epochs e WHERE e.group_id = x.g AND e.topic = x.st
    AND e.partition = x.sp AND e.epoch = x.ep AND e.owner = x.o))"""

_STALE = "".join((
    "SELECT x.t FROM jsonb_to_recordset(%s::jsonb) AS x(t text, st text, sp int, ep bigint,",
    " o text, g text) WHERE NOT ", _CURRENT,
))

# A conflict on either unique key (the trigger id, or the quote's one offer) claims
# nothing: the caller looks at what is there.
_CLAIM = """
INSERT INTO sink_deliveries (trigger_id, provider, customer_id, state, request_id, dedupe_id,
                             source_topic, source_partition, source_offset, quote_id, owner,
                             epoch)
SELECT t, p, c, 'pending', r, d, st, sp, so, q, o, ep
FROM jsonb_to_recordset(%s::jsonb)
     AS x(t text, p text, c bigint, r uuid, d text, st text, sp int, so bigint, q bigint,
          o text, ep bigint, g text)
WHERE """ + _CURRENT + """
ON CONFLICT DO NOTHING
RETURNING 'claimed'::text, trigger_id
"""

# Only the claim's own owner and epoch write its outcome: a claim taken over by another
# sink (or whose row is gone) matches nothing here, and the caller is told which. An
# "ambiguous" of the new holder does not hide a late "sent" its previous holder left.
_RECORD = """
UPDATE sink_deliveries AS d
SET state = CASE WHEN x.s = 'ambiguous' AND d.late_outcome->>'state' = 'sent' THEN 'sent'
                 ELSE x.s END,
    attempts = x.a, http_status = x.h, error = x.e, first_attempt_at = x.f, completed_at = x.c,
    esp_message_id = CASE WHEN x.s = 'ambiguous' AND d.late_outcome->>'state' = 'sent'
                          THEN d.late_outcome->>'esp_message_id' ELSE x.m END,
    resolution = CASE WHEN x.s = 'ambiguous' AND d.late_outcome->>'state' = 'sent'
                      THEN 'sent' ELSE d.resolution END
FROM jsonb_to_recordset(%s::jsonb)
     AS x(t text, s text, a int, h int, m text, e text, f timestamptz, c timestamptz, o text,
          ep bigint)
WHERE d.trigger_id = x.t AND d.state = 'pending' AND d.owner IS NOT DISTINCT FROM x.o
  AND d.epoch = x.ep
RETURNING 'recorded'::text, d.trigger_id
"""

#: Outcomes and the next claims in one round trip (a dispatcher turn usually has both):
#: data-modifying WITH clauses always run to completion, referenced or not.
_RECORD_AND_CLAIM = "".join((
    "WITH recorded AS (", _RECORD.strip(), "), claimed AS (", _CLAIM.strip(), ")\n",
    "SELECT * FROM recorded UNION ALL SELECT * FROM claimed",
))

# A trigger for a quote that already has its offer: recorded (never sent), naming the offer.
_DUPLICATE = """
INSERT INTO sink_deliveries (trigger_id, provider, customer_id, state, request_id, dedupe_id,
                             source_topic, source_partition, source_offset, quote_id, owner,
                             epoch, duplicate_of, error, attempts, completed_at)
SELECT t, p, c, 'duplicate', r, d, st, sp, so, q, o, ep, dup, err, 0, now()
FROM jsonb_to_recordset(%s::jsonb)
     AS x(t text, p text, c bigint, r uuid, d text, st text, sp int, so bigint, q bigint,
          o text, ep bigint, dup text, err text)
ON CONFLICT (trigger_id) DO NOTHING
RETURNING trigger_id
"""

# The outcome of a claim taken over by another sink: kept in late_outcome, never dropped.
# A late "sent" settles a row the new owner could only hold as ambiguous; a sent (or
# maybe sent) trigger whose row is gone (a person's resend meanwhile) is written back.
_LATE = """
WITH x AS (
    SELECT * FROM jsonb_to_recordset(%s::jsonb)
        AS x(t text, s text, a int, h int, m text, e text, f timestamptz, c timestamptz,
             o text, ep bigint, p text, cu bigint, r uuid, d text, st text, sp int, so bigint,
             q bigint)
), kept AS (
    UPDATE sink_deliveries AS d
    SET late_outcome = jsonb_build_object('state', x.s, 'owner', x.o, 'epoch', x.ep,
                                          'http_status', x.h, 'esp_message_id', x.m,
                                          'error', x.e, 'completed_at', x.c),
        state = CASE WHEN d.state = 'ambiguous' AND x.s = 'sent' THEN 'sent' ELSE d.state END,
        esp_message_id = CASE WHEN d.state = 'ambiguous' AND x.s = 'sent' THEN x.m
                              ELSE d.esp_message_id END,
        http_status = CASE WHEN d.state = 'ambiguous' AND x.s = 'sent' THEN x.h
                           ELSE d.http_status END,
        resolution = CASE WHEN d.state = 'ambiguous' AND x.s = 'sent' THEN 'sent'
                          ELSE d.resolution END,
        resolved_at = CASE WHEN d.state = 'ambiguous' AND x.s = 'sent' THEN now()
                           ELSE d.resolved_at END,
        resolved_by = CASE WHEN d.state = 'ambiguous' AND x.s = 'sent'
                           THEN 'late outcome of ' || coalesce(x.o, 'a sink')
                           ELSE d.resolved_by END
    FROM x WHERE d.trigger_id = x.t
    RETURNING d.trigger_id
), restored AS (
    INSERT INTO sink_deliveries (trigger_id, provider, customer_id, state, request_id,
                                 dedupe_id, source_topic, source_partition, source_offset,
                                 quote_id, owner, epoch, attempts, http_status, esp_message_id,
                                 error, first_attempt_at, completed_at)
    SELECT x.t, x.p, x.cu, x.s, x.r, x.d, x.st, x.sp, x.so, x.q, x.o, x.ep, x.a, x.h, x.m,
           x.e, x.f, x.c
    FROM x WHERE x.s IN ('sent', 'ambiguous') AND x.p IS NOT NULL
             AND x.t NOT IN (SELECT trigger_id FROM kept)
    ON CONFLICT DO NOTHING
    RETURNING trigger_id
)
SELECT 'kept'::text, trigger_id FROM kept
UNION ALL SELECT 'restored'::text, trigger_id FROM restored
"""


def _final_rows(finals: Sequence[Final], owner: str | None) -> str:
    return json.dumps([
        {"t": f.trigger_id, "s": f.state, "a": f.attempts, "h": f.http_status,
         "m": f.esp_message_id, "e": f.error,
         "f": f.first_attempt_at.isoformat() if f.first_attempt_at else None,
         "c": f.completed_at.isoformat(), "o": owner,
         "ep": f.claim.epoch if f.claim else 0}
        for f in finals
    ])  # fmt: skip


def _claim_row(c: Claim, owner: str | None, group: str | None = None) -> dict[str, Any]:
    return {"t": c.trigger_id, "p": c.provider, "c": c.customer_id, "r": str(c.request_id),
            "d": c.dedupe_id, "st": c.topic, "sp": c.partition, "so": c.offset,
            "q": c.quote_id, "o": owner, "ep": c.epoch, "g": group}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Late:
    """Outcomes whose claim was no longer this sink's when they were recorded."""

    #: Kept on the row that another sink (or a person) now holds (``late_outcome``).
    kept: list[str]
    #: Written back: the trigger was (maybe) sent and its row was gone.
    restored: list[str]
    #: Neither: nothing to keep them on (not sent, row gone). Logged by the caller.
    dropped: list[str]


class Ledger:
    """One connection to the ops database; not thread-safe (the dispatcher owns it).

    ``owner`` names the sink process whose claims these are, in consumer group
    ``group`` (None for a person's tools and tests: their claims are not fenced by
    epochs). Outcomes that could not be recorded because their claim was no longer this
    owner's are collected in :attr:`late` (see :meth:`take_late`).
    """

    def __init__(self, conninfo: str, owner: str | None = None, group: str | None = None
                 ) -> None:  # fmt: skip
        self.owner, self.group = owner, group
        #: Trigger ids of the last :meth:`claim` refused because their partition's epoch has
        #: moved on (this sink lost it): not claimed, not sent, not to be committed.
        self.fenced: set[str] = set()
        self.late: list[Late] = []
        try:
            self._conn: psycopg.Connection[TupleRow] = psycopg.connect(conninfo, autocommit=True)
            self.applied = migrate(self._conn)
        except psycopg.Error as exc:
            raise SinkError(f"the ops database is not reachable: {error_gist(exc)}") from exc

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self, query: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        try:
            cur = self._conn.execute(query.encode(), params)
            return cur.fetchall() if cur.description else []
        except psycopg.Error as exc:
            raise SinkError(f"ops database: {error_gist(exc)}") from exc

    # --- ownership -------------------------------------------------------------
    def assign(self, partitions: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """This sink now owns ``partitions``: bump each one's ownership epoch and return it.

        The epoch is per partition of the group (any sink of it), so it only grows: a claim
        made in an earlier ownership is told apart from this one's even by the same process.
        """
        if not partitions:
            return {}
        rows = self._run(
            "INSERT INTO sink_partition_epochs AS e (group_id, topic, partition, epoch, owner)"
            " SELECT %s, t, p, 1, %s FROM unnest(%s::text[], %s::int[]) AS x(t, p)"
            " ON CONFLICT (group_id, topic, partition) DO UPDATE SET epoch = e.epoch + 1,"
            " owner = EXCLUDED.owner, assigned_at = now()"
            " RETURNING topic, partition, epoch",
            [self.group or "", self.owner or "", [t for t, _ in partitions],
             [p for _, p in partitions]],
        )  # fmt: skip
        return {(t, p): int(e) for t, p, e in rows}

    # --- claims ----------------------------------------------------------------
    def claim(self, claims: Sequence[Claim], finals: Sequence[Final] = ()) -> dict[str, Entry]:
        """Claim each trigger (recording ``finals`` in the same statement); return the
        entries of those not claimed now: already in the ledger under their trigger id, or
        just recorded as a ``duplicate`` of their quote's offer.

        A conflict whose row has vanished by the time it is read (released, resent or
        re-offered in between) is claimed again: a trigger never leaves without a row.
        """
        self.fenced = set()
        if not claims:
            self.record(finals)
            return {}
        found: dict[str, Entry] = {}
        todo = list(claims)
        for _ in range(_CLAIM_ROUNDS):
            rows = json.dumps([_claim_row(c, self.owner, self.group) for c in todo])
            if finals:
                returned = self._run(_RECORD_AND_CLAIM, [_final_rows(finals, self.owner), rows])
                self._late_of(finals, {t for kind, t in returned if kind == "recorded"})
                finals = ()
            else:
                returned = self._run(_CLAIM, [rows])
            claimed = {t for kind, t in returned if kind == "claimed"}
            taken = [c for c in todo if c.trigger_id not in claimed]
            if not taken:
                return found
            self.fenced |= self._fenced(taken)
            taken = [c for c in taken if c.trigger_id not in self.fenced]
            if not taken:
                return found
            by_id = {e.trigger_id: e for e in self.entries(c.trigger_id for c in taken)}
            self._backfill(taken, by_id)
            found.update(by_id)
            todo = self._duplicates([c for c in taken if c.trigger_id not in by_id], found)
            if not todo:
                return found
        raise SinkError(f"could not claim {len(todo)} trigger(s) after {_CLAIM_ROUNDS} rounds:"
                        f" their rows keep vanishing (first {todo[0].trigger_id})")  # fmt: skip

    def _fenced(self, claims: list[Claim]) -> set[str]:
        """The claims whose partition's ownership epoch is no longer theirs."""
        if self.owner is None:
            return set()
        rows = self._run(
            _STALE,
            [json.dumps([_claim_row(c, self.owner, self.group) for c in claims])],
        )
        return {row[0] for row in rows}

    def _duplicates(self, claims: list[Claim], found: dict[str, Entry]) -> list[Claim]:
        """Record the claims whose quote has its offer as duplicates of it (into ``found``);
        return those to claim again (their quote has no offer any more)."""
        quoted = [c for c in claims if c.quote_id is not None]
        if not quoted:
            return claims
        offers = {e.quote_id: e for e in self.offers(c.quote_id for c in quoted)}
        dups = [(c, offers[c.quote_id]) for c in quoted if c.quote_id in offers]
        if not dups:
            return claims
        rows = json.dumps([{
            **_claim_row(c, self.owner), "dup": o.trigger_id,
            "err": f"quote {c.quote_id} already offered by trigger {o.trigger_id} ({o.state},"
                   f" request {o.request_id}): not sent",
        } for c, o in dups])  # fmt: skip
        written = {row[0] for row in self._run(_DUPLICATE, [rows])}
        if written:
            found.update((e.trigger_id, e) for e in self.entries(written))
        return [c for c in claims if c.trigger_id not in written]

    def _backfill(self, claims: list[Claim], entries: dict[str, Entry]) -> None:
        """Rows written before the ledger knew quotes get theirs when the trigger is read
        again, unless the quote already has another offer (then they stay unblocking)."""
        for c in claims:
            entry = entries.get(c.trigger_id)
            if entry is None or entry.quote_id is not None or c.quote_id is None:
                continue
            try:
                self._conn.execute(
                    b"UPDATE sink_deliveries SET quote_id = %s WHERE trigger_id = %s"
                    b" AND quote_id IS NULL AND NOT EXISTS (SELECT 1 FROM sink_deliveries o"
                    b" WHERE o.quote_id = %s AND o.state <> 'duplicate')",
                    [c.quote_id, c.trigger_id, c.quote_id],
                )
            except pg_errors.UniqueViolation:
                continue  # another trigger of the quote became its offer meanwhile
            except psycopg.Error as exc:
                raise SinkError(f"ops database: {error_gist(exc)}") from exc

    def entries(self, trigger_ids: Iterable[str]) -> list[Entry]:
        rows = self._run(_BY_IDS, [list(trigger_ids)])
        return [Entry(*row) for row in rows]

    def offers(self, quote_ids: Iterable[int | None]) -> list[Entry]:
        """The offer row (any state but duplicate) of each quote that has one."""
        rows = self._run(_OFFERS, [[q for q in quote_ids if q is not None]])
        return [Entry(*row) for row in rows]

    def take_over(self, claim: Claim, seen: Entry) -> Entry | None:
        """Make a pending claim found in the ledger (``seen``: another owner's, or an older
        epoch's) this sink's, for ``claim``'s record; return the row as it is now.

        Conditional on the row still being what was seen: when another sink took it over
        or recorded it meanwhile, the row as it now is decides (final: not sent again;
        another's pending: taken over in turn). When it vanished it is claimed afresh
        (the returned entry then carries ``claim.request_id``). None: fenced off, the
        partition's epoch has moved on (this sink lost it).
        """
        for _ in range(_CLAIM_ROUNDS):
            if self._fenced([claim]):
                return None
            rows = self._run(
                "UPDATE sink_deliveries SET owner = %s, epoch = %s, source_topic = %s,"
                " source_partition = %s, source_offset = %s, claimed_at = now()"
                " WHERE trigger_id = %s AND state = 'pending' AND owner IS NOT DISTINCT FROM %s"
                " AND epoch = %s AND (%s::text IS NULL OR EXISTS (SELECT 1 FROM"
                " sink_partition_epochs e WHERE e.group_id = %s AND e.topic = %s AND"
                " e.partition = %s AND e.epoch = %s AND e.owner = %s)) RETURNING trigger_id",
                [self.owner, claim.epoch, claim.topic, claim.partition, claim.offset,
                 claim.trigger_id, seen.owner, seen.epoch, self.owner, self.group, claim.topic,
                 claim.partition, claim.epoch, self.owner],
            )  # fmt: skip
            if rows:
                return self.entries([claim.trigger_id])[0]
            now = self.entries([claim.trigger_id])
            if not now:
                again = self.claim([claim])
                if claim.trigger_id in self.fenced:
                    return None
                if claim.trigger_id not in again:
                    return self.entries([claim.trigger_id])[0]
                now = [again[claim.trigger_id]]
            if now[0].state != "pending" or self.owns(now[0], claim.epoch):
                return now[0]
            seen = now[0]
        raise SinkError(f"could not take over the claim of trigger {claim.trigger_id}")

    def owns(self, entry: Entry, epoch: int) -> bool:
        """Whether ``entry`` is a pending claim of this sink in ``epoch``."""
        return entry.state == "pending" and entry.owner == self.owner and entry.epoch == epoch

    def record(self, finals: Sequence[Final]) -> None:
        """Write outcomes of this owner's pending claims. One whose claim is no longer its
        own (taken over, or already final) is not written over the row: it is kept as the
        row's ``late_outcome`` (see :data:`_LATE`) and reported in :attr:`late`."""
        if not finals:
            return
        returned = self._run(_RECORD, [_final_rows(finals, self.owner)])
        self._late_of(finals, {t for _, t in returned})

    def _late_of(self, finals: Sequence[Final], recorded: set[str]) -> None:
        stale = [f for f in finals if f.trigger_id not in recorded]
        if not stale:
            return
        rows = json.loads(_final_rows(stale, self.owner))
        for row, f in zip(rows, stale, strict=True):
            c = f.claim
            if c is not None:
                row.update({"p": c.provider, "cu": c.customer_id, "r": str(c.request_id),
                            "d": c.dedupe_id, "st": c.topic, "sp": c.partition, "so": c.offset,
                            "q": c.quote_id})  # fmt: skip
        returned = self._run(_LATE, [json.dumps(rows)])
        kept = [t for kind, t in returned if kind == "kept"]
        restored = [t for kind, t in returned if kind == "restored"]
        done = set(kept) | set(restored)
        self.late.append(Late(kept, restored, [f.trigger_id for f in stale
                                               if f.trigger_id not in done]))  # fmt: skip

    def take_late(self) -> Late:
        """The late outcomes met since the last call (for the caller's log and stats)."""
        late = Late([t for x in self.late for t in x.kept],
                    [t for x in self.late for t in x.restored],
                    [t for x in self.late for t in x.dropped])  # fmt: skip
        self.late = []
        return late

    def receipted(self, trigger_ids: Sequence[str]) -> None:
        """Their receipts are committed to Kafka: a later read of them is a replay."""
        if trigger_ids:
            self._run("UPDATE sink_deliveries SET receipt_at = now() WHERE trigger_id = ANY(%s)"
                      " AND receipt_at IS NULL", [list(trigger_ids)])  # fmt: skip

    def release(self, claims: Sequence[tuple[str, int]]) -> int:
        """Forget this owner's claims, (trigger id, epoch), whose requests certainly never
        reached the ESP (a clean stop); a claim another sink took over is not touched.
        Returns how many were forgotten."""
        if not claims:
            return 0
        rows = self._run(
            "DELETE FROM sink_deliveries d USING unnest(%s::text[], %s::bigint[]) AS x(t, ep)"
            " WHERE d.trigger_id = x.t AND d.epoch = x.ep AND d.state = 'pending'"
            " AND d.owner IS NOT DISTINCT FROM %s RETURNING d.trigger_id",
            [[t for t, _ in claims], [e for _, e in claims], self.owner],
        )
        return len(rows)

    def open_entries(self, state: Literal["pending", "ambiguous"], limit: int = 1000
                     ) -> list[Entry]:  # fmt: skip
        rows = self._run(_OPEN, [state, limit])
        return [Entry(*row) for row in rows]

    def resolve(self, trigger_id: str, resolution: Literal["sent", "resend"], by: str) -> Entry:
        """A person's decision on an ambiguous delivery.

        ``sent``: they found it in the ESP; it counts as sent. ``resend``: it was
        not sent; the row is removed, so the trigger is delivered the next time it
        is read (replay the sink's group to it). The decision is kept in the log
        of this call's caller; the row records who decided.
        """
        rows = self._run(_BY_IDS, [[trigger_id]])
        if not rows:
            raise SinkError(f"trigger {trigger_id} is not in the delivery ledger")
        entry = Entry(*rows[0])
        if entry.state != "ambiguous":
            raise SinkError(f"trigger {trigger_id} is {entry.state}, not ambiguous: nothing to do")
        if resolution == "sent":
            self._run(
                "UPDATE sink_deliveries SET state = 'sent', resolution = 'sent', resolved_at ="
                " now(), resolved_by = %s WHERE trigger_id = %s AND state = 'ambiguous'",
                [by, trigger_id],
            )
        else:
            self._run("DELETE FROM sink_deliveries WHERE trigger_id = %s AND state = 'ambiguous'",
                      [trigger_id])  # fmt: skip
        return entry

    def reoffer(self, quote_id: int, reason: str, by: str) -> list[Entry]:
        """The one way to offer a quote again: a person's decision, with who and why.

        The quote's rows (its offer and the duplicates recorded against it) move to
        ``sink_reoffers`` with the reason, in one transaction, so exactly the next trigger
        read for the quote (the same trigger id again, or a new one) is claimed as its new
        offer, sent once, and every later one is a duplicate of that. A quote with a send
        in progress (pending) or an unknown outcome (ambiguous: resolve it first) is left
        alone. Returns the rows set aside.
        """
        if not reason.strip():
            raise SinkError("a re-offer needs a reason (--reason)")
        try:
            with self._conn.transaction():
                rows = self._conn.execute(
                    (_SELECT + "WHERE quote_id = %s ORDER BY claimed_at FOR UPDATE").encode(),
                    [quote_id]).fetchall()  # fmt: skip
                entries = [Entry(*row) for row in rows]
                offer = next((e for e in entries if e.state != "duplicate"), None)
                if offer is None:
                    raise SinkError(f"quote {quote_id} has no offer in the delivery ledger:"
                                    " nothing to re-offer (it is sent when a trigger comes)")
                if offer.state == "pending":
                    raise SinkError(f"quote {quote_id}: trigger {offer.trigger_id} is pending"
                                    " (a send is in progress): try again once it has an outcome")
                if offer.state == "ambiguous":
                    raise SinkError(f"quote {quote_id}: trigger {offer.trigger_id} is ambiguous:"
                                    " resolve it first (quoteflow sink resolve)")
                self._conn.execute(
                    b"INSERT INTO sink_reoffers (quote_id, reason, requested_by, previous)"
                    b" SELECT %s, %s, %s, jsonb_agg(to_jsonb(d) ORDER BY d.claimed_at)"
                    b" FROM sink_deliveries d WHERE d.quote_id = %s",
                    [quote_id, reason.strip(), by, quote_id])  # fmt: skip
                self._conn.execute(b"DELETE FROM sink_deliveries WHERE quote_id = %s",
                                   [quote_id])  # fmt: skip
        except psycopg.Error as exc:
            raise SinkError(f"ops database: {error_gist(exc)}") from exc
        return entries

    def reoffers(self, quote_id: int) -> list[tuple[str, str, datetime, list[dict[str, Any]]]]:
        """(who, why, when, rows set aside) of each re-offer of the quote, oldest first."""
        rows = self._run("SELECT requested_by, reason, requested_at, previous FROM sink_reoffers"
                         " WHERE quote_id = %s ORDER BY id", [quote_id])  # fmt: skip
        return [(r[0], r[1], r[2], r[3]) for r in rows]
