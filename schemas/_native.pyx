# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""The projection's walk in C: a tree of :class:`Node` interpreted over a message's bytes.

Why: a replay lane spent a fifth of its time in the generated Python of
:mod:`schemas.projection`, a few bytecodes per byte of varint and per string.
:mod:`schemas.native_projection` builds the same walk as a tree of nodes once
per writer schema; this module runs it. It builds the full reader's values for
the fields it is asked for and never accepts a body the full reader refuses:
every read is bounds-checked, a varint longer than a 64-bit long is refused
(the full reader reads up to 70 bits: refusing is stricter, and the caller then
decodes in full), a skipped string must be ASCII (it is not decoded, so its
UTF-8 is not checked), and a skipped enum or logical type is read and dropped.
What it refuses it raises as :class:`Refused` (a ValueError), ``IndexError``
for a body that ends early, or what a conversion or the UTF-8 decoder raises.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_SetItem
from cpython.float cimport PyFloat_FromDouble
from cpython.object cimport PyObject_GetItem
from cpython.tuple cimport PyTuple_GET_ITEM, PyTuple_GET_SIZE
from cpython.unicode cimport PyUnicode_DecodeUTF8
from cpython.long cimport PyLong_AsLongLongAndOverflow
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from libc.stdint cimport INT64_MIN, int64_t, uint64_t
from libc.string cimport memcpy

cdef extern from "Python.h":
    const char *PyUnicode_AsUTF8AndSize(object unicode, Py_ssize_t *size) except NULL
    double PyFloat_Unpack4(const char *p, int le) except? -1.0
    double PyFloat_Unpack8(const char *p, int le) except? -1.0


class Refused(ValueError):
    """Bytes the walk will not vouch for: the caller decodes the message in full."""


# Node kinds (the values schemas.native_projection uses).
cdef enum:
    K_NULL = 0
    K_BOOLEAN = 1
    K_LONG = 2      # int and long alike, as the full reader reads them
    K_FLOAT = 3
    K_DOUBLE = 4
    K_STRING = 5
    K_BYTES = 6
    K_FIXED = 7
    K_ENUM = 8
    K_CONVERT = 9   # a logical type: the base value, then memo[raw]
    K_RECORD = 10
    K_UNION = 11
    K_ARRAY = 12    # base: the item's node
    K_MAP = 13      # base: the value's node
    K_PEEK = 14     # a record a peek goes into: names None (skip), an int (the leaf's
                    # index in the result) or -1 (go into it); size: fields visited

#: The kinds by name, for the trees built in Python (schemas.native_projection and
#: schemas.native_writer): "int" and "long" are read and written alike.
KINDS = {"null": K_NULL, "boolean": K_BOOLEAN, "int": K_LONG, "long": K_LONG,
         "float": K_FLOAT, "double": K_DOUBLE, "string": K_STRING, "bytes": K_BYTES,
         "fixed": K_FIXED, "enum": K_ENUM, "convert": K_CONVERT, "record": K_RECORD,
         "union": K_UNION, "array": K_ARRAY, "map": K_MAP, "peek": K_PEEK}

#: Unions up to this many branches have their index in one byte (zigzag 2 * index).
cdef Py_ssize_t ONE_BYTE_BRANCHES = 64


cdef class Node:
    """One value's walk. ``names`` (records): a field's key in the dict, None to skip it."""

    cdef readonly int kind
    cdef readonly Py_ssize_t size
    cdef readonly tuple symbols
    cdef readonly object memo
    cdef readonly Node base
    cdef readonly tuple names
    cdef readonly tuple children

    def __init__(self, int kind, *, Py_ssize_t size=0, tuple symbols=None, object memo=None,
                 Node base=None, tuple names=None, tuple children=None):
        if kind < K_NULL or kind > K_PEEK:
            raise ValueError(f"unknown node kind {kind}")
        if kind == K_CONVERT and (base is None or memo is None):
            raise ValueError("a conversion needs its base node and its memo")
        if kind in (K_ARRAY, K_MAP) and base is None:
            raise ValueError("an array or map needs its item's node")
        if kind == K_ENUM and symbols is None:
            raise ValueError("an enum needs its symbols")
        if kind in (K_RECORD, K_UNION, K_PEEK) and children is None:
            raise ValueError("a record or union needs its children")
        if kind in (K_RECORD, K_PEEK) and (names is None or len(names) != len(children)):
            raise ValueError("a record needs a name (or None) per child")
        if kind == K_PEEK and not 0 <= size <= len(children):
            raise ValueError("a peek visits at most its record's fields")
        if children is not None:
            for child in children:
                if not isinstance(child, Node):
                    raise TypeError("children must be Nodes")
        self.kind, self.size, self.symbols, self.memo = kind, size, symbols, memo
        self.base, self.names, self.children = base, names, children


