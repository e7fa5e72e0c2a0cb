"""The faust/aiokafka patches (streams.faust_patches): each one's premise, checked against the
installed libraries, so an upgrade that changes what a patch relies on fails here first.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import tomllib
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiokafka
import faust
import pytest
from faust.transport.consumer import Consumer as FaustConsumer
from faust.transport.consumer import TransactionManager
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import TP
from intervaltree import IntervalTree

from quoteflow.errors import QuoteflowError
from quoteflow.settings import load_settings
from streams import faust_patches
from streams.app import create_app
from streams.faust_patches import FaustVersionError, apply_patches, check_versions, original
from streams.transactions import SourceTransactionManager, _contiguous_new_offset

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PATCHED = [(FaustConsumer, "_new_offset"), (AIOKafkaConsumerThread, "_create_worker_consumer"),
           (AIOKafkaConsumerThread, "_highwaters")]  # fmt: skip
MakeApp = Callable[..., faust.App]


@pytest.fixture(autouse=True)
def unpatched(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever a test patches is faust's own again after it (monkeypatch restores it)."""
    for owner, name in PATCHED:
        monkeypatch.setattr(owner, name, owner.__dict__[name])


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[MakeApp]:
    """faust apps on an event loop of the test's, closed after it (faust would make its own)."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)  # what mode's services ask for when given none
    apps: list[faust.App] = []

    def make(guarantee: str = "exactly_once") -> faust.App:
        settings = load_settings(streams={"data_dir": tmp_path,
                                          "processing_guarantee": guarantee})  # fmt: skip
        app = create_app(settings, app_id="patch-probe")
        app.loop = loop
        apps.append(app)
        return app

    yield make
    for app in apps:
        if app._consumer is not None:  # its thread's own loop, never started here
            app._consumer._thread.thread_loop.close()
    asyncio.set_event_loop(None)
    loop.close()


def _params(function: Any) -> list[str]:
    return list(inspect.signature(function).parameters)


# -- versions -------------------------------------------------------------------------------
def test_the_versions_checked_are_pyprojects_pins() -> None:
    pins = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for name, (low, high) in faust_patches.WRITTEN_FOR.items():
        pattern = rf"{re.escape(name)}(\[[^\]]*\])?>={re.escape(low)},<{re.escape(high)}"
        assert [p for p in pins if re.fullmatch(pattern, p)], f"{name}: no pin >={low},<{high}"


def test_the_installed_versions_pass() -> None:
    check_versions()


def test_another_version_stops_the_worker_with_one_line() -> None:
    versions = {"faust-streaming": "0.16.0", "aiokafka": "0.14.0"}
    with pytest.raises(FaustVersionError) as caught:
        check_versions(versions.__getitem__)
    assert isinstance(caught.value, QuoteflowError)  # the CLI prints it, no traceback
    message = str(caught.value)
    assert "\n" not in message
    assert "faust-streaming 0.16.0 is installed" in message and ">=0.15.3,<0.16" in message
    with pytest.raises(FaustVersionError, match=r"aiokafka 0\.13\.9 is installed"):
        check_versions({"faust-streaming": "0.15.4", "aiokafka": "0.13.9"}.__getitem__)
    with pytest.raises(FaustVersionError, match=r"0\.16\.0rc1"):
        check_versions({"faust-streaming": "0.16.0rc1", "aiokafka": "0.14.0"}.__getitem__)


def test_a_missing_library_is_one_line_too() -> None:
    def installed(name: str) -> str:
        raise faust_patches.metadata.PackageNotFoundError(name)

    with pytest.raises(FaustVersionError, match="faust-streaming is not installed"):
        check_versions(installed)


def test_apply_checks_the_versions_first(
    make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(faust_patches.metadata, "version", lambda name: "9.9")
    with pytest.raises(FaustVersionError):
        apply_patches(make_app(), fetch_max_wait_ms=100, changelog_sources={})
    assert FaustConsumer._new_offset is original(FaustConsumer, "_new_offset")  # untouched


# -- Consumer._new_offset ----------------------------------------------------------------------
def _books(acked: list[int], gap: tuple[int, int], committed: int | None) -> Any:
    tp = TP("t", 0)
    books = SimpleNamespace(
        _acked=defaultdict(list, {tp: list(acked)}), _acked_index=defaultdict(set),
        _gap=defaultdict(IntervalTree), _committed_offset=defaultdict(lambda: None),
        _read_offset=defaultdict(lambda: None),
    )  # fmt: skip
    books._gap[tp].addi(*gap)
    books._committed_offset[tp] = committed
    return books, tp


def test_new_offset_keeps_its_signature_and_bookkeeping(make_app: MakeApp) -> None:
    assert _params(original(FaustConsumer, "_new_offset")) == ["self", "tp"]
    consumer = make_app().consumer
    tp = TP("t", 0)
    # The books the replacement reads and updates, as faust keeps them.
    assert isinstance(consumer._acked[tp], list)
    assert isinstance(consumer._acked_index[tp], set)
    assert isinstance(consumer._gap[tp], IntervalTree)
    assert consumer._committed_offset[tp] is None
    assert consumer._read_offset[tp] is None


def test_faust_new_offset_still_stops_at_the_record_that_revealed_a_marker() -> None:
    """Records 0-3, a transaction marker at 4, records 5-7: faust records the gap [4, 6) (the
    marker and the record after it) and then stops at the repeated 5; the patch's premise."""
    books, tp = _books([0, 1, 2, 3, 5, 6, 7], (4, 6), committed=None)
    assert original(FaustConsumer, "_new_offset")(books, tp) == 6
    books, tp = _books([0, 1, 2, 3, 5, 6, 7], (4, 6), committed=None)
    assert _contiguous_new_offset(books, tp) == 8


