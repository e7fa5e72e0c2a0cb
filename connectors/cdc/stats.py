"""What one change stream has done: the counters its logs, metrics and tests read."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Stats:
    """What one stream has done, for logs and tests."""

    transactions: int = 0
    changes: int = 0
    events: int = 0
    acked: int = 0
    skipped_truncates: int = 0
    #: Changes of a row under the truncates' reserved key, held back (connectors.cdc.events).
    reserved_key_rows: int = 0
    snapshot_rows: int = 0
    snapshot_done: bool = False
    watermarks: int = 0
    watermark_ms: int = 0  # the last published source watermark (server clock)
    server_wal_end: int = 0  # the server's WAL end, from its messages: lag_bytes is against it
    confirmed_lsn: int = 0
    last_commit_ms: int = 0

    @property
    def lag_bytes(self) -> int:
        return max(0, self.server_wal_end - self.confirmed_lsn)
