"""Peeking through a serde: the frame tells the writer, a compiled peek reads the fields.

Why: the replay driver's lanes each read every message but decode and step
only their own customers', so each must learn whose a change is for about a
microsecond, not the ~20 µs of a full decode. :class:`Peeker` finds a
message's writer schema through the serde (:meth:`Serde.writer_of`), compiles
a peek for it once (:func:`schemas.peek.compile_peek`, cached by the writer's
key) and then, for every message with the same frame (same fingerprint or
schema id), goes straight from the frame's bytes to the compiled peek.
:class:`CustomerIds` is the driver's case: the customer of a quote or customer
change, or None when it has none (a TRUNCATE: every lane must take it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from schemas.errors import DecodeError, where
from schemas.native_projection import NATIVE_ERRORS, compile_native_peek
from schemas.peek import Peek, compile_peek
from schemas.serde import Serde

#: Where the customer of a change is: the new row's, else the old row's.
CUSTOMER_PATHS = ("after.customer_id", "before.customer_id")


class Peeker:
    """The values at fixed field paths of messages of one schema, whatever their writer.

    One per consumer (not thread-safe: the caches are plain dicts). Errors are
    those of :meth:`Serde.writer_of` for the frame, :class:`DecodeError` for a body
    corrupt or truncated where the peek looks, and
    :class:`~schemas.errors.PeekPathError` for a writer without those fields.
    """

    def __init__(self, serde: Serde, schema_name: str, paths: Sequence[str]) -> None:
        self._serde = serde
        self._schema_name = schema_name
        self._paths = tuple(paths)
        #: Compiled peeks by writer key: one per distinct writer schema text.
        self._by_key: dict[str, Peek] = {}
        #: The frame's bytes (marker + fingerprint, or magic byte + schema id) to the
        #: peek and its body offset: the per-message path is one slice and one lookup.
        self._by_frame: dict[bytes, tuple[Peek, int]] = {}
        self._frame_len = 0

    @property
    def paths(self) -> tuple[str, ...]:
        """The field paths, in the order :meth:`values` returns them."""
        return self._paths

    def values(self, data: bytes, *, topic: str, is_key: bool = False) -> tuple[Any, ...]:
        """The values at :attr:`paths` in message ``data`` (None where a union took null)."""
        found = self._by_frame.get(data[: self._frame_len])
        if found is None:
            found = self._learn(data, topic, is_key)
        peek, start = found
        try:
            return peek(data, start)
        except DecodeError as exc:
            raise DecodeError(f"{where(self._schema_name, topic, is_key)}: {exc}") from exc

    def _learn(self, data: bytes, topic: str, is_key: bool) -> tuple[Peek, int]:
        """The first message of a writer: ask the serde, compile (or reuse) its peek."""
        writer = self._serde.writer_of(self._schema_name, data, topic=topic, is_key=is_key)
        peek = self._by_key.get(writer.key)
        if peek is None:
            try:
                peek = compile_peek(writer.parsed, self._paths, label=writer.label)
            except DecodeError as exc:
                raise type(exc)(f"{where(self._schema_name, topic, is_key)}: {exc}") from exc
            parsed = writer.parsed
            native = compile_native_peek(parsed, self._paths) if isinstance(parsed, dict) else None
            if native is not None:
                peek = _native_first(native, peek)
            self._by_key[writer.key] = peek
        found = (peek, writer.body_offset)
        self._frame_len = writer.body_offset
        self._by_frame[data[: writer.body_offset]] = found
        return found


def _native_first(native: Peek, python: Peek) -> Peek:
    """The C walk of the peek (a third of its time), and the Python peek for whatever it
    refuses: the same values where it reads, the Python peek's errors where it does not."""

    def peek(data: bytes, start: int) -> tuple[Any, ...]:
        try:
            return native(data, start)
        except NATIVE_ERRORS:
            return python(data, start)

    return peek


class CustomerIds:
    """The customer id of quote and customer change events, without decoding them.

    ``customer_id`` of the row after the change, else of the row before it; None
    when the event has neither row (a TRUNCATE), which every lane must take.
    """

    def __init__(self, serde: Serde, schema_name: str) -> None:
        self._schema_name = schema_name
        self._peeker = Peeker(serde, schema_name, CUSTOMER_PATHS)

    def __call__(self, data: bytes, *, topic: str) -> int | None:
        """The customer of change event ``data`` read from ``topic``, or None."""
        after, before = self._peeker.values(data, topic=topic)
        found = after if after is not None else before
        if found is None or (isinstance(found, int) and not isinstance(found, bool)):
            return found
        raise DecodeError(
            f"{where(self._schema_name, topic, False)}: customer_id is "
            f"{type(found).__name__}, expected a long"
        )
