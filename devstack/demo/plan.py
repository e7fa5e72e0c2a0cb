"""The demo's workload as data: which customers and quotes exist, what happens to each, when.

Pure: the plan is a function of a seed, the first id to use, the time the demo
starts and the rules, so it is unit-tested without a database and two runs with
the same inputs write the same rows. Each quote carries the outcome the rules
should give it (:class:`Expect`), so the demo can say at the end whether the
pipeline did what the workload asked of it, quote by quote, instead of only
printing counts. The clock matters for one thing only: which time zones are
awake (offers go out now) and which are in quiet hours (offers are held).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from streams.core.rules import Rules

#: Time zones customers live in, spread around the globe so that at any moment
#: some are awake and some are in quiet hours.
ZONES = (
    "Europe/London", "Europe/Paris", "Europe/Athens", "Asia/Dubai", "Asia/Kolkata",
    "Asia/Bangkok", "Asia/Singapore", "Asia/Tokyo", "Australia/Sydney", "Pacific/Auckland",
    "Pacific/Honolulu", "America/Anchorage", "America/Los_Angeles", "America/Denver",
    "America/Chicago", "America/New_York", "America/Sao_Paulo", "Atlantic/Azores",
)  # fmt: skip
#: A zone counts as awake (or asleep) only if it stays so this long after the demo starts:
#: the offer is judged at its deadline and again by the sink just before it is sent.
MARGIN = timedelta(minutes=20)

FIRST_NAMES = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Margaret", "Ken",
               "Frances", "Tony", "Radia", "Niklaus", "Hedy", "John", "Sophie", "Linus")
LAST_NAMES = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Hamilton",
              "Thompson", "Allen", "Hoare", "Perlman", "Wirth", "Lamarr", "Backus")
PRODUCTS = ("MOTOR-COMP", "MOTOR-TPFT", "HOME-BUILDINGS", "HOME-CONTENTS", "TRAVEL-ANNUAL")
CHANNELS = ("WEB", "PHONE", "BROKER", "BRANCH", "APP")


class Case(StrEnum):
    """One path through a quote's lifecycle; the value is what the summary calls it."""

    ABANDONED = "abandoned: offer sent"
    DRAFT_QUOTED = "drafted, then quoted, then abandoned"
    DRAFT_ONLY = "drafted, never quoted"
    EDITED = "edited while open, then abandoned"
    ACCEPTED_IN_TIME = "accepted before the deadline"
    ACCEPTED_AFTER = "accepted after the offer (conversion)"
    DECLINED = "declined"
    EXPIRED = "expired"
    DELETED = "deleted"
    SUPERSEDED = "superseded by a newer quote"
    REQUOTE = "the newer quote, abandoned"
    LATE_CUSTOMER = "customer reached the CRM after the quote"
    UNMATCHED = "customer never reached the CRM"
    NO_CONSENT = "customer without marketing consent"
    CONSENT_WITHDRAWN = "consent withdrawn before the deadline"
    NO_EMAIL = "customer without an e-mail address"
    FREQUENCY_CAP = "second offer to one customer in a week"
    HOLDOUT = "customer in the holdout group"
    QUIET_HOURS = "customer where it is night now"


@dataclass(frozen=True)
class Expect:
    """What the rules should make of a quote.

    ``abandoned``: it stays offerable past its deadline (the workload abandons it);
    ``trigger``: an offer is e-mailed; ``decision``: the outcome recorded on the
    decisions topic (SUPPRESSED, HOLDOUT, UNMATCHED, CONVERTED); ``held``: quiet
    hours hold it past the end of the demo.
    """

    abandoned: bool
    trigger: bool = False
    decision: str | None = None
    held: bool = False


EXPECT: dict[Case, Expect] = {
    Case.ABANDONED: Expect(True, trigger=True),
    Case.DRAFT_QUOTED: Expect(True, trigger=True),
    Case.DRAFT_ONLY: Expect(False),
    Case.EDITED: Expect(True, trigger=True),
    Case.ACCEPTED_IN_TIME: Expect(False),
    Case.ACCEPTED_AFTER: Expect(True, trigger=True, decision="CONVERTED"),
    Case.DECLINED: Expect(False),
    Case.EXPIRED: Expect(False),
    Case.DELETED: Expect(False),
    Case.SUPERSEDED: Expect(False),
    Case.REQUOTE: Expect(True, trigger=True),
    Case.LATE_CUSTOMER: Expect(True, trigger=True),
    Case.UNMATCHED: Expect(True, decision="UNMATCHED"),
    Case.NO_CONSENT: Expect(True, decision="SUPPRESSED"),
    Case.CONSENT_WITHDRAWN: Expect(True, decision="SUPPRESSED"),
    Case.NO_EMAIL: Expect(True, decision="SUPPRESSED"),
    Case.FREQUENCY_CAP: Expect(True, decision="SUPPRESSED"),
    Case.HOLDOUT: Expect(True, decision="HOLDOUT"),
    Case.QUIET_HOURS: Expect(True, held=True),
}

