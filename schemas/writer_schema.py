"""The writer schema of one message, found from its framing without reading its body.

Why: readers that need only a few fields of a message (the replay driver's
lanes, which must learn a quote change's customer to know whether it is
theirs) walk the Avro body themselves, and for that they need the exact
schema the producer wrote it with and where the body starts. Each serde finds
both its own way (a catalogue fingerprint, a registry schema id);
:class:`WriterSchema` is what they agree to hand back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastavro.types import Schema as AvroSchema


@dataclass(frozen=True)
class WriterSchema:
    """A message's writer schema, parsed, and the offset of the Avro body after the frame.

    ``key`` is the SHA-256 of the schema's normalised JSON
    (:func:`schemas.catalog.content_sha256`): the same for the same schema text
    whichever serde, registry or process found it, so a cache of anything
    compiled from ``parsed`` can be keyed by it. ``parsed`` is fastavro's
    parsed form, shared: treat it as read-only.
    """

    key: str
    #: How messages name the writer: ``qms_quote_envelope v1``, ``schema id 42``.
    label: str
    parsed: AvroSchema = field(compare=False, repr=False)
    #: Bytes of framing before the Avro body (single-object: 10, Confluent: 5).
    body_offset: int
