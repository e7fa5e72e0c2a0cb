"""The code generator behind :func:`schemas.peek.compile_peek`, and what its code calls.

Kept apart from the public function so each reads in one sitting. Generated
code works on ``data`` (the whole message) and ``pos`` (the read position),
records inlined field by field, so the common case (a one-byte varint, a short
string) is a few bytecodes with no call; what is rare (long varints, lengths)
calls the helpers below. It raises :class:`Corrupt` for bytes no valid body
has, and lets ``IndexError``/``struct.error`` out for a body that ends early:
the public function turns all of them into one ``DecodeError``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fastavro.read import LOGICAL_READERS

from schemas.errors import PeekPathError

_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
#: The types a path may end at.
_SINGLE_VALUES = _PRIMITIVES | {"enum", "fixed"}
#: Union indexes below this are one varint byte (zigzag ``2 * index``).
_ONE_BYTE_BRANCHES = 64
_LONG_BITS = 64


class Corrupt(Exception):
    """Raised by generated code for bytes no valid body has; turned into a DecodeError."""


def _long_rest(data: bytes, pos: int, first: int) -> tuple[int, int]:
    """A zigzag varint whose first byte (already read) had the continuation bit.

    The next four bytes unrolled: ids, LSNs and epoch milliseconds (six bytes) are
    on every change event, and the loop's bookkeeping was most of their cost.
    """
    n = first & 0x7F
    b = data[pos]
    if b < 0x80:
        n |= b << 7
        return (n >> 1) ^ -(n & 1), pos + 1
    n |= (b & 0x7F) << 7
    b = data[pos + 1]
    if b < 0x80:
        n |= b << 14
        return (n >> 1) ^ -(n & 1), pos + 2
    n |= (b & 0x7F) << 14
    b = data[pos + 2]
    if b < 0x80:
        n |= b << 21
        return (n >> 1) ^ -(n & 1), pos + 3
    n |= (b & 0x7F) << 21
    b = data[pos + 3]
    if b < 0x80:
        n |= b << 28
        return (n >> 1) ^ -(n & 1), pos + 4
    n |= (b & 0x7F) << 28
    pos += 4
    shift = 35
    while True:
        b = data[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        if b < 0x80:
            return (n >> 1) ^ -(n & 1), pos
        shift += 7
        if shift >= _LONG_BITS + 6:
            raise Corrupt("a varint longer than a long")


def _read_long(data: bytes, pos: int) -> tuple[int, int]:
    b = data[pos]
    if b < 0x80:
        return (b >> 1) ^ -(b & 1), pos + 1
    return _long_rest(data, pos + 1, b)


def _length(data: bytes, pos: int) -> tuple[int, int]:
    """A length prefix (strings, bytes, block sizes): never negative in a valid body."""
    n, pos = _read_long(data, pos)
    if n < 0:
        raise Corrupt("a negative length")
    return n, pos


def _skip_length(data: bytes, pos: int) -> int:
    n, pos = _length(data, pos)
    return pos + n


ENV: dict[str, Any] = {
    "_long_rest": _long_rest, "_read_long": _read_long, "_length": _length,
    "_skip_length": _skip_length, "_Corrupt": Corrupt,
    "_float": struct.Struct("<f").unpack_from, "_double": struct.Struct("<d").unpack_from,
}  # fmt: skip

#: What stepping over a corrupt or truncated body raises inside a generated function.
READ_ERRORS: tuple[type[Exception], ...] = (
    IndexError, struct.error, ValueError, OverflowError, TypeError, Corrupt,
)  # fmt: skip


class Compiler:
    """Emits the walk of one writer schema as straight-line Python, records inlined."""

    def __init__(self, named: Mapping[str, Any], paths: Sequence[str], to_end: bool) -> None:
        self.named = named
        self.paths = paths
        self.to_end = to_end
        self.env: dict[str, Any] = dict(ENV)
        self.skippers: dict[str, str] = {}  # record full name -> its generated skip function
        self.sources: list[str] = []
        self._serial = 0

    def fresh(self, prefix: str) -> str:
        self._serial += 1
        return f"{prefix}{self._serial}"

    def constant(self, value: Any) -> str:
        name = self.fresh("_c")
        self.env[name] = value
        return name

    def function(self, name: str, body: list[str], result: str) -> Any:
        """Define ``def name(data, pos)`` running ``body`` and returning ``result``, with
        every helper generated so far, and return it."""
        source = "\n".join([f"def {name}(data, pos):", *body, f"    return {result}"])
        namespace = dict(self.env)
        exec("\n\n".join([*self.sources, source]), namespace)  # noqa: S102 - generated here
        return namespace[name]

    def resolve(self, schema: Any) -> Any:
        """A named type's definition for its name; anything else as is."""
        if isinstance(schema, str) and schema not in _PRIMITIVES:
            return self.named[schema]
        return schema

    # -- stepping over ----------------------------------------------------------------
    def skip(self, schema: Any, out: list[str], ind: str, inlining: tuple[str, ...]) -> None:
        """Lines that move ``pos`` past one value of ``schema``."""
        schema = self.resolve(schema)
        if isinstance(schema, list):
            self._union(schema, [None] * len(schema), out, ind, inlining=inlining)
            return
        kind = schema["type"] if isinstance(schema, dict) else schema
        if kind == "null":
            return
        if kind == "boolean":
            out.append(f"{ind}pos += 1")
        elif kind in ("int", "long", "enum"):
            out += [f"{ind}while data[pos] > 127:", f"{ind}    pos += 1", f"{ind}pos += 1"]
        elif kind == "float":
            out.append(f"{ind}pos += 4")
        elif kind == "double":
            out.append(f"{ind}pos += 8")
        elif kind == "fixed":
            if schema["size"]:
                out.append(f"{ind}pos += {int(schema['size'])}")
        elif kind in ("string", "bytes"):
            out += [
                f"{ind}b = data[pos]",
                f"{ind}if b < 128 and not b & 1:",
                f"{ind}    pos += 1 + (b >> 1)",
                f"{ind}else:",
                f"{ind}    pos = _skip_length(data, pos)",
            ]
        elif kind == "record":
            name = schema["name"]
            if name in inlining:
                out.append(f"{ind}pos = {self.skipper(schema)}(data, pos)")
                return
            for spec in schema["fields"]:
                self.skip(spec["type"], out, ind, (*inlining, name))
        elif kind in ("array", "map"):
            self._blocks(schema, out, ind, inlining)
        elif isinstance(kind, str | list | dict):
            # {"type": "string", "connect.name": ...} and the like: the inner type.
            self.skip(kind, out, ind, inlining)
        else:  # pragma: no cover - fastavro's parse_schema refuses such schemas
            raise PeekPathError(f"unknown Avro type {kind!r}")

    def _blocks(self, schema: Mapping[str, Any], out: list[str], ind: str,
                inlining: tuple[str, ...]) -> None:  # fmt: skip
        """Array or map blocks: a count (negative: followed by the block's size), 0 ends.

        Items that take no bytes (nulls, empty records) are not counted through: a
        corrupt count of 2**62 would otherwise loop for ever. Any other item takes a
        byte at least, so a count larger than the bytes left is corrupt.
        """
        count = self.fresh("n")
        body: list[str] = []
        item_ind = ind + "        "
        if schema["type"] == "map":
            self.skip("string", body, item_ind, inlining)
        self.skip(schema["items" if schema["type"] == "array" else "values"], body,
                  item_ind, inlining)  # fmt: skip
        out += [
            f"{ind}while True:",
            f"{ind}    {count}, pos = _read_long(data, pos)",
            f"{ind}    if not {count}:",
            f"{ind}        break",
            f"{ind}    if {count} < 0:",
            f"{ind}        pos = _skip_length(data, pos)",
            f"{ind}        continue",
        ]
        if body:
            out += [
                f"{ind}    if {count} > len(data) - pos:",
                f"{ind}        raise _Corrupt('a block count past the end of the body')",
                f"{ind}    for _ in range({count}):",
                *body,
            ]

    def skipper(self, record: Mapping[str, Any]) -> str:
        """A function stepping over a recursive record (inlining it would never end)."""
        name = str(record["name"])
        if name not in self.skippers:
            fn = self.fresh("_skip_record")
            self.skippers[name] = fn
            body: list[str] = []
            for spec in record["fields"]:
                self.skip(spec["type"], body, "    ", (name,))
            self.sources.append("\n".join([f"def {fn}(data, pos):", *body, "    return pos"]))
        return self.skippers[name]

    # -- reading ----------------------------------------------------------------------
    def walk(self, schema: Any, need: Any, out: list[str], ind: str, tail: bool) -> None:
        """Lines for one value: skip it (need None), read it (an index), or go into it."""
        if need is None:
            self.skip(schema, out, ind, ())
        elif isinstance(need, int):
            try:
                self.read(schema, f"r{need}", out, ind)
            except PeekPathError as exc:
                raise PeekPathError(f"field path {self.paths[need]!r} {exc}") from None
        else:
            self.into(schema, need, out, ind, tail)

    def into(self, schema: Any, need: Mapping[str, Any], out: list[str], ind: str,
             tail: bool) -> None:  # fmt: skip
        """A record (or a union of records) some of whose fields are needed."""
        schema = self.resolve(schema)
        if isinstance(schema, list):
            needs = [self._branch_need(self.resolve(b), need) for b in schema]
            self._union(schema, needs, out, ind, tail=tail,
                        emit=lambda b, o, i, n: self.walk(b, n, o, i, tail))  # fmt: skip
            return
        fields = schema["fields"]
        last = max(i for i, spec in enumerate(fields) if spec["name"] in need)
        for i, spec in enumerate(fields):
            if tail and i > last:
                break
            self.walk(spec["type"], need.get(spec["name"]), out, ind, tail and i == last)

    @staticmethod
    def _branch_need(branch: Any, need: Mapping[str, Any]) -> Mapping[str, Any] | None:
        if not (isinstance(branch, dict) and branch.get("type") == "record"):
            return None
        names = {spec["name"] for spec in branch["fields"]}
        mine = {k: v for k, v in need.items() if k in names}
        return mine or None

    def read(self, schema: Any, target: str, out: list[str], ind: str) -> None:
        """Lines that read one value of ``schema`` into ``target``, as fastavro gives it."""
        schema = self.resolve(schema)
        if isinstance(schema, list):
            self._union(schema, [target] * len(schema), out, ind,
                        emit=lambda b, o, i, t: self.read(b, t, o, i))  # fmt: skip
            return
        kind = schema["type"] if isinstance(schema, dict) else schema
        if kind in ("record", "array", "map"):
            raise PeekPathError(f"ends at a {kind}; a peek reads single values")
        if not (isinstance(kind, str) and kind in _SINGLE_VALUES):
            self.read(kind, target, out, ind)  # {"type": <a named or nested type>}
            return
        self._read_base(schema, kind, target, out, ind)
        logical = schema.get("logicalType") if isinstance(schema, dict) else None
        convert = LOGICAL_READERS.get(f"{kind}-{logical}") if logical else None
        if convert is not None:
            out.append(f"{ind}{target} = {self.constant(convert)}({target}, "
                       f"{self.constant(schema)}, None)")  # fmt: skip

    def _read_base(self, schema: Any, kind: str, target: str, out: list[str], ind: str) -> None:
        if kind == "null":
            out.append(f"{ind}{target} = None")
        elif kind == "boolean":
            out += [f"{ind}{target} = data[pos] != 0", f"{ind}pos += 1"]
        elif kind in ("int", "long"):
            out += [
                f"{ind}b = data[pos]",
                f"{ind}pos += 1",
                f"{ind}if b < 128:",
                f"{ind}    {target} = (b >> 1) ^ -(b & 1)",
                f"{ind}else:",
                f"{ind}    {target}, pos = _long_rest(data, pos, b)",
            ]
        elif kind in ("float", "double"):
            size = 4 if kind == "float" else 8
            out += [f"{ind}{target} = _{kind}(data, pos)[0]", f"{ind}pos += {size}"]
        elif kind == "enum":
            symbols = self.constant(tuple(schema["symbols"]))
            out += [
                f"{ind}b, pos = _read_long(data, pos)",
                f"{ind}if b < 0:",
                f"{ind}    raise _Corrupt('a negative enum index')",
                f"{ind}{target} = {symbols}[b]",
            ]
        else:  # string, bytes, fixed: a slice, checked (slicing never fails on its own)
            if kind == "fixed":
                out.append(f"{ind}b = {int(schema['size'])}")
            else:
                out += [  # a one-byte length inline: most strings are under 64 bytes
                    f"{ind}b = data[pos]",
                    f"{ind}if b < 128 and not b & 1:",
                    f"{ind}    pos += 1",
                    f"{ind}    b >>= 1",
                    f"{ind}else:",
                    f"{ind}    b, pos = _length(data, pos)",
                ]
            out += [
                f"{ind}if pos + b > len(data):",
                f"{ind}    raise IndexError",
                f"{ind}{target} = data[pos:pos + b]" + (".decode()" if kind == "string" else ""),
                f"{ind}pos += b",
            ]

    # -- unions -----------------------------------------------------------------------
    def _union(self, branches: Sequence[Any], needs: Sequence[Any], out: list[str], ind: str, *,
               emit: Callable[[Any, list[str], str, Any], None] | None = None,
               inlining: tuple[str, ...] = (), tail: bool = False) -> None:  # fmt: skip
        """Dispatch on the branch index; a branch whose lines are empty just checks it.

        A branch with a need goes to ``emit``; one without is stepped over, or, when
        nothing after the union is needed (``tail``), not even that.
        """
        if len(branches) <= _ONE_BYTE_BRANCHES:
            out += [f"{ind}b = data[pos]", f"{ind}pos += 1"]
            codes = [2 * i for i in range(len(branches))]  # zigzag; a longer varint is corrupt
        else:
            out.append(f"{ind}b, pos = _read_long(data, pos)")
            codes = list(range(len(branches)))
        empty: list[int] = []
        keyword = "if"
        for code, branch, need in zip(codes, branches, needs, strict=True):
            body: list[str] = []
            if need is None and tail:
                pass  # nothing after this union is needed: no need to step over the branch
            elif need is None or emit is None:
                self.skip(branch, body, ind + "    ", inlining)
            else:
                emit(branch, body, ind + "    ", need)
            if not body:
                empty.append(code)
                continue
            out += [f"{ind}{keyword} b == {code}:", *body]
            keyword = "elif"
        if not branches:
            out.append(f"{ind}raise _Corrupt('a union without branches')")
            return
        if empty:
            test = f"b != {empty[0]}" if len(empty) == 1 else f"b not in {tuple(empty)}"
            out += [f"{ind}{keyword} {test}:" if keyword == "elif" else f"{ind}if {test}:"]
        else:
            out.append(f"{ind}else:")
        out.append(f"{ind}    raise _Corrupt('a union index out of range')")
