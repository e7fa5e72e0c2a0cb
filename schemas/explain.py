"""Say why a record does not fit its schema without repeating its values.

fastavro's writer errors are precise but quote the offending value
(``'jane@example.com' (type <class 'str'>) do not match ['null', 'double']``),
and e-mail addresses must not reach logs or dead-letter topics. So when a write
fails we rebuild the explanation from safe parts only: field paths, expected
types and the *type name* of what was given. This runs on the error path only,
so the happy path pays nothing for it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from fastavro.types import Schema as AvroSchema
from fastavro.validation import ValidationError, validate

# fastavro writer messages whose captured parts are schema field names, never values.
_FIELD_SUFFIX = re.compile(r" on field (?P<field>[A-Za-z_][A-Za-z0-9_]*)$")
_MISSING = (
    re.compile(r"^no value and no default for (?P<field>[A-Za-z_][A-Za-z0-9_]*)$"),
    re.compile(
        r"^Field (?P<field>[A-Za-z_][A-Za-z0-9_]*) is specified in the schema "
        r"but missing from the record$"
    ),
)
_EXTRA = re.compile(r"^record contains more fields than the schema specifies: (?P<fields>.*)$")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SCALE = "Scale provided in schema does not match the decimal"


def explain_write_failure(schema: AvroSchema, record: object, exc: BaseException) -> str:
    """A value-free description of why writing ``record`` with ``schema`` failed."""
    precise, fallback = _from_writer_message(exc)
    # The validator names the full field path and the expected type, so it
    # beats the writer's bare field name; it cannot see missing or extra fields.
    problems = precise + _from_validation(schema, record) or fallback
    if problems:
        return "; ".join(dict.fromkeys(problems))
    return (
        f"{type(exc).__name__} from the Avro writer (details withheld: they may hold personal data)"
    )


def _from_writer_message(exc: BaseException) -> tuple[list[str], list[str]]:
    """(precise problems, fallback problems) from the writer's message."""
    precise, fallback = _classify_writer_message(str(exc), type(exc).__name__)
    return ([precise] if precise else []), ([fallback] if fallback else [])


def _classify_writer_message(message: str, kind: str) -> tuple[str | None, str | None]:
    for pattern in _MISSING:
        match = pattern.match(message)
        if match:
            return f"field {match['field']!r} is missing and has no default", None
    match = _EXTRA.match(message)
    if match:
        names = [n.strip() for n in match["fields"].split(",")]
        if all(_IDENTIFIER.fullmatch(n) for n in names):
            return f"fields not in the schema: {', '.join(names)}", None
        return "the record has fields the schema does not define", None
    if message == _SCALE:
        return "a decimal has more digits after the point than the schema's scale", None
    match = _FIELD_SUFFIX.search(message)
    if match:
        return None, f"field {match['field']!r} has a value of the wrong type ({kind})"
    return None, None


def _from_validation(schema: AvroSchema, record: object) -> list[str]:
    try:
        validate(record, schema, raise_errors=True)
    except ValidationError as exc:
        expected: dict[str, list[str]] = {}
        given: dict[str, str] = {}
        for error in exc.errors:
            path = error.field or "<record>"
            expected.setdefault(path, []).append(_type_label(error.schema))
            given[path] = "null or missing" if error.datum is None else type(error.datum).__name__
        return [
            f"field {path!r} expects {' | '.join(dict.fromkeys(types))}, got {given[path]}"
            for path, types in expected.items()
        ]
    except (ValueError, TypeError, AttributeError, KeyError, OverflowError):
        # The validator chokes on some inputs the writer also rejected (e.g. a
        # decimal of the wrong scale); the writer's message is all we have then.
        return []
    return []


def _type_label(schema: Any) -> str:
    if isinstance(schema, str):
        return schema
    if isinstance(schema, list):
        return " | ".join(_type_label(branch) for branch in schema)
    if isinstance(schema, Mapping):
        logical = schema.get("logicalType")
        if logical == "decimal":
            return f"decimal({schema.get('precision')},{schema.get('scale', 0)})"
        if logical:
            return str(logical)
        kind = str(schema.get("type"))
        if kind in ("record", "enum", "fixed"):
            return f"{kind} {schema.get('name')}"
        # Debezium's semantic types (connect.name) say which string or int is
        # meant, e.g. "string (io.debezium.time.ZonedTimestamp)".
        connect_name = schema.get("connect.name")
        return f"{kind} ({connect_name})" if connect_name else kind
    return type(schema).__name__
