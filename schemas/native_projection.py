"""The projection of :mod:`schemas.projection`, walked in C where the extension is built.

Why: the generated Python of a projection was a fifth of a replay lane's time
(a few bytecodes per byte of varint and per string, ~7 µs a quote change). The
same walk as a tree of :class:`schemas._native.Node` runs in C (the Cython
extension ``schemas._native``, built by ``pip install``) in a fraction of it.

The tree is built from the writer schema and the paths as
:class:`schemas.projection._Projector` generates its code: the fields at the
paths read as the full reader reads them (logical types converted through the
same kind of memo), every other field stepped over and checked. A skipped
string must be ASCII, a skipped enum or logical type is read and dropped, a
varint past a 64-bit long and any read past the body's end are refused: what it
refuses, the caller decodes in full. What it accepts reads as the full reader
reads it (a property test compares them on every shipped writer).

Recursive records are left to the Python projection:
:func:`compile_native_projection` returns None for them, as it does when the
extension is not built.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fastavro.read import LOGICAL_READERS

from schemas.peek_codegen import _PRIMITIVES, _SINGLE_VALUES, READ_ERRORS
from schemas.projection import Need, Projection, _Memo, tree

try:
    from schemas import _native
except ImportError:  # not built (no C compiler when installed): the Python projection
    _native = None  # type: ignore[assignment]

#: What the C walk raises for bytes it will not vouch for (besides what a logical type's
#: conversion raises, which the Python code raises alike): the caller asks the Python code.
NATIVE_ERRORS: tuple[type[Exception], ...] = READ_ERRORS

#: Node kinds by name (schemas/_native.pyx numbers them).
KIND: dict[str, int] = {} if _native is None else dict(_native.KINDS)


class _Unsupported(Exception):
    """A schema the C walk leaves to the Python projection (a recursive record)."""


def native_module() -> Any:
    """The extension module, or None where it is not built."""
    return _native


def available() -> bool:
    """Whether the C walk is built (``pip install`` compiles it where a compiler is)."""
    return _native is not None


class _Builder:
    def __init__(self, named: Mapping[str, Any]) -> None:
        self.named = named
        self._records: tuple[str, ...] = ()

    def resolve(self, schema: Any) -> Any:
        if isinstance(schema, str) and schema not in _PRIMITIVES:
            return self.named[schema]
        return schema

    def project(self, schema: Any, need: Need) -> Any:
        """The node reading the needed part of one value (``_Projector.project``)."""
        schema = self.resolve(schema)
        if need is True:
            return self.read(schema)
        if isinstance(schema, list):
            branches = tuple(self.project(b, need) for b in schema)
            return _native.Node(KIND["union"], children=branches)
        if isinstance(schema, dict) and schema.get("type") == "record":
            return self.record(schema, need)
        if isinstance(schema, dict) and isinstance(schema.get("type"), dict | list):
            return self.project(schema["type"], need)
        return self.read(schema)

    def record(self, schema: Mapping[str, Any], need: Mapping[str, Need] | None) -> Any:
        """A record's needed fields (None: all of them, as read in full)."""
        name = str(schema["name"])
        if name in self._records:
            raise _Unsupported(f"recursive record {name}")
        self._records = (*self._records, name)
        names, children = [], []
        for spec in schema["fields"]:
            if need is None:
                names.append(spec["name"])
                children.append(self.read(spec["type"]))
                continue
            wanted = need.get(spec["name"])
            names.append(None if wanted is None else spec["name"])
            children.append(self.skip(spec["type"]) if wanted is None
                            else self.project(spec["type"], wanted))  # fmt: skip
        self._records = self._records[:-1]
        return _native.Node(KIND["record"], names=tuple(names), children=tuple(children))

    def read(self, schema: Any) -> Any:
        """The node reading one whole value as the full reader does (with a memo for a
        logical type's conversion, as ``_Projector.read``)."""
        schema = self.resolve(schema)
        if isinstance(schema, list):
            return _native.Node(KIND["union"], children=tuple(self.read(b) for b in schema))
        kind = schema["type"] if isinstance(schema, dict) else schema
        if kind == "record":
            return self.record(schema, None)
        if kind == "array":
            return _native.Node(KIND["array"], base=self.read(schema["items"]))
        if kind == "map":
            return _native.Node(KIND["map"], base=self.read(schema["values"]))
        if not (isinstance(kind, str) and kind in _SINGLE_VALUES):
            return self.read(kind)  # {"type": <a named or nested type>}
        base = self._base(schema, kind)
        logical = schema.get("logicalType") if isinstance(schema, dict) else None
        convert = LOGICAL_READERS.get(f"{kind}-{logical}") if logical else None
        if convert is None:
            return base
        return _native.Node(KIND["convert"], base=base, memo=_Memo(convert, schema))

    @staticmethod
    def _base(schema: Any, kind: str) -> Any:
        if kind == "fixed":
            return _native.Node(KIND[kind], size=int(schema["size"]))
        if kind == "enum":
            return _native.Node(KIND[kind], symbols=tuple(schema["symbols"]))
        return _native.Node(KIND[kind])

    def peek(self, schema: Any, need: Mapping[str, Any], tail: bool = True) -> Any:
        """The node going into a record (or a union of records) for the leaves of ``need``
        (field -> a leaf's index, or the need of the record it goes into). ``tail``:
        nothing after this value is needed, so the record's fields after its last needed
        one are not read (elsewhere they are stepped over, to reach what follows)."""
        schema = self.resolve(schema)
        if isinstance(schema, list):
            branches = []
            for branch in schema:
                resolved = self.resolve(branch)
                mine = {} if not _is_record(resolved) else {
                    k: v for k, v in need.items()
                    if k in {f["name"] for f in resolved["fields"]}}  # fmt: skip
                branches.append(self.peek(resolved, mine, tail) if mine else self.skip(resolved))
            return _native.Node(KIND["union"], children=tuple(branches))
        if isinstance(schema, dict) and isinstance(schema.get("type"), dict | list):
            return self.peek(schema["type"], need, tail)
        if not _is_record(schema):
            raise _Unsupported("a path into a value that has no fields")
        fields = schema["fields"]
        wanted = [i for i, spec in enumerate(fields) if spec["name"] in need]
        if not wanted:
            raise _Unsupported("none of the record's fields is needed")
        names: list[int | None] = []
        children = []
        for i, spec in enumerate(fields):
            inner = need.get(spec["name"])
            if inner is None:
                names.append(None)
                children.append(self.skip(spec["type"]))
            elif isinstance(inner, int):
                leaf = self.resolve(spec["type"])
                kind = leaf.get("type") if isinstance(leaf, dict) else leaf
                if kind in ("record", "array", "map"):
                    raise _Unsupported("a path that ends at a record, array or map")
                names.append(inner)
                children.append(self.read(spec["type"]))
            else:
                names.append(_INTO)
                children.append(self.peek(spec["type"], inner, tail and i == wanted[-1]))
        return _native.Node(KIND["peek"], names=tuple(names), children=tuple(children),
                            size=wanted[-1] + 1 if tail else len(children))  # fmt: skip

    def skip(self, schema: Any) -> Any:
        """The node of a value stepped over: the value's own node, which the walk steps
        over with the checks of ``_Projector.check_skip`` (a string's bytes must be
        ASCII, an enum or a logical type is read and dropped, a record's fields are all
        stepped over)."""
        return self.read(schema)


