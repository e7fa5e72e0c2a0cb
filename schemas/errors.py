"""Errors of the ``schemas`` package.

fastavro, confluent-kafka and the Apache ``avro`` package each raise their own
exceptions (``EOFError``, ``TypeError``, ``SerializationError``, ...). They are
translated into these where we call the libraries, so a caller catches one
family and a dead-letter handler can tell *why* a message was refused.

Messages name the schema, version, topic and what was wrong. They never contain
the record's values: records carry personal data (names, e-mail addresses) and
error messages end up in logs and dead-letter topics.
"""

from __future__ import annotations

from quoteflow.errors import ConfigError, QuoteflowError


def where(schema_name: str, topic: str, is_key: bool) -> str:
    """How messages name what was being encoded or decoded, e.g. ``value of 'x' (schema 'y')``."""
    return f"{'key' if is_key else 'value'} of topic {topic!r} (schema {schema_name!r})"


class SerdeError(QuoteflowError):
    """Root of every error of the ``schemas`` package."""


class SchemaCatalogError(SerdeError):
    """A schema file is missing, malformed or breaks the catalogue's layout rules."""


class SchemaNotFound(SerdeError):
    """The catalogue has no schema by that name, version or fingerprint."""


class SchemaLockError(SerdeError):
    """The fingerprint lock file cannot be read or has the wrong shape."""


class EncodeError(SerdeError):
    """A record does not fit its schema, so it cannot be encoded."""


class DecodeError(SerdeError):
    """Bytes cannot be decoded: corrupt, truncated, wrong format or wrong schema.

    Consumers treat this as a poison message (dead-letter it, keep going).
    """


class UnknownWriterSchema(DecodeError):
    """The bytes name a writer schema we do not know.

    Either they are corrupt, or a producer runs a newer schema than this build:
    unlike other decode errors, upgrading the consumer may fix this one.
    """


class RegistryError(SerdeError):
    """The schema registry could not be reached or refused a request."""


class RegistryConfigError(SerdeError, ConfigError):
    """The schema registry settings are unusable (exit code of a config error)."""


class PeekPathError(DecodeError):
    """A field path a peek was asked for is not in the message's writer schema.

    A :class:`DecodeError`: the message cannot be read as the caller expects
    (wrong topic, or a writer whose records lack the field), so consumers treat
    it as a poison message like any other.
    """