cdef struct Cursor:
    const unsigned char *buf
    Py_ssize_t end
    Py_ssize_t pos


cdef inline int _need(Cursor *c, Py_ssize_t n) except -1:
    if n < 0 or c.end - c.pos < n:
        raise IndexError("the body ends early")
    return 0


cdef int64_t _long(Cursor *c) except? -1:
    cdef uint64_t acc = 0
    cdef int shift = 0
    cdef unsigned char b
    while True:
        if c.pos >= c.end:
            raise IndexError("the body ends early")
        b = c.buf[c.pos]
        c.pos += 1
        if shift == 63 and b > 1:
            raise Refused("a varint past a 64-bit long")
        acc |= (<uint64_t>(b & 0x7F)) << shift
        if b < 0x80:
            return <int64_t>((acc >> 1) ^ (0 - (acc & 1)))
        shift += 7


cdef inline Py_ssize_t _length(Cursor *c) except -1:
    cdef int64_t n = _long(c)
    if n < 0:
        raise Refused("a negative length")
    _need(c, n)
    return <Py_ssize_t>n


cdef Py_ssize_t _branch(Cursor *c, Py_ssize_t branches) except -1:
    cdef int64_t index
    cdef unsigned char b
    if branches <= ONE_BYTE_BRANCHES:
        _need(c, 1)
        b = c.buf[c.pos]
        c.pos += 1
        if b & 1 or (b >> 1) >= branches:
            raise Refused("a union index out of range")
        return b >> 1
    index = _long(c)
    if index < 0 or index >= branches:
        raise Refused("a union index out of range")
    return <Py_ssize_t>index


cdef object _read(Node node, Cursor *c):
    """One value, built as the full reader builds it."""
    cdef int kind = node.kind
    cdef Py_ssize_t n, i
    cdef int64_t index
    cdef dict record
    cdef tuple names, children
    cdef object name, value
    if kind == K_LONG:
        return _long(c)
    if kind == K_STRING:
        n = _length(c)
        value = PyUnicode_DecodeUTF8(<const char *>(c.buf + c.pos), n, NULL)
        c.pos += n
        return value
    if kind == K_RECORD:
        record = {}
        names, children = node.names, node.children
        for i in range(PyTuple_GET_SIZE(children)):
            name = <object>PyTuple_GET_ITEM(names, i)
            if name is None:
                _skip(<Node>PyTuple_GET_ITEM(children, i), c)
            else:
                PyDict_SetItem(record, name, _read(<Node>PyTuple_GET_ITEM(children, i), c))
        return record
    if kind == K_UNION:
        children = node.children
        i = _branch(c, PyTuple_GET_SIZE(children))
        return _read(<Node>PyTuple_GET_ITEM(children, i), c)
    if kind == K_NULL:
        return None
    if kind == K_CONVERT:
        return PyObject_GetItem(node.memo, _read(node.base, c))
    if kind == K_BOOLEAN:
        _need(c, 1)
        c.pos += 1
        return c.buf[c.pos - 1] != 0
    if kind == K_ENUM:
        index = _long(c)
        if index < 0:
            raise Refused("a negative enum index")
        if index >= PyTuple_GET_SIZE(node.symbols):
            raise IndexError("an enum index past its symbols")
        return node.symbols[index]
    if kind == K_FLOAT:
        _need(c, 4)
        c.pos += 4
        return PyFloat_FromDouble(PyFloat_Unpack4(<const char *>(c.buf + c.pos - 4), 1))
    if kind == K_DOUBLE:
        _need(c, 8)
        c.pos += 8
        return PyFloat_FromDouble(PyFloat_Unpack8(<const char *>(c.buf + c.pos - 8), 1))
    if kind == K_BYTES:
        n = _length(c)
        c.pos += n
        return PyBytes_FromStringAndSize(<const char *>(c.buf + c.pos - n), n)
    if kind == K_FIXED:
        n = node.size
        _need(c, n)
        c.pos += n
        return PyBytes_FromStringAndSize(<const char *>(c.buf + c.pos - n), n)
    if kind == K_ARRAY or kind == K_MAP:
        return _blocks(node, c)
    raise ValueError(f"unknown node kind {kind}")


