"""Avro single-object encoding against the shipped catalogue: no registry needed.

The local default. Every message carries its writer schema's fingerprint, so a
reader finds the exact writer version in the catalogue and resolves it to the
current version of the schema it expects: data written before a v2 landed is
still read, with v2's defaults filled in.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Mapping
from typing import Any

from fastavro import schemaless_reader, schemaless_writer
from fastavro.read import SchemaResolutionError

from schemas.catalog import SchemaCatalog, SchemaVersion, default_catalog
from schemas.compiled_reader import COMPILED_READ_ERRORS
from schemas.errors import (
    DecodeError,
    EncodeError,
    SchemaNotFound,
    UnknownWriterSchema,
    where,
)
from schemas.explain import explain_write_failure
from schemas.framing import (
    SINGLE_OBJECT_HEADER_LEN,
    SINGLE_OBJECT_MARKER,
    confluent_schema_id,
    detect_format,
)
from schemas.writer_schema import WriterSchema

#: What fastavro's writer raises for a record that does not fit the schema.
WRITE_ERRORS: tuple[type[Exception], ...] = (
    ValueError,
    TypeError,
    AttributeError,
    KeyError,
    OverflowError,
)
#: What fastavro's reader raises for bytes that are not what the schema says.
READ_ERRORS: tuple[type[Exception], ...] = (
    EOFError,
    ValueError,  # includes UnicodeDecodeError
    TypeError,
    IndexError,
    KeyError,
    OverflowError,
    struct.error,
)


class EmbeddedSerde:
    """Encode with the latest version of a schema; decode any version to the latest."""

    def __init__(self, catalog: SchemaCatalog | None = None) -> None:
        self._catalog = default_catalog() if catalog is None else catalog
        #: Writer schemas already handed out by :meth:`writer_of`, by fingerprint.
        self._writer_schemas: dict[int, WriterSchema] = {}

    @property
    def catalog(self) -> SchemaCatalog:
        """The catalogue writer schemas are looked up in."""
        return self._catalog

    def close(self) -> None:
        """Nothing to release: no connection (the Serde contract has it for the registry's)."""

    def encode(
        self, schema_name: str, record: Mapping[str, Any], *, topic: str, is_key: bool = False
    ) -> bytes:
        """Single-object encode ``record`` with the latest version of ``schema_name``."""
        version = self._catalog.latest(schema_name)
        check_mapping(version, record, topic=topic, is_key=is_key)
        body = version.write_body(record)
        if body is not None:
            return SINGLE_OBJECT_MARKER + version.fingerprint_bytes + body
        out = io.BytesIO()
        out.write(SINGLE_OBJECT_MARKER)
        out.write(version.fingerprint_bytes)
        failure: EncodeError | None = None
        try:
            schemaless_writer(
                out, version.parsed, version.with_branches(record), strict_allow_default=True
            )
        except WRITE_ERRORS as exc:
            failure = encode_error(version, record, exc, topic=topic, is_key=is_key)
        if failure is not None:
            # Raised outside the except block on purpose: chaining fastavro's
            # exception would print the offending value in every traceback.
            raise failure
        return out.getvalue()

    def decode(
        self, schema_name: str, data: bytes, *, topic: str, is_key: bool = False
    ) -> dict[str, Any]:
        """Decode single-object ``data`` into the latest version of ``schema_name``."""
        reader = self._catalog.latest(schema_name)
        context = where(schema_name, topic, is_key)
        writer = self._writer_of(data, reader, context)
        if writer is reader and reader.reader is not None:
            return self._read_compiled(data, reader, context)
        body = io.BytesIO(data[SINGLE_OBJECT_HEADER_LEN:])
        try:
            record = schemaless_reader(
                body, writer.parsed, None if writer is reader else reader.parsed
            )
        except SchemaResolutionError as exc:
            raise DecodeError(
                f"{context}: data written with {writer.label} cannot be read as {reader.label}; "
                "the versions are not BACKWARD compatible (python -m schemas.compat explains)"
            ) from exc
        except READ_ERRORS as exc:
            raise DecodeError(
                f"{context}: corrupt or truncated Avro body for {writer.label} "
                f"({type(exc).__name__} while reading)"
            ) from exc
        left = len(data) - SINGLE_OBJECT_HEADER_LEN - body.tell()
        if left:
            raise DecodeError(
                f"{context}: {left} byte(s) left over after a complete {writer.label} record; "
                "the message is corrupt"
            )
        if not isinstance(record, dict):
            raise DecodeError(f"{context}: {writer.label} did not decode to a record")
        return record

    def _read_compiled(self, data: bytes, version: SchemaVersion, context: str) -> dict[str, Any]:
        """Data written with the reader's own version: its compiled reader, 1.6x fastavro."""
        assert version.reader is not None
        try:
            record, end = version.reader(data, SINGLE_OBJECT_HEADER_LEN)
        except COMPILED_READ_ERRORS as exc:
            raise DecodeError(
                f"{context}: corrupt or truncated Avro body for {version.label} "
                f"({type(exc).__name__} while reading)"
            ) from exc
        if end != len(data):
            raise DecodeError(
                f"{context}: {len(data) - end} byte(s) left over after a complete "
                f"{version.label} record; the message is corrupt"
            )
        return record

    def writer_of(
        self, schema_name: str, data: bytes, *, topic: str, is_key: bool = False
    ) -> WriterSchema:
        """The catalogue version ``data``'s fingerprint names, without reading the body.

        The same checks as :meth:`decode` makes before it reads (framing, a known
        fingerprint, a version of ``schema_name``), raising the same errors.
        """
        reader = self._catalog.latest(schema_name)
        version = self._writer_of(data, reader, where(schema_name, topic, is_key))
        found = self._writer_schemas.get(version.fingerprint)
        if found is None:
            found = WriterSchema(
                key=version.sha256,
                label=version.label,
                parsed=version.parsed,
                body_offset=SINGLE_OBJECT_HEADER_LEN,
            )
            self._writer_schemas[version.fingerprint] = found
        return found

    def _writer_of(self, data: bytes, reader: SchemaVersion, context: str) -> SchemaVersion:
        """Check the single-object header and find the writer version it names."""
        if not data:
            raise DecodeError(f"{context}: empty message")
        if data[: len(SINGLE_OBJECT_MARKER)] != SINGLE_OBJECT_MARKER[: len(data)]:
            if detect_format(data) == "confluent":
                raise DecodeError(
                    f"{context}: Confluent wire format (schema id {confluent_schema_id(data)}), "
                    "not Avro single-object encoding; configure the schema registry to read it"
                )
            raise DecodeError(
                f"{context}: not Avro single-object encoding: starts with "
                f"{data[:2].hex()}, expected {SINGLE_OBJECT_MARKER.hex()}"
            )
        if len(data) < SINGLE_OBJECT_HEADER_LEN:
            raise DecodeError(
                f"{context}: truncated: {len(data)} byte(s), the single-object header alone "
                f"is {SINGLE_OBJECT_HEADER_LEN}"
            )
        fp = int.from_bytes(data[len(SINGLE_OBJECT_MARKER) : SINGLE_OBJECT_HEADER_LEN], "little")
        try:
            writer = self._catalog.by_fingerprint(fp)
        except SchemaNotFound as exc:
            raise UnknownWriterSchema(
                f"{context}: written with a schema this build does not know "
                f"(fingerprint {fp:016x}): corrupt, or the producer runs a newer schema"
            ) from exc
        if writer.name != reader.name:
            raise DecodeError(
                f"{context}: written with {writer.label}, not with a version of "
                f"{reader.name!r}; wrong topic or wrong schema name"
            )
        return writer


def check_mapping(version: SchemaVersion, record: object, *, topic: str, is_key: bool) -> None:
    """Refuse non-mappings up front: fastavro's errors for them are cryptic."""
    if not isinstance(record, Mapping):
        raise EncodeError(
            f"cannot encode {where(version.name, topic, is_key)} with {version.label}: "
            f"expected a mapping of field names to values, got {type(record).__name__}"
        )


def encode_error(
    version: SchemaVersion, record: object, exc: BaseException, *, topic: str, is_key: bool
) -> EncodeError:
    """The value-free :class:`EncodeError` for a failed write of ``record``."""
    return EncodeError(
        f"cannot encode {where(version.name, topic, is_key)} with {version.label}: "
        f"{explain_write_failure(version.parsed, record, exc)}"
    )
