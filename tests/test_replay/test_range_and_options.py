"""--from/--to and the option checks: each mistake is one line naming the option, before I/O."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.errors import ReplayError
from streams.replay.plan import Options, check_options, default_name
from streams.replay.range import OPEN, Bound, check_range, parse_bound

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("option", "text", "expected"), [
    ("--from", None, OPEN),
    ("--from", "beginning", OPEN),
    ("--to", "end", OPEN),
    ("--from", "2026-12-01T09:00Z", Bound(at_ms=1_796_115_600_000)),
    ("--from", "2026-12-01T10:00+01:00", Bound(at_ms=1_796_115_600_000)),
    ("--to", "0=12, 1=7", Bound(offsets={0: 12, 1: 7})),
])  # fmt: skip
def test_bounds_parse(option: str, text: str | None, expected: Bound) -> None:
    assert parse_bound(option, text) == expected


@pytest.mark.parametrize(("option", "text", "message"), [
    ("--from", "yesterday", "--from 'yesterday': not a time"),
    ("--to", "beginning", "--to 'beginning': not a time"),
    ("--from", "2026-12-01T09:00", "give the time zone"),
    ("--from", "0=1,0=2", "partition 0 is given twice"),
    ("--to", "0=1,x", "not a time"),
])  # fmt: skip
def test_a_bad_bound_is_named(option: str, text: str, message: str) -> None:
    with pytest.raises(ReplayError, match=message):
        parse_bound(option, text)


def test_bounds_spell_back_as_they_parse() -> None:
    for text in ("2026-12-01T09:00:00.250Z", "0=12,3=7"):
        bound = parse_bound("--to", text)
        assert parse_bound("--to", bound.spelled()) == bound


def test_an_empty_range_is_refused() -> None:
    with pytest.raises(ReplayError, match="is not after"):
        check_range(parse_bound("--from", "2026-12-02T00:00Z"),
                    parse_bound("--to", "2026-12-01T00:00Z"))
    with pytest.raises(ReplayError, match="partition 1 is before"):
        check_range(Bound(offsets={1: 50}), Bound(offsets={1: 10}))


@pytest.mark.parametrize(("changes", "message"), [
    ({"name": "a b"}, "--name 'a b'"),
    ({"name": "../x"}, "--name"),
    ({"lanes": 0}, "--lanes 0"),
    ({"dry_run": True, "into": "live"}, "--dry-run writes nothing"),
    ({"compare_file": Path("b.toml"), "into": "live"}, "never to live"),
    ({"diff_out": Path("d.jsonl")}, "give --compare too"),
    ({"resume": True, "dry_run": True}, "nothing to resume"),
])  # fmt: skip
def test_contradictory_options_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ReplayError, match=message):
        check_options(Options(start=OPEN, end=OPEN, **changes))  # type: ignore[arg-type]


def test_the_default_name_is_a_valid_name() -> None:
    check_options(Options(start=OPEN, end=OPEN, name=default_name()))
