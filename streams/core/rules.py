"""Marketing rules: one TOML file a marketer reads and edits, validated at start.

The file (``streams/rules.toml`` is the shipped example and default) says how
long a quote may wait, which quotes leave the funnel, who may be contacted and
how often, when not to send, who is held out, and which offer goes with which
quote. Loading checks every key and names the bad ones in one line each;
the functions here are pure, so every rule is unit-tested without Kafka.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from quoteflow.errors import QuoteflowError
from streams.core.model import Customer, Offer, Quote

#: The shipped rules file, used when ``streams.rules_file`` is not set.
DEFAULT_RULES = Path(__file__).parent.parent / "rules.toml"

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
_MINUTE = 60_000
_DAY = 86_400_000
#: At most this many (product, channel) delays are remembered per Rules object.
_MAX_CACHED = 4096
#: How long the core can remember a quote (days): bounds the maximum age and the attribution
#: window, so a quote it forgot is always too old to be offered again.
MAX_MEMORY_DAYS = 366
#: The cached properties of Rules (see "the rules as functions").
_CACHED = ("_delays", "_offers", "_quiet_answers", "_quiet_clocks")


class RulesError(QuoteflowError):
    """The rules file is missing, not TOML, or breaks a rule (each bad key named)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DelayOverride(_Strict):
    """A delay for one product, optionally one channel of it."""

    product: str = Field(min_length=1)
    channel: str | None = None
    minutes: int = Field(ge=1, le=7 * 24 * 60)


class Delay(_Strict):
    default_minutes: int = Field(default=30, ge=1, le=7 * 24 * 60)
    override: tuple[DelayOverride, ...] = ()


class Statuses(_Strict):
    """Which QMS statuses make a quote a candidate, and which take it out."""

    offerable: tuple[str, ...] = ("QUOTED",)
    exit: tuple[str, ...] = ("ACCEPTED", "DECLINED", "EXPIRED")
    #: The exit status that counts as a sale (a conversion, if it comes after the offer).
    accepted: str = "ACCEPTED"

    @model_validator(mode="after")
    def _disjoint(self) -> Statuses:
        both = sorted(set(self.offerable) & set(self.exit))
        if both:
            raise ValueError(f"statuses both offerable and exit: {', '.join(both)}")
        if not self.offerable:
            raise ValueError("offerable lists no status: no quote would ever be offered")
        if self.accepted not in self.exit:
            raise ValueError(f"accepted status {self.accepted} is not one of exit")
        return self


class FrequencyCap(_Strict):
    """At most ``max_offers`` offers per customer in any ``period_days`` days."""

    max_offers: int = Field(default=1, ge=1)
    period_days: int = Field(default=7, ge=1, le=366)


def _clock(text: str) -> time:
    try:
        return time.fromisoformat(text)
    except ValueError:
        raise ValueError("must be a time of day like 21:00") from None


class QuietHours(_Strict):
    """No e-mail between ``start`` and ``end`` in the customer's time zone: wait, don't drop."""

    start: str = "21:00"
    end: str = "08:00"
    #: For a customer whose time zone is missing or not an IANA name.
    default_timezone: str = "Europe/London"

    @field_validator("start", "end")
    @classmethod
    def _is_clock(cls, value: str) -> str:
        _clock(value)
        return value

    @field_validator("default_timezone")
    @classmethod
    def _is_zone(cls, value: str) -> str:
        if _zone(value) is None:
            raise ValueError("is not an IANA time zone name like Europe/London")
        return value


class Holdout(_Strict):
    """A control group: ``percent`` of customers, chosen by a hash, recorded but never sent."""

    percent: float = Field(default=10.0, ge=0, le=100)
    #: Changing the salt reshuffles who is held out.
    salt: str = "quoteflow"


class Supersession(_Strict):
    """Quotes of one customer for one product created within ``window_days`` of each other
    are one purchase decision: a newer one replaces an older undecided one for good, and
    accepting any of them closes the others (a re-quote accepted is not an abandonment)."""

    window_days: int = Field(default=30, ge=0, le=366)


class Unmatched(_Strict):
    """How long a quote waits past its deadline for its customer to reach the CRM stream."""

    grace_minutes: int = Field(default=10, ge=0, le=7 * 24 * 60)


