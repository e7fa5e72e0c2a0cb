"""Avro binary writers compiled to Python source, one function per schema.

Why: the CDC connector encodes every change event, and fastavro's generic
writer walks the schema for each record, choosing every union branch by
validating the value against the branches in turn. For a Debezium envelope
(about 30 fields, a dozen unions) that was 70% of the connector's time.
A writer generated for one schema knows each field's type and picks union
branches by Python type, so it does the least work the schema allows.

The bytes are Avro's binary encoding, identical to fastavro's (a property
test writes random records with both), except one deliberate difference:
decimals are the *minimal* two's-complement bytes of the unscaled value
(Java's ``BigInteger.toByteArray``, what Debezium writes), where fastavro
spends a byte more on negative numbers like -128.

:func:`compile_writer` returns None for a schema it does not cover (a union
whose branch cannot be told from the value's Python type, a logical type it
does not know): the caller keeps fastavro for those.
"""

from __future__ import annotations

import datetime as _dt
import struct
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

Writer = Callable[[Mapping[str, Any]], bytes]

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)
_EPOCH_DATE = _dt.date(1970, 1, 1).toordinal()
_PRIMITIVES = ("null", "boolean", "int", "long", "float", "double", "bytes", "string")


class Unsupported(Exception):
    """The schema uses something this compiler leaves to fastavro."""


def _varint(n: int) -> bytes:
    """Zigzag varint (Avro int and long); refuses non-ints (bool is an int: fine)."""
    if n.__class__ is not int and not isinstance(n, int):
        raise TypeError(f"expected an int, got {type(n).__name__}")
    if not -(1 << 63) <= n < (1 << 63):
        raise ValueError("integer out of the range of an Avro long")
    z = (n << 1) ^ (n >> 63)
    if z < 0x80:
        return _SMALL[z]
    # Unrolled up to five bytes (LSNs, ids): one bytes() instead of a loop of appends.
    if z < 0x4000:
        return bytes((z & 127 | 128, z >> 7))
    if z < 0x200000:
        return bytes((z & 127 | 128, z >> 7 & 127 | 128, z >> 14))
    if z < 0x10000000:
        return bytes((z & 127 | 128, z >> 7 & 127 | 128, z >> 14 & 127 | 128, z >> 21))
    if z < 0x800000000:
        return bytes(
            (z & 127 | 128, z >> 7 & 127 | 128, z >> 14 & 127 | 128, z >> 21 & 127 | 128, z >> 28)
        )
    out = bytearray()
    while z >= 0x80:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


_SMALL = [bytes([i]) for i in range(0x80)]


def _string(value: str) -> bytes:
    if value.__class__ is not str and not isinstance(value, str):
        raise TypeError(f"expected a str, got {type(value).__name__}")
    data = value.encode()
    size = len(data)
    return (_SMALL[size << 1] if size < 64 else _varint(size)) + data


def _bytes(value: bytes) -> bytes:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError(f"expected bytes, got {type(value).__name__}")
    return _varint(len(value)) + bytes(value)


def _boolean(value: bool) -> bytes:
    if value is True:
        return b"\x01"
    if value is False:
        return b"\x00"
    raise TypeError(f"expected a bool, got {type(value).__name__}")


def _null(value: None) -> bytes:
    if value is not None:
        raise TypeError(f"expected None, got {type(value).__name__}")
    return b""


_float = struct.Struct("<f").pack
_double = struct.Struct("<d").pack


def _decimal_bytes(scale: int) -> Callable[[Decimal], bytes]:
    def write(value: Decimal) -> bytes:
        if not isinstance(value, Decimal):
            raise TypeError(f"expected a Decimal, got {type(value).__name__}")
        sign, digits, exponent = value.as_tuple()
        if not isinstance(exponent, int):
            raise ValueError("NaN and infinities have no Avro decimal form")
        if -exponent > scale:
            raise ValueError("Scale provided in schema does not match the decimal")
        unscaled = 0
        for digit in digits:
            unscaled = unscaled * 10 + digit
        unscaled *= 10 ** (scale + exponent)
        if sign:
            unscaled = -unscaled
        size = (unscaled if unscaled >= 0 else ~unscaled).bit_length() // 8 + 1
        data: bytes = unscaled.to_bytes(size, "big", signed=True)
        return _varint(size) + data

    return write


