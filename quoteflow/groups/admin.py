"""The Kafka edge of the group tools: Kafka's admin API through confluent-kafka, nothing more.

What ``kafka-consumer-groups.sh`` asks the broker, asked the same way: the
group's description (state, members), its committed offsets, each partition's
log start and end (read_committed: the last stable offset) and the offsets for
a time, and the one offset commit that applies a plan. Every decision is in
:mod:`quoteflow.groups.plan`; library errors become :class:`GroupError` here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

from confluent_kafka import (
    ConsumerGroupTopicPartitions,
    IsolationLevel,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, OffsetSpec

from quoteflow.errors import GroupError
from quoteflow.groups.plan import GroupInfo, Member, Position, ResetPlan
from quoteflow.settings import Settings

T = TypeVar("T")
Key = tuple[str, int]


class GroupAdmin:
    """Reads and resets consumer groups on the configured cluster."""

    def __init__(self, settings: Settings) -> None:
        self._bootstrap = settings.kafka.bootstrap_servers
        self._timeout = settings.topics.request_timeout_s
        self._admin = AdminClient(
            {**settings.kafka.as_librdkafka_dict(), "client.id": "quoteflow-groups"}
        )

    def _result(self, future: Future[T], what: str) -> T:
        try:
            return future.result(timeout=self._timeout + 5)
        except KafkaException as exc:
            raise GroupError(f"{what} failed at {self._bootstrap}: {_gist(exc)}") from None
        except TimeoutError:
            raise GroupError(
                f"{what}: no answer from Kafka at {self._bootstrap} in {self._timeout:g} s"
            ) from None

    def partitions(self, topics: Iterable[str]) -> dict[str, list[int]]:
        """Each named topic that exists -> its partitions (a missing topic is left out)."""
        try:
            listed = self._admin.list_topics(timeout=self._timeout).topics
        except KafkaException as exc:
            raise GroupError(f"cannot reach Kafka at {self._bootstrap}: {_gist(exc)}") from None
        return {
            topic: sorted(listed[topic].partitions)
            for topic in topics
            if topic in listed and listed[topic].error is None and listed[topic].partitions
        }

    def describe(self, group: str) -> GroupInfo:
        """The group's state and members (a group never seen is Dead, with none)."""
        futures = self._admin.describe_consumer_groups([group], request_timeout=self._timeout)
        found = self._result(futures[group], f"describing group {group}")
        state = _STATE_NAMES.get(found.state.name, found.state.name)
        members = tuple(Member(m.client_id, m.host) for m in found.members)
        return GroupInfo(group, state, members)

    def committed(self, group: str, keys: Sequence[Key] | None = None) -> dict[Key, int | None]:
        """The group's committed offsets: of ``keys``, or of everything it committed."""
        if keys is not None and not keys:
            return {}
        wanted = [TopicPartition(t, p) for t, p in keys] if keys is not None else None
        request = ConsumerGroupTopicPartitions(group, wanted)
        futures = self._admin.list_consumer_group_offsets([request], request_timeout=self._timeout)
        answer = self._result(futures[group], f"reading the committed offsets of group {group}")
        found: dict[Key, int | None] = {}
        for tp in answer.topic_partitions or []:
            if tp.error is not None:
                raise GroupError(
                    f"reading group {group}'s offset of {tp.topic}[{tp.partition}]"
                    f" failed: {tp.error}"
                )
            found[(tp.topic, tp.partition)] = tp.offset if tp.offset >= 0 else None
        return found

    def list_offsets(self, keys: Sequence[Key], spec: Any) -> dict[Key, int | None]:
        """Each partition's offset for ``spec`` (an OffsetSpec), read committed; None: -1."""
        if not keys:
            return {}
        futures = self._admin.list_offsets(
            {TopicPartition(t, p): spec for t, p in keys},
            isolation_level=IsolationLevel.READ_COMMITTED,
            request_timeout=self._timeout,
        )
        found: dict[Key, int | None] = {}
        for tp, future in futures.items():
            offset = self._result(future, f"listing offsets of {tp.topic}[{tp.partition}]").offset
            found[(tp.topic, tp.partition)] = offset if offset >= 0 else None
        return found

    def positions(self, group: str, partitions: Mapping[str, Sequence[int]]) -> list[Position]:
        """The group's position on every partition of the given topics."""
        keys = [(topic, p) for topic, parts in partitions.items() for p in parts]
        committed = self.committed(group, keys)
        starts = self.list_offsets(keys, OffsetSpec.earliest())  # type: ignore[no-untyped-call]
        ends = self.list_offsets(keys, OffsetSpec.latest())  # type: ignore[no-untyped-call]
        return [
            Position(t, p, committed.get((t, p)), starts[(t, p)] or 0, ends[(t, p)] or 0)
            for t, p in keys
        ]

    def offsets_for_time(self, keys: Sequence[Key], at_ms: int) -> dict[Key, int | None]:
        """The first offset stamped at or after ``at_ms`` per partition (None: none is)."""
        return self.list_offsets(keys, OffsetSpec.for_timestamp(at_ms))

    def apply(self, plan: ResetPlan) -> dict[Key, int | None]:
        """Commit the plan's offsets for its group, in one request; then read them back.

        The broker itself refuses a commit from outside the group while it has
        members, so a consumer that joined after the check still cannot be overrun.
        """
        request = ConsumerGroupTopicPartitions(
            plan.group, [TopicPartition(r.topic, r.partition, r.new) for r in plan.rows]
        )
        futures = self._admin.alter_consumer_group_offsets([request], request_timeout=self._timeout)
        try:
            answer = futures[plan.group].result(timeout=self._timeout + 5)
        except KafkaException as exc:
            raise GroupError(
                f"Kafka refused the reset of group {plan.group}: {_gist(exc)} (a consumer may"
                " have joined it; nothing was changed)"
            ) from None
        failed = [tp for tp in answer.topic_partitions or [] if tp.error is not None]
        if failed:
            raise GroupError(
                f"Kafka refused the reset of group {plan.group} for"
                f" {failed[0].topic}[{failed[0].partition}]: {failed[0].error}"
            )
        return self.committed(plan.group, [(r.topic, r.partition) for r in plan.rows])


#: confluent-kafka's state names -> Kafka's own (as kafka-consumer-groups.sh prints them).
_STATE_NAMES = {
    "UNKNOWN": "Unknown",
    "PREPARING_REBALANCING": "PreparingRebalance",
    "COMPLETING_REBALANCING": "CompletingRebalance",
    "STABLE": "Stable",
    "DEAD": "Dead",
    "EMPTY": "Empty",
}


def _gist(exc: KafkaException) -> str:
    """A librdkafka error's own words, without the KafkaError{...} wrapping."""
    error = exc.args[0] if exc.args else exc
    return str(error.str()) if hasattr(error, "str") else str(error)
