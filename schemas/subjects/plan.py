"""Which subjects the registry must hold, and how it differs from the repository: pure logic.

Subjects follow Confluent's TopicNameStrategy (``<topic>-key``, ``<topic>-value``),
which is what our serde, Debezium's Avro converter and Kafka Connect use by
default. Each subject gets the versions of its schema in the repository,
oldest first, and the compatibility level ``python -m schemas.compat``
enforces (BACKWARD_TRANSITIVE), so the registry refuses what CI would refuse.

The rules, applied per subject:

* Register only versions *newer* than the newest repository version the
  registry already has. Registering an older one would make it the subject's
  latest (a registry appends versions), so ``v1`` missing under a subject that
  has ``v2`` is reported, never fixed by registering it.
* A registry whose latest version is not in the repository (registered from
  another branch, or by hand) is drift that a person must look at: ``register``
  leaves that subject alone and ``check`` fails.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from quoteflow.topics.catalog import CATALOGUE, TopicSpec
from schemas.catalog import SchemaVersion

#: What `python -m schemas.compat` checks: every new version against all earlier ones.
COMPATIBILITY = "BACKWARD_TRANSITIVE"

State = Literal["ok", "missing", "behind", "drift"]


@dataclass(frozen=True)
class Subject:
    """One registry subject: where its records go, and which catalogue schema they use."""

    name: str
    topic: str
    is_key: bool
    schema: str


def subjects(catalogue: Iterable[TopicSpec] = CATALOGUE) -> list[Subject]:
    """Every subject of the topic catalogue (string keys have none)."""
    found = []
    for spec in catalogue:
        if spec.key_schema is not None:
            found.append(Subject(f"{spec.name}-key", spec.name, True, spec.key_schema))
        found.append(Subject(f"{spec.name}-value", spec.name, False, spec.value_schema))
    return found


@dataclass(frozen=True)
class Registered:
    """One version the registry holds under a subject."""

    version: int
    schema_id: int
    text: str


@dataclass(frozen=True)
class Comparison:
    """A subject as the registry has it, against the repository's versions."""

    subject: Subject
    repository: tuple[SchemaVersion, ...]  # oldest first
    registered: tuple[Registered, ...]  # oldest first; empty: unknown subject
    compatibility: str | None  # the subject's own level; None: not set

    def match(self, entry: Registered) -> SchemaVersion | None:
        """The repository version whose schema ``entry`` is, if any."""
        parsed = _parse(entry.text)
        return next((v for v in self.repository if v.raw == parsed), None)

    @property
    def latest_registered(self) -> tuple[Registered, SchemaVersion | None] | None:
        if not self.registered:
            return None
        entry = self.registered[-1]
        return entry, self.match(entry)

    @property
    def foreign(self) -> bool:
        """The registry's latest version is not in the repository."""
        latest = self.latest_registered
        return latest is not None and latest[1] is None

    def to_register(self) -> list[SchemaVersion]:
        """The repository versions to register, in order (none when :attr:`foreign`)."""
        if self.foreign:
            return []
        present = {m.version for m in map(self.match, self.registered) if m is not None}
        newest = max(present, default=0)
        return [v for v in self.repository if v.version > newest]

    def skipped(self) -> list[SchemaVersion]:
        """Repository versions older than the newest registered one that the registry lacks."""
        present = {m.version for m in map(self.match, self.registered) if m is not None}
        newest = max(present, default=0)
        return [v for v in self.repository if v.version < newest and v.version not in present]

    @property
    def state(self) -> State:
        latest = self.latest_registered
        if latest is None:
            return "missing"
        if latest[1] is None:
            return "drift"
        if latest[1].version < self.repository[-1].version:
            # Behind, unless a newer version is registered already and an older one
            # sits on top of it: registering cannot fix that, a person must.
            return "behind" if self.to_register() else "drift"
        return "ok" if self.compatibility == COMPATIBILITY else "drift"

    def problems(self) -> list[str]:
        """Why the state is not ok, in words that say what to do."""
        problems = []
        latest = self.latest_registered
        current = self.repository[-1]
        if latest is None:
            problems.append("not registered: run `quoteflow schemas register`")
        elif latest[1] is None:
            entry = latest[0]
            problems.append(
                f"the registry's latest version {entry.version} (id {entry.schema_id}) is no"
                f" version of {current.name} in this repository: registered from elsewhere?"
            )
        elif latest[1].version < current.version and not self.to_register():
            problems.append(
                f"the registry's latest is v{latest[1].version} (id {latest[0].schema_id}),"
                " registered again on top of a newer version: a person must decide"
            )
        elif latest[1].version < current.version:
            problems.append(
                f"the registry's latest is v{latest[1].version}, the repository's"
                f" v{current.version}: run `quoteflow schemas register`"
            )
        if latest is not None and self.compatibility != COMPATIBILITY:
            problems.append(
                f"compatibility is {self.compatibility or 'not set (global default)'},"
                f" not {COMPATIBILITY}: run `quoteflow schemas register`"
            )
        return problems

    def describe_registry(self) -> str:
        latest = self.latest_registered
        if latest is None:
            return "-"
        entry, version = latest
        name = f"v{version.version}" if version is not None else f"version {entry.version}?"
        return f"{name} (id {entry.schema_id})"


def _parse(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None  # not JSON: matches no repository version


def summary(comparisons: Sequence[Comparison]) -> dict[State, int]:
    counts: dict[State, int] = {"ok": 0, "missing": 0, "behind": 0, "drift": 0}
    for comparison in comparisons:
        counts[comparison.state] += 1
    return counts
