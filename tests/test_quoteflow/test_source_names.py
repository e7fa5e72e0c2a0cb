"""Every place that names the CDC sources agrees with connectors.cdc.sources.CDC_SOURCES.

The sources are the CDC's; the kernel's settings may not import the CDC (the
import contracts in pyproject.toml), and a type checker needs a ``Literal``
spelled out, so the settings repeat the names (``CdcSourceName``, the
``postgres.<source>_database`` fields). The CLI derives its choices from
CDC_SOURCES. This test holds all of them to the one declaration.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import get_args

import click
import pytest

from connectors.cdc.sources import CDC_SOURCES, SOURCE_NAMES, CdcSource
from quoteflow.cli import cli
from quoteflow.settings import (
    ALL_SOURCES,
    CdcSettings,
    CdcSourceName,
    PostgresSettings,
    WatermarksSettings,
)

pytestmark = pytest.mark.unit


def test_source_names_are_the_server_names_in_order() -> None:
    assert tuple(source.server_name for source in CDC_SOURCES) == SOURCE_NAMES
    assert len(set(SOURCE_NAMES)) == len(SOURCE_NAMES)


def test_the_settings_literal_names_exactly_the_sources() -> None:
    assert get_args(CdcSourceName) == SOURCE_NAMES
    assert ALL_SOURCES == SOURCE_NAMES


def test_cdc_and_watermarks_default_to_every_source() -> None:
    assert CdcSettings().sources == SOURCE_NAMES
    watermarks = WatermarksSettings()
    assert watermarks.sources == SOURCE_NAMES
    assert tuple(watermarks.connectors) == SOURCE_NAMES


@pytest.mark.parametrize("source", CDC_SOURCES, ids=lambda source: source.server_name)
def test_each_source_has_its_database_setting_named_after_it(source: CdcSource) -> None:
    assert source.database_setting == f"{source.server_name}_database"
    field = PostgresSettings.model_fields.get(source.database_setting)
    assert field is not None, f"PostgresSettings has no {source.database_setting}"
    assert field.default == source.server_name
    assert source.database(PostgresSettings()) == source.server_name


def test_postgres_has_a_database_setting_for_every_source_and_no_other() -> None:
    """ops_database is quoteflow's own; every other ``*_database`` is a source's."""
    fields = {name for name in PostgresSettings.model_fields if name.endswith("_database")}
    assert fields - {"ops_database"} == {source.database_setting for source in CDC_SOURCES}


def _choices(group: click.Group) -> Iterator[tuple[str, click.Choice[str]]]:
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _choices(command)
        for param in command.params:
            if isinstance(param.type, click.Choice):
                yield f"{name} {param.name}", param.type


def test_the_clis_source_choices_are_the_sources() -> None:
    """Any choice that offers a source offers exactly the sources, in their order."""
    offering = {
        where: tuple(choice.choices)
        for where, choice in _choices(cli)
        if set(choice.choices) & set(SOURCE_NAMES)
    }
    assert {"cdc sources", "snapshot source"} <= set(offering)
    assert all(choices == SOURCE_NAMES for choices in offering.values()), offering
