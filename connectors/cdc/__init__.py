"""The PostgreSQL CDC source: logical decoding (pgoutput) streamed into Kafka.

Pure parts, unit-tested without a server:

- ``pgoutput``: the replication framing and pgoutput protocol v1 messages;
- ``values``: column text to the values Debezium's connector writes;
- ``events``: changes to Debezium-layout events (tombstones, key changes);
- ``progress``: which LSN may be confirmed, given Kafka's acknowledgements.

I/O, integration-tested against the stack's PostgreSQL and Kafka:

- ``setup``: checks, publication and slot;
- ``replication``: the COPY BOTH stream over psycopg's libpq layer;
- ``stream``: :class:`ChangeStream`, one source database's loop, which ties together
  ``changes`` (row changes to events), ``producing`` (events to Kafka, acknowledgements
  to the confirmable LSN), ``interleave`` (the snapshot's chunks between the changes)
  and ``watermark_writer`` (heartbeats into the WAL, source watermarks out of them).
"""