class OfferRule(_Strict):
    """An offer, for the quotes its filters match (no filter: every quote)."""

    products: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    segments: tuple[str, ...] = ()
    min_premium: Decimal | None = Field(default=None, ge=0)
    max_premium: Decimal | None = Field(default=None, ge=0)
    code: str = Field(min_length=1)
    description: str = Field(min_length=1)
    discount_pct: float | None = Field(default=None, gt=0, le=100)
    template_id: str = Field(min_length=1)
    subject: str = Field(min_length=1)

    @model_validator(mode="after")
    def _band(self) -> OfferRule:
        if (
            self.min_premium is not None
            and self.max_premium is not None
            and self.min_premium > self.max_premium
        ):
            raise ValueError("min_premium is above max_premium: the offer matches nothing")
        return self

    def matches(self, quote: Quote, customer: Customer) -> bool:
        return (
            (not self.products or quote.product_code in self.products)
            and (not self.channels or quote.channel in self.channels)
            and (not self.segments or customer.segment in self.segments)
            and (self.min_premium is None or quote.premium >= self.min_premium)
            and (self.max_premium is None or quote.premium < self.max_premium)
        )

    def offer(self) -> Offer:
        return Offer(self.code, self.description, self.discount_pct, self.template_id, self.subject)


class Rules(_Strict):
    """The whole rules file."""

    #: Stamped on every trigger and decision; part of their ids, so bump it when rules change.
    version: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
    #: A quote quoted longer ago than this when it would be decided gets no offer
    #: (``too_old``): a first deployment's snapshot must not mail the QMS's history.
    max_quote_age_days: int = Field(default=30, ge=1, le=MAX_MEMORY_DAYS)
    #: A sale this long after the offer (or the holdout decision) counts as its conversion.
    attribution_days: int = Field(default=7, ge=1, le=MAX_MEMORY_DAYS)
    delay: Delay = Delay()
    statuses: Statuses = Statuses()
    frequency_cap: FrequencyCap = FrequencyCap()
    quiet_hours: QuietHours = QuietHours()
    holdout: Holdout = Holdout()
    unmatched: Unmatched = Unmatched()
    supersession: Supersession = Supersession()
    offers: tuple[OfferRule, ...] = Field(min_length=1)

    # -- the rules as functions -------------------------------------------------------
    # Rules never change once loaded, and the core asks some of them for every change
    # event: what depends on the rules alone is worked out once per Rules object, in
    # cached properties (pydantic leaves those out of ==, hash and model_dump).

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Rules:
        """A copy without the cached answers: ``update`` may change what they depend on."""
        copied = super().model_copy(update=update, deep=deep)
        for name in _CACHED:
            copied.__dict__.pop(name, None)
        return copied

    @cached_property
    def _delays(self) -> dict[tuple[str, str], int]:
        """:meth:`delay_ms` per (product, channel), filled as they are asked for."""
        return {}

    def describe(self) -> list[tuple[str, str]]:
        """What these rules decide, one line per concern, for a person reviewing a change."""
        overrides = ", ".join(f"{o.product}{'/' + o.channel if o.channel else ''} {o.minutes} min"
                              for o in self.delay.override)  # fmt: skip
        offers = "; ".join(
            f"{o.code} ({'/'.join(o.products) or 'any product'},"
            f" {'/'.join(o.channels) or 'any channel'})" for o in self.offers
        )
        q = self.quiet_hours
        return [
            ("delay", f"{self.delay.default_minutes} min"
                      + (f"; {overrides}" if overrides else "")),
            ("offerable / exit", f"{', '.join(self.statuses.offerable)} /"
                                 f" {', '.join(self.statuses.exit)}"),
            ("frequency cap", f"{self.frequency_cap.max_offers} per"
                              f" {self.frequency_cap.period_days} days"),
            ("quiet hours", f"{q.start}-{q.end} customer's time (else {q.default_timezone})"),
            ("holdout", f"{self.holdout.percent:g} %"),
            ("maximum quote age", f"{self.max_quote_age_days} days"),
            ("attribution window", f"{self.attribution_days} days"),
            ("unmatched grace", f"{self.unmatched.grace_minutes} min"),
            ("supersession window", f"{self.supersession.window_days} days"),
            ("offers (first match wins)", offers),
        ]

    def delay_ms(self, product: str, channel: str) -> int:
        """The most specific delay: product and channel, then product, then the default."""
        key = (product, channel)
        delays = self._delays
        known = delays.get(key)
        if known is not None:
            return known
        delay = self._find_delay_ms(product, channel)
        if len(delays) < _MAX_CACHED:  # product codes and channels are a short list; be safe
            delays[key] = delay
        return delay

    def _find_delay_ms(self, product: str, channel: str) -> int:
        by_product = None
        for rule in self.delay.override:
            if rule.product == product:
                if rule.channel == channel:
                    return rule.minutes * _MINUTE
                if rule.channel is None and by_product is None:
                    by_product = rule.minutes
        return (by_product or self.delay.default_minutes) * _MINUTE

    def is_offerable(self, status: str) -> bool:
        return status in self.statuses.offerable

    def is_exit(self, status: str) -> bool:
        return status in self.statuses.exit

    def select_offer(self, quote: Quote, customer: Customer) -> Offer | None:
        """The first offer whose filters match, or None (no offer for this quote)."""
        for rule, offer in self._offers:
            if rule.matches(quote, customer):
                return offer
        return None

    @cached_property
    def _offers(self) -> tuple[tuple[OfferRule, Offer], ...]:
        return tuple((rule, rule.offer()) for rule in self.offers)

    def in_holdout(self, customer_id: int) -> bool:
        """Deterministic: the same customer is held out on every run and every worker."""
        digest = hashlib.sha256(f"{self.holdout.salt}:{customer_id}".encode()).digest()
        return int.from_bytes(digest[:8], "big") % 10_000 < round(self.holdout.percent * 100)

    def quiet_until(self, at_ms: int, timezone: str) -> int:
        """``at_ms`` if it is outside quiet hours where the customer lives, else the end of them.

        Remembered per (instant, zone): a batch driver decides every quote due by a
        watermark at that one instant, and the zone conversion was a tenth of a step.
        """
        key = (at_ms, timezone)
        cache = self._quiet_answers
        known = cache.get(key)
        if known is None:
            if len(cache) >= _MAX_CACHED:
                cache.clear()
            known = cache[key] = self._find_quiet_until(at_ms, timezone)
        return known

    @cached_property
    def _quiet_answers(self) -> dict[tuple[int, str], int]:
        """:meth:`quiet_until` per (instant, zone), filled as they are asked for."""
        return {}

    def _find_quiet_until(self, at_ms: int, timezone: str) -> int:
        zone = _zone(timezone) or _zone(self.quiet_hours.default_timezone)
        assert zone is not None  # the default was validated at load
        local = datetime.fromtimestamp(at_ms / 1000, UTC).astimezone(zone)
        start, end = self._quiet_clocks
        now = local.time().replace(tzinfo=None)
        if start == end:
            return at_ms
        quiet = (start <= now < end) if start < end else (now >= start or now < end)
        if not quiet:
            return at_ms
        day = local.date() if now < end else local.date() + timedelta(days=1)
        resume = datetime.combine(day, end, tzinfo=zone)
        return max(at_ms, int(resume.timestamp() * 1000))

    @cached_property
    def _quiet_clocks(self) -> tuple[time, time]:
        return _clock(self.quiet_hours.start), _clock(self.quiet_hours.end)

    def frequency_window_ms(self) -> int:
        return self.frequency_cap.period_days * _DAY

    def max_quote_age_ms(self) -> int:
        return self.max_quote_age_days * _DAY

    def attribution_ms(self) -> int:
        return self.attribution_days * _DAY

    def same_purchase(self, a: Quote, b: Quote) -> bool:
        """Two quotes of one customer that stand for one purchase (see :class:`Supersession`)."""
        return (
            a.product_code == b.product_code
            and abs(a.created_ms - b.created_ms) <= self.supersession.window_days * _DAY
        )


