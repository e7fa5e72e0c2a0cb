"""The two byte framings of Avro messages we meet, and telling them apart.

* Avro single-object encoding (the Avro spec): ``C3 01``, the writer schema's
  8-byte little-endian CRC-64-AVRO fingerprint, then the Avro binary body.
  Self-describing without a registry; what quoteflow writes locally.
* Confluent wire format: magic byte ``00``, the registry's 4-byte big-endian
  schema id, then the Avro binary body. What Debezium and Kafka Connect write
  when a Schema Registry is configured.

Replay tools and error messages use :func:`detect_format` to say "these bytes
are Confluent framed" instead of a bare "corrupt".
"""

from __future__ import annotations

from typing import Literal

#: First two bytes of every single-object encoded message.
SINGLE_OBJECT_MARKER = b"\xc3\x01"
#: Marker plus 8-byte fingerprint.
SINGLE_OBJECT_HEADER_LEN = len(SINGLE_OBJECT_MARKER) + 8
#: First byte of every Confluent framed message.
CONFLUENT_MAGIC = 0
#: Magic byte plus 4-byte schema id.
CONFLUENT_HEADER_LEN = 5

Format = Literal["single-object", "confluent", "unknown"]


def detect_format(data: bytes) -> Format:
    """Guess the framing of ``data`` from its first bytes, without decoding it.

    A guess: the markers are checked along with the minimum header length, not
    the body, so unframed Avro whose first byte happens to be 0 reads as
    "confluent". Good enough to pick a serde or explain a decode error.
    """
    if len(data) >= SINGLE_OBJECT_HEADER_LEN and data[:2] == SINGLE_OBJECT_MARKER:
        return "single-object"
    if len(data) >= CONFLUENT_HEADER_LEN and data[0] == CONFLUENT_MAGIC:
        return "confluent"
    return "unknown"


def confluent_schema_id(data: bytes) -> int:
    """The schema id of Confluent framed ``data`` (caller checked the format)."""
    return int.from_bytes(data[1:CONFLUENT_HEADER_LEN], "big")
