"""A customer's state as bytes, for the driver's changelog-backed table (and back).

JSON, compact, with a format version: small states (a customer has a few open
quotes) encode in microseconds, the changelog topic stays readable with any
tool, and a later format can read this one. Decimals travel as strings so no
float ever touches money.

Format 2 adds each position's commit LSN and each open quote's quoted time;
format 1 (written before them) still reads, as commit LSN 0 and quoted time
unknown — the creation time, the conservative reading of a quote's age.

Format 3 adds the position of the last TRUNCATE of the quotes table (``tq``). A
state without one is still written as format 2, so a worker of the previous
release reads it; one with it is format 3, which that worker refuses rather than
reads without the truncate.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from streams.core.model import (
    Change,
    Customer,
    CustomerChange,
    Position,
    Quote,
    QuoteChange,
    TableTruncated,
)
from streams.core.state import CustomerState, Left, OpenQuote
from streams.core.truncation import Truncations

FORMAT = 3
#: Formats this code reads.
READABLE = (1, 2, 3)


class StateFormatError(ValueError):
    """Bytes that are not a customer state this code can read."""


def _position(p: Position) -> list[int]:
    return [p.lsn, p.commit_ms, p.commit_lsn]


def _quote(q: Quote) -> list[Any]:
    return [q.quote_id, q.quote_ref, q.customer_id, q.product_code, q.channel, str(q.premium),
            q.currency, q.status, q.created_ms, q.updated_ms]  # fmt: skip


def _customer(c: Customer | None) -> list[Any] | None:
    if c is None:
        return None
    return [c.customer_id, c.first_name, c.email, c.marketing_consent, c.timezone, c.segment]


def change_to_json(change: Change) -> list[Any]:
    if isinstance(change, QuoteChange):
        quote = None if change.quote is None else _quote(change.quote)
        return ["q", change.customer_id, change.quote_id, quote, _position(change.position)]
    if isinstance(change, TableTruncated):
        return ["t", change.table, _position(change.position)]
    customer = _customer(change.customer)
    return ["c", change.customer_id, customer, _position(change.position)]


def encode_state(state: CustomerState) -> bytes:
    body: dict[str, Any] = {
        "v": FORMAT if state.quotes_truncated is not None else 2,
        "id": state.customer_id,
        "c": _customer(state.customer),
        "cp": None if state.customer_position is None else _position(state.customer_position),
        "q": [
            [_quote(o.quote), _position(o.position), o.deadline_ms, o.due_ms, o.decided_ms,
             o.triggered, o.quoted_ms]
            for o in state.quotes.values()
        ],
        "l": [[k, _position(v.position), v.decided, v.at_ms] for k, v in state.left.items()],
        "o": list(state.offers_ms),
        "u": [change_to_json(c) for c in state.queue],
    }
    if state.quotes_truncated is not None:
        body["tq"] = _position(state.quotes_truncated)
    return json.dumps(body, separators=(",", ":")).encode()


def _read_position(raw: list[int]) -> Position:
    return Position(int(raw[0]), int(raw[1]), int(raw[2]) if len(raw) > 2 else 0)


def _read_quote(raw: list[Any]) -> Quote:
    return Quote(int(raw[0]), raw[1], int(raw[2]), raw[3], raw[4], Decimal(raw[5]), raw[6],
                 raw[7], int(raw[8]), int(raw[9]))  # fmt: skip


def _read_customer(raw: list[Any] | None) -> Customer | None:
    if raw is None:
        return None
    return Customer(int(raw[0]), raw[1], raw[2], bool(raw[3]), raw[4], raw[5])


def change_from_json(raw: list[Any]) -> Change:
    if raw[0] == "q":
        quote = None if raw[3] is None else _read_quote(raw[3])
        return QuoteChange(int(raw[1]), int(raw[2]), quote, _read_position(raw[4]))
    if raw[0] == "t":
        if raw[1] not in ("quotes", "customers"):
            raise ValueError("not a truncated table")
        return TableTruncated(raw[1], _read_position(raw[2]))
    return CustomerChange(int(raw[1]), _read_customer(raw[2]), _read_position(raw[3]))


def decode_state(data: bytes) -> CustomerState:
    try:
        body = json.loads(data)
        if not isinstance(body, dict) or body.get("v") not in READABLE:
            version = body.get("v") if isinstance(body, dict) else None
            raise StateFormatError(f"customer state format {version!r} is not {FORMAT}")
        quotes = {}
        for raw_quote, position, deadline, due, decided, triggered, *quoted in body["q"]:
            quote = _read_quote(raw_quote)
            quotes[quote.quote_id] = OpenQuote(
                quote, _read_position(position), deadline, due, decided, bool(triggered),
                int(quoted[0]) if quoted else 0,
            )
        return CustomerState(
            customer_id=int(body["id"]),
            customer=_read_customer(body["c"]),
            customer_position=None if body["cp"] is None else _read_position(body["cp"]),
            quotes=quotes,
            left={int(k): Left(_read_position(p), bool(d), int(at)) for k, p, d, at in body["l"]},
            offers_ms=tuple(int(t) for t in body["o"]),
            queue=tuple(change_from_json(c) for c in body["u"]),
            quotes_truncated=None if body.get("tq") is None else _read_position(body["tq"]),
        )
    except StateFormatError:
        raise
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise StateFormatError(f"not a customer state ({type(exc).__name__})") from None


def encode_truncations(truncations: Truncations) -> bytes:
    """A partition's newest truncates (the live driver keeps them in a table)."""
    quotes, customers = truncations.quotes, truncations.customers
    body = [None if quotes is None else _position(quotes),
            None if customers is None else _position(customers)]  # fmt: skip
    return json.dumps(body, separators=(",", ":")).encode()


def decode_truncations(data: bytes | None) -> Truncations:
    if not data:
        return Truncations()
    try:
        quotes, customers = json.loads(data)
        return Truncations(None if quotes is None else _read_position(quotes),
                           None if customers is None else _read_position(customers))  # fmt: skip
    except (ValueError, TypeError, IndexError) as exc:
        raise StateFormatError(f"not a partition's truncates ({type(exc).__name__})") from None
