"""The serde factory and format detection."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from quoteflow.errors import ConfigError
from schemas import examples
from schemas.catalog import SchemaCatalog
from schemas.embedded import EmbeddedSerde
from schemas.errors import RegistryConfigError
from schemas.framing import detect_format
from schemas.registry import RegistrySerde
from schemas.serde import Serde, make_serde

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\xc3\x01" + bytes(8), "single-object"),
        (b"\xc3\x01" + bytes(8) + b"\x02", "single-object"),
        (b"\xc3\x01" + bytes(7), "unknown"),
        (b"\x00\x00\x00\x00\x01", "confluent"),
        (b"\x00\x00\x00\x00\x01\x02", "confluent"),
        (b"\x00\x00\x00\x01", "unknown"),
        (b"", "unknown"),
        (b"\x02hello", "unknown"),
        (b'{"quote_id": 1}', "unknown"),
    ],
)
def test_detect_format(data: bytes, expected: str) -> None:
    assert detect_format(data) == expected


def test_detect_format_of_real_messages(registry_url: str, catalog: SchemaCatalog) -> None:
    for serde, expected in (
        (make_serde(None, catalog=catalog), "single-object"),
        (make_serde(registry_url, catalog=catalog), "confluent"),
    ):
        data = serde.encode("dead_letter", examples.dead_letter(), topic="dlq")
        assert detect_format(data) == expected


def test_no_url_gives_the_embedded_serde(catalog: SchemaCatalog) -> None:
    serde: Serde = make_serde(None, catalog=catalog)
    assert isinstance(serde, EmbeddedSerde)
    assert serde.catalog is catalog


def test_url_gives_the_registry_serde(registry_url: str, catalog: SchemaCatalog) -> None:
    serde = make_serde(registry_url, catalog=catalog, auto_register=False)
    assert isinstance(serde, RegistrySerde)
    assert serde.catalog is catalog


def test_basic_auth_is_passed_to_the_client(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, Any]] = []
    real_new_client = SchemaRegistryClient.new_client

    def recording_new_client(conf: dict[str, Any]) -> SchemaRegistryClient:
        seen.append(dict(conf))
        return real_new_client(conf)  # builds the real client: no network I/O yet

    monkeypatch.setattr(SchemaRegistryClient, "new_client", staticmethod(recording_new_client))
    serde = make_serde(
        "http://registry.invalid:8081", basic_auth=("svc", "s3cr3t:pw"), timeout_s=4.5
    )
    assert isinstance(serde, RegistrySerde)
    assert seen == [
        {
            "url": "http://registry.invalid:8081",
            "basic.auth.user.info": "svc:s3cr3t:pw",
            # bounded: confluent-kafka's own default would wait for ever
            "timeout": 4.5,
        }
    ]


def test_basic_auth_without_url_is_a_config_error() -> None:
    with pytest.raises(RegistryConfigError, match="no registry URL") as info:
        make_serde(None, basic_auth=("svc", "pw"))
    assert isinstance(info.value, ConfigError)
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    "url",
    [
        "localhost:8081",
        "ftp://registry:8081",
        "http://",
        "http://ok:8081,registry:8081",
    ],
)
def test_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(RegistryConfigError, match="http"):
        make_serde(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://svc:hunter2@registry.example.com",
        "http://ok:8081,http://svc:hunter2@registry:8081",
        "svc:hunter2@registry:8081",
    ],
)
def test_credentials_in_the_url_are_refused_and_not_echoed(url: str) -> None:
    with pytest.raises(RegistryConfigError) as info:
        make_serde(url)
    assert "hunter2" not in str(info.value)


def test_basic_auth_user_with_colon_is_refused() -> None:
    with pytest.raises(RegistryConfigError, match="no ':'"):
        make_serde("http://registry:8081", basic_auth=("a:b", "pw"))
