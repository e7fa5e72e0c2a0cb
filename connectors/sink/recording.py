"""Outcome recording: the ledger, receipts, dead letters and the commit of offsets.

The ledger first, Kafka after: an outcome is written to the ledger as soon as it is
known (:meth:`Recording._record`), and at every commit interval the receipts and
dead letters of the outcomes and the offsets done go out in one Kafka transaction
(:meth:`Recording._flush`). A crash between the two reads the records again and
publishes the same receipts from the ledger.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from datetime import UTC, datetime

from confluent_kafka import KafkaException, TopicPartition

from connectors.errors import SinkError
from connectors.sink.delivery import Job, Result
from connectors.sink.ledger import Final
from connectors.sink.receipts import dead_letter_of, receipt_of
from connectors.sink.state import BATCH_WAIT_S, SinkState
from schemas.wire import DeliveryReceipt

#: The dispatcher logs as one logger, whichever of its rooms speaks (as before the split).
log = logging.getLogger("connectors.sink.runner")


class Recording(SinkState):
    """What happened to each trigger, made durable and published."""

    def _on_result(self, result: Result, *, submitted: bool) -> None:
        job = result.job
        if submitted:
            self.running -= 1
        claim = self.claims.pop(job.trigger_id, None)
        if result.status == "interrupted":
            # Not done: the record is read again (by us or the partition's next owner).
            self.stats.interrupted += 1
            if not result.maybe_sent and claim is not None:
                self.releases.append((job.trigger_id, claim.epoch))
            if result.refused is not None:
                self._refused(result.refused, result.http_status)
            self.lanes.done(job.customer_id)
            self.active.pop(job.trigger_id, None)
            return
        self.finals.append(Final(
            job.trigger_id, result.status, result.attempts, result.http_status,
            result.message_id, result.error, _dt(result.first_attempt_ms),
            datetime.fromtimestamp(result.completed_ms / 1000, UTC), claim,
        ))  # fmt: skip
        setattr(self.stats, result.status, getattr(self.stats, result.status) + 1)
        if result.status in ("rejected", "failed"):
            record = dead_letter_of(job, error_type=f"Esp{result.status.title()}",
                                    error=result.error or result.status,
                                    attempts=result.attempts, now_ms=self._now_ms())  # fmt: skip
            self.outbox.append((self.topics.dead_letter, job.key, "dead_letter", record))
            log.warning("trigger %s %s by %s after %d attempt(s): %s", job.trigger_id,
                        result.status, self.provider.name, result.attempts, result.error)
        elif result.status == "ambiguous":
            log.warning("trigger %s held as ambiguous (%s): resolve with `quoteflow sink"
                        " resolve`", job.trigger_id, result.error)  # fmt: skip
        self.receipts_owed.append(job.trigger_id)
        self._finish(job, receipt_of(result, self.provider.name))

    def _refused(self, what: str, http_status: int | None) -> None:
        """A configuration failure: say so once, in one line, and stop. The triggers in
        flight end as on a clean stop (their claims released unless a request may have
        reached the ESP), none is recorded, none dead-lettered, and no offset is committed
        past one that was not sent: fixed and restarted, the sink sends them all."""
        if self.refused is not None:
            return
        self.refused = (f"the {self.provider.name} ESP refused the sink's configuration:"
                        f" {what}; stopped sending ({_fix(http_status)}), unsent triggers"
                        " stay in Kafka and are sent once it is fixed")  # fmt: skip
        log.error("%s", self.refused)
        self.stop.set()

    def _finish(self, job: Job, receipt: DeliveryReceipt) -> None:
        """The trigger has its outcome: receipt out, offset done, next of its customer ready."""
        self.outbox.append((self.topics.deliveries, job.key, receipt.schema, receipt.as_record()))
        self.tracks[(job.topic, job.partition)].done(job.offset)
        self.lanes.done(job.customer_id)
        for follower in self.active.pop(job.trigger_id, []):
            self.stats.duplicates += 1
            again = dataclasses.replace(
                receipt, status="DUPLICATE", attempts=0, latency_ms=None,
                error=f"the same trigger was read twice (offset {job.offset})")
            self.outbox.append((self.topics.deliveries, follower.key, again.schema,
                                again.as_record()))  # fmt: skip
            self.tracks[(follower.topic, follower.partition)].done(follower.offset)

    def _note_late(self) -> None:
        """Outcomes whose claim another sink had taken over: kept on the row, said here."""
        late = self.ledger.take_late()
        for trigger_id in late.kept + late.restored:
            self.stats.late_outcomes += 1
            log.warning("trigger %s: its claim was taken over by another sink before this"
                        " outcome was recorded; kept as the row's late outcome (restored:"
                        " %s)", trigger_id, trigger_id in late.restored)  # fmt: skip
        for trigger_id in late.dropped:
            self.stats.late_outcomes += 1
            log.warning("trigger %s: outcome of a claim taken over, and its row is gone"
                        " (a person's decision meanwhile); nothing was sent twice by this"
                        " sink, the outcome is only logged", trigger_id)  # fmt: skip

    # --- recording and committing ---------------------------------------------
    def _record(self) -> None:
        """Outcomes into the ledger as soon as they are known, not at the next commit: a
        crash can then leave at most the requests in flight (and the answers of one loop
        turn) without an outcome."""
        now = time.monotonic()
        if self.finals and (len(self.finals) >= self._batch
                            or now - self._last_record >= 2 * BATCH_WAIT_S):  # fmt: skip
            self._last_record = now
            self.ledger.record(self.finals)
            self.finals = []
            self._note_late()

    def _flush(self) -> None:
        commits = []
        for (topic, partition), track in self.tracks.items():
            position = track.committable()
            if position is not None and position > self.committed.get((topic, partition), -1):
                commits.append(TopicPartition(topic, partition, position))
        if not (self.finals or self.releases or self.outbox or commits or self.receipts_owed):
            return
        # The ledger first: once an offset is committed the record is never read again.
        self.ledger.record(self.finals)
        self.finals = []
        self._note_late()
        self.ledger.release(self.releases)
        encoded = [(topic, key, self.serde.encode(schema, record, topic=topic))
                   for topic, key, schema, record in self.outbox]  # fmt: skip
        try:
            self.producer.begin_transaction()
            for topic, key, value in encoded:
                self.producer.produce(topic, key=key, value=value)
            if commits:
                self.producer.send_offsets_to_transaction(
                    commits, self.consumer.consumer_group_metadata(), 30)
            self.producer.commit_transaction(30)
        except KafkaException as exc:
            raise SinkError(f"could not commit receipts and offsets: {exc.args[0]}") from exc
        for tp in commits:
            self.committed[(tp.topic, tp.partition)] = tp.offset
        self.ledger.receipted(self.receipts_owed)
        self.releases, self.outbox, self.receipts_owed = [], [], []
        self.stats.commits += 1


def _fix(http_status: int | None) -> str:
    """What to check for a configuration failure with this status (None: no answer)."""
    if http_status in (401, 403):
        return "check the credential, sink.secret or sink.secret_file, and its permissions"
    if http_status == 407:
        return "check the HTTP proxy's credentials"
    if http_status == 413:
        return "check the request size limit of any proxy in front of the ESP"
    return "check sink.base_url and the provider settings"


def _dt(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)
