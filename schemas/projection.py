"""Avro readers compiled to build only some fields of a record, checking the rest as they step.

Why: a replay lane decodes every change it owns, and the core reads a third of
the envelope (``op``, three fields of ``source``, the row's columns but one);
building the other fields (strings decoded, dict entries, a date converted) was
half of the compiled full reader's time. A projection reads the fields at the
given paths exactly as :mod:`schemas.compiled_reader` does and steps over the
others, so its records are the full reader's with those fields only.

It never accepts a body the full reader refuses: where stepping over is laxer
than reading, it checks. A skipped long's varint is bounded like a read one; a
skipped enum, array, map or logical type (a date, say, whose conversion can
fail) is read and dropped; a run of skipped strings is looked at once for a
byte past ASCII, and any makes the projection refuse (a skipped string is not
decoded, so its UTF-8 is not checked: the caller then decodes the message in
full, which decides). It may refuse more than the full reader; the caller
(:class:`schemas.projector.Projector`) then decodes in full, so what is
accepted and what each record reads as stay the full decode's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from fastavro.read import LOGICAL_READERS

from schemas.compiled_reader import FullReader, Recursive
from schemas.peek_codegen import _SINGLE_VALUES, READ_ERRORS

#: ``project(data, start)``: the projected record whose body starts at ``data[start]``,
#: and where it ends (the caller checks that it is the end of ``data``).
Projection = Callable[[bytes, int], tuple[dict[str, Any], int]]
#: What a projection raises for a body it will not vouch for (corrupt, truncated, or a
#: skipped string it did not check): the caller decodes the message in full instead.
PROJECTION_ERRORS: tuple[type[Exception], ...] = READ_ERRORS
#: A byte past ASCII between two positions (``search(data, start, end)``).
_NON_ASCII = re.compile(rb"[\x80-\xff]").search
#: Needed: the whole value (a leaf of the paths), or these fields of it.
Need = Mapping[str, "Need"] | Literal[True]


def tree(paths: Sequence[str]) -> dict[str, Need]:
    """Field paths (``"after.customer_id"``) as nested dicts; a path's end is True."""
    root: dict[str, Any] = {}
    for path in paths:
        node = root
        parts = path.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if child is True:
                break  # the whole value is needed already
            node = child
        else:
            node[parts[-1]] = True
    return root


class _Memo(dict[Any, Any]):
    """A logical type's conversions by raw value (premiums and dates repeat): the same
    immutable values (Decimal, date, ...) fastavro makes, each made once. Bounded."""

    def __init__(self, convert: Callable[[Any, Any, Any], Any], schema: Any) -> None:
        super().__init__()
        self._convert, self._schema = convert, schema

    def __missing__(self, raw: Any) -> Any:
        value = self._convert(raw, self._schema, None)  # raises for what it cannot convert
        if len(self) >= _MEMO_MAX:
            self.clear()
        self[raw] = value
        return value


_MEMO_MAX = 4096


