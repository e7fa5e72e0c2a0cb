"""Settings: defaults match the local stack, bad values name their key, secrets stay masked."""

from __future__ import annotations

from pathlib import Path

import pytest

from quoteflow.errors import ConfigError
from quoteflow.settings import (
    LOCAL_HOST,
    LOCAL_KAFKA_CONTROLLER_PORT,
    LOCAL_KAFKA_PORT,
    LOCAL_POSTGRES_PORT,
    LOCAL_REGISTRY_MANAGEMENT_PORT,
    LOCAL_REGISTRY_PORT,
    load_settings,
    local_kafka_bootstrap,
    local_registry_url,
)

pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("clean_env")]


def test_defaults_point_clients_at_the_local_stack() -> None:
    s = load_settings()
    assert s.kafka.bootstrap_servers == f"127.0.0.1:{s.stack.kafka_port}"
    assert s.postgres.port == s.stack.postgres_port
    assert s.stack.kafka_port != 9092 and s.stack.postgres_port != 5432
    assert s.streams.data_dir == s.stack.home / "streams"
    assert s.stack.kafka_heap_mb <= 512


def test_env_overrides_nested_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUOTEFLOW_STACK__KAFKA_PORT", "29092")
    monkeypatch.setenv("QUOTEFLOW_KAFKA__CLIENT_ID", "ops")
    s = load_settings()
    assert s.kafka.bootstrap_servers == "127.0.0.1:29092"
    assert s.kafka.client_id == "ops"


def test_explicit_bootstrap_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUOTEFLOW_KAFKA__BOOTSTRAP_SERVERS", "kafka:9092")
    assert load_settings().kafka.bootstrap_servers == "kafka:9092"


def test_toml_file_is_read_and_env_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "q.toml"
    config.write_text('[stack]\nkafka_port = 20000\n[postgres]\nuser = "cdc"\n')
    monkeypatch.setenv("QUOTEFLOW_POSTGRES__USER", "env-user")
    s = load_settings(config)
    assert s.stack.kafka_port == 20000
    assert s.postgres.user == "env-user"


def test_quoteflow_toml_in_working_directory_is_picked_up(tmp_path: Path) -> None:
    (tmp_path / "quoteflow.toml").write_text("[stack]\nkafka_port = 20001\n")
    assert load_settings().stack.kafka_port == 20001


