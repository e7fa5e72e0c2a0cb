"""Reading and claiming: triggers from Kafka into their customers' lanes, then into the ledger.

A trigger is decoded once, here, into its wire value (a bad one is dead-lettered);
it waits in its customer's lane; when it is dispatched it is claimed in the ledger
(pending, with its request id) right before it goes to a sender, and what the
ledger already holds for it decides instead: sent before, a duplicate of its
quote's offer, another sink's claim to take over.
"""

from __future__ import annotations

import dataclasses
import logging

from confluent_kafka import Message

from connectors.errors import SinkError
from connectors.sink.delivery import Job, Result
from connectors.sink.ledger import Claim, Entry
from connectors.sink.offsets import PartitionOffsets
from connectors.sink.receipts import receipt_of_entry
from connectors.sink.senders import Senders
from connectors.sink.timing import Expired, Verdict
from quoteflow.deadletter import dead_letter
from schemas.errors import SerdeError
from schemas.wire import AbandonmentTrigger

#: The dispatcher logs as one logger, whichever of its rooms speaks (as before the split).
log = logging.getLogger("connectors.sink.runner")

#: Most messages taken from the consumer in one read.
READ_BATCH = 500
#: Triggers held for quiet hours do not count towards ``sink.max_in_flight`` (they would
#: stop the reading of other customers' triggers all night), up to this many times it.
HELD_PER_IN_FLIGHT = 10


