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


def _prepared(options: Options) -> object:
    from quoteflow.settings import load_settings
    from streams.core.rules import load_rules
    from streams.replay.driver import Job
    from streams.replay.outputs import Target
    from streams.replay.plan import Prepared
    from streams.replay.reader import Names, PinnedRange
    from streams.replay.sequencer import Span

    names = Names.of("qa.")
    spans = {(names.quotes, 0): Span(0, 120), (names.quotes, 1): Span(5, 98),
             (names.customers, 0): Span(0, 40)}  # fmt: skip
    pinned = PinnedRange(spans, Span(0, 9), options.end.at_ms, options.end.at_ms is None,
                         options.start, options.end)  # fmt: skip
    job = Job(load_settings(), names, pinned, (load_rules(None),), Target(), lanes=options.lanes)
    return Prepared(job, options.name or "n1", options.into == "live")


def test_the_resume_command_pins_the_range_and_keeps_every_choice() -> None:
    from streams.replay.plan import resume_command

    options = Options(start=parse_bound("--from", "2026-12-01T09:00Z"), end=OPEN, name="n1",
                      rules_file=Path("r.toml"), lanes=2)  # fmt: skip
    assert resume_command(options, _prepared(options)) == (  # type: ignore[arg-type]
        "quoteflow replay --name n1 --from 2026-12-01T09:00:00.000Z --to 0=120,1=98 "
        "--rules r.toml --lanes 2 --resume")
    timed = Options(start=OPEN, end=parse_bound("--to", "2026-12-02T00:00Z"), name="n1",
                    into="live")  # fmt: skip
    assert resume_command(timed, _prepared(timed)) == (  # type: ignore[arg-type]
        "quoteflow replay --name n1 --to 2026-12-02T00:00:00.000Z --into live --resume")
    dry = Options(start=OPEN, end=OPEN, name="n1", dry_run=True)
    assert "--resume" not in resume_command(dry, _prepared(dry))  # type: ignore[arg-type]
