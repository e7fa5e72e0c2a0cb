# cython: language_level=3
"""Filling a frozen, slotted dataclass's slots from C: the core's objects built cheaper.

Why: the core builds several frozen dataclasses per change (a position, a quote,
a change, an open quote, the customer's new state, a step, a decision), and
setting their fields was a tenth of a replay lane's time, even through the
slots' descriptors (:mod:`streams.core.frozen`). :func:`fill` writes a tuple of
values straight into an object's slots, at the offsets its class's member
descriptors name, after checking that the object is an instance of that class.
"""

from cpython.object cimport PyObject, PyTypeObject
from cpython.ref cimport Py_INCREF, Py_XDECREF
from cpython.tuple cimport PyTuple_GET_ITEM, PyTuple_GET_SIZE


cdef extern from "Python.h":
    ctypedef struct PyMemberDef:
        const char *name
        int type
        Py_ssize_t offset
        int flags
    ctypedef struct PyDescrObject:
        PyTypeObject *d_type
    ctypedef struct PyMemberDescrObject:
        PyDescrObject d_common
        PyMemberDef *d_member
    bint PyObject_TypeCheck(object o, PyTypeObject *t)
    int T_OBJECT_EX
    int READONLY
    PyTypeObject PyMemberDescr_Type


cdef class Slots:
    """The slots of one class's fields, in field order (from its member descriptors)."""

    cdef PyTypeObject *owner
    cdef Py_ssize_t count
    cdef Py_ssize_t offsets[64]
    cdef object keep  # the class and its descriptors, alive as long as this is

    def __init__(self, type cls, tuple descriptors):
        cdef PyMemberDescrObject *member
        if len(descriptors) > 64:
            raise ValueError("more than 64 slots")
        for i, descriptor in enumerate(descriptors):
            if type(descriptor).__name__ != "member_descriptor":
                raise TypeError("not a slot's member descriptor")
            member = <PyMemberDescrObject *><PyObject *>descriptor
            if member.d_common.d_type != <PyTypeObject *>cls or member.d_member.type != T_OBJECT_EX \
                    or member.d_member.flags & READONLY:
                raise TypeError("not an object slot of this class")
            self.offsets[i] = member.d_member.offset
        self.count = len(descriptors)
        self.owner = <PyTypeObject *>cls
        self.keep = (cls, descriptors)


def fill(Slots slots, object obj, tuple values):
    """Set ``obj``'s slots to ``values`` (one per slot, in order)."""
    cdef Py_ssize_t i
    cdef PyObject **slot
    cdef PyObject *value
    if not PyObject_TypeCheck(obj, slots.owner):
        raise TypeError("fill: not an instance of the slots' class")
    if PyTuple_GET_SIZE(values) != slots.count:
        raise TypeError("fill: one value per slot")
    for i in range(slots.count):
        slot = <PyObject **>(<char *><PyObject *>obj + slots.offsets[i])
        value = PyTuple_GET_ITEM(values, i)
        Py_INCREF(<object>value)
        Py_XDECREF(slot[0])
        slot[0] = value
