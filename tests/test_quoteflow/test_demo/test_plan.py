"""The demo's workload plan: every lifecycle case, timed against the rules, reproducible."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from devstack.demo.plan import (
    EXPECT,
    FULL,
    MARGIN,
    QUICK,
    Case,
    Plan,
    build_plan,
    first_id_for,
    split_zones,
)
from streams.core.rules import Rules

from .conftest import NOON

pytestmark = pytest.mark.unit


def plan(rules: Rules, *, quick: bool = True, now: datetime = NOON, seed: int = 17) -> Plan:
    return build_plan(seed=seed, quick=quick, first_id=first_id_for(now), now=now, rules=rules)


def test_the_demo_rules_offer_within_about_two_minutes(rules: Rules) -> None:
    assert rules.delay_ms("MOTOR-COMP", "WEB") == 60_000
    assert all(rules.delay_ms(p, c) == 60_000 for p in ("HOME-BUILDINGS", "TRAVEL-ANNUAL")
               for c in ("WEB", "BROKER"))  # fmt: skip


@pytest.mark.parametrize("quick", [True, False])
def test_every_lifecycle_case_is_in_the_plan(rules: Rules, quick: bool) -> None:
    made = plan(rules, quick=quick)
    counts = QUICK if quick else FULL
    for case in Case:
        want = counts.get(case, 0)
        if case is Case.REQUOTE:
            want = counts[Case.SUPERSEDED]
        if case is Case.ABANDONED:
            want += counts[Case.FREQUENCY_CAP]  # the capped customer's first, offered quote
        assert made.count(case) == want, case
    assert made.abandoned > 0
    assert any(q.expect.trigger for q in made.quotes)
    assert made.abandoned == sum(1 for q in made.quotes if EXPECT[q.case].abandoned)


def test_the_same_inputs_make_the_same_plan_and_another_seed_another(rules: Rules) -> None:
    assert plan(rules) == plan(rules)
    assert plan(rules, seed=18) != plan(rules)


def test_ids_are_unique_and_a_second_later_run_uses_others(rules: Rules) -> None:
    made = plan(rules, quick=False)
    quote_ids = [q.quote_id for q in made.quotes]
    customer_ids = [c.customer_id for c in made.customers]
    assert len(set(quote_ids)) == len(quote_ids)
    assert len(set(customer_ids)) == len(customer_ids)
    later = first_id_for(NOON + timedelta(seconds=1))
    assert max(quote_ids + customer_ids) < later
    assert len({q.quote_ref for q in made.quotes}) == len(quote_ids)
    emails = [c.email for c in made.customers if c.email]
    assert len(set(emails)) == len(emails)


def test_only_the_holdout_case_is_in_the_holdout_group(rules: Rules) -> None:
    made = plan(rules, quick=False)
    for quote in made.quotes:
        customer = made.customers_by_id.get(quote.customer_id)
        if customer is not None:
            assert rules.in_holdout(customer.customer_id) == (quote.case is Case.HOLDOUT)


def test_offers_go_to_awake_zones_and_quiet_hours_hold_the_others(rules: Rules) -> None:
    made = plan(rules, quick=False)
    start = int(NOON.timestamp() * 1000)
    for at in (start, start + int(MARGIN.total_seconds() * 1000)):
        for quote in made.quotes:
            customer = made.customers_by_id.get(quote.customer_id)
            if customer is None:
                continue
            quiet = rules.quiet_until(at, customer.timezone) > at
            assert quiet == (quote.case is Case.QUIET_HOURS), (quote.case, customer.timezone)
    assert len({made.customers_by_id[q.customer_id].timezone for q in made.quotes
                if q.case is Case.ABANDONED}) >= 3  # several time zones  # fmt: skip


def test_split_zones_at_midnight_london_puts_london_to_sleep(rules: Rules) -> None:
    awake, asleep = split_zones(datetime(2026, 12, 6, 0, 0, tzinfo=UTC), rules)
    assert "Europe/London" in asleep
    assert "America/Los_Angeles" in awake  # 16:00 there
    assert not set(awake) & set(asleep)


def test_steps_come_in_the_order_and_time_each_case_needs(rules: Rules) -> None:
    made = plan(rules, quick=False)
    delay_s = 60
    inserted = {s.quote_id: s.at_s for s in made.steps if s.kind == "quote"}
    customer_at = {s.customer_id: s.at_s for s in made.steps if s.kind == "customer"}
    assert list(made.steps) == sorted(made.steps, key=lambda s: s.at_s)
    for quote in made.quotes:
        at = inserted[quote.quote_id]
        later = [s for s in made.steps if s.quote_id == quote.quote_id and s.kind != "quote"]
        if quote.case is Case.UNMATCHED:
            assert quote.customer_id not in customer_at
        elif quote.case is Case.LATE_CUSTOMER:
            assert at < customer_at[quote.customer_id] < at + delay_s - 20
        else:
            assert customer_at[quote.customer_id] <= at
        if quote.case in (Case.ACCEPTED_IN_TIME, Case.DECLINED, Case.EXPIRED, Case.DELETED,
                          Case.DRAFT_QUOTED, Case.EDITED):  # fmt: skip
            (step,) = later
            assert step.at_s < at + delay_s - 20  # well before the deadline
        if quote.case is Case.ACCEPTED_AFTER:
            (step,) = later
            assert step.after_offer and step.status == "ACCEPTED" and step.at_s > at + delay_s
        if quote.case is Case.CONSENT_WITHDRAWN:
            (withdraw,) = [s for s in made.steps if s.kind == "withdraw_consent"
                           and s.customer_id == quote.customer_id]  # fmt: skip
            assert withdraw.at_s < at + delay_s - 20
    for quote in made.quotes:
        if quote.case is Case.SUPERSEDED:
            (newer,) = [q for q in made.quotes if q.case is Case.REQUOTE
                        and q.customer_id == quote.customer_id]  # fmt: skip
            assert newer.product_code == quote.product_code
            assert inserted[quote.quote_id] < inserted[newer.quote_id]
        if quote.case is Case.FREQUENCY_CAP:
            (first,) = [q for q in made.quotes if q.customer_id == quote.customer_id
                        and q is not quote]  # fmt: skip
            assert first.case is Case.ABANDONED and first.product_code != quote.product_code
            assert inserted[first.quote_id] < inserted[quote.quote_id]
    customers = {c.customer_id: c for c in made.customers}
    assert any(c.email is None and c.consent for c in customers.values())
    assert any(not c.consent for c in customers.values())


def test_without_a_night_zone_the_quiet_hours_case_is_left_out(rules: Rules) -> None:
    never_quiet = rules.model_copy(update={"quiet_hours": rules.quiet_hours.model_copy(
        update={"start": "00:00", "end": "00:00"})})  # fmt: skip
    made = plan(never_quiet)
    assert made.asleep_zones == ()
    assert made.count(Case.QUIET_HOURS) == 0
    assert made.count(Case.HOLDOUT) == 1