class Claiming(Senders):
    """Reads triggers into lanes, and claims the dispatched ones in the ledger."""

    def _read(self) -> None:
        self._pause_if_needed()
        busy = self.paused or (self.lanes.ready_count > 0
                               and self.running >= self.cfg.concurrency)  # fmt: skip
        if busy:  # the senders (or the ESP) are the bottleneck: wait for an outcome
            self._wait_result(0.05)
        room = max(1, min(READ_BATCH, self.cfg.max_in_flight - self._in_flight()))
        # With every partition paused this serves callbacks and keeps the group membership.
        messages = self.consumer.consume(room, timeout=0)
        if not messages and not busy:
            first = self.consumer.poll(0.005 if self.running else 0.1)
            messages = [first] if first is not None else []
        for message in messages:
            self._accept(message)

    def _pause_if_needed(self) -> None:
        want = not self.breaker.closed or self._in_flight() >= self.cfg.max_in_flight or (
            len(self.held) >= HELD_PER_IN_FLIGHT * self.cfg.max_in_flight)
        if want != self.paused:
            assignment = self.consumer.assignment()
            if want:
                self.consumer.pause(assignment)
            else:
                self.consumer.resume(assignment)
            self.paused = want
            if want and self.breaker.state in ("open", "half_open"):
                log.warning("circuit open: reading paused until %s answers", self.provider.name)

    def _in_flight(self) -> int:
        """Triggers held in memory that are not waiting for quiet hours to end: held ones
        must not stop the sink reading other customers' triggers (up to a bound)."""
        return len(self.lanes) - len(self.held)

    def _accept(self, message: Message) -> None:
        error = message.error()
        if error is not None:
            if error.fatal():
                raise SinkError(f"Kafka: {error.str()}")
            log.warning("Kafka: %s", error.str())
            return
        topic, partition, offset = message.topic(), message.partition(), message.offset()
        if topic is None or partition is None or offset is None:
            return
        self.tracks.setdefault((topic, partition), PartitionOffsets()).read(offset)
        self.stats.read += 1
        key, value = message.key(), message.value()
        try:
            if value is None:
                raise SerdeError("a trigger without a value (tombstone)")
            # Decoded once, here: from now on the trigger is a typed value. A record the
            # schema reads but the value refuses (a WireError) is dead-lettered alike.
            trigger = AbandonmentTrigger.from_record(
                self.serde.decode(AbandonmentTrigger.schema, value, topic=topic))
        except SerdeError as exc:
            self.stats.undecodable += 1
            record = dead_letter(topic, partition, offset, key, value, stage="esp-sink",
                                 error_type=type(exc).__name__, error_message=str(exc),
                                 attempts=1, now_ms=self._now_ms())  # fmt: skip
            self.outbox.append((self.topics.dead_letter, key, "dead_letter", record))
            self.tracks[(topic, partition)].done(offset)
            return
        if trigger.replay and not self.cfg.accept_replays:
            self.stats.replays_dropped += 1
            self.tracks[(topic, partition)].done(offset)
            return
        job = Job(trigger, topic, partition, offset, key, value,
                  dedupe_id=self.provider.dedupe_id(trigger), read_at=self.clock())  # fmt: skip
        followers = self.active.get(job.trigger_id)
        if followers is not None:  # the same trigger again while the first is on its way
            followers.append(job)
            return
        self.active[job.trigger_id] = []
        self.lanes.add(job.customer_id, job)

    def _fenced(self, job: Job) -> None:
        """Its partition has a newer owner (this sink lost it and Kafka has not said so
        yet): not claimed, not sent, its offset not done; the new owner reads it again."""
        log.info("trigger %s not claimed: %s[%d] has a newer owner", job.trigger_id, job.topic,
                 job.partition)  # fmt: skip
        self.claims.pop(job.trigger_id, None)
        self.lanes.done(job.customer_id)
        self.active.pop(job.trigger_id, None)

    def _claim_of(self, job: Job) -> Claim:
        return Claim(job.trigger_id, self.provider.name, job.customer_id, job.request_id,
                     job.dedupe_id, job.topic, job.partition, job.offset, job.trigger.quote_id,
                     self.epochs.get((job.topic, job.partition), 0))  # fmt: skip

    def _place(self, job: Job, entry: Entry | None, verdict: Verdict) -> None:
        """What to do with a trigger after its claim: ``entry`` is None when it was claimed
        now, else the row that was there (or the duplicate row just recorded for it)."""
        if entry is not None and entry.state == "pending":
            # Another sink's claim (stopped, or one that lost the partition) or an older
            # epoch's: made ours first, so only we record its outcome from now on.
            taken = self.ledger.take_over(self.claims[job.trigger_id], entry)
            if taken is None:
                self._fenced(job)
                return
            entry = taken
            if entry.state == "pending" and entry.request_id == job.request_id:
                entry = None  # the row had vanished: claimed afresh, an ordinary send
        if entry is None and isinstance(verdict, Expired):
            now_ms = self._now_ms()
            self._on_result(Result(
                job, "expired", 0, None, None,
                f"older than sink.max_trigger_age ({verdict.age_ms / 3_600_000:.1f} h >"
                f" {self.cfg.max_trigger_age / 3600:.1f} h) when it would have gone out;"
                " not sent", None, now_ms), submitted=False)  # fmt: skip
        elif entry is None:
            self._submit(job)
        elif entry.state == "pending":  # taken over: the earlier attempt's outcome is unknown
            if self.resend_unknown:
                job.request_id, job.resend = entry.request_id, True
                self.claims[job.trigger_id] = dataclasses.replace(
                    self.claims[job.trigger_id], request_id=entry.request_id)
                self._submit(job)
            else:
                self._on_result(Result(
                    job, "ambiguous", entry.attempts, None, None,
                    f"outcome unknown: a sink stopped after claiming it (request"
                    f" {entry.request_id}) and before recording the ESP's answer",
                    None, self._now_ms()), submitted=False)  # fmt: skip
        else:
            self.claims.pop(job.trigger_id, None)
            owed = entry.redelivered_at(job.topic, job.partition, job.offset)
            receipt = receipt_of_entry(entry, job, duplicate=not owed, now_ms=self._now_ms())
            if owed:
                self.receipts_owed.append(job.trigger_id)
            if entry.state == "duplicate" or not owed:
                self.stats.duplicates += 1
            if entry.state == "duplicate" and owed:
                log.info("trigger %s not sent: %s", job.trigger_id, entry.error)
            self._finish(job, receipt)
