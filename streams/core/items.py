"""What travels on the processor's by-customer topic: changes, watermark markers, ticks.

One topic carries everything a deciding task needs, in one order per
partition: the quote and customer changes of its customers, the truncates of
the source tables (to every partition), the markers that
move its watermark (:mod:`streams.core.watermarks`), and clock ticks that let
it decide due quotes inside stream processing (where faust allows table writes
and transactional sends). JSON, like the state: small, readable, versioned by
its first element.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from streams.core.model import CustomerChange, QuoteChange, TableTruncated
from streams.core.state_codec import StateFormatError, change_from_json, change_to_json
from streams.core.watermarks import Marker


@dataclass(frozen=True, slots=True)
class Tick:
    """The wall clock on a partition: decide what is due (``now_ms`` is the sender's clock)."""

    now_ms: int


@dataclass(frozen=True, slots=True)
class Markers:
    """Every marker one timer round has for a partition, as one item (one event, one
    watermark update, one look at what is due) instead of one per source partition."""

    markers: tuple[Marker, ...]


#: A :class:`TableTruncated` goes to every partition (it reaches every customer).
Item = QuoteChange | CustomerChange | TableTruncated | Marker | Markers | Tick


def encode_item(item: Item) -> bytes:
    if isinstance(item, Marker):
        body: list[object] = ["m", item.source, item.partition, item.watermark_ms]
    elif isinstance(item, Markers):
        body = ["ms", [[m.source, m.partition, m.watermark_ms] for m in item.markers]]
    elif isinstance(item, Tick):
        body = ["t", item.now_ms]
    else:
        body = ["c", change_to_json(item)]
    return json.dumps(body, separators=(",", ":")).encode()


def decode_item(data: bytes) -> Item:
    try:
        body = json.loads(data)
        kind = body[0]
        if kind == "m":
            return Marker(str(body[1]), int(body[2]), int(body[3]))
        if kind == "ms":
            return Markers(tuple(Marker(str(s), int(p), int(w)) for s, p, w in body[1]))
        if kind == "t":
            return Tick(int(body[1]))
        if kind == "c":
            return change_from_json(body[1])
    except (ValueError, TypeError, IndexError, KeyError) as exc:
        raise StateFormatError(f"not a by-customer item ({type(exc).__name__})") from None
    raise StateFormatError(f"unknown by-customer item kind {kind!r}")
