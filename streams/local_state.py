"""Whose local table state is this? Checked before faust opens a store, never adopted blindly.

faust keeps a table's RocksDB files (one per partition) and, inside each, the
offset of the last changelog record it holds, but nothing says *which*
changelog that offset belongs to. A worker of another app id on the same data
directory, or one whose changelog topic was deleted and created again, took the
files as its own: it decided with another pipeline's customers and offered
flags, or, when the stored offset lay beyond the new changelog's end, crashed
in recovery with ``ConsistencyError``.

So every table directory gets a small manifest naming the app, the changelog
topic and that topic's id (the broker's topic UUID: a topic created again gets
a new one). Before the worker starts, a store whose manifest does not match,
that has none, or whose persisted offset lies at or beyond its changelog's
committed end is deleted; faust then rebuilds it from the changelog, the only
state that ever committed. The decision is :func:`judge` (pure); the rest of
the module reads and writes the disk and asks the broker.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from confluent_kafka import (
    Consumer,
    IsolationLevel,
    KafkaError,
    KafkaException,
    TopicCollection,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, OffsetSpec

from quoteflow.errors import TopicError
from quoteflow.settings import Settings

log = logging.getLogger("quoteflow.streams.state")

#: faust's key for a store's last persisted changelog offset (faust/stores/rocksdb.py).
OFFSET_KEY = b"__faust\0offset__"


@dataclass(frozen=True)
class StoreIdentity:
    """What a table's local files are a copy of."""

    app_id: str
    changelog: str
    topic_id: str


@dataclass(frozen=True)
class Verdict:
    """Which partitions' local files to delete before the worker starts, and why."""

    discard: frozenset[int]
    reason: str = ""


def judge(recorded: StoreIdentity | None, current: StoreIdentity,
          persisted: Mapping[int, int | None], ends: Mapping[int, int],
          uncommitted: frozenset[int] = frozenset()) -> Verdict:  # fmt: skip
    """Keep a partition's files only if they are a copy of this app's current changelog
    and hold nothing beyond its committed end, nor any write that never committed.

    ``persisted``: each partition with local files -> the changelog offset stored in them
    (None: none yet). ``ends``: each changelog partition's committed end offset (the next
    offset a read_committed reader would get); a partition missing there no longer exists.
    ``uncommitted``: partitions whose persisted offset names a record a read_committed
    reader does not see (its transaction aborted, or it was compacted away).
    """
    present = frozenset(persisted)
    if not present:
        return Verdict(frozenset())
    if recorded is None:
        return Verdict(present, "no manifest: whose state it is is unknown")
    if recorded.app_id != current.app_id:
        return Verdict(present, f"state of app {recorded.app_id!r}, not {current.app_id!r}")
    if recorded.changelog != current.changelog:
        return Verdict(present, f"state of changelog {recorded.changelog!r}")
    if recorded.topic_id != current.topic_id:
        return Verdict(present, "the changelog topic was deleted and created again")
    beyond = frozenset(
        p for p, offset in persisted.items()
        if p not in ends or (offset is not None and offset >= ends[p])
    )  # fmt: skip
    if beyond:
        return Verdict(beyond, "persisted offset beyond the changelog's committed end")
    # A table write reaches RocksDB when it is made, and faust stores the changelog
    # offset once the broker has the record — before its transaction commits. A worker
    # that stopped, cleanly or not, while its last transaction did not commit left
    # writes the changelog never had (an offer recorded that never went out).
    aborted = uncommitted & present
    if aborted:
        return Verdict(frozenset(aborted), "it holds writes whose transaction never committed")
    return Verdict(frozenset())


# -- the disk -----------------------------------------------------------------------------
def manifest_path(tabledir: Path, table: str) -> Path:
    return tabledir / f"{table}.manifest.json"


def partition_files(tabledir: Path, table: str) -> dict[int, Path]:
    """The table's partition stores on disk (faust names them ``<table>-<partition>.db``)."""
    found: dict[int, Path] = {}
    for path in tabledir.glob(f"{table}-*.db"):
        suffix = path.name[len(table) + 1 : -len(".db")]
        if suffix.isdigit():
            found[int(suffix)] = path
    return found