def test_new_offset_patch_is_idempotent_and_process_wide(make_app: MakeApp) -> None:
    own = original(FaustConsumer, "_new_offset")
    faust_patches.patch_new_offset()
    faust_patches.patch_new_offset()
    assert FaustConsumer._new_offset is _contiguous_new_offset
    assert original(FaustConsumer, "_new_offset") is own
    assert type(make_app().consumer)._new_offset is _contiguous_new_offset


# -- AIOKafkaConsumerThread._create_worker_consumer ------------------------------------------------
def _worker_consumer(app: faust.App) -> tuple[aiokafka.AIOKafkaConsumer, int]:
    async def create() -> tuple[aiokafka.AIOKafkaConsumer, int]:
        consumer = app.consumer._thread._create_worker_consumer(app.transport)
        wait: int = consumer._fetch_max_wait_ms
        await consumer.stop()
        return consumer, wait

    result: tuple[aiokafka.AIOKafkaConsumer, int] = app.loop.run_until_complete(create())
    return result


def test_the_worker_consumer_is_aiokafkas_with_faust_fixed_fetch_wait(make_app: MakeApp) -> None:
    assert _params(original(AIOKafkaConsumerThread, "_create_worker_consumer")) == [
        "self", "transport"]  # fmt: skip
    consumer, wait = _worker_consumer(make_app())
    assert isinstance(consumer, aiokafka.AIOKafkaConsumer)
    assert wait == 1500
    # aiokafka hands the attribute to the Fetcher it makes at start(): setting it before
    # start() is what changes the fetch wait.
    assert "fetch_max_wait_ms=self._fetch_max_wait_ms" in inspect.getsource(
        aiokafka.AIOKafkaConsumer.start)  # fmt: skip


def test_fetch_wait_patch_sets_the_wait_and_never_wraps_itself(make_app: MakeApp) -> None:
    faust_patches.patch_fetch_wait(250)
    faust_patches.patch_fetch_wait(100)
    patched = AIOKafkaConsumerThread._create_worker_consumer
    assert patched.__wrapped__ is original(AIOKafkaConsumerThread, "_create_worker_consumer")
    _, wait = _worker_consumer(make_app())
    assert wait == 100


