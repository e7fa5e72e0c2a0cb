"""Compiled peekers: a few fields of an Avro body, without decoding the rest.

Why: the replay driver splits the work into lanes by customer, and every lane
reads every message, so each must learn a quote change's customer id far more
cheaply than a full decode (fastavro walks and builds the whole ~30-field
envelope: about 20 µs). Avro binary has no index, but everything in it can be
stepped over without being built: strings and bytes by their length prefix,
numbers by their varint's last byte, union branches by their index, arrays and
maps block by block (a negative block count even says the block's size).
:func:`compile_peek` generates, like :mod:`schemas.compiled` does for writers,
one Python function per writer schema that steps over what it does not need,
reads the values at the given field paths, and stops after the last one.

The values are exactly what fastavro's ``schemaless_reader`` gives at those
paths when reading with the writer schema alone, logical types included (a
property test compares both): ``None`` when a union on the way took a branch
without the field (``after`` of a delete is null). A path names record fields
(through records and unions of records) and must end at a single value; a
record, array or map at its end is refused when compiling.

Stopping early means bytes after the last needed field are not looked at: a
body truncated or corrupt after it peeks fine (the full decode of whoever owns
the message finds it). ``to_end=True`` walks the whole body and refuses
missing or left-over bytes, at the cost of stepping over all of it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fastavro import parse_schema
from fastavro.schema import SchemaParseException, UnknownType

from schemas.errors import DecodeError, PeekPathError
from schemas.peek_codegen import READ_ERRORS, Compiler, Corrupt

#: A compiled peek: ``peek(message, body_offset)`` gives the values, in path order.
Peek = Callable[[bytes, int], tuple[Any, ...]]


def _failure(label: str) -> Callable[[Exception, int], DecodeError]:
    def fail(exc: Exception, pos: int) -> DecodeError:
        what = str(exc) if isinstance(exc, Corrupt) else type(exc).__name__
        return DecodeError(f"corrupt or truncated Avro body for {label}: {what} near byte {pos}")

    return fail


def _trie(paths: Sequence[str]) -> dict[str, Any]:
    """Paths as nested dicts of field names, each leaf the path's index in the result."""
    root: dict[str, Any] = {}
    for index, path in enumerate(paths):
        parts = path.split(".")
        if not all(parts):
            raise PeekPathError(f"field path {path!r} has an empty part")
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise PeekPathError(f"field path {path!r} goes through another path's value")
        if parts[-1] in node:
            raise PeekPathError(f"field path {path!r} is asked for twice, or inside another")
        node[parts[-1]] = index
    return root


def _check(schema: Any, parts: Sequence[str], named: Mapping[str, Any]) -> bool:
    """Whether some record (through unions) on the way has each field of ``parts``."""
    if not parts:
        return True
    if isinstance(schema, str):
        schema = named.get(schema, schema)
    if isinstance(schema, list):
        return any(_check(branch, parts, named) for branch in schema)
    if not isinstance(schema, dict) or schema.get("type") != "record":
        return False
    for spec in schema["fields"]:
        if spec["name"] == parts[0]:
            return _check(spec["type"], parts[1:], named)
    return False


def compile_peek(
    writer_schema: Any, paths: Sequence[str], *, to_end: bool = False, label: str = "writer"
) -> Peek:
    """A function reading the values at ``paths`` (``"after.customer_id"``) of bodies of
    ``writer_schema`` (fastavro's parsed form, or the schema's JSON as a dict).

    ``peek(data, start)`` walks the body starting at ``data[start]`` and returns one
    value per path, in order; it raises :class:`DecodeError` (naming ``label``) for a
    body too short or corrupt where it looks. Raises :class:`PeekPathError` when a path
    is not in the schema or does not end at a single value.
    """
    if not paths:
        raise PeekPathError("a peek needs at least one field path")
    parsed = writer_schema
    if not (isinstance(parsed, dict) and parsed.get("__fastavro_parsed")):
        try:
            parsed = parse_schema(writer_schema)
        except (SchemaParseException, UnknownType, ValueError, TypeError, KeyError) as exc:
            raise PeekPathError(f"{label} is not a valid Avro schema: {exc}") from None
    if not (isinstance(parsed, dict) and parsed.get("type") == "record"):
        raise PeekPathError(f"{label} is not a record schema; field paths need one")
    named: dict[str, Any] = dict(parsed.get("__named_schemas") or {})
    for path in paths:
        if not _check(parsed, path.split("."), named):
            raise PeekPathError(f"{label} has no field {path!r}")
    compiler = Compiler(named, paths, to_end)
    body: list[str] = []
    try:
        compiler.into(parsed, _trie(paths), body, "        ", tail=not to_end)
    except PeekPathError as exc:
        raise PeekPathError(f"{label}: {exc}") from None
    results = [f"r{i}" for i in range(len(paths))]
    check = "pos != len(data)" if to_end else "pos > len(data)"
    compiler.env["_fail"] = _failure(label)
    compiler.env["_READ_ERRORS"] = READ_ERRORS
    peek: Peek = compiler.function("peek", [
        f"    {' = '.join(results)} = None",
        "    try:",
        *body,
        "    except _READ_ERRORS as exc:",
        "        raise _fail(exc, pos) from None",
        f"    if {check}:",
        "        raise _fail(_Corrupt('truncated' if pos > len(data) else 'bytes left over'), pos)",
    ], f"({', '.join(results)},)")  # fmt: skip
    return peek
