"""The compiled writer of :mod:`schemas.compiled`, in C for the schemas it covers.

Why: a replay lane writes about one output per two changes, and encoding them
through the compiled Python writer (a few µs a decision) was a fourteenth of a
lane's time. The C writer of ``schemas._native`` (built by ``pip install``)
covers the simple records the outputs are made of — strings, ints and longs,
booleans, enums, nulls, records, and unions of those told apart by exact Python
type — and writes the compiled writer's bytes. Anything else about a record (a
``str`` or ``dict`` subclass, a missing field, a value of the wrong type) makes
it raise, and :meth:`schemas.catalog.SchemaVersion.write_body` then asks the
compiled writer, so bytes and errors are the compiled writer's.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from schemas.native_projection import KIND, native_module

_native = native_module()

#: ``write(record)``: the Avro body.
NativeWriter = Callable[[Mapping[str, Any]], bytes]
#: The primitive types it writes.
_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "string"})


class _Unsupported(Exception):
    """A schema the C writer leaves to the compiled Python writer."""


class _Builder:
    def __init__(self) -> None:
        self.named: dict[str, Any] = {}

    def node(self, schema: Any) -> Any:
        if isinstance(schema, str):
            if schema in _PRIMITIVES:
                return _native.Node(KIND[schema])
            if schema in self.named:
                return self.node(self.named[schema])
            raise _Unsupported(schema)
        if isinstance(schema, list):
            branches = [self.node(b) for b in schema]
            kinds = [b.kind for b in branches]
            if KIND["record"] in kinds or KIND["enum"] in kinds or len(set(kinds)) != len(kinds):
                raise _Unsupported("a union the compiled writer tells apart otherwise")
            return _native.Node(KIND["union"], children=tuple(branches))
        kind = schema.get("type")
        logical = schema.get("logicalType")
        if logical in ("timestamp-millis", "timestamp-micros") and kind == "long":
            # An int is written as is (a datetime is not an int: the compiled writer).
            return _native.Node(KIND[kind])
        if logical is not None:
            raise _Unsupported("a logical type")
        if kind in _PRIMITIVES:
            return _native.Node(KIND[kind])
        if kind == "enum":
            self.named[schema["name"]] = schema
            symbols = {s: i for i, s in enumerate(schema["symbols"])}
            return _native.Node(KIND["enum"], symbols=tuple(schema["symbols"]), memo=symbols)
        if kind == "record":
            return self.record(schema)
        raise _Unsupported(str(kind))

    def record(self, schema: Mapping[str, Any]) -> Any:
        name = str(schema["name"])
        if name in self.named:
            raise _Unsupported("a record named twice")
        self.named[name] = schema
        fields = schema["fields"]
        names = tuple(f["name"] for f in fields)
        defaults = tuple(f.get("default", _native._NO_DEFAULT) for f in fields)
        return _native.Node(KIND["record"], names=names,
                            children=tuple(self.node(f["type"]) for f in fields),
                            memo=(frozenset(names), defaults))  # fmt: skip


def compile_native_writer(parsed: Mapping[str, Any]) -> NativeWriter | None:
    """The C writer for fastavro's parsed form of a record schema, or None (not built, or
    a type it leaves to the compiled writer: bytes, floats, arrays, maps, logical types)."""
    if _native is None:
        return None
    try:
        root = _Builder().record(parsed)
    except _Unsupported:
        return None
    writer: NativeWriter = functools.partial(_native.write, root)
    return writer