# -- AIOKafkaConsumerThread._highwaters ----------------------------------------------------------
class _FakeAIOKafka:
    """An aiokafka consumer's two answers: the last fetch's stable offset, the broker's end."""

    def last_stable_offset(self, tp: TP) -> int | None:
        return None  # not fetched since assigned

    async def end_offsets(self, partitions: list[TP]) -> Mapping[TP, int]:
        return {tp: 42 for tp in partitions}


def _highwaters(thread_method: Any, in_transaction: bool) -> Mapping[TP, int | None]:
    thread = SimpleNamespace(_ensure_consumer=lambda: _FakeAIOKafka(),
                             consumer=SimpleNamespace(in_transaction=in_transaction))  # fmt: skip
    result: Mapping[TP, int | None] = asyncio.run(thread_method(thread, [TP("c", 0)]))
    return result


def test_faust_highwaters_under_transactions_is_the_last_fetchs_stable_offset() -> None:
    own = original(AIOKafkaConsumerThread, "_highwaters")
    assert inspect.iscoroutinefunction(own) and _params(own) == ["self", "partitions"]
    assert callable(AIOKafkaConsumerThread._ensure_consumer)
    assert inspect.iscoroutinefunction(aiokafka.AIOKafkaConsumer.end_offsets)
    assert _highwaters(own, in_transaction=True) == {TP("c", 0): None}  # the patch's premise
    assert _highwaters(own, in_transaction=False) == {TP("c", 0): 42}


def test_highwaters_patch_asks_the_broker() -> None:
    faust_patches.patch_highwaters()
    faust_patches.patch_highwaters()
    assert _highwaters(AIOKafkaConsumerThread._highwaters, in_transaction=True) == {
        TP("c", 0): 42}  # fmt: skip
    assert original(AIOKafkaConsumerThread, "_highwaters") is not (
        AIOKafkaConsumerThread._highwaters)  # fmt: skip


# -- transport.TransactionManager --------------------------------------------------------------
def test_transaction_manager_hooks_keep_their_signatures() -> None:
    assert _params(TransactionManager.send) == [
        "self", "topic", "key", "value", "partition", "timestamp", "headers", "transactional_id"]
    assert _params(TransactionManager.on_rebalance) == [
        "self", "assigned", "revoked", "newly_assigned"]  # fmt: skip
    assert _params(TransactionManager._tps_to_transactional_ids) == ["self", "tps"]
    assert _params(TransactionManager._stop_transactions) == ["self", "tids"]
    from faust.transport.drivers.aiokafka import Producer

    assert isinstance(Producer._transaction_producers, dict)


def test_the_app_makes_its_transaction_manager_from_the_transport(make_app: MakeApp) -> None:
    app = make_app()
    faust_patches.use_source_transactions(app, {"x-changelog": "x"})
    faust_patches.use_source_transactions(app, {"x-changelog": "x"})
    manager = app.transport.create_transaction_manager(
        consumer=app.consumer, producer=app.producer, beacon=app.beacon, loop=None)
    assert isinstance(manager, SourceTransactionManager)
    assert manager.changelog_sources == {"x-changelog": "x"}
    assert faust.App is type(app) and TransactionManager in type(manager).__mro__


def test_apply_under_at_least_once_leaves_transactions_and_ends_alone(make_app: MakeApp) -> None:
    app = make_app("at_least_once")
    apply_patches(app, fetch_max_wait_ms=100, changelog_sources={})
    assert app.transport.TransactionManager is TransactionManager
    assert AIOKafkaConsumerThread._highwaters is original(AIOKafkaConsumerThread, "_highwaters")
    assert FaustConsumer._new_offset is _contiguous_new_offset
    app = make_app()
    apply_patches(app, fetch_max_wait_ms=100, changelog_sources={})
    assert issubclass(app.transport.TransactionManager, SourceTransactionManager)
    assert AIOKafkaConsumerThread._highwaters is faust_patches._committed_highwaters
