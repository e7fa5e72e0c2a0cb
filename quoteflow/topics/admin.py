"""Create topics from the catalogue and compare the broker with it (confluent-kafka admin)."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

from quoteflow.errors import TopicError
from quoteflow.settings import Settings
from quoteflow.topics.catalog import ActualTopic, TopicSpec, drift, for_environment

State = Literal["ok", "missing", "drift"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopicReport:
    spec: TopicSpec
    state: State
    problems: tuple[str, ...] = ()


class TopicAdmin:
    """Thin edge over AdminClient; all comparison logic lives in catalog.py."""

    def __init__(self, settings: Settings) -> None:
        self._timeout = settings.topics.request_timeout_s
        self._bootstrap = settings.kafka.bootstrap_servers
        self._client = AdminClient(
            {**settings.kafka.as_librdkafka_dict(), "client.id": "quoteflow-topics"}
        )
        self.catalogue = for_environment(
            settings.topics.replication_factor, settings.topics.partitions, settings.topics.prefix
        )

    def existing(self) -> set[str]:
        try:
            metadata = self._client.list_topics(timeout=self._timeout)
        except KafkaException as exc:
            raise TopicError(f"cannot reach Kafka at {self._bootstrap}: {exc}") from exc
        return set(metadata.topics)

    def create(self, specs: Sequence[TopicSpec] | None = None) -> list[str]:
        """Create what is missing; return the names created now. Existing topics are kept."""
        specs = list(specs if specs is not None else self.catalogue)
        present = self.existing()
        new = [
            NewTopic(s.name, s.partitions, s.replication_factor, config=s.config())
            for s in specs
            if s.name not in present
        ]
        if not new:
            return []
        created = []
        for name, future in self._client.create_topics(
            new, request_timeout=self._timeout
        ).items():
            try:
                future.result()
                created.append(name)
            except KafkaException as exc:
                error = exc.args[0]
                exists = KafkaError.TOPIC_ALREADY_EXISTS
                if isinstance(error, KafkaError) and error.code() == exists:
                    continue  # created concurrently: fine, create is idempotent
                raise TopicError(f"cannot create topic {name}: {error}") from exc
        self._await_visible(created)
        return created

    def _await_visible(self, names: Sequence[str]) -> None:
        """Return once the broker's metadata lists the new topics.

        The controller acknowledges a creation before every broker's metadata
        image has it; a describe right after would report the topic missing.
        """
        deadline = time.monotonic() + self._timeout
        while names and time.monotonic() < deadline:
            if set(names) <= self.existing():
                return
            time.sleep(0.1)
        if names and not set(names) <= self.existing():
            raise TopicError(f"created {', '.join(names)} but the broker does not list them yet")

    @contextmanager
    def scratch(
        self, prefix: str, *, partitions: int = 1, config: Mapping[str, str] | None = None
    ) -> Iterator[str]:
        """A uniquely named throw-away topic, deleted afterwards (smoke runs, tests).

        Deletion is best effort: a failure to delete must not hide the error
        (or the result) of the work done with the topic.
        """
        name = f"{prefix}{uuid.uuid4().hex[:12]}"
        rf = self.catalogue[0].replication_factor if self.catalogue else 1
        future = self._client.create_topics(
            [NewTopic(name, partitions, rf, config=dict(config or {}))],
            request_timeout=self._timeout,
        )[name]
        try:
            future.result()
        except KafkaException as exc:
            raise TopicError(f"cannot create topic {name}: {exc.args[0]}") from exc
        self._await_visible([name])
        try:
            yield name
        finally:
            try:
                self._client.delete_topics([name], request_timeout=self._timeout)[name].result()
            except KafkaException as exc:
                log.warning("could not delete scratch topic %s: %s", name, exc.args[0])

    def describe(self, names: Sequence[str]) -> dict[str, ActualTopic]:
        """Partitions, replication factor and configs of the named topics that exist."""
        metadata = self._client.list_topics(timeout=self._timeout)
        present = [n for n in names if n in metadata.topics]
        if not present:
            return {}
        resources = [ConfigResource(ResourceType.TOPIC, n) for n in present]
        configs = {}
        for resource, future in self._client.describe_configs(
            resources, request_timeout=self._timeout
        ).items():
            try:
                entries = future.result()
            except KafkaException as exc:
                raise TopicError(f"cannot describe topic {resource.name}: {exc}") from exc
            configs[resource.name] = {k: str(v.value) for k, v in entries.items()}
        actual = {}
        for name in present:
            partitions = metadata.topics[name].partitions
            replicas = max((len(p.replicas) for p in partitions.values()), default=0)
            actual[name] = ActualTopic(name, len(partitions), replicas, configs[name])
        return actual

    def report(self, specs: Sequence[TopicSpec] | None = None) -> list[TopicReport]:
        specs = list(specs if specs is not None else self.catalogue)
        try:
            actual = self.describe([s.name for s in specs])
        except KafkaException as exc:
            raise TopicError(f"cannot reach Kafka at {self._bootstrap}: {exc}") from exc
        reports = []
        for spec in specs:
            if spec.name not in actual:
                reports.append(TopicReport(spec, "missing"))
                continue
            problems = tuple(drift(spec, actual[spec.name]))
            reports.append(TopicReport(spec, "drift" if problems else "ok", problems))
        return reports
