"""A person's decisions on the delivery ledger: ``sink ambiguous``, ``resolve``, ``reoffer``.

Not the sink's path: these run from the operator commands, each in its own
statement or transaction, next to a running sink (whose claims they never touch:
a pending row is left alone).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import psycopg

from connectors.errors import SinkError
from connectors.sink.ledger_store import BY_IDS, SELECT, Entry, LedgerStore
from quoteflow.pgerrors import error_gist

OPEN = SELECT + "WHERE state = %s AND resolution IS NULL ORDER BY claimed_at LIMIT %s"


class LedgerDecisions(LedgerStore):
    """Listing open deliveries, resolving an ambiguous one, re-offering a quote, and the
    re-offers made."""

    def open_entries(self, state: Literal["pending", "ambiguous"], limit: int = 1000
                     ) -> list[Entry]:  # fmt: skip
        """The oldest rows in ``state`` that no person has resolved (``sink ambiguous``)."""
        rows = self._run(OPEN, [state, limit])
        return [Entry(*row) for row in rows]

    def resolve(self, trigger_id: str, resolution: Literal["sent", "resend"], by: str) -> Entry:
        """A person's decision on an ambiguous delivery.

        ``sent``: they found it in the ESP; it counts as sent. ``resend``: it was
        not sent; the row is removed, so the trigger is delivered the next time it
        is read (replay the sink's group to it). The decision is kept in the log
        of this call's caller; the row records who decided.
        """
        rows = self._run(BY_IDS, [[trigger_id]])
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
                    (SELECT + "WHERE quote_id = %s ORDER BY claimed_at FOR UPDATE").encode(),
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
