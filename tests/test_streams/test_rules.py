"""The marketing rules file: loading, validation messages, and each rule as a function."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.core.rules import DEFAULT_RULES, RulesError, email_problem, load_rules

from .core_helpers import customer, quote, rules

pytestmark = pytest.mark.unit


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def test_the_shipped_rules_file_loads() -> None:
    shipped = load_rules()
    assert shipped.version and shipped.offers
    assert DEFAULT_RULES.name == "rules.toml"


def test_delay_most_specific_first() -> None:
    shipped = load_rules()
    assert shipped.delay_ms("MOTOR-COMP", "BROKER") == 120 * 60_000
    assert shipped.delay_ms("MOTOR-COMP", "WEB") == 30 * 60_000
    assert shipped.delay_ms("HOME-BUILDINGS", "WEB") == 60 * 60_000


def test_cached_answers_are_per_rules_and_not_part_of_them() -> None:
    shipped = load_rules()
    assert shipped.delay_ms("MOTOR-COMP", "BROKER") == shipped.delay_ms("MOTOR-COMP", "BROKER")
    assert shipped == load_rules() and hash(shipped) == hash(load_rules())
    assert "_delays" not in shipped.model_dump()
    quicker = shipped.model_copy(update={"delay": shipped.delay.model_copy(
        update={"override": ()})})  # fmt: skip
    assert quicker.delay_ms("MOTOR-COMP", "BROKER") == 30 * 60_000
    assert shipped.delay_ms("MOTOR-COMP", "BROKER") == 120 * 60_000


def test_offers_first_match_wins_with_premium_bands_and_segments() -> None:
    shipped = load_rules()
    gold = customer(segment="GOLD")
    big = quote(product="MOTOR-COMP", premium="500.00")  # min_premium is included
    small = quote(product="MOTOR-COMP", premium="499.99")
    assert (offer := shipped.select_offer(big, gold)) is not None and offer.code == "MOTOR-GOLD-15"
    assert (offer := shipped.select_offer(small, gold)) is not None and offer.code == "MOTOR-10"
    assert (offer := shipped.select_offer(big, customer())) is not None and offer.code == "MOTOR-10"
    travel = quote(product="TRAVEL")
    assert (offer := shipped.select_offer(travel, gold)) is not None and offer.code == "WELCOME-5"


@pytest.mark.parametrize(
    ("local", "zone", "resume"),
    [
        ("2026-11-23T22:30:00+00:00", "Europe/London", "2026-11-24T08:00:00+00:00"),
        ("2026-11-24T07:59:00+00:00", "Europe/London", "2026-11-24T08:00:00+00:00"),
        ("2026-11-24T08:00:00+00:00", "Europe/London", None),
        ("2026-11-23T20:59:00+00:00", "Europe/London", None),
        ("2026-11-23T21:00:00+00:00", "Europe/London", "2026-11-24T08:00:00+00:00"),
        # 21:30 UTC is 16:30 in New York: not quiet there.
        ("2026-11-23T21:30:00+00:00", "America/New_York", None),
        # Not a time zone: the default (Europe/London) is used.
        ("2026-11-23T22:30:00+00:00", "Mars/Olympus", "2026-11-24T08:00:00+00:00"),
        # The night the clocks go forward in London: 08:00 BST is 07:00 UTC.
        ("2026-03-29T00:30:00+00:00", "Europe/London", "2026-03-29T07:00:00+00:00"),
    ],
)
def test_quiet_hours_in_the_customers_time_zone(local: str, zone: str, resume: str | None) -> None:
    quiet = rules(quiet_hours={"start": "21:00", "end": "08:00"})
    at = _ms(local)
    assert quiet.quiet_until(at, zone) == (_ms(resume) if resume else at)


def test_quiet_hours_within_one_day() -> None:
    lunch = rules(quiet_hours={"start": "12:00", "end": "13:00"})
    assert lunch.quiet_until(_ms("2026-11-23T12:30:00+00:00"), "UTC") == _ms(
        "2026-11-23T13:00:00+00:00"
    )
    assert lunch.quiet_until(_ms("2026-11-23T13:30:00+00:00"), "UTC") == _ms(
        "2026-11-23T13:30:00+00:00"
    )


@given(customer_id=st.integers(1, 10**12))
def test_holdout_is_a_deterministic_function_of_the_customer(customer_id: int) -> None:
    ten = rules(holdout={"percent": 10, "salt": "s"})
    assert ten.in_holdout(customer_id) == ten.in_holdout(customer_id)
    assert not rules(holdout={"percent": 0}).in_holdout(customer_id)
    assert rules(holdout={"percent": 100}).in_holdout(customer_id)


def test_holdout_takes_about_its_share() -> None:
    ten = rules(holdout={"percent": 10, "salt": "s"})
    share = sum(ten.in_holdout(i) for i in range(20_000)) / 20_000
    assert 0.09 < share < 0.11
    other = rules(holdout={"percent": 10, "salt": "t"})
    assert [ten.in_holdout(i) for i in range(200)] != [other.in_holdout(i) for i in range(200)]


@pytest.mark.parametrize(
    ("email", "problem"),
    [
        ("ada@example.com", None),
        ("a.b+c@sub.example.co.uk", None),
        (None, "no e-mail address"),
        ("  ", "no e-mail address"),
        ("ada.example.com", "invalid e-mail address"),
        ("ada@example", "invalid e-mail address"),
        ("ada@@example.com", "invalid e-mail address"),
        ("a" * 250 + "@example.com", "invalid e-mail address"),
    ],
)
def test_email_problems(email: str | None, problem: str | None) -> None:
    assert email_problem(email) == problem


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.toml"
    path.write_text(text)
    return path


OFFER = '[[offers]]\ncode = "A"\ndescription = "d"\ntemplate_id = "t"\nsubject = "s"\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('version = "v"\n', "offers: Field required"),
        (OFFER, "version: Field required"),
        ('version = "v"\nsurprise = 1\n' + OFFER, "surprise: Extra inputs are not permitted"),
        ('version = "v"\n[delay]\ndefault_minutes = 0\n' + OFFER, "delay.default_minutes:"),
        ('version = "v"\n' + OFFER + "discount_pct = 120\n", "offers[0].discount_pct:"),
        ('version = "v"\n' + OFFER + "min_premium = 9\nmax_premium = 1\n",
         "offers[0]: min_premium is above max_premium"),
        ('version = "v"\n[statuses]\nofferable = ["QUOTED"]\nexit = ["QUOTED"]\n' + OFFER,
         "statuses: statuses both offerable and exit: QUOTED"),
        ('version = "v"\n[quiet_hours]\nstart = "9pm"\n' + OFFER,
         "quiet_hours.start: must be a time of day like 21:00"),
        ('version = "v"\n[quiet_hours]\ndefault_timezone = "Nowhere"\n' + OFFER,
         "quiet_hours.default_timezone: is not an IANA time zone name"),
        ('version = "v"\n[holdout]\npercent = 150\n' + OFFER, "holdout.percent:"),
        ("version = \n", "is not valid TOML"),
    ],
)  # fmt: skip
def test_a_bad_rules_file_names_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(RulesError) as info:
        load_rules(_write(tmp_path, text))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_a_missing_rules_file(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="does not exist"):
        load_rules(tmp_path / "nope.toml")


def test_now_is_never_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rules are pure: the same inputs, the same answer, whatever the clock says."""
    quiet = rules(quiet_hours={"start": "21:00", "end": "08:00"})
    at = int(datetime(2026, 11, 23, 22, 0, tzinfo=UTC).timestamp() * 1000)
    first = quiet.quiet_until(at, "Europe/London")
    monkeypatch.setattr("time.time", lambda: 0.0)
    assert quiet.quiet_until(at, "Europe/London") == first


def test_describe_says_what_the_shipped_rules_decide() -> None:
    described = dict(load_rules(DEFAULT_RULES).describe())
    assert described["quiet hours"].startswith("21:00-08:00")
    assert described["maximum quote age"] == "30 days"
    assert "WELCOME-5 (any product, any channel)" in described["offers (first match wins)"]


def test_rules_check_prints_the_rules_or_one_line_per_bad_key(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from quoteflow.cli import cli

    runner = CliRunner()
    good = runner.invoke(cli, ["rules", "check", str(DEFAULT_RULES)])
    assert good.exit_code == 0 and "frequency cap" in good.output, good.output
    bad = tmp_path / "rules.toml"
    bad.write_text('version = "x"\n[holdout]\npercent = 200\n')
    refused = runner.invoke(cli, ["rules", "check", str(bad)])
    assert refused.exit_code != 0
    assert "holdout.percent" in str(refused.exception) and "offers" in str(refused.exception)