#: How many quotes of each case a run has: --quick has every case once (and a few
#: plain abandonments, in several time zones); the full demo more of everything.
QUICK: dict[Case, int] = {
    **{case: 1 for case in Case if case is not Case.REQUOTE}, Case.ABANDONED: 3}
FULL: dict[Case, int] = {
    **{case: 3 for case in Case if case is not Case.REQUOTE},
    Case.ABANDONED: 24, Case.ACCEPTED_IN_TIME: 8, Case.DRAFT_ONLY: 2, Case.QUIET_HOURS: 2,
}

StepKind = Literal[
    "customer", "quote", "status", "premium", "delete", "withdraw_consent",
]


@dataclass(frozen=True)
class PlannedCustomer:
    customer_id: int
    first_name: str
    last_name: str
    email: str | None
    consent: bool
    timezone: str
    segment: str | None


@dataclass(frozen=True)
class PlannedQuote:
    quote_id: int
    quote_ref: str
    customer_id: int
    product_code: str
    channel: str
    premium: Decimal
    case: Case

    @property
    def expect(self) -> Expect:
        return EXPECT[self.case]


@dataclass(frozen=True)
class Step:
    """One write to a source database, ``at_s`` seconds after the workload starts.

    ``after_offer``: not before the quote's offer reached the ESP either (a customer
    accepts after reading the e-mail), but no later than ``at_s`` + the driver's limit.
    """

    at_s: float
    kind: StepKind
    quote_id: int | None = None
    customer_id: int | None = None
    status: str | None = None
    premium: Decimal | None = None
    after_offer: bool = False


@dataclass(frozen=True)
class Plan:
    seed: int
    quick: bool
    customers: tuple[PlannedCustomer, ...]
    quotes: tuple[PlannedQuote, ...]
    steps: tuple[Step, ...]
    #: The zones chosen as awake and asleep at the start (say so in the summary).
    awake_zones: tuple[str, ...]
    asleep_zones: tuple[str, ...]
    customers_by_id: dict[int, PlannedCustomer] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "customers_by_id", {c.customer_id: c for c in self.customers})

    @property
    def abandoned(self) -> int:
        """Quotes the workload leaves offerable past their deadline."""
        return sum(1 for q in self.quotes if q.expect.abandoned)

    def count(self, case: Case) -> int:
        return sum(1 for q in self.quotes if q.case is case)

    @property
    def duration_s(self) -> float:
        return max((s.at_s for s in self.steps), default=0.0)


