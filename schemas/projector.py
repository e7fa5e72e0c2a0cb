"""Decoding only some fields of messages through a serde, with its results and its refusals.

Why: a replay lane decodes every change it owns to read a third of it (see
:mod:`schemas.projection`). :class:`Projector` decodes a message's first
occurrence of each frame (fingerprint or schema id) through the serde, learns
from the serde which writer the frame names and, when that writer is the
reader's own schema (the latest version: where the serdes use their compiled
full reader), goes from then on straight from the frame's bytes to a compiled
projection. Any other writer (an older version, Debezium's layout) keeps the
serde's decode, which resolves it.

Its records are the serde's for the fields at the paths (the projection's may
lack the others), and it refuses exactly what the serde refuses, with the
serde's errors: whatever the projection will not vouch for (a corrupt or
truncated body, bytes left over, a skipped string past ASCII) is decoded by the
serde, which accepts or says why not.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from schemas.errors import SerdeError
from schemas.native_projection import compile_native_projection
from schemas.projection import PROJECTION_ERRORS, Projection, compile_projection
from schemas.serde import Serde


class Projector:
    """The fields at ``paths`` of messages of one schema, whatever their writer.

    One per consumer (not thread-safe: the caches are plain dicts), like
    :class:`schemas.peeker.Peeker`. Raises what :meth:`Serde.decode` raises.
    """

    def __init__(self, serde: Serde, schema_name: str, paths: Sequence[str]) -> None:
        self._serde = serde
        self._schema_name = schema_name
        self._paths = tuple(paths)
        #: Compiled projections by writer key (None: the reader has no compiled reader).
        self._by_key: dict[str, Projection | None] = {}
        #: A frame's bytes to its projection and body offset; None for a writer the serde
        #: must resolve. The per-message path is one slice and one lookup.
        self._by_frame: dict[bytes, tuple[Projection, int] | None] = {}
        self._frame_len = -1  # no frame learned: every message's slice misses

    @property
    def paths(self) -> tuple[str, ...]:
        """The field paths every record has (where the writer has them)."""
        return self._paths

    def decode(self, data: bytes, *, topic: str) -> dict[str, Any]:
        """The record of ``data``, with at least the fields at :attr:`paths`."""
        found = self._by_frame.get(data[: self._frame_len])
        if found is not None:
            project, start = found
            try:
                record, end = project(data, start)
            except PROJECTION_ERRORS:
                pass  # the serde says what is wrong, or reads what the projection would not
            else:
                if end == len(data):
                    return record
        elif data[: self._frame_len] not in self._by_frame:
            return self._learn(data, topic)
        return self._serde.decode(self._schema_name, data, topic=topic)

    def _learn(self, data: bytes, topic: str) -> dict[str, Any]:
        """A frame's first message: the serde decodes it (or refuses it: nothing learned),
        then says which writer the frame names."""
        record = self._serde.decode(self._schema_name, data, topic=topic)
        try:
            writer = self._serde.writer_of(self._schema_name, data, topic=topic)
        except SerdeError:
            return record  # decodable, but its writer is not one to compile for: ask again
        reader = self._serde.catalog.latest(self._schema_name)
        projection = None
        parsed = reader.parsed
        if writer.key == reader.sha256 and reader.reader is not None and isinstance(parsed, dict):
            if writer.key not in self._by_key:
                # The C walk where it is built and covers the schema; else the Python one.
                self._by_key[writer.key] = (compile_native_projection(parsed, self._paths)
                                            or compile_projection(parsed, self._paths))
            projection = self._by_key[writer.key]
        self._frame_len = writer.body_offset
        self._by_frame[data[: writer.body_offset]] = (
            None if projection is None else (projection, writer.body_offset)
        )
        return record