cdef object _blocks(Node node, Cursor *c):
    """An array's or a map's blocks: a count (negative: followed by the block's size in
    bytes), 0 ends. A count past the bytes left is refused whatever the items (the full
    reader refuses it for items that take a byte, and loops through it for those that
    take none: refusing is stricter)."""
    cdef int64_t count, i
    cdef list items = None
    cdef dict entries = None
    cdef Py_ssize_t n
    cdef object key
    if node.kind == K_ARRAY:
        items = []
    else:
        entries = {}
    while True:
        count = _long(c)
        if count == 0:
            break
        if count < 0:
            if count == INT64_MIN:
                raise Refused("a block count past a long")
            count = -count
            _long(c)  # the block's size: not needed
        if count > c.end - c.pos:
            raise Refused("a block count past the end of the body")
        for i in range(count):
            if items is not None:
                items.append(_read(node.base, c))
            else:
                n = _length(c)
                key = PyUnicode_DecodeUTF8(<const char *>(c.buf + c.pos), n, NULL)
                c.pos += n
                PyDict_SetItem(entries, key, _read(node.base, c))
    return items if items is not None else entries


cdef int _skip(Node node, Cursor *c) except -1:
    """Past one value, refusing what the full reader would refuse in reading it."""
    cdef int kind = node.kind
    cdef Py_ssize_t n, i
    cdef tuple children
    if kind == K_LONG:
        _long(c)
    elif kind == K_STRING:
        n = _length(c)
        for i in range(c.pos, c.pos + n):
            if c.buf[i] >= 0x80:
                raise Refused("a skipped string past ASCII: not checked")
        c.pos += n
    elif kind == K_RECORD:
        children = node.children
        for i in range(PyTuple_GET_SIZE(children)):
            _skip(<Node>PyTuple_GET_ITEM(children, i), c)
    elif kind == K_UNION:
        children = node.children
        i = _branch(c, PyTuple_GET_SIZE(children))
        _skip(<Node>PyTuple_GET_ITEM(children, i), c)
    elif kind == K_NULL:
        pass
    elif kind == K_BOOLEAN:
        _need(c, 1)
        c.pos += 1
    elif kind == K_FLOAT:
        _need(c, 4)
        c.pos += 4
    elif kind == K_DOUBLE:
        _need(c, 8)
        c.pos += 8
    elif kind == K_BYTES:
        c.pos += _length(c)
    elif kind == K_FIXED:
        _need(c, node.size)
        c.pos += node.size
    else:  # an enum, array, map or logical type: read (checked, converted) and dropped
        _read(node, c)
    return 0


def walk(Node root, bytes data, Py_ssize_t start):
    """``(value, end)``: ``root``'s value read from ``data[start:]``, and where it ends."""
    cdef Cursor c
    if start < 0 or start > PyBytes_GET_SIZE(data):
        raise IndexError("the body starts past the message")
    c.buf = <const unsigned char *>PyBytes_AS_STRING(data)
    c.end = PyBytes_GET_SIZE(data)
    c.pos = start
    value = _read(root, &c)
    return value, c.pos


# -- peeking ---------------------------------------------------------------------------

cdef int _peek(Node node, Cursor *c, list found) except -1:
    """Into a K_PEEK record (or a union of them): leaves into ``found``, up to the last
    field needed (what follows is not read: a peek vouches for nothing else)."""
    cdef Py_ssize_t i
    cdef object name
    cdef Node child
    if node.kind == K_UNION:
        i = _branch(c, PyTuple_GET_SIZE(node.children))
        child = <Node>PyTuple_GET_ITEM(node.children, i)
        if child.kind == K_PEEK or child.kind == K_UNION:
            return _peek(child, c, found)
        return _skip(child, c)
    for i in range(node.size):
        name = <object>PyTuple_GET_ITEM(node.names, i)
        child = <Node>PyTuple_GET_ITEM(node.children, i)
        if name is None:
            _skip(child, c)
        elif <Py_ssize_t>name < 0:
            _peek(child, c, found)
        else:
            found[<Py_ssize_t>name] = _read(child, c)
    return 0


def peek(Node root, Py_ssize_t leaves, bytes data, Py_ssize_t start):
    """The values of ``root``'s leaves in ``data[start:]`` (None where a union took null)."""
    cdef Cursor c
    cdef list found = [None] * leaves
    if start < 0 or start > PyBytes_GET_SIZE(data):
        raise IndexError("the body starts past the message")
    c.buf = <const unsigned char *>PyBytes_AS_STRING(data)
    c.end = PyBytes_GET_SIZE(data)
    c.pos = start
    _peek(root, &c, found)
    return tuple(found)


