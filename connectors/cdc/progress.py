"""Which LSN the slot may be told is flushed: pure bookkeeping of Kafka acknowledgements.

The slot's confirmed position is a promise to PostgreSQL: "everything before
this is safe, recycle its WAL, and after a restart start from here". It may
therefore move only past transactions *all* of whose events Kafka has
acknowledged, *and* all transactions before them. Acknowledgements arrive out
of order across partitions, so transactions are kept in commit order and the
position moves to the end LSN of the longest fully acknowledged prefix.

When nothing is in flight (no open transaction, nothing unacknowledged), the
server's WAL end from a keepalive may be confirmed as well: everything before
it has been received and nothing of it is pending. That keeps an idle slot
from holding back WAL that other databases' traffic keeps writing. A
transaction still running on the server is unaffected: logical decoding sends
it, in full, when it commits, at an LSN past what was confirmed.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from quoteflow.offsets import InFlightOffsets


@dataclass(slots=True)
class Txn:
    """One source transaction's delivery state."""

    outstanding: int = 0
    end_lsn: int | None = None  # set by commit
    failed: bool = False
    #: Its place in commit order: the position of the kernel's in-flight bookkeeping.
    seq: int = 0

    @property
    def complete(self) -> bool:
        """Committed, and every event acknowledged."""
        return self.end_lsn is not None and self.outstanding == 0 and not self.failed


class Progress:
    """The confirmable flush LSN of one slot."""

    def __init__(self, confirmed: int) -> None:
        self.confirmed = confirmed
        #: Events produced but not yet acknowledged (read on every loop turn: a counter).
        self.pending = 0
        self._txns: deque[Txn] = deque()
        self._open: Txn | None = None
        #: The transactions' places in commit order, read at begin and done once complete:
        #: the position may pass those before the first one not done (quoteflow.offsets).
        self._order = InFlightOffsets()
        self._seq = 0

    @property
    def idle(self) -> bool:
        return self._open is None and not self._txns

    def begin(self) -> Txn:
        if self._open is not None:
            raise RuntimeError("begin inside an open transaction")
        txn = Txn(seq=self._seq)
        self._seq += 1
        self._order.read(txn.seq)
        self._open = txn
        self._txns.append(txn)
        return txn

    def sent(self, txn: Txn, count: int = 1) -> None:
        txn.outstanding += count
        self.pending += count

    def acked(self, txn: Txn) -> None:
        if txn.outstanding <= 0:
            raise RuntimeError("an acknowledgement for a transaction with nothing outstanding")
        txn.outstanding -= 1
        self.pending -= 1
        if txn.complete:
            self._completed(txn)

    def failed(self, txn: Txn) -> None:
        """A record Kafka refused for good: the position never passes this transaction."""
        txn.failed = True
        txn.outstanding -= 1
        self.pending -= 1

    def commit(self, txn: Txn, end_lsn: int) -> None:
        if txn is not self._open:
            raise RuntimeError("commit of a transaction that is not open")
        txn.end_lsn = end_lsn
        self._open = None
        if txn.complete:
            self._completed(txn)

    def server_at(self, wal_end: int) -> None:
        """A keepalive (or message) says the server has sent everything before ``wal_end``."""
        if self.idle and wal_end > self.confirmed:
            self.confirmed = wal_end

    def _completed(self, txn: Txn) -> None:
        """Move the position past every transaction before the first one not complete."""
        self._order.done(txn.seq)
        first_open = self._order.committable()
        while self._txns and (first_open is None or self._txns[0].seq < first_open):
            head = self._txns.popleft()
            assert head.end_lsn is not None  # complete
            self.confirmed = max(self.confirmed, head.end_lsn)