@pytest.mark.parametrize(
    ("env", "value", "expected"),
    [
        ("QUOTEFLOW_STACK__KAFKA_PORT", "abc", "setting stack.kafka_port"),
        ("QUOTEFLOW_STACK__KAFKA_PORT", "70000", "less than or equal to 65535"),
        ("QUOTEFLOW_STACK__KAFKA_HEAP_MB", "4096", "setting stack.kafka_heap_mb"),
        ("QUOTEFLOW_KAFKA__SECURITY_PROTOCOL", "TLS", "setting kafka.security_protocol"),
        ("QUOTEFLOW_KAFKA__BOGUS", "1", "setting kafka.bogus"),
        ("QUOTEFLOW_KAFKAA__CLIENT_ID", "x", "unknown setting section 'kafkaa'"),
        ("QUOTEFLOW_SCHEMA_REGISTRY__URL", "registry:8081", "must start with http"),
        ("QUOTEFLOW_TOPICS__REPLICATION_FACTOR", "0", "setting topics.replication_factor"),
        ("QUOTEFLOW_STACK__HOME", "", "setting stack.home"),
        ("QUOTEFLOW_KAFKA__SECURITY_PROTOCOL", "SASL_SSL", "needs sasl_mechanism"),
        ("QUOTEFLOW_KAFKA__SASL_MECHANISM", "PLAIN", "security_protocol is not SASL_"),
        ("QUOTEFLOW_STACK", "notjson", "error parsing value"),
        ("QUOTEFLOW_STACK__REGISTRY_DATABASE", "Registry-DB", "setting stack.registry_database"),
        ("QUOTEFLOW_STACK__REGISTRY_VERSION", "3.0.0", "setting stack.registry_version"),
        ("QUOTEFLOW_STACK__REGISTRY_PORT", "80", "setting stack.registry_port"),
    ],
)
def test_bad_values_name_the_key(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert expected in str(info.value)
    assert "\n" not in str(info.value)  # one line


def test_ports_must_differ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUOTEFLOW_STACK__POSTGRES_PORT", "19092")
    with pytest.raises(ConfigError, match="must all differ"):
        load_settings()


def test_unknown_toml_key_names_file_and_key(tmp_path: Path) -> None:
    config = tmp_path / "q.toml"
    config.write_text("[postgres]\npasword = 'x'\n")
    with pytest.raises(ConfigError, match=r"postgres\.pasword.*q\.toml"):
        load_settings(config)


def test_malformed_toml_and_missing_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[stack\n")
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(broken)
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "absent.toml")


def test_secrets_are_masked_when_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUOTEFLOW_POSTGRES__PASSWORD", "s3cret-pw")
    monkeypatch.setenv("QUOTEFLOW_KAFKA__SASL_PASSWORD", "kafka-pw")
    s = load_settings()
    assert "s3cret-pw" not in repr(s) and "kafka-pw" not in repr(s)
    assert "s3cret-pw" in s.postgres.conninfo("qms")
    assert s.kafka.as_librdkafka_dict()["sasl.password"] == "kafka-pw"


def test_registry_basic_auth_needs_both_halves(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUOTEFLOW_SCHEMA_REGISTRY__BASIC_AUTH_USER", "u")
    with pytest.raises(ConfigError, match="go together"):
        load_settings()


def test_stack_paths_become_absolute(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """initdb and the JVM run from other directories, so a relative home must not reach them."""
    monkeypatch.setenv("QUOTEFLOW_STACK__HOME", "rel/home")
    monkeypatch.setenv("QUOTEFLOW_STACK__CACHE_DIR", "~/qf-cache")
    s = load_settings()
    assert s.stack.home == (tmp_path / "rel" / "home").resolve()
    assert s.stack.cache_dir == Path.home() / "qf-cache"


def test_complete_sasl_settings_reach_librdkafka(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUOTEFLOW_KAFKA__SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("QUOTEFLOW_KAFKA__SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("QUOTEFLOW_KAFKA__SASL_USERNAME", "svc")
    monkeypatch.setenv("QUOTEFLOW_KAFKA__SASL_PASSWORD", "pw")
    conf = load_settings().kafka.as_librdkafka_dict()
    assert conf["security.protocol"] == "SASL_SSL" and conf["sasl.mechanism"] == "SCRAM-SHA-512"
    assert conf["sasl.username"] == "svc"


# -- schema registry and the local registry ------------------------------------------
# The registry is the default wire format, so its URL must follow the stack's port
# setting without a second one to keep in step, and embedded mode must be chosen
# cleanly: never half-configured with a registry URL it would silently ignore.


def test_registry_mode_is_the_default_and_points_at_the_local_registry() -> None:
    s = load_settings()
    registry = s.schema_registry
    expected = f"http://127.0.0.1:{s.stack.registry_port}/apis/ccompat/v7"
    assert registry.mode == "registry"
    assert registry.url == s.stack.registry_url == expected
    assert registry.auto_register is False
    ports = (s.stack.registry_port, s.stack.registry_management_port)
    assert 8081 not in ports and 8080 not in ports  # not the usual ports of other registries


def test_changing_the_registry_port_moves_the_default_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUOTEFLOW_STACK__REGISTRY_PORT", "28081")
    s = load_settings()
    assert s.stack.registry_port == 28081
    assert s.schema_registry.url == "http://127.0.0.1:28081/apis/ccompat/v7"


def test_an_explicit_registry_url_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUOTEFLOW_STACK__REGISTRY_PORT", "28081")
    monkeypatch.setenv("QUOTEFLOW_SCHEMA_REGISTRY__URL", "https://registry.example.com:8081")
    s = load_settings()
    assert s.schema_registry.url == "https://registry.example.com:8081"


def test_an_empty_registry_url_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUOTEFLOW_SCHEMA_REGISTRY__URL", "")
    s = load_settings()
    assert s.schema_registry.url == s.stack.registry_url


def test_an_empty_registry_url_in_toml_means_unset(tmp_path: Path) -> None:
    config = tmp_path / "q.toml"
    config.write_text('[schema_registry]\nurl = "  "\n')
    s = load_settings(config)
    assert s.schema_registry.url == s.stack.registry_url


def test_embedded_mode_has_no_registry_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUOTEFLOW_SCHEMA_REGISTRY__MODE", "embedded")
    registry = load_settings().schema_registry
    assert registry.mode == "embedded"
    assert registry.url is None


def test_embedded_mode_accepts_an_empty_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """An exported-but-empty variable (CI templates) is not a URL."""
    monkeypatch.setenv("QUOTEFLOW_SCHEMA_REGISTRY__MODE", "embedded")
    monkeypatch.setenv("QUOTEFLOW_SCHEMA_REGISTRY__URL", "")
    assert load_settings().schema_registry.url is None


@pytest.mark.parametrize(
    "extra",
    [
        {"QUOTEFLOW_SCHEMA_REGISTRY__URL": "http://registry:8081"},
        {
            "QUOTEFLOW_SCHEMA_REGISTRY__BASIC_AUTH_USER": "u",
            "QUOTEFLOW_SCHEMA_REGISTRY__BASIC_AUTH_PASSWORD": "p",
        },
    ],
)
def test_embedded_mode_with_registry_settings_is_an_error(
    monkeypatch: pytest.MonkeyPatch, extra: dict[str, str]
) -> None:
    monkeypatch.setenv("QUOTEFLOW_SCHEMA_REGISTRY__MODE", "embedded")
    for name, value in extra.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith("setting schema_registry ")
    assert "mode is embedded" in message
    assert "\n" not in message


def test_an_unknown_registry_mode_names_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUOTEFLOW_SCHEMA_REGISTRY__MODE", "apicurio")
    with pytest.raises(ConfigError, match=r"setting schema_registry\.mode"):
        load_settings()


def test_auto_register_can_be_turned_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUOTEFLOW_SCHEMA_REGISTRY__AUTO_REGISTER", "true")
    assert load_settings().schema_registry.auto_register is True


@pytest.mark.parametrize(
    ("env", "value"),
    [
        ("QUOTEFLOW_STACK__REGISTRY_PORT", "19092"),  # the Kafka port
        ("QUOTEFLOW_STACK__REGISTRY_PORT", "55432"),  # the PostgreSQL port
        ("QUOTEFLOW_STACK__REGISTRY_MANAGEMENT_PORT", "18081"),  # the registry's own API
        ("QUOTEFLOW_STACK__KAFKA_CONTROLLER_PORT", "18082"),  # the management port
    ],
)
def test_registry_ports_must_differ_from_every_other_port(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError, match="must all differ") as info:
        load_settings()
    assert "registry_management_port" in str(info.value)


@pytest.mark.parametrize("value", ["64", "4096"])
def test_registry_heap_out_of_range_names_the_key(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("QUOTEFLOW_STACK__REGISTRY_HEAP_MB", value)
    with pytest.raises(ConfigError, match=r"setting stack\.registry_heap_mb \(env "):
        load_settings()


def test_an_empty_registry_java_home_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUOTEFLOW_STACK__REGISTRY_JAVA_HOME", "")
    assert load_settings().stack.registry_java_home is None


def test_the_registry_java_home_is_unset_by_default() -> None:
    assert load_settings().stack.registry_java_home is None


def test_a_relative_registry_java_home_becomes_absolute(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The JVM is started from the registry's own folder: a relative home would miss."""
    monkeypatch.setenv("QUOTEFLOW_STACK__REGISTRY_JAVA_HOME", "jdks/temurin-21")
    assert load_settings().stack.registry_java_home == (tmp_path / "jdks" / "temurin-21").resolve()


def test_the_local_stack_address_is_the_one_set_of_constants() -> None:
    """Unset client settings and the stack's ports are the values of settings.local_stack."""
    s = load_settings()
    stack = s.stack
    assert (stack.kafka_port, stack.kafka_controller_port, stack.postgres_port) == (
        LOCAL_KAFKA_PORT,
        LOCAL_KAFKA_CONTROLLER_PORT,
        LOCAL_POSTGRES_PORT,
    )
    assert (stack.registry_port, stack.registry_management_port) == (
        LOCAL_REGISTRY_PORT,
        LOCAL_REGISTRY_MANAGEMENT_PORT,
    )
    assert s.kafka.bootstrap_servers == local_kafka_bootstrap() == "127.0.0.1:19092"
    assert (s.postgres.host, s.postgres.port) == (LOCAL_HOST, 55432)
    assert s.schema_registry.url == local_registry_url() == "http://127.0.0.1:18081/apis/ccompat/v7"


@pytest.mark.parametrize("section", ["cdc", "streams", "sink"])
def test_an_old_per_component_topic_prefix_says_where_it_moved(
    section: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(f"QUOTEFLOW_{section.upper()}__TOPIC_PREFIX", "staging.")
    moved = rf"setting {section}\.topic_prefix .*moved to topics\.prefix"
    with pytest.raises(ConfigError, match=moved):
        load_settings()


def test_one_topic_prefix_for_every_component(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUOTEFLOW_TOPICS__PREFIX", "staging.")
    assert load_settings().topics.prefix == "staging."
