"""What every example builder shares: the record type, the example customer's address, merge."""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Any

#: A record as the serde takes and returns it: field name to Python value.
Record = dict[str, Any]

#: The customer's e-mail address in the examples. Tests use it to check that
#: error messages never echo personal data.
EXAMPLE_EMAIL = "jane.doe+quotes@example.com"

#: Central European Summer Time: some examples use a non-UTC offset on purpose.
CEST = timezone(timedelta(hours=2))


def merge(record: Record, overrides: dict[str, Any]) -> Record:
    """``record`` with top-level fields replaced; an unknown field name raises KeyError."""
    unknown = set(overrides) - set(record)
    if unknown:
        raise KeyError(f"no such field(s) in the example: {sorted(unknown)}")
    return {**record, **overrides}
