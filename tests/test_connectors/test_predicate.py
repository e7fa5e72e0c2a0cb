"""The ``--where`` pre-check: one expression inside the chunk query's parentheses, or a reason.

It runs before PostgreSQL plans the predicate, so it only has to refuse what
would escape the parentheses or add a statement; quotes of every SQL kind may
hold anything.
"""

from __future__ import annotations

import pytest

from connectors.cdc.predicate import MAX_LENGTH, predicate_problem

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "where",
    [
        "updated_at >= '2026-11-01'",
        "status IN ('QUOTED', 'DRAFT') AND (premium > 10 OR channel = 'WEB')",
        "quote_ref LIKE 'Q-%'",
        "quote_ref = 'a;b -- c /* d */ ( ))'",  # all inside a string
        "quote_ref = 'it''s'",
        "\"status\" = 'QUOTED'",
        "\"odd;name)\" = 1",
        "quote_ref = E'\\';' ",
        "quote_ref = $$a;b)$$",
        "quote_ref = $tag$ ; ) $$ $tag$",
        "quote_id = ANY (ARRAY[1, 2, 3])",
        "price$1 > 0",  # a $ inside a name starts no string
    ],
)
def test_conditions_pass(where: str) -> None:
    assert predicate_problem(where) is None


@pytest.mark.parametrize(
    ("where", "problem"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("1=1; DROP TABLE quotes", "';' at character 4"),
        ("status = 'QUOTED' -- and more", "comment at character 19"),
        ("status = 'QUOTED' /* x */", "comment"),
        ("true) OR (true", "closes a parenthesis it did not open at character 5"),
        ("(true", "1 parenthesis(es) open"),
        ("quote_ref = 'open", "unterminated string starting at character 13"),
        ('"open = 1', "unterminated quoted name"),
        ("quote_ref = $$open", "unterminated $$ string"),
        ("quote_ref = E'\\'", "unterminated string"),
        ("a\x00", "NUL"),
        ("x" * (MAX_LENGTH + 1), "characters long"),
    ],
)
def test_what_is_not_one_condition_is_refused_with_the_reason(where: str, problem: str) -> None:
    found = predicate_problem(where)
    assert found is not None and problem in found
    assert "\n" not in found
