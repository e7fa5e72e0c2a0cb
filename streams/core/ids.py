"""Stable ids of the core's outputs: a trigger or decision made twice is one record.

An id depends only on the quote, the rules version and (for a decision) the
outcome, never on when or where it was made: a replay, a restarted worker or a
redelivered change makes the same id, so downstream deduplication needs nothing
else.
"""

from __future__ import annotations

import hashlib

from streams.core.model import Decision, Outcome, Quote
from streams.core.rules import Rules


def trigger_id(quote_id: int, rule_version: str) -> str:
    """The id of the trigger for ``quote_id`` under one rules version."""
    return hashlib.sha256(f"trigger:{quote_id}:{rule_version}".encode()).hexdigest()[:32]


def decision_id(quote_id: int, rule_version: str, outcome: Outcome) -> str:
    """The id of the decision ``outcome`` for ``quote_id`` under one rules version."""
    text = f"decision:{quote_id}:{rule_version}:{outcome.value}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def new_decision(
    quote: Quote, customer_id: int | None, outcome: Outcome, reason: str, at_ms: int, rules: Rules
) -> Decision:
    """A decision on ``quote`` under ``rules``, with its stable id."""
    return Decision(
        decision_id(quote.quote_id, rules.version, outcome),
        quote, customer_id, outcome, reason, at_ms, rules.version,
    )  # fmt: skip
