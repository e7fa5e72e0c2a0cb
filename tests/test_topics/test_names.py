"""Topic names come from the catalogue: spelled out anywhere else, a rename breaks silently.

The sink's subscription, the watermark topic and the processor's inputs once had
their own copies of the names; this test fails on any string in the code (not in
docstrings) that is a catalogue topic's name, outside the catalogue itself and
the example records.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from quoteflow.topics import CATALOGUE

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("quoteflow", "connectors", "streams", "schemas", "devstack", "bench")
ALLOWED = {
    Path("quoteflow/topics/catalog.py"),  # where the names are declared
    Path("schemas/examples"),  # example records carry real names, as Debezium writes them
}
NAMES = {spec.name for spec in CATALOGUE}


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring nodes: prose may name a topic."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def literals_naming_topics(source: str) -> list[tuple[int, str]]:
    """(line, text) of each string constant that is, or ends with, a catalogue topic name."""
    tree = ast.parse(source)
    skip = _docstrings(tree)
    hits = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            continue
        text = node.value
        if id(node) not in skip and any(text == n or text.endswith("." + n) for n in NAMES):
            hits.append((node.lineno, text))
    return hits


def _allowed(path: Path) -> bool:
    return any(path == a or a in path.parents for a in ALLOWED)


def test_no_topic_name_is_spelled_out_outside_the_catalogue() -> None:
    found = [
        f"{path}:{line}: {text!r}"
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if not _allowed(path.relative_to(ROOT))
        for line, text in literals_naming_topics(path.read_text(encoding="utf-8"))
    ]
    assert not found, "use quoteflow.topics' names instead of:\n" + "\n".join(found)


def test_the_check_finds_a_name_in_code_and_in_an_f_string_but_not_in_prose() -> None:
    code = '''
"""Reads quoteflow.abandonment.triggers."""
TRIGGERS = "quoteflow.abandonment.triggers"
def f(prefix):
    """Writes quoteflow.dead-letter."""
    return f"{prefix}quoteflow.dead-letter"
'''
    assert [line for line, _ in literals_naming_topics(code)] == [3, 6]