def read_manifest(tabledir: Path, table: str) -> StoreIdentity | None:
    """The recorded identity, or None when there is none or it cannot be read."""
    try:
        data = json.loads(manifest_path(tabledir, table).read_text())
        return StoreIdentity(str(data["app_id"]), str(data["changelog"]), str(data["topic_id"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_manifest(tabledir: Path, table: str, identity: StoreIdentity) -> None:
    """Written whole or not at all (a crash mid-write must not leave half a manifest)."""
    tabledir.mkdir(parents=True, exist_ok=True)
    path = manifest_path(tabledir, table)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(asdict(identity), sort_keys=True) + "\n")
    partial.replace(path)


def read_persisted_offset(store: Path) -> int | None:
    """faust's persisted changelog offset in one partition store (opened read-only).

    A store that cannot be opened counts as holding an offset beyond any end: it is
    rebuilt rather than trusted.
    """
    from rocksdict import AccessType, Options, Rdict

    try:
        db = Rdict(str(store), Options(raw_mode=True), access_type=AccessType.read_only())
    except Exception:  # noqa: BLE001 - a broken store is rebuilt, whatever broke it
        return 2**62
    try:
        raw = db.get(OFFSET_KEY)
    finally:
        db.close()
    return int(raw) if raw is not None else None


def discard(store: Path) -> None:
    shutil.rmtree(store, ignore_errors=True)


# -- the broker ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Changelog:
    """A changelog topic as the broker has it now."""

    topic_id: str
    ends: Mapping[int, int]  # partition -> committed end offset


def describe_changelogs(settings: Settings, topics: list[str]) -> dict[str, Changelog]:
    """Each topic's id and committed (read_committed) end offsets, asked of the broker.

    Retried while the broker answers with a transient error: a changelog declared a
    moment ago may have no partition leader yet (``NOT_LEADER_FOR_PARTITION``).
    """
    admin = AdminClient({**settings.kafka.as_librdkafka_dict(), "client.id": "quoteflow-streams"})
    timeout = settings.topics.request_timeout_s
    deadline = time.monotonic() + timeout
    while True:
        try:
            return _describe(admin, topics, timeout)
        except KafkaException as exc:
            error = exc.args[0]
            transient = isinstance(error, KafkaError) and (error.retriable() or error.code() in (
                KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
                KafkaError.UNKNOWN_TOPIC_OR_PART))  # fmt: skip
            if not transient or time.monotonic() > deadline:
                raise TopicError(f"cannot describe the changelog topics {', '.join(topics)}: "
                                 f"{error}") from None  # fmt: skip
            time.sleep(0.2)


def _describe(admin: AdminClient, topics: list[str], timeout: float) -> dict[str, Changelog]:
    described = {name: future.result() for name, future in admin.describe_topics(
        TopicCollection(topics), request_timeout=timeout).items()}  # fmt: skip
    latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
    specs = {TopicPartition(name, p.id): latest
             for name, d in described.items() for p in d.partitions}  # fmt: skip
    listed = admin.list_offsets(specs, isolation_level=IsolationLevel.READ_COMMITTED,
                                request_timeout=timeout)  # fmt: skip
    ends: dict[str, dict[int, int]] = {name: {} for name in topics}
    for tp, future in listed.items():
        ends[tp.topic][tp.partition] = future.result().offset
    return {name: Changelog(str(d.topic_id), ends[name]) for name, d in described.items()}


def invisible_records(settings: Settings, topic: str, offsets: Mapping[int, int],
                      timeout_s: float = 15.0) -> frozenset[int]:  # fmt: skip
    """The partitions of ``topic`` whose record at ``offsets[partition]`` a read_committed
    reader does not get (it reads on past it): one short fetch per partition.

    A partition not answered within ``timeout_s`` counts as invisible: its local state is
    rebuilt rather than trusted.
    """
    if not offsets:
        return frozenset()
    consumer = Consumer({
        **settings.kafka.as_librdkafka_dict(), "group.id": "quoteflow-state-check",
        "enable.auto.commit": False, "isolation.level": "read_committed",
        "enable.partition.eof": True,
    })  # fmt: skip
    unknown = dict(offsets)
    invisible: set[int] = set()
    try:
        consumer.assign([TopicPartition(topic, p, offset) for p, offset in offsets.items()])
        deadline = time.monotonic() + timeout_s
        while unknown and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            partition = None if message is None else message.partition()
            if message is None or partition is None or partition not in unknown:
                continue
            error = message.error()
            if error is not None and error.code() != KafkaError._PARTITION_EOF:
                continue
            # The first record read from the persisted offset, or the end: either it is
            # the record itself, or the reader skipped it.
            if error is not None or message.offset() != unknown[partition]:
                invisible.add(partition)
            del unknown[partition]
    finally:
        consumer.close()
    return frozenset(invisible | set(unknown))


def prepare_tables(settings: Settings, tabledir: Path, app_id: str,
                   changelogs: Mapping[str, str]) -> list[Verdict]:  # fmt: skip
    """Delete every local store that is not a trustworthy copy of its changelog, and record
    whose the directory is. Call before the worker starts (faust then opens the stores).

    ``changelogs``: table name -> its changelog topic (which must exist).
    """
    facts = describe_changelogs(settings, sorted(changelogs.values()))
    verdicts = []
    for table, topic in sorted(changelogs.items()):
        current = StoreIdentity(app_id, topic, facts[topic].topic_id)
        files = partition_files(tabledir, table)
        persisted = {p: read_persisted_offset(path) for p, path in files.items()}
        ends = facts[topic].ends
        checkable = {p: offset for p, offset in persisted.items()
                     if offset is not None and p in ends and offset < ends[p]}  # fmt: skip
        uncommitted = invisible_records(settings, topic, checkable)
        verdict = judge(read_manifest(tabledir, table), current, persisted, ends, uncommitted)
        if verdict.discard:
            log.warning(
                "local table state discarded, rebuilding it from the changelog",
                extra={"table": table, "changelog": topic, "reason": verdict.reason,
                       "partitions": sorted(verdict.discard)},
            )  # fmt: skip
            for partition in verdict.discard:
                discard(files[partition])
        write_manifest(tabledir, table, current)
        verdicts.append(verdict)
    return verdicts


__all__ = [
    "Changelog",
    "StoreIdentity",
    "Verdict",
    "discard",
    "invisible_records",
    "judge",
    "partition_files",
    "prepare_tables",
    "read_manifest",
    "read_persisted_offset",
    "write_manifest",
]
