"""Every patch of faust's and aiokafka's private internals, applied in one place, version-checked.

The processor (and the benchmark's faust forwarder, built like it) replaces four
private pieces of faust-streaming and aiokafka. They are private: a minor release
may rename them or change what they do, and a patch that silently stops applying
(or applies to code that changed under it) breaks exactly-once without a word.
So they are applied here only, by :func:`apply_patches`, after
:func:`check_versions` made sure the installed faust-streaming and aiokafka are
the versions the patches were written for (pyproject's pins), and each has a
unit test (``tests/test_streams/test_faust_patches.py``) that fails when the
behaviour it relies on changes.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from importlib import metadata
from typing import Any

import faust
from faust.transport.consumer import Consumer as FaustConsumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import TP
from faust.types.enums import ProcessingGuarantee

from quoteflow.errors import QuoteflowError
from streams.transactions import SourceTransactionManager, _contiguous_new_offset

#: Distribution -> (lowest, first excluded) version the patches were written for: the
#: pins of pyproject.toml (a unit test keeps the two equal).
WRITTEN_FOR: Mapping[str, tuple[str, str]] = {
    "faust-streaming": ("0.15.3", "0.16"),
    "aiokafka": ("0.14", "0.15"),
}

#: (owner, attribute) -> the library's own value, kept at the first patch (for the tests,
#: and so that patching twice never wraps a patch).
_ORIGINALS: dict[tuple[type, str], Any] = {}


class FaustVersionError(QuoteflowError):
    """The installed faust-streaming or aiokafka is not a version the patches were written for."""


def check_versions(installed: Callable[[str], str] | None = None) -> None:
    """Raise :class:`FaustVersionError` (one line) unless every patched library is in its range.

    ``installed``: distribution name -> its installed version (importlib.metadata's).
    """
    for name, (low, high) in WRITTEN_FOR.items():
        try:
            version = (installed or metadata.version)(name)
        except metadata.PackageNotFoundError:
            raise FaustVersionError(
                f"{name} is not installed; the stream processor needs {name}>={low},<{high}"
                " (make install)"
            ) from None
        if not _release(low) <= _release(version) < _release(high):
            raise FaustVersionError(
                f"{name} {version} is installed, but the stream processor patches its private"
                f" internals as written for {name}>={low},<{high} (streams/faust_patches.py):"
                f" install that range (make install), or check each patch against {version}"
                " and move the pins"
            )


def _release(version: str) -> tuple[int, ...]:
    """A version's numeric release ("0.15.3" -> (0, 15, 3); "0.16.0rc1" -> (0, 16, 0))."""
    match = re.match(r"\d+(?:\.\d+)*", version)
    return tuple(int(part) for part in match.group(0).split(".")) if match else ()


def original(owner: type, name: str) -> Any:
    """The library's own ``owner.name``, whether or not it is patched now."""
    return _ORIGINALS.get((owner, name), owner.__dict__[name])


def _replace(owner: type, name: str, replacement: Any) -> None:
    _ORIGINALS.setdefault((owner, name), owner.__dict__[name])
    setattr(owner, name, replacement)


# -- the patches --------------------------------------------------------------------------
def patch_new_offset() -> None:
    """faust's ``Consumer._new_offset`` stops at the first repeated offset, so a commit passed
    one transaction marker at a time; quoteflow's commits past all of them at once
    (:func:`streams.transactions._contiguous_new_offset`), under any guarantee."""
    _replace(FaustConsumer, "_new_offset", _contiguous_new_offset)


def patch_fetch_wait(max_wait_ms: int) -> None:
    """Let faust's consumers wait at most ``max_wait_ms`` for a fetch (faust fixes 1,500).

    A read_committed fetch waiting in the broker for data is not woken when a
    transaction commit makes records below it readable; it returns only when its
    wait runs out. With faust's 1.5 s, a trigger's decision could wait that long
    for the changes and markers routed before it: detection latency swung
    between ~0.15 s and ~1.2 s from run to run. Fetches every 100 ms when idle
    cost the broker nothing worth counting.
    """
    create = original(AIOKafkaConsumerThread, "_create_worker_consumer")

    @functools.wraps(create)
    def create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = create(self, transport)
        consumer._fetch_max_wait_ms = max_wait_ms  # read by its Fetcher, made at start()
        return consumer

    _replace(AIOKafkaConsumerThread, "_create_worker_consumer", create_worker_consumer)


async def _committed_highwaters(self: Any, partitions: list[TP]) -> Mapping[TP, int]:
    """The end of each changelog partition as a read_committed reader sees it, asked of the
    broker. faust's own answer under exactly-once is the last stable offset *of the last
    fetch*, which for a partition this worker has not fetched since it got it is unknown
    (None, taken as -1): its table recovery then refused any partition whose local copy
    had a persisted offset (``ConsistencyError``), as a worker taking over the partitions
    of a killed one does."""
    consumer = self._ensure_consumer()
    offsets: Mapping[TP, int] = await consumer.end_offsets(partitions)
    return offsets


def patch_highwaters() -> None:
    """Table recovery reads the changelogs' read_committed ends from the broker
    (:func:`_committed_highwaters`)."""
    _replace(AIOKafkaConsumerThread, "_highwaters", _committed_highwaters)


def use_source_transactions(app: faust.App, changelog_sources: Mapping[str, str]) -> None:
    """Make ``app`` use :class:`~streams.transactions.SourceTransactionManager`: every send
    joins the transaction of the input that caused it (faust's picks the target's).

    ``changelog_sources``: each table's changelog topic -> the topic its writes come from.
    """
    manager = type(
        "AppTransactionManager", (SourceTransactionManager,),
        {"changelog_sources": dict(changelog_sources)},
    )  # fmt: skip
    app.transport.TransactionManager = manager  # type: ignore[misc]  # this app's only


def apply_patches(app: faust.App, *, fetch_max_wait_ms: int,
                  changelog_sources: Mapping[str, str]) -> None:  # fmt: skip
    """Check the versions, then patch for ``app`` (before its worker starts); idempotent.

    The transaction manager and the committed ends matter under exactly-once only,
    and are left as faust has them otherwise.
    """
    check_versions()
    patch_new_offset()
    patch_fetch_wait(fetch_max_wait_ms)
    guarantee: Any = app.conf.processing_guarantee  # typed by faust as its setting's parser
    if guarantee == ProcessingGuarantee.EXACTLY_ONCE:
        use_source_transactions(app, changelog_sources)
        patch_highwaters()


__all__ = [
    "WRITTEN_FOR",
    "FaustVersionError",
    "apply_patches",
    "check_versions",
    "original",
    "patch_fetch_wait",
    "patch_highwaters",
    "patch_new_offset",
    "use_source_transactions",
]
