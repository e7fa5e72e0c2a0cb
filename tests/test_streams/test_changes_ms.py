"""The fast readings of ``changes`` (``_ms``, ``_last_commit_lsn``) against their references."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from streams.core import changes
from streams.core.changes import (
    ChangeError,
    _last_commit_lsn,
    _last_commit_lsn_reference,
    _ms,
    _ms_reference,
)

pytestmark = pytest.mark.unit

_SETTINGS = settings(deadline=None, max_examples=600, suppress_health_check=[HealthCheck.too_slow])


def outcome(read: Callable[[str, str], int], text: object) -> tuple[str, object]:
    """What reading ``text`` gives: its value, or the ChangeError's message."""
    try:
        return ("value", read(text, "created_at"))  # type: ignore[arg-type]
    except ChangeError as exc:
        return ("refused", str(exc))


def canonical(instant: datetime) -> str:
    return instant.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


instants = st.datetimes(
    min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59, 999999)
).map(lambda d: d.replace(tzinfo=UTC))
micros = st.sampled_from([0, 1, 999, 1000, 500_000, 999_000, 999_999]) | st.integers(0, 999_999)


@_SETTINGS
@given(instants, micros)
@example(datetime(1970, 1, 1, tzinfo=UTC), 0)
@example(datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC), 999_999)
@example(datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC), 999_999)
@example(datetime(1, 1, 1, tzinfo=UTC), 0)
def test_canonical_texts_read_exactly_as_the_reference(instant: datetime, micro: int) -> None:
    text = canonical(instant.replace(microsecond=micro))
    first = _ms(text, "created_at")  # learns the second
    assert first == _ms_reference(text, "created_at")
    assert _ms(text, "created_at") == first  # and from the cache
    # The claim the fast path rests on: timestamp() is integer microseconds / 10**6.
    delta = instant.replace(microsecond=micro) - datetime(1970, 1, 1, tzinfo=UTC)
    total = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    assert instant.replace(microsecond=micro).timestamp() == total / 1_000_000


@_SETTINGS
@given(instants, st.integers(0, 26), st.characters())
def test_one_character_off_reads_as_the_reference(instant: datetime, at: int, char: str) -> None:
    """Another digit, a non-ASCII digit, a NUL, a month 13: same value or same refusal,
    whether the second was learned from a good text first or not."""
    good = canonical(instant)
    bad = good[:at] + char + good[at + 1 :]
    assert outcome(_ms, bad) == outcome(_ms_reference, bad)
    _ms(good, "created_at")
    assert outcome(_ms, bad) == outcome(_ms_reference, bad)


_ZONED_SHAPES = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{0,9})?(Z|[+-][0-9]{2}:[0-9]{2})?"
)
_ANY = (
    st.text()
    | st.from_regex(_ZONED_SHAPES, fullmatch=True)
    | st.builds(lambda i, tail: canonical(i)[:19] + tail, instants, st.text(max_size=10))
)


@_SETTINGS
@given(_ANY)
def test_any_string_reads_as_the_reference(text: str) -> None:
    assert outcome(_ms, text) == outcome(_ms_reference, text)


@pytest.mark.parametrize("value", [None, 17, b"2026-11-23T10:00:00.000000Z", ["x"], 1.5])
def test_not_a_string_is_refused_alike(value: object) -> None:
    assert outcome(_ms, value)[0] == "refused"
    assert outcome(_ms, value) == outcome(_ms_reference, value)


def test_the_cache_of_seconds_stays_bounded() -> None:
    start = datetime(2026, 11, 23, tzinfo=UTC)
    for n in range(changes._SECONDS_MAX + 10):
        text = canonical(start + timedelta(seconds=n, microseconds=n))
        assert _ms(text, "updated_at") == _ms_reference(text, "updated_at")
    assert 0 < len(changes._SECONDS) <= changes._SECONDS_MAX


def lsn_outcome(read: Callable[[object], int], sequence: object) -> tuple[str, object]:
    try:
        return ("value", read(sequence))
    except ChangeError as exc:
        return ("refused", str(exc))


_LSNS = st.integers(0, 2**64).map(str) | st.text(max_size=4)
_ELEMENTS = _LSNS.map(lambda t: f'"{t}"') | st.just("null")
_SEQUENCES = (
    st.builds(lambda a, b, gap: f"[{a}{gap},{gap}{b}]", _ELEMENTS, _ELEMENTS,
              st.sampled_from(["", " ", '"', ","]))
    | st.text(alphabet='[]",0123456789 null\u0663', max_size=12)
    | st.text()
)


@_SETTINGS
@given(_SEQUENCES)
@example('["101005","101010"]')
@example('[null,"5"]')
@example('["","1"]')
@example('["\u0663","1"]')
@example('["1" ,"2"]')
def test_last_commit_lsn_reads_as_the_reference(sequence: str) -> None:
    assert lsn_outcome(_last_commit_lsn, sequence) == lsn_outcome(
        _last_commit_lsn_reference, sequence)


@pytest.mark.parametrize("value", [None, 17, b'["1","2"]', ["1"]])
def test_a_sequence_not_a_string_is_refused_alike(value: object) -> None:
    assert lsn_outcome(_last_commit_lsn, value) == lsn_outcome(_last_commit_lsn_reference, value)
