"""A cheaper ``__init__`` for the core's frozen, slotted dataclasses.

The core makes several frozen dataclasses per change event (a position, a
quote, a change, an open quote, the customer's new state, the step), and most
of their cost was their ``__init__``: a frozen dataclass must get past its own
``__setattr__`` (which refuses every assignment), so the generated code sets
each field with ``object.__setattr__(self, "name", value)`` — an attribute
lookup and a generic, name-resolving call per field, about 200 ns each, 2 µs
for a quote. :func:`fast_init` gives the class an ``__init__`` with the same
signature that stores each field through its slot's descriptor directly,
about a third of that; where the C helper ``streams.core._slots`` is built
(``pip install`` builds it), the ``__init__`` hands all the fields to it at once,
which writes them into the slots (a quote: 0.8 µs through the descriptors, 0.4
µs so). Everything else (immutability, ``==``, ``hash``, ``repr``,
``dataclasses.replace``, pickling) is still the dataclass's own.
"""

from __future__ import annotations

from dataclasses import MISSING, fields, is_dataclass
from typing import Any, TypeVar

try:
    from streams.core import _slots
except ImportError:  # not built (no C compiler when installed): the descriptors' way
    _slots = None  # type: ignore[assignment]

T = TypeVar("T")


def c_helper_built() -> bool:
    """Whether ``streams.core._slots`` is built (``pip install`` builds it)."""
    return _slots is not None


def fast_init(cls: type[T]) -> type[T]:
    """Replace the generated ``__init__`` of ``cls`` (a frozen, slotted dataclass)."""
    params = getattr(cls, "__dataclass_params__", None)
    if not is_dataclass(cls) or params is None or not params.frozen or "__slots__" not in vars(cls):
        raise TypeError(f"{cls.__name__} is not a frozen dataclass with slots")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} has a __post_init__, which fast_init does not call")
    namespace: dict[str, Any] = {"_NOTHING": MISSING}
    args, body, names = [], [], []
    for f in fields(cls):
        if not f.init or f.kw_only:
            raise TypeError(f"{cls.__name__}.{f.name}: only plain init fields are supported")
        names.append(f.name)
        if f.default is not MISSING:
            namespace[f"_default_{f.name}"] = f.default
            args.append(f"{f.name}=_default_{f.name}")
        elif f.default_factory is not MISSING:
            namespace[f"_factory_{f.name}"] = f.default_factory
            args.append(f"{f.name}=_NOTHING")
            body.append(f"if {f.name} is _NOTHING: {f.name} = _factory_{f.name}()")
        else:
            args.append(f.name)
    descriptors = tuple(vars(cls)[name] for name in names)  # the slots' member descriptors
    if _slots is not None:
        namespace |= {"_fill": _slots.fill, "_these": _slots.Slots(cls, descriptors)}
        body.append(f"_fill(_these, self, ({''.join(f'{name}, ' for name in names)}))")
    else:
        for name, descriptor in zip(names, descriptors, strict=True):
            namespace[f"_set_{name}"] = descriptor.__set__
            body.append(f"_set_{name}(self, {name})")
    # Generated from the field names (identifiers of our own code), as dataclasses does.
    source = f"def __init__(self, {', '.join(args)}) -> None:\n" + "".join(
        f"    {line}\n" for line in body
    )
    exec(source, namespace)  # noqa: S102
    init = namespace["__init__"]
    init.__module__, init.__qualname__ = cls.__module__, f"{cls.__qualname__}.__init__"
    init.__doc__ = cls.__init__.__doc__
    cls.__init__ = init  # type: ignore[method-assign]
    return cls