def split_zones(
    now: datetime, rules: Rules, zones: Sequence[str] = ZONES
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(awake, asleep): zones outside quiet hours from ``now`` for :data:`MARGIN`, and zones
    inside them for as long. A zone near the edge of its quiet hours is neither."""
    start_ms = int(now.timestamp() * 1000)
    probes = [start_ms + int(MARGIN.total_seconds() * 1000 * i / 4) for i in range(5)]
    awake = tuple(z for z in zones if all(rules.quiet_until(t, z) == t for t in probes))
    asleep = tuple(z for z in zones if all(rules.quiet_until(t, z) > t for t in probes))
    return awake, asleep


def build_plan(*, seed: int, quick: bool, first_id: int, now: datetime, rules: Rules) -> Plan:
    """The workload: customers, quotes and the timed steps that move each through its case.

    Customer and quote ids count up from ``first_id``; the holdout group is the rules'
    own hash of the customer id, so ids are chosen to put exactly the HOLDOUT case's
    customers in it and nobody else (otherwise one in ten planned offers would silently
    become a holdout decision). Quotes start over the first seconds of the workload
    (about two minutes for the full demo) so the deadlines, one delay later, come in a
    stream rather than all at once.
    """
    rng = random.Random(seed)  # noqa: S311 - a reproducible workload, not a secret
    awake, asleep = split_zones(now, rules)
    if not awake:  # cannot happen with ZONES and 11 quiet hours, but never plan offers blind
        raise ValueError("no time zone is outside quiet hours now")
    counts = QUICK if quick else FULL
    cases = [case for case, n in counts.items() for _ in range(n)
             if case is not Case.QUIET_HOURS or asleep]  # fmt: skip
    rng.shuffle(cases)
    spread_s = 10.0 if quick else 100.0
    next_id = first_id
    customers: list[PlannedCustomer] = []
    quotes: list[PlannedQuote] = []
    steps: list[Step] = []

    def new_customer_id(holdout: bool) -> int:
        nonlocal next_id
        while rules.in_holdout(next_id) != holdout:
            next_id += 1
        next_id += 1
        return next_id - 1

    def new_quote_id() -> int:
        nonlocal next_id
        next_id += 1
        return next_id - 1

    def customer(case: Case) -> PlannedCustomer:
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        cid = new_customer_id(case is Case.HOLDOUT)
        email = None if case is Case.NO_EMAIL else f"{first}.{last}.{cid}@example.com".lower()
        zones = asleep if case is Case.QUIET_HOURS else awake
        zone = zones[len(customers) % len(zones)]  # round the zones: several of each
        segment = rng.choice(("GOLD", "SILVER", None))
        made = PlannedCustomer(cid, first, last, email, case is not Case.NO_CONSENT, zone, segment)
        customers.append(made)
        return made

    def quote(case: Case, customer_id: int, product: str | None = None) -> PlannedQuote:
        qid = new_quote_id()
        premium = Decimal(rng.randrange(15_000, 120_000)) / 100
        made = PlannedQuote(qid, f"Q-DEMO-{qid}", customer_id, product or rng.choice(PRODUCTS),
                            rng.choice(CHANNELS), premium, case)  # fmt: skip
        quotes.append(made)
        return made

    for index, case in enumerate(cases):
        t = round(spread_s * index / max(len(cases) - 1, 1), 1)
        who = customer(case)
        if case is Case.UNMATCHED:
            customers.remove(who)  # planned, never written: the CRM never has them
        elif case is not Case.LATE_CUSTOMER:
            steps.append(Step(t, "customer", customer_id=who.customer_id))
        first = quote(case if case is not Case.FREQUENCY_CAP else Case.ABANDONED,
                      who.customer_id)  # fmt: skip
        status = "DRAFT" if case in (Case.DRAFT_QUOTED, Case.DRAFT_ONLY) else "QUOTED"
        steps.append(Step(t + 0.5, "quote", quote_id=first.quote_id, status=status))
        q = first.quote_id
        match case:
            case Case.DRAFT_QUOTED:
                steps.append(Step(t + 8, "status", quote_id=q, status="QUOTED"))
            case Case.EDITED:
                steps.append(Step(t + 15, "premium", quote_id=q,
                                  premium=(first.premium * Decimal("0.95")).quantize(
                                      Decimal("0.01"))))  # fmt: skip
            case Case.ACCEPTED_IN_TIME:
                steps.append(Step(t + 25, "status", quote_id=q, status="ACCEPTED"))
            case Case.ACCEPTED_AFTER:
                steps.append(Step(t + 70, "status", quote_id=q, status="ACCEPTED",
                                  after_offer=True))  # fmt: skip
            case Case.DECLINED:
                steps.append(Step(t + 20, "status", quote_id=q, status="DECLINED"))
            case Case.EXPIRED:
                steps.append(Step(t + 30, "status", quote_id=q, status="EXPIRED"))
            case Case.DELETED:
                steps.append(Step(t + 20, "delete", quote_id=q))
            case Case.SUPERSEDED:
                newer = quote(Case.REQUOTE, who.customer_id, first.product_code)
                steps.append(Step(t + 12, "quote", quote_id=newer.quote_id, status="QUOTED"))
            case Case.LATE_CUSTOMER:
                steps.append(Step(t + 20, "customer", customer_id=who.customer_id))
            case Case.CONSENT_WITHDRAWN:
                steps.append(Step(t + 25, "withdraw_consent", customer_id=who.customer_id))
            case Case.FREQUENCY_CAP:
                # A second product, quoted 10 s later: its deadline comes after the first
                # quote's offer, and the cap (one offer a week) suppresses it.
                other = next(p for p in PRODUCTS if p != first.product_code)
                second = quote(Case.FREQUENCY_CAP, who.customer_id, other)
                steps.append(Step(t + 10, "quote", quote_id=second.quote_id, status="QUOTED"))
    steps.sort(key=lambda s: s.at_s)  # stable: a customer before their quote at equal times
    return Plan(seed, quick, tuple(customers), tuple(quotes), tuple(steps), awake, asleep)


def first_id_for(started: datetime) -> int:
    """Ids of this run's rows: above any other writer's (tests use up to 2e12) and one
    thousand per second of start time, so runs a second apart never share an id."""
    return 5_000_000_000_000 + int(started.timestamp()) * 1000
