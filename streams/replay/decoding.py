"""A replay lane's decoding of change records: only the fields the core reads, same changes.

Why: decoding was most of a lane's time per owned change, and the core reads a
third of the envelope. :class:`ChangeDecoder` decodes through a
:class:`schemas.projector.Projector` per topic (the compiled projection onto
:data:`~streams.core.changes.QUOTE_ENVELOPE_PATHS` /
:data:`~streams.core.changes.CUSTOMER_ENVELOPE_PATHS` for the current schema,
the serde's full decode for any other writer), then parses as the live router
does. The same records are refused (the serde's ``SerdeError``, or
``ChangeError``) and the same changes come out of the others as from
``quote_changes(serde.decode(...))``: a property test compares them.
"""

from __future__ import annotations

from collections.abc import Sequence

from schemas.projector import Projector
from schemas.serde import Serde
from streams.core.changes import (
    CUSTOMER_ENVELOPE_PATHS,
    QUOTE_ENVELOPE_PATHS,
    customer_change,
    quote_changes,
)
from streams.core.model import Change

QUOTE_SCHEMA = "qms_quote_envelope"
CUSTOMER_SCHEMA = "crm_customer_envelope"


class ChangeDecoder:
    """The core changes of quote and customer change records; one per lane (not thread-safe)."""

    def __init__(self, serde: Serde) -> None:
        self._quotes = Projector(serde, QUOTE_SCHEMA, QUOTE_ENVELOPE_PATHS)
        self._customers = Projector(serde, CUSTOMER_SCHEMA, CUSTOMER_ENVELOPE_PATHS)

    def quote(self, value: bytes, *, topic: str) -> Sequence[Change]:
        """The changes of one ``qms.public.quotes`` record (SerdeError, ChangeError)."""
        return quote_changes(self._quotes.decode(value, topic=topic))

    def customer(self, value: bytes, *, topic: str) -> Sequence[Change]:
        """The change of one ``crm.public.customers`` record, if any."""
        change = customer_change(self._customers.decode(value, topic=topic))
        return () if change is None else (change,)
