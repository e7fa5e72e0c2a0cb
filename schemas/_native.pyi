"""Types of the Cython extension built from schemas/_native.pyx (see there for why)."""

from typing import Any

KINDS: dict[str, int]

class Refused(ValueError): ...

class Node:
    kind: int
    size: int
    symbols: tuple[str, ...] | None
    memo: Any
    base: Node | None
    names: tuple[str | int | None, ...] | None
    children: tuple[Node, ...] | None
    def __init__(
        self,
        kind: int,
        *,
        size: int = ...,
        symbols: tuple[str, ...] | None = ...,
        memo: Any = ...,
        base: Node | None = ...,
        names: tuple[str | int | None, ...] | None = ...,
        children: tuple[Node, ...] | None = ...,
    ) -> None: ...

def walk(root: Node, data: bytes, start: int) -> tuple[Any, int]: ...

_NO_DEFAULT: object

def write(root: Node, record: object) -> bytes: ...

def peek(root: Node, leaves: int, data: bytes, start: int) -> tuple[Any, ...]: ...
