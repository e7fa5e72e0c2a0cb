"""The demo's tests share one clock and one quick plan (pure: no stack)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from devstack.demo.plan import Plan, build_plan, first_id_for
from devstack.demo.run import DEMO_RULES
from streams.core.rules import Rules, load_rules

#: 12:00 UTC: night in Auckland and Tokyo, day in London.
NOON = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def rules() -> Rules:
    return load_rules(DEMO_RULES)


@pytest.fixture(scope="module")
def plan(rules: Rules) -> Plan:
    return build_plan(seed=17, quick=True, first_id=first_id_for(NOON), now=NOON, rules=rules)
