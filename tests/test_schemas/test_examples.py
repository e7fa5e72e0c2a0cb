"""schemas.examples: an example for every schema, each valid for the latest version."""

from __future__ import annotations

from typing import Any

import pytest

from schemas import examples
from schemas.catalog import SchemaCatalog
from schemas.embedded import EmbeddedSerde
from schemas.errors import SchemaNotFound

pytestmark = pytest.mark.unit

ALL = examples.all_examples()


def test_every_schema_in_the_catalogue_has_an_example(catalog: SchemaCatalog) -> None:
    assert sorted(examples.EXAMPLES) == sorted(catalog.names())
    assert sorted(examples.VARIANTS) == sorted(catalog.names())


def test_the_example_is_the_first_variant() -> None:
    for name, builders in examples.VARIANTS.items():
        assert builders, name
        assert examples.EXAMPLES[name] is builders[0]
        assert examples.example(name) == builders[0]()


@pytest.mark.parametrize(("name", "variant", "record"), ALL, ids=[f"{n}-{v}" for n, v, _ in ALL])
def test_every_variant_round_trips_unchanged(
    embedded: EmbeddedSerde, name: str, variant: str, record: dict[str, Any]
) -> None:
    # Complete records: nothing filled in by defaults, nothing lost.
    data = embedded.encode(name, record, topic="examples", is_key=name.endswith("_key"))
    assert embedded.decode(name, data, topic="examples", is_key=name.endswith("_key")) == record


def test_each_call_builds_a_fresh_record() -> None:
    first = examples.example("qms_quote_envelope")
    first["after"]["status"] = "ACCEPTED"
    first["source"]["snapshot"] = "true"
    again = examples.example("qms_quote_envelope")
    assert again["after"]["status"] == "QUOTED"
    assert again["source"]["snapshot"] == "false"


def test_unknown_schema_names_the_known_ones() -> None:
    with pytest.raises(SchemaNotFound, match="abandonment_trigger") as info:
        examples.example("abandonment_triger")
    assert "'abandonment_triger'" in str(info.value)


def test_overrides_replace_fields_and_refuse_unknown_ones() -> None:
    assert examples.quote_value(status="ACCEPTED")["status"] == "ACCEPTED"
    with pytest.raises(KeyError, match="statos"):
        examples.quote_value(statos="ACCEPTED")


def test_mappings_are_read_only() -> None:
    with pytest.raises(TypeError):
        examples.EXAMPLES["extra"] = examples.quote_key  # type: ignore[index]
