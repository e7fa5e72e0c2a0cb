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
from collections.abc import Sequence

import psycopg
from psycopg import errors as pg_errors

from connectors.errors import SinkError
from connectors.sink.ledger_decisions import LedgerDecisions
from connectors.sink.ledger_sql import (
    CLAIM,
    DUPLICATE,
    LATE,
    RECORD,
    RECORD_AND_CLAIM,
    STALE,
    claim_row,
    final_rows,
)
from connectors.sink.ledger_store import Claim, Entry, Final, FinalState, Late, State
from quoteflow.pgerrors import error_gist

#: A claim whose conflicting row vanished before it could be read (a release, a person's
#: resend or re-offer in between) is claimed again, at most this many times.
_CLAIM_ROUNDS = 20


class Ledger(LedgerDecisions):
    """One connection to the ops database; not thread-safe (the dispatcher owns it).

    ``owner`` names the sink process whose claims these are, in consumer group
    ``group`` (None for a person's tools and tests: their claims are not fenced by
    epochs). Outcomes that could not be recorded because their claim was no longer this
    owner's are collected in :attr:`late` (see :meth:`take_late`). The reads and a
    person's decisions (:meth:`resolve`, :meth:`reoffer`) come from its bases.
    """

    def __init__(self, conninfo: str, owner: str | None = None, group: str | None = None
                 ) -> None:  # fmt: skip
        #: Trigger ids of the last :meth:`claim` refused because their partition's epoch has
        #: moved on (this sink lost it): not claimed, not sent, not to be committed.
        self.fenced: set[str] = set()
        self.late: list[Late] = []
        super().__init__(conninfo, owner, group)

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
            rows = json.dumps([claim_row(c, self.owner, self.group) for c in todo])
            if finals:
                returned = self._run(RECORD_AND_CLAIM, [final_rows(finals, self.owner), rows])
                self._late_of(finals, {t for kind, t in returned if kind == "recorded"})
                finals = ()
            else:
                returned = self._run(CLAIM, [rows])
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
            STALE,
            [json.dumps([claim_row(c, self.owner, self.group) for c in claims])],
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
            **claim_row(c, self.owner), "dup": o.trigger_id,
            "err": f"quote {c.quote_id} already offered by trigger {o.trigger_id} ({o.state},"
                   f" request {o.request_id}): not sent",
        } for c, o in dups])  # fmt: skip
        written = {row[0] for row in self._run(DUPLICATE, [rows])}
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
        row's ``late_outcome`` (see :data:`LATE`) and reported in :attr:`late`."""
        if not finals:
            return
        returned = self._run(RECORD, [final_rows(finals, self.owner)])
        self._late_of(finals, {t for _, t in returned})

    def _late_of(self, finals: Sequence[Final], recorded: set[str]) -> None:
        stale = [f for f in finals if f.trigger_id not in recorded]
        if not stale:
            return
        rows = json.loads(final_rows(stale, self.owner))
        for row, f in zip(rows, stale, strict=True):
            c = f.claim
            if c is not None:
                row.update({"p": c.provider, "cu": c.customer_id, "r": str(c.request_id),
                            "d": c.dedupe_id, "st": c.topic, "sp": c.partition, "so": c.offset,
                            "q": c.quote_id})  # fmt: skip
        returned = self._run(LATE, [json.dumps(rows)])
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


__all__ = ["Claim", "Entry", "Final", "FinalState", "Late", "Ledger", "State"]
