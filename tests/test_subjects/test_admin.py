"""`quoteflow schemas register | check` against the stack's real Schema Registry.

Each test works on the subjects of its own uuid topic (deleted afterwards), so
it starts from an empty subject whatever the session registered.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka.schema_registry import Schema

from quoteflow.errors import ConfigError
from quoteflow.settings import Settings, load_settings
from schemas.catalog import default_catalog
from schemas.errors import RegistryError
from schemas.serde import registry_client
from schemas.subjects.admin import SubjectAdmin
from schemas.subjects.plan import COMPATIBILITY, Subject
from tests.helpers import delete_subjects


@pytest.fixture
def topic(stack: object, settings: Settings) -> Iterator[str]:
    name = f"test.subjects.{uuid.uuid4().hex[:8]}"
    try:
        yield name
    finally:
        delete_subjects(settings, name)


def _subjects(topic: str) -> list[Subject]:
    """A topic shaped like qms.public.quotes: an Avro key and an Avro value."""
    return [
        Subject(f"{topic}-key", topic, True, "qms_quote_key"),
        Subject(f"{topic}-value", topic, False, "qms_quote_envelope"),
    ]


@pytest.mark.integration
def test_register_fills_empty_subjects_once_and_check_then_passes(
    settings: Settings, topic: str
) -> None:
    with SubjectAdmin(settings, subject_list=_subjects(topic)) as admin:
        assert [c.state for c in admin.compare()] == ["missing", "missing"]

        reported: list[str] = []
        first = admin.register(reported.append)
        assert [r.changed for r in first] == [True, True]
        assert all(r.after.state == "ok" and not r.refused for r in first)
        assert all(r.after.compatibility == COMPATIBILITY for r in first)
        assert f"{topic}-value: registered qms_quote_envelope v1 as schema id" in "\n".join(
            reported
        )

        second = admin.register()
        assert [r.changed for r in second] == [False, False]
        assert [r.after.registered for r in second] == [r.after.registered for r in first]
        assert [c.state for c in admin.compare()] == ["ok", "ok"]


@pytest.mark.integration
def test_a_foreign_latest_version_is_drift_that_register_leaves_alone(
    settings: Settings, topic: str
) -> None:
    value = _subjects(topic)[1]
    with SubjectAdmin(settings, subject_list=[value]) as admin:
        admin.register()
        # Someone registers a compatible version this repository does not have.
        foreign = json.loads(default_catalog().latest("qms_quote_envelope").registry_text)
        foreign["doc"] = "registered from another branch"
        foreign["fields"].append({"name": "extra", "type": ["null", "long"], "default": None})
        client = registry_client(settings.schema_registry.url or "")
        try:
            client.register_schema(value.name, Schema(json.dumps(foreign), "AVRO"))
        finally:
            client.close()

        [comparison] = admin.compare()
        assert comparison.state == "drift" and comparison.foreign
        assert "registered from elsewhere" in comparison.problems()[0]
        [registration] = admin.register()
        assert registration.refused and not registration.changed
        assert len(registration.after.registered) == 2


@pytest.mark.unit
def test_an_unreachable_registry_is_one_clear_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/apis/ccompat/v7"
    settings = load_settings(schema_registry={"url": url, "request_timeout_s": 2})
    with SubjectAdmin(settings) as admin, pytest.raises(RegistryError) as caught:
        admin.compare()
    assert f"cannot reach the schema registry at {url}" in str(caught.value)


@pytest.mark.unit
def test_embedded_mode_has_no_registry_to_register_with() -> None:
    with pytest.raises(ConfigError, match="mode is embedded"):
        SubjectAdmin(load_settings(schema_registry={"mode": "embedded"}))
