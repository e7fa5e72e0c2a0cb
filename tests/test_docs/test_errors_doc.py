"""docs/errors.md quotes messages the product still prints.

Every backticked message in the first column of the page's message tables must
occur in one string literal of the product's source (quoteflow, connectors,
streams, schemas). In the page ``…`` stands for whatever varies; in the source
an f-string's ``{...}`` placeholder does. So a reworded message fails here and
the page is corrected with it, rather than telling an operator to look for a
line that no longer exists.

String literals are read with :mod:`ast`, not grepped line by line: messages are
split over several source lines (implicit concatenation), which the parser joins
into one literal, and an f-string's placeholders are known exactly.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "errors.md"
PACKAGES = ("quoteflow", "connectors", "streams", "schemas", "devstack")
#: In rendered source literals, what an f-string placeholder became.
PLACEHOLDER = "\x00"
#: A quoted message must say something of its own, not just match any literal.
MIN_LITERAL_CHARS = 6


def render(node: ast.expr) -> str | None:
    """A string literal's text with each ``{...}`` as PLACEHOLDER (None: not a string)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(str(value.value))
            else:
                parts.append(PLACEHOLDER)
        return "".join(parts)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = render(node.left), render(node.right)
        if left is not None or right is not None:
            return (left if left is not None else PLACEHOLDER) + (
                right if right is not None else PLACEHOLDER
            )
    return None


def literals_of(source: str) -> Iterator[str]:
    """Every string literal (f-strings and ``+`` concatenations whole) in ``source``."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.expr):
            text = render(node)
            if text is not None:
                yield text


@cache
def product_literals() -> tuple[str, ...]:
    found: set[str] = set()
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found.update(literals_of(path.read_text(encoding="utf-8")))
    return tuple(sorted(found))


def pattern_of(message: str) -> re.Pattern[str]:
    """The doc's message as a regex: ``…`` matches anything, placeholders included."""
    parts = [re.escape(part) for part in message.split("…")]
    return re.compile("(?s:.*?)".join(parts))


def occurs(message: str, literals: tuple[str, ...]) -> bool:
    pattern = pattern_of(message)
    return any(pattern.search(text) for text in literals)


def documented_messages(markdown: str) -> list[str]:
    """Backticked text in the first column of each table whose header cell is 'message'."""
    messages: list[str] = []
    in_table = False
    for line in markdown.splitlines():
        if not line.startswith("|"):
            in_table = False
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if cells[0] == "message":
            in_table = True
            continue
        if in_table and not set(cells[0]) <= set("-: "):
            spans = re.findall(r"`([^`]+)`", cells[0])
            assert spans, f"a message row without a backticked message: {line}"
            messages.extend(spans)
    return messages


MESSAGES = documented_messages(DOC.read_text(encoding="utf-8"))


def test_the_page_quotes_messages() -> None:
    # The parser found the tables: a page whose tables it missed would pass vacuously.
    assert len(MESSAGES) >= 100


@pytest.mark.parametrize("message", MESSAGES)
def test_each_documented_message_is_in_the_source(message: str) -> None:
    literal = message.replace("…", "")
    assert len(literal.strip()) >= MIN_LITERAL_CHARS, f"too little of the message: {message!r}"
    assert occurs(message, product_literals()), (
        f"docs/errors.md quotes {message!r}, which no string in {', '.join(PACKAGES)} says:"
        " reworded? Update the page."
    )


def test_placeholders_and_ellipses_are_wildcards_but_words_are_not() -> None:
    """The matching rule itself, on literals as :func:`literals_of` renders them."""
    source = (
        'raise X(f"topic {name} has {count} partitions;"\n'
        '        " it must have exactly 1")\n'
        'y = "plain " + f"{a} joined"\n'
    )
    literals = tuple(literals_of(source))
    assert occurs("topic … has … partitions; it must have exactly 1", literals)
    assert occurs("has … partitions", literals)
    assert occurs("plain … joined", literals)
    assert not occurs("topic … has … partitions; it must have exactly 2", literals)
    # A concrete value where the source has a placeholder is not the source's text.
    assert not occurs("topic quoteflow.cdc.watermarks has … partitions", literals)
    # Words from two different literals do not make one message.
    assert not occurs("exactly 1 … plain", literals)