class _Projector(FullReader):
    """The full reader's generator, building the needed fields and checking the others."""

    def __init__(self, named: Mapping[str, Any]) -> None:
        super().__init__(named)
        self.env["_non_ascii"] = _NON_ASCII

    def read(self, schema: Any, target: str, out: list[str], ind: str) -> None:
        """As the full reader, but a logical type's conversion through a :class:`_Memo`."""
        schema = self.resolve(schema)
        kind = schema.get("type") if isinstance(schema, dict) else None
        logical = schema.get("logicalType") if isinstance(schema, dict) else None
        convert = LOGICAL_READERS.get(f"{kind}-{logical}") if logical else None
        if convert is None or kind not in _SINGLE_VALUES:
            super().read(schema, target, out, ind)
            return
        self._read_base(schema, kind, target, out, ind)
        memo = self.constant(_Memo(convert, schema))
        out.append(f"{ind}{target} = {memo}[{target}]")

    def project(self, schema: Any, need: Need, target: str, out: list[str], ind: str) -> None:
        """Lines reading the needed part of one value of ``schema`` into ``target``."""
        schema = self.resolve(schema)
        if need is True:
            self.read(schema, target, out, ind)
        elif isinstance(schema, list):
            self._union(schema, [need] * len(schema), out, ind,
                        emit=lambda b, o, i, n: self.project(b, n, target, o, i))  # fmt: skip
        elif isinstance(schema, dict) and schema.get("type") == "record":
            self._fields(schema, need, target, out, ind)
        elif isinstance(schema, dict) and isinstance(schema.get("type"), dict | list):
            self.project(schema["type"], need, target, out, ind)
        else:  # fields of a value that has none: the value, as the full reader gives it
            self.read(schema, target, out, ind)

    def _fields(self, schema: Mapping[str, Any], need: Mapping[str, Need] | None, target: str,
                out: list[str], ind: str) -> None:  # fmt: skip
        """A record's needed fields into a dict ``target`` (None: none, step over all)."""
        name = str(schema["name"])
        if name in self._records:
            raise Recursive(name)
        self._records = (*self._records, name)
        built: list[str] = []
        run: str | None = None  # where the current run of skipped strings starts
        for spec in schema["fields"]:
            wanted = None if need is None else need.get(spec["name"])
            if wanted is None and _stringy(self.resolve(spec["type"])):
                if run is None:
                    run = self.fresh("s")
                    out.append(f"{ind}{run} = pos")
                self.check_skip(spec["type"], out, ind, in_run=True)
                continue
            run = self._end_run(run, out, ind)
            if wanted is None:
                self.check_skip(spec["type"], out, ind)
            else:
                local = self.fresh("v")
                self.project(spec["type"], wanted, local, out, ind)
                built.append(f"{spec['name']!r}: {local}")
        self._end_run(run, out, ind)
        self._records = self._records[:-1]
        if target:
            out.append(f"{ind}{target} = {{{', '.join(built)}}}")

    @staticmethod
    def _end_run(run: str | None, out: list[str], ind: str) -> None:
        if run is not None:
            out += [
                f"{ind}if _non_ascii(data, {run}, pos) is not None:",
                f"{ind}    raise _Corrupt('a skipped string past ASCII: not checked')",
            ]

    def check_skip(self, schema: Any, out: list[str], ind: str, in_run: bool = False) -> None:
        """Lines moving ``pos`` past one value, refusing what the full reader refuses.

        ``in_run``: inside a run of skipped strings, whose bytes are checked at its end.
        """
        schema = self.resolve(schema)
        if isinstance(schema, list):
            self._union(schema, [True] * len(schema), out, ind,
                        emit=lambda b, o, i, _: self.check_skip(b, o, i, in_run))  # fmt: skip
            return
        kind = schema["type"] if isinstance(schema, dict) else schema
        logical = schema.get("logicalType") if isinstance(schema, dict) else None
        if isinstance(kind, dict | list):
            self.check_skip(kind, out, ind, in_run)
        elif kind == "record":
            self._fields(schema, None, "", out, ind)
        elif kind in ("enum", "array", "map") or (
            logical and f"{kind}-{logical}" in LOGICAL_READERS
        ):
            self.read(schema, "_", out, ind)  # read, checked, dropped
        elif kind in ("int", "long"):
            # To the varint's last byte; longer than a long's ten bytes: corrupt, as read.
            start = self.fresh("s")
            out += [
                f"{ind}{start} = pos",
                f"{ind}while data[pos] > 127:",
                f"{ind}    pos += 1",
                f"{ind}pos += 1",
                f"{ind}if pos - {start} > 10:",
                f"{ind}    raise _Corrupt('a varint longer than a long')",
            ]
        elif kind == "string" and not in_run:
            run = self.fresh("s")
            out.append(f"{ind}{run} = pos")
            self.skip(schema, out, ind, ())
            self._end_run(run, out, ind)
        else:  # a string in a run; null, boolean, float, double, bytes, fixed: as read
            self.skip(schema, out, ind, ())


def _stringy(schema: Any) -> bool:
    """A string, or a union of null and strings: what a run of skipped strings may hold."""
    if isinstance(schema, list):
        return bool(schema) and all(b == "null" or _stringy(b) for b in schema)
    if isinstance(schema, dict):
        return schema.get("type") == "string" and not schema.get("logicalType")
    return bool(schema == "string")


def compile_projection(parsed: Mapping[str, Any], paths: Sequence[str]) -> Projection | None:
    """A projection of fastavro's parsed form of a record schema onto ``paths``, or None
    where the full reader would be None too (a recursive record): decode in full."""
    compiler = _Projector(dict(parsed.get("__named_schemas") or {}))
    body: list[str] = []
    try:
        compiler.project(parsed, tree(paths), "record", body, "    ")
    except Recursive:
        return None
    projection: Projection = compiler.function("project", body, "record, pos")
    return projection
