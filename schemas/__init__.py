"""Avro contracts of quoteflow and the serde that enforces them.

* ``schemas/avro/<name>/v<N>.avsc``: the versioned schemas, loaded by
  :class:`SchemaCatalog` (:func:`default_catalog` for the shipped one).
* :class:`Serde` with :class:`EmbeddedSerde` (single-object encoding, no
  registry) and ``schemas.registry.RegistrySerde`` (Confluent wire format);
  :func:`make_serde` picks one from settings.
* ``python -m schemas.compat``: BACKWARD_TRANSITIVE compatibility and lock checks
  (``fingerprints.lock``: fingerprint and content hash of every released version).
* ``schemas.examples``: a realistic example record of every schema
  (``example(name)``), for docs, tests and ``quoteflow smoke``.
* ``schemas.debezium``: how the CDC rows represent timestamps, dates and
  decimals the way a default Debezium PostgreSQL connector does, with
  ``zoned_timestamp``/``parse_zoned_timestamp`` and ``as_date`` to convert.

``schemas.registry`` and ``schemas.compat`` are not imported here: they pull in
confluent-kafka's registry client and the Apache ``avro`` package, which most
importers never need. Importing this package does no I/O.
"""

from schemas.catalog import SchemaCatalog, SchemaVersion, default_catalog
from schemas.embedded import EmbeddedSerde
from schemas.errors import (
    DecodeError,
    EncodeError,
    RegistryConfigError,
    RegistryError,
    SchemaCatalogError,
    SchemaLockError,
    SchemaNotFound,
    SerdeError,
    UnknownWriterSchema,
)
from schemas.framing import detect_format
from schemas.serde import Serde, make_serde

__all__ = [
    "DecodeError",
    "EmbeddedSerde",
    "EncodeError",
    "RegistryConfigError",
    "RegistryError",
    "SchemaCatalog",
    "SchemaCatalogError",
    "SchemaLockError",
    "SchemaNotFound",
    "SchemaVersion",
    "Serde",
    "SerdeError",
    "UnknownWriterSchema",
    "default_catalog",
    "detect_format",
    "make_serde",
]
