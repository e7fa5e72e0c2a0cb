"""The first check of a ``--where`` predicate: one expression, before PostgreSQL sees it.

The predicate is SQL text spliced into the snapshot's chunk query as
``WHERE (<key> > <last key>) AND (<predicate>)``, so it is code. The operator
who types it is trusted (they hold the database's credentials), but a typo or
a pasted fragment must not turn into a second statement or swallow the
query's own bounds. This scan, without a database, refuses what cannot be a
single expression inside those parentheses: a ``;`` outside quotes, a
comment (``--`` or ``/*`` could hide the closing parenthesis or the LIMIT),
parentheses that close what they did not open, an unterminated quote.

What it lets through is then planned by PostgreSQL itself
(``EXPLAIN SELECT 1 FROM <table> WHERE (<predicate>)`` in a read-only
transaction, :mod:`connectors.cdc.backfill`), which checks the names, the
types and that the result is boolean; and the CDC runs it only inside
read-only transactions.
"""

from __future__ import annotations

#: Far more than any filter a person types; a WAL message must stay small.
MAX_LENGTH = 4_000


def predicate_problem(text: str) -> str | None:
    """Why ``text`` cannot be a ``--where`` predicate (None: it may be, PostgreSQL decides)."""
    if not text.strip():
        return "--where is empty: give a condition on the table's columns"
    if len(text) > MAX_LENGTH:
        return f"--where is {len(text)} characters long; at most {MAX_LENGTH}"
    if "\x00" in text:
        return "--where contains a NUL character"
    return _scan(text)


def _scan(text: str) -> str | None:
    depth, i, n = 0, 0, len(text)
    while i < n:
        char = text[i]
        if char == "'":
            escapes = i > 0 and text[i - 1] in "eE" and (i < 2 or not _word(text[i - 2]))
            end = _quoted_end(text, i, "'", backslash=escapes)
            if end is None:
                return f"--where has an unterminated string starting at character {i + 1}"
            i = end
        elif char == '"':
            end = _quoted_end(text, i, '"', backslash=False)
            if end is None:
                return f"--where has an unterminated quoted name starting at character {i + 1}"
            i = end
        elif char == "$" and (i == 0 or not _word(text[i - 1])):
            tag_end = _dollar_tag_end(text, i)
            if tag_end is not None:
                tag = text[i:tag_end]
                close = text.find(tag, tag_end)
                if close < 0:
                    return f"--where has an unterminated {tag} string at character {i + 1}"
                i = close + len(tag)
                continue
            i += 1
        elif text.startswith("--", i) or text.startswith("/*", i):
            return f"--where contains a comment at character {i + 1}: remove it"
        elif char == ";":
            return (
                f"--where contains ';' at character {i + 1}: one condition, not statements"
            )
        elif char == "(":
            depth += 1
            i += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                return f"--where closes a parenthesis it did not open at character {i + 1}"
            i += 1
        else:
            i += 1
    if depth:
        return f"--where leaves {depth} parenthesis(es) open"
    return None


def _word(char: str) -> bool:
    return char.isalnum() or char == "_"


def _quoted_end(text: str, start: int, quote: str, *, backslash: bool) -> int | None:
    """The index after the quote closing the one at ``start`` (doubled quotes are literal)."""
    i = start + 1
    while i < len(text):
        char = text[i]
        if backslash and char == "\\":
            i += 2
            continue
        if char == quote:
            if i + 1 < len(text) and text[i + 1] == quote:
                i += 2
                continue
            return i + 1
        i += 1
    return None


def _dollar_tag_end(text: str, start: int) -> int | None:
    """The index after a dollar-quote tag (``$$``, ``$tag$``) at ``start``, or None."""
    i = start + 1
    while i < len(text) and _word(text[i]) and not (i == start + 1 and text[i].isdigit()):
        i += 1
    if i < len(text) and text[i] == "$":
        return i + 1
    return None
