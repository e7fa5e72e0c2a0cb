"""Avro binary readers compiled to Python source, one function per writer schema.

Why: the replay decodes every change its lane owns, and fastavro's reader walks
the schema generically for each record; for the quote envelope it reads about
46k records/s here. A reader generated for one schema (the code generator of
:mod:`schemas.peek_codegen`, whose leaf reads already give fastavro's values,
logical types included) reads the same envelope at about 73k/s, with the same
result: a property test compares both on every shipped schema.

Only for reading a body with its own writer schema, nothing to resolve: the
serdes use it when the writer is the reader, fastavro otherwise (an older
version, Debezium's layout). :func:`compile_reader` returns None for a schema
it leaves to fastavro (a recursive record).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from schemas.peek_codegen import READ_ERRORS, Compiler

#: ``read(data, start)``: the record whose body starts at ``data[start]``, and where it ends.
Reader = Callable[[bytes, int], tuple[dict[str, Any], int]]
#: What a compiled reader raises for a corrupt or truncated body (besides what fastavro's
#: logical-type conversions raise, which are among them).
COMPILED_READ_ERRORS: tuple[type[Exception], ...] = READ_ERRORS


class Recursive(Exception):
    """A record that contains itself: left to fastavro."""


class FullReader(Compiler):
    """The peek's generator, reading records, arrays and maps whole instead of refusing them."""

    def __init__(self, named: Mapping[str, Any]) -> None:
        super().__init__(named, (), to_end=True)
        self._records: tuple[str, ...] = ()

    def read(self, schema: Any, target: str, out: list[str], ind: str) -> None:
        schema = self.resolve(schema)
        kind = schema.get("type") if isinstance(schema, dict) else None
        if kind == "record":
            self._record(schema, target, out, ind)
        elif kind in ("array", "map"):
            self._blocks_of(schema, target, out, ind)
        else:
            super().read(schema, target, out, ind)

    def _record(self, schema: Mapping[str, Any], target: str, out: list[str], ind: str) -> None:
        name = str(schema["name"])
        if name in self._records:
            raise Recursive(name)
        self._records = (*self._records, name)
        fields = []
        for spec in schema["fields"]:
            local = self.fresh("v")
            self.read(spec["type"], local, out, ind)
            fields.append(f"{spec['name']!r}: {local}")
        self._records = self._records[:-1]
        out.append(f"{ind}{target} = {{{', '.join(fields)}}}")

    def _blocks_of(self, schema: Mapping[str, Any], target: str, out: list[str], ind: str) -> None:
        """Blocks as the peek steps over them: a count larger than the bytes left is
        corrupt, unless the items take no bytes (an array of nulls)."""
        items, count, value = self.fresh("t"), self.fresh("n"), self.fresh("v")
        array = schema["type"] == "array"
        sized: list[str] = []
        self.skip(schema["items"] if array else "string", sized, "", ())
        guard = [
            f"{ind}    if {count} > len(data) - pos:",
            f"{ind}        raise _Corrupt('a block count past the end of the body')",
        ]
        out += [
            f"{ind}{items} = {'[]' if array else '{}'}",
            f"{ind}while True:",
            f"{ind}    {count}, pos = _read_long(data, pos)",
            f"{ind}    if not {count}:",
            f"{ind}        break",
            f"{ind}    if {count} < 0:",
            f"{ind}        {count} = -{count}",
            f"{ind}        _, pos = _read_long(data, pos)",
            *(guard if sized else []),
            f"{ind}    for _ in range({count}):",
        ]
        inner = ind + "        "
        if array:
            self.read(schema["items"], value, out, inner)
            out.append(f"{inner}{items}.append({value})")
        else:
            key = self.fresh("k")
            self.read("string", key, out, inner)
            self.read(schema["values"], value, out, inner)
            out.append(f"{inner}{items}[{key}] = {value}")
        out.append(f"{ind}{target} = {items}")


def compile_reader(parsed: Mapping[str, Any]) -> Reader | None:
    """A reader for fastavro's parsed form of a record schema, or None: use fastavro."""
    compiler = FullReader(dict(parsed.get("__named_schemas") or {}))
    body: list[str] = []
    try:
        compiler.read(parsed, "record", body, "    ")
    except Recursive:
        return None
    reader: Reader = compiler.function("read", body, "record, pos")
    return reader
