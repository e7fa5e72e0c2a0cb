"""The checked-in Debezium configuration matches quoteflow's sources and topics."""

from __future__ import annotations

import pytest

from connectors.cdc.sources import CDC_SOURCES, CdcSource
from devstack.debezium.connect import package_file, read_properties
from quoteflow.topics.catalog import CATALOGUE

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("source", CDC_SOURCES, ids=lambda s: s.server_name)
def test_each_source_has_a_connector_writing_its_topic(source: CdcSource) -> None:
    config = read_properties(package_file(f"{source.server_name}.properties"))
    topic = f"{config['topic.prefix']}.{config['table.include.list']}"
    assert topic == source.topic
    assert topic in {spec.name for spec in CATALOGUE}
    # Its own slot and publication, never quoteflow cdc's.
    assert config["slot.name"] != f"quoteflow_{source.server_name}"
    assert config["publication.name"] != source.publication
    # The defaults our schemas follow, and deletes followed by tombstones.
    assert config["decimal.handling.mode"] == "precise"
    assert config["time.precision.mode"] == "adaptive"
    assert config["tombstones.on.delete"] == "true"
    # The password from the environment, never in the file.
    assert config["database.password"].startswith("${env:")
    # Confluent wire format through the registry: 4-byte ids, no headers.
    for side in ("key", "value"):
        assert config[f"{side}.converter"].endswith("AvroConverter")
        assert config[f"{side}.converter.apicurio.registry.headers.enabled"] == "false"
        assert config[f"{side}.converter.apicurio.registry.id-handler"].endswith(
            "Default4ByteIdHandler"
        )
    # Of quoteflow's WAL messages only the heartbeat is published (`quoteflow watermarks`
    # reads it); the snapshot watermarks and signals of `quoteflow cdc` stay out.
    assert config["message.prefix.include.list"] == r"quoteflow\.heartbeat"
    assert "message.prefix.exclude.list" not in config


def test_properties_reader() -> None:
    text = "# comment\n! also\n\na=b\n key = c=d \nre=x\\\\.y\n"
    assert read_properties(text) == {"a": "b", "key": "c=d", "re": r"x\.y"}