# -- writing ---------------------------------------------------------------------------
# A writer tree uses K_NULL, K_BOOLEAN, K_LONG, K_STRING, K_ENUM (memo: symbol -> index),
# K_UNION (branches told apart by exact Python type, as the compiled writer tells them)
# and K_RECORD (memo: (frozenset of the field names, the defaults; _NO_DEFAULT for none)).

_NO_DEFAULT = object()


cdef struct Buffer:
    char *data
    Py_ssize_t size
    Py_ssize_t capacity


cdef int _grow(Buffer *out, Py_ssize_t more) except -1:
    cdef Py_ssize_t capacity = out.capacity * 2
    cdef char *data
    while capacity < out.size + more:
        capacity *= 2
    data = <char *>PyMem_Realloc(out.data, capacity)
    if data == NULL:
        raise MemoryError()
    out.data, out.capacity = data, capacity
    return 0


cdef inline int _put_long(Buffer *out, int64_t n) except -1:
    cdef uint64_t z = (<uint64_t>n << 1) ^ <uint64_t>(n >> 63)
    if out.size + 10 > out.capacity:
        _grow(out, 10)
    while z >= 0x80:
        out.data[out.size] = <char>((z & 0x7F) | 0x80)
        out.size += 1
        z >>= 7
    out.data[out.size] = <char>z
    out.size += 1
    return 0


cdef int _write(Node node, object value, Buffer *out) except -1:
    cdef int kind = node.kind
    cdef const char *text
    cdef Py_ssize_t n, i
    cdef int overflow = 0
    cdef long long number
    cdef tuple names, children, defaults
    cdef object found, field
    cdef Node branch
    if kind == K_STRING:
        if type(value) is not str:
            raise TypeError("expected a str")
        text = PyUnicode_AsUTF8AndSize(value, &n)
        _put_long(out, n)
        if out.size + n > out.capacity:
            _grow(out, n)
        memcpy(out.data + out.size, text, n)
        out.size += n
    elif kind == K_LONG:
        if type(value) is not int and type(value) is not bool:
            raise TypeError("expected an int")
        number = PyLong_AsLongLongAndOverflow(value, &overflow)
        if overflow:
            raise ValueError("integer out of the range of an Avro long")
        _put_long(out, number)
    elif kind == K_RECORD:
        if type(value) is not dict:
            raise TypeError("expected a dict")
        names, children = node.names, node.children
        fields, defaults = node.memo
        if len(<dict>value) != len(names) and (<dict>value).keys() - fields:
            raise ValueError("record contains more fields than the schema specifies")
        for i in range(PyTuple_GET_SIZE(children)):
            field = <object>PyTuple_GET_ITEM(names, i)
            found = (<dict>value).get(field, _NO_DEFAULT)
            if found is _NO_DEFAULT:
                found = <object>PyTuple_GET_ITEM(defaults, i)
                if found is _NO_DEFAULT:
                    raise KeyError(field)
            _write(<Node>PyTuple_GET_ITEM(children, i), found, out)
    elif kind == K_UNION:
        children = node.children
        for i in range(PyTuple_GET_SIZE(children)):
            branch = <Node>PyTuple_GET_ITEM(children, i)
            if ((branch.kind == K_NULL and value is None)
                    or (branch.kind == K_BOOLEAN and type(value) is bool)
                    or (branch.kind == K_LONG and type(value) is int)
                    or (branch.kind == K_STRING and type(value) is str)):
                _put_long(out, i)
                return _write(branch, value, out)
        raise TypeError("no branch of the union takes the value")
    elif kind == K_NULL:
        if value is not None:
            raise TypeError("expected None")
    elif kind == K_BOOLEAN:  # one byte, not a varint
        if value is not True and value is not False:
            raise TypeError("expected a bool")
        if out.size + 1 > out.capacity:
            _grow(out, 1)
        out.data[out.size] = 1 if value is True else 0
        out.size += 1
    elif kind == K_ENUM:
        _put_long(out, node.memo[value])
    else:
        raise ValueError(f"node kind {kind} is not written here")
    return 0


def write(Node root, object record):
    """The Avro body of ``record`` as ``root`` describes it (what the compiled writer
    writes, or an error where it would raise: the caller then asks it)."""
    cdef Buffer out
    out.size, out.capacity = 0, 256
    out.data = <char *>PyMem_Malloc(out.capacity)
    if out.data == NULL:
        raise MemoryError()
    try:
        _write(root, record, &out)
        return PyBytes_FromStringAndSize(out.data, out.size)
    finally:
        PyMem_Free(out.data)