def _date(value: _dt.date | int) -> bytes:
    if isinstance(value, _dt.datetime):
        raise TypeError("a datetime for a date: left to fastavro")
    if isinstance(value, _dt.date):
        return _varint(value.toordinal() - _EPOCH_DATE)
    return _varint(value)


def _timestamp(micros_per_unit: int) -> Callable[[_dt.datetime | int], bytes]:
    def write(value: _dt.datetime | int) -> bytes:
        if isinstance(value, _dt.datetime):
            if value.tzinfo is None:
                # fastavro's reading of a naive datetime is its own: leave it to fastavro.
                raise TypeError("a naive datetime")
            delta = value - _EPOCH
            micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
            return _varint(micros // micros_per_unit)
        return _varint(value)

    return write


class _Compiler:
    """Generates one Python function per record type; unions and arrays inline."""

    def __init__(self) -> None:
        self.env: dict[str, Any] = {
            "_varint": _varint, "_string": _string, "_bytes": _bytes, "_boolean": _boolean,
            "_null": _null, "_float": _float, "_double": _double, "_date": _date,
            "Decimal": Decimal, "_dt": _dt,
        }  # fmt: skip
        self.named: dict[str, Any] = {}
        self.functions: dict[str, str] = {}  # record full name -> generated function name
        self.sources: list[str] = []
        self._serial = 0

    def name(self, prefix: str) -> str:
        self._serial += 1
        return f"{prefix}{self._serial}"

    # -- types to expressions ----------------------------------------------------
    def expr(self, schema: Any, value: str) -> str:
        """An expression that writes ``value`` (a Python expression) as ``schema``."""
        if isinstance(schema, str):
            if schema in _PRIMITIVES:
                return self._primitive(schema, value)
            if schema in self.functions:
                return f"{self.functions[schema]}({value})"
            if schema in self.named:
                return self.expr(self.named[schema], value)
            raise Unsupported(f"unknown type {schema}")
        if isinstance(schema, list):
            return self._union(schema, value)
        kind = schema["type"]
        logical = schema.get("logicalType")
        if logical is not None:
            return self._logical(schema, logical, value)
        if kind == "record":
            return f"{self.record(schema)}({value})"
        if kind == "enum":
            symbols = self.constant({s: _varint(i) for i, s in enumerate(schema["symbols"])})
            self.named[schema["name"]] = schema
            return f"{symbols}[{value}]"
        if kind == "array":
            item = self.name("_item")
            body = self.expr(schema["items"], item)
            return (
                f"((_varint(len({value})) + b''.join([{body} for {item} in {value}]) + b'\\x00')"
                f" if {value} else b'\\x00')"
            )
        if kind == "map":
            k, v = self.name("_k"), self.name("_v")
            body = self.expr(schema["values"], v)
            return (
                f"((_varint(len({value})) + b''.join([_string({k}) + {body}"
                f" for {k}, {v} in {value}.items()]) + b'\\x00') if {value} else b'\\x00')"
            )
        if kind in _PRIMITIVES:
            return self._primitive(kind, value)
        raise Unsupported(f"type {kind}")

    def _primitive(self, kind: str, value: str) -> str:
        return {
            "null": f"_null({value})",
            "boolean": f"_boolean({value})",
            "int": f"_varint({value})",
            "long": f"_varint({value})",
            "float": f"_float({value})",
            "double": f"_double({value})",
            "bytes": f"_bytes({value})",
            "string": f"_string({value})",
        }[kind]

    def _logical(self, schema: Mapping[str, Any], logical: str, value: str) -> str:
        kind = schema["type"]
        if logical == "decimal" and kind == "bytes":
            return f"{self.constant(_decimal_bytes(int(schema.get('scale', 0))))}({value})"
        if logical == "date" and kind == "int":
            return f"_date({value})"
        if logical in ("timestamp-millis", "timestamp-micros") and kind == "long":
            per_unit = 1_000 if logical == "timestamp-millis" else 1
            return f"{self.constant(_timestamp(per_unit))}({value})"
        if logical in ("uuid",) and kind == "string":
            return f"_string(str({value}))"
        raise Unsupported(f"logical type {logical} on {kind}")

    def constant(self, obj: Any) -> str:
        name = self.name("_c")
        self.env[name] = obj
        return name

    def _union(self, branches: list[Any], value: str) -> str:
        """Branch by Python type, checked in a fixed order; Unsupported if ambiguous."""
        tests: list[tuple[str, str]] = []
        seen: set[str] = set()
        records = [b for b in branches if self._kind(b) == "record"]
        for index, branch in enumerate(branches):
            kind = self._kind(branch)
            check = {
                "null": f"{value} is None",
                "boolean": f"{value}.__class__ is bool",
                "int": f"{value}.__class__ is int",
                "long": f"{value}.__class__ is int",
                "float": f"{value}.__class__ in (float, int)",
                "double": f"{value}.__class__ in (float, int)",
                "string": f"{value}.__class__ is str",
                "bytes": f"isinstance({value}, (bytes, bytearray, memoryview))",
                "decimal": f"isinstance({value}, Decimal)",
                "date": f"({value}.__class__ is _dt.date)",
                "timestamp": f"isinstance({value}, _dt.datetime)",
                "array": f"isinstance({value}, list)",
                "record": f"isinstance({value}, dict)",
            }.get(kind)
            if check is None or kind in seen:
                raise Unsupported(f"union branch {kind} cannot be told by Python type")
            if kind == "record" and len(records) > 1:
                raise Unsupported("a union of several records needs tuple notation")
            seen.add(kind)
            tests.append((check, f"{_varint(index)!r} + {self.expr(branch, value)}"))
        if {"int", "long"} <= seen or len(seen & {"float", "double", "int", "long"}) > 1:
            raise Unsupported("a union of two numeric types of the same Python type")
        record_index = next((i for i, b in enumerate(branches) if self._kind(b) == "record"), -1)
        fn = self.name("_union")
        lines = [f"def {fn}({value}):"]
        if record_index >= 0:
            # Tuple notation (full name, record): what SchemaVersion.with_branches produces.
            lines.append(f"    if {value}.__class__ is tuple:")
            lines.append(f"        {value} = {value}[1]")
        for check, write in tests:
            lines.append(f"    if {check}:")
            lines.append(f"        return {write}")
        lines.append(
            f"    raise TypeError('no branch of the union takes a ' + type({value}).__name__)"
        )
        self.sources.append("\n".join(lines))
        return f"{fn}({value})"

    def _kind(self, schema: Any) -> str:
        if isinstance(schema, str):
            if schema in _PRIMITIVES:
                return schema
            resolved = self.named.get(schema)
            return self._kind(resolved) if resolved is not None else "record"
        if isinstance(schema, list):
            return "union"
        logical = schema.get("logicalType")
        if logical == "decimal":
            return "decimal"
        if logical == "date":
            return "date"
        if logical in ("timestamp-millis", "timestamp-micros"):
            return "timestamp"
        return str(schema["type"])

    def record(self, schema: Mapping[str, Any]) -> str:
        full = str(schema["name"])
        if full in self.functions:
            return self.functions[full]
        fn = self.name("_record")
        self.functions[full] = fn
        self.named[full] = schema
        parts = []
        for field in schema["fields"]:
            name = field["name"]
            if "default" in field:
                default = self.constant(field["default"])
                getter = f"record.get({name!r}, {default})"
            else:
                getter = f"record[{name!r}]"
            local = self.name("_f")
            parts.append((local, getter, self.expr(field["type"], local)))
        fields = self.constant(frozenset(f["name"] for f in schema["fields"]))
        body = [
            f"def {fn}(record):",
            # Fields the schema lacks are an error (fastavro's strict mode); the length
            # test keeps the set difference off the common path.
            f"    if len(record) != {len(parts)} and record.keys() - {fields}:",
            "        raise ValueError('record contains more fields than the schema specifies')",
        ]
        for local, getter, _ in parts:
            body.append(f"    {local} = {getter}")
        joined = " + ".join(write for _, _, write in parts) or "b''"
        body.append(f"    return {joined}")
        self.sources.append("\n".join(body))
        return fn


def compile_writer(parsed: Mapping[str, Any]) -> Writer | None:
    """A writer for fastavro's parsed form of a record schema, or None if not covered."""
    compiler = _Compiler()
    try:
        entry = compiler.record(parsed)
    except Unsupported:
        return None
    namespace = dict(compiler.env)
    exec("\n\n".join(compiler.sources), namespace)  # noqa: S102 - source built above
    writer: Writer = namespace[entry]
    return writer