def _is_record(schema: Any) -> bool:
    return isinstance(schema, dict) and schema.get("type") == "record"


def compile_native_projection(parsed: Mapping[str, Any],
                              paths: Sequence[str]) -> Projection | None:  # fmt: skip
    """The C walk of ``compile_projection(parsed, paths)``, or None: use the Python one
    (the extension is not built, or a record contains itself)."""
    if _native is None:
        return None
    builder = _Builder(dict(parsed.get("__named_schemas") or {}))
    try:
        root = builder.project(parsed, tree(paths))
    except _Unsupported:
        return None
    projection: Projection = functools.partial(_native.walk, root)
    return projection


#: ``peek(data, start)``: the values at the paths, in order (None where a union took null).
NativePeek = Callable[[bytes, int], tuple[Any, ...]]
#: A peek record's name for a field it goes into (a leaf's is its index, from 0).
_INTO = -1


def compile_native_peek(parsed: Mapping[str, Any], paths: Sequence[str]) -> NativePeek | None:
    """The C walk of ``schemas.peek.compile_peek(parsed, paths)`` (not to the end: up to the
    last field needed, as the peek reads), or None: use the Python peek (not built, a
    path the peek would refuse, or one it reads otherwise)."""
    if _native is None or len(set(paths)) != len(paths):
        return None
    need: dict[str, Any] = {}
    for index, path in enumerate(paths):
        node = need
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                return None  # a path through another path's leaf
        if leaf in node:
            return None
        node[leaf] = index
    builder = _Builder(dict(parsed.get("__named_schemas") or {}))
    try:
        root = builder.peek(parsed, need)
    except (_Unsupported, KeyError):
        return None
    peek: NativePeek = functools.partial(_native.peek, root, len(paths))
    return peek