@lru_cache(maxsize=65_536)
def email_problem(email: str | None) -> str | None:
    """Why an address cannot be used (a reason a marketer reads), or None.

    Remembered: every decision asks it of the customer's address, and a customer has
    many quotes; the pattern match was a fortieth of the core's time."""
    if email is None or not email.strip():
        return "no e-mail address"
    if len(email) > 254 or not _EMAIL.fullmatch(email.strip()):
        return "invalid e-mail address"
    return None


@lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def load_rules(path: Path | None = None) -> Rules:
    """The rules file at ``path`` (default: the shipped one), or a RulesError naming each
    bad key."""
    path = path or DEFAULT_RULES
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RulesError(f"rules file {path} does not exist") from None
    except OSError as exc:
        raise RulesError(f"rules file {path} cannot be read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"rules file {path} is not valid TOML: {exc}") from None
    try:
        return Rules.model_validate(raw)
    except ValidationError as exc:
        raise RulesError(f"rules file {path}: " + "; ".join(_problems(exc.errors()))) from None


def _problems(errors: Sequence[object]) -> list[str]:
    lines = []
    for error in errors:
        assert isinstance(error, dict)
        where = ".".join(
            f"[{part}]" if isinstance(part, int) else str(part) for part in error["loc"]
        ).replace(".[", "[")
        message = str(error["msg"]).removeprefix("Value error, ")
        lines.append(f"{where or 'the file'}: {message}")
    return lines
