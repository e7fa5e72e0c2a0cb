"""Examples of the CRM customers change topic (crm.public.customers): key, row, changes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from schemas.debezium import zoned_timestamp
from schemas.examples.common import EXAMPLE_EMAIL, Record, merge
from schemas.examples.envelope import envelope, source


def customer_key(customer_id: int = 77_001) -> Record:
    """Key of a crm.public.customers change event."""
    return {"customer_id": customer_id}


def customer_value(**overrides: Any) -> Record:
    """One row of the CRM customers table."""
    return merge(
        {
            "customer_id": 77_001,
            "first_name": "Jane",
            "last_name": "Doe",
            "email": EXAMPLE_EMAIL,
            "phone": "+44 20 7946 0958",
            "marketing_consent": True,
            "consent_updated_at": zoned_timestamp(datetime(2023, 11, 2, 8, 0, 0, 5, tzinfo=UTC)),
            "timezone": "Europe/London",
            "segment": "young-drivers",
            "created_at": zoned_timestamp(datetime(2021, 3, 14, 15, 9, 26, 535897, tzinfo=UTC)),
            "updated_at": zoned_timestamp(datetime(2024, 6, 30, 23, 59, 59, 999999, tzinfo=UTC)),
        },
        overrides,
    )


def customer_created() -> Record:
    """Insert of a customer with every optional column filled."""
    return envelope("c", None, customer_value(), source("customers", "crm"))


def customer_without_contact() -> Record:
    """Update of a customer with no e-mail, phone, segment or consent date (nulls)."""
    after = customer_value(
        email=None, phone=None, segment=None, consent_updated_at=None, marketing_consent=False
    )
    return envelope("u", customer_value(), after, source("customers", "crm"))


def customer_snapshot_last() -> Record:
    """The last row of an initial snapshot (op r, snapshot "last")."""
    return envelope(
        "r",
        None,
        customer_value(customer_id=77_999, first_name="Ola", last_name="Nordmann", email=None),
        source("customers", "crm", snapshot="last", txId=None, lsn=None, sequence=None),
    )
