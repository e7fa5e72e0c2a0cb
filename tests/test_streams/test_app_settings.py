"""How settings reach faust: transport security and internal topic partitions."""

from __future__ import annotations

import faust
import pytest

from quoteflow.settings import load_settings
from quoteflow.topics import QUOTES as QUOTES_TOPIC
from quoteflow.topics.catalog import by_name
from streams.app import broker_credentials, create_app

pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("clean_env")]


def test_plaintext_needs_no_credentials() -> None:
    assert broker_credentials(load_settings().kafka) is None


def test_sasl_ssl_carries_tls_and_the_mechanism() -> None:
    kafka = load_settings(
        kafka={
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-256",
            "sasl_username": "svc",
            "sasl_password": "pw",
        }
    ).kafka
    credentials = broker_credentials(kafka)
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.username == "svc" and credentials.password == "pw"
    assert credentials.ssl_context is not None
    assert str(credentials.mechanism.value) == "SCRAM-SHA-256"


def test_ssl_alone_uses_tls_credentials() -> None:
    credentials = broker_credentials(load_settings(kafka={"security_protocol": "SSL"}).kafka)
    assert isinstance(credentials, faust.SSLCredentials)


def test_internal_topics_follow_the_catalogue_or_the_override() -> None:
    app = create_app(load_settings(), app_id="t")
    assert app.conf.topic_partitions == by_name(QUOTES_TOPIC).partitions
    small = create_app(load_settings(topics={"partitions": 2}), app_id="t")
    assert small.conf.topic_partitions == 2
