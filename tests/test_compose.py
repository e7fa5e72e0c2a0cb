"""docker-compose.yml and the Dockerfile agree with the settings model and the native stack.

No Docker engine is needed: the files are parsed, not run. Every expected value
comes from the code it must match (the defaults of ``quoteflow.settings``, the
broker properties of ``devstack.stack.kafka.config``, the registry's storage
properties of ``devstack.stack.registry.config``, ``pyproject.toml``, the
``quoteflow`` command line), so changing a default without the compose file, or
the compose file without the code, fails here with a message naming both sides.
"""

from __future__ import annotations

import importlib
import itertools
import json
import re
import shlex
import tomllib
from collections.abc import Iterator, Mapping
from fnmatch import fnmatch
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import pytest
import yaml

from devstack.stack.kafka.config import server_properties
from devstack.stack.registry.config import PASSWORD_ENV, storage_properties
from quoteflow.errors import ConfigError
from quoteflow.settings import (
    APICURIO_CCOMPAT_PATH,
    ENV_PREFIX,
    PostgresSettings,
    Settings,
    StackSettings,
    load_settings,
)

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PYPROJECT = ROOT / "pyproject.toml"
README = ROOT / "README.md"
#: Where users are told to run `docker compose`: the README and the guides.
DOCS = (README, *sorted((ROOT / "docs").glob("*.md")))

#: The services the operator guide's Docker Compose section tells users about.
README_SERVICES = ("kafka", "registry", "postgres", "topics", "schemas")
#: The registry's image: the native stack's registry (stack.registry_version) in a container.
REGISTRY_IMAGE = "apicurio/apicurio-registry"
#: The ports Apicurio's image listens on: the API (quarkus.http.port) and the
#: management interface with /health (Quarkus's default quarkus.management.port).
REGISTRY_HTTP_PORT = 8080
REGISTRY_MANAGEMENT_PORT = 9000
#: The port the postgres image's server listens on inside the compose network.
POSTGRES_CONTAINER_PORT = 5432
#: Variable that carries apicurio.datasource.url (storage_properties leaves out
#: the address, which differs between the native stack and compose).
DATASOURCE_URL_ENV = "APICURIO_DATASOURCE_URL"
#: What every pipeline container must be told to reach the other containers.
PIPELINE_ENV = {
    "QUOTEFLOW_KAFKA__BOOTSTRAP_SERVERS": "kafka:9092",
    "QUOTEFLOW_POSTGRES__HOST": "postgres",
    "QUOTEFLOW_POSTGRES__PORT": str(POSTGRES_CONTAINER_PORT),
    "QUOTEFLOW_SCHEMA_REGISTRY__URL": f"http://registry:{REGISTRY_HTTP_PORT}{APICURIO_CCOMPAT_PATH}",
    "QUOTEFLOW_STACK__HOME": "/var/lib/quoteflow",
}
#: Broker properties that are addresses: the container's differ from the native stack's.
KAFKA_ADDRESS_PROPERTIES = {
    "listeners",
    "advertised.listeners",
    "listener.security.protocol.map",
    "controller.quorum.voters",
    "log.dirs",
}
#: Variables apache/kafka's image does not turn into broker properties
#: (docker/resources/common-scripts/kafka-propertiesSpec.json, plus CLUSTER_ID).
KAFKA_IMAGE_NON_PROPERTIES = {
    "CLUSTER_ID",
    "KAFKA_VERSION",
    "KAFKA_HEAP_OPTS",
    "KAFKA_LOG4J_OPTS",
    "KAFKA_OPTS",
    "KAFKA_JMX_OPTS",
    "KAFKA_JVM_PERFORMANCE_OPTS",
    "KAFKA_GC_LOG_OPTS",
    "KAFKA_LOG4J_ROOT_LOGLEVEL",
    "KAFKA_LOG4J_LOGGERS",
    "KAFKA_TOOLS_LOG4J_LOGLEVEL",
}


# --- fixtures ----------------------------------------------------------------
@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    assert COMPOSE_FILE.is_file(), f"{COMPOSE_FILE} is missing"
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict), "docker-compose.yml is not a mapping"
    assert isinstance(data.get("services"), dict), "docker-compose.yml has no services"
    return data


@pytest.fixture
def defaults(clean_env: pytest.MonkeyPatch) -> Settings:
    return Settings()


# --- helpers -----------------------------------------------------------------
def _service(compose: Mapping[str, Any], name: str) -> dict[str, Any]:
    services = compose["services"]
    assert name in services, f"docker-compose.yml defines no service {name!r}"
    service = services[name]
    assert isinstance(service, dict), f"service {name!r} is not a mapping"
    return service


def _environment(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's environment, from either of compose's two forms."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        pairs = [item.split("=", 1) if "=" in item else [item, None] for item in raw]
        raw = dict(pairs)
    env = {}
    for key, value in raw.items():
        assert value is not None, f"environment {key} has no value (it would come from the host)"
        assert "${" not in str(value), f"environment {key}={value}: expected a literal value"
        env[str(key)] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


def _published(service: Mapping[str, Any]) -> list[tuple[str | None, int, int]]:
    """(host ip, host port, container port) of every published port, short or long syntax."""
    result = []
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            host_ip = entry.get("host_ip")
            published, target = entry.get("published"), entry["target"]
        else:
            spec = str(entry).split("/", 1)[0]
            parts = spec.rsplit(":", 2) if spec.count(":") >= 2 else spec.split(":")
            if len(parts) == 3:
                host_ip, published, target = parts
            elif len(parts) == 2:
                host_ip, (published, target) = None, parts
            else:
                host_ip, published, target = None, None, parts[0]
        assert published is not None, f"port {entry!r} publishes on a random host port"
        assert "-" not in str(published), f"port {entry!r}: ranges are not expected here"
        result.append((host_ip, int(published), int(target)))
    return result


def _host_port_to(service: Mapping[str, Any], name: str, host_port: int) -> int:
    """The container port published on ``host_port``; fails if none is."""
    published = _published(service)
    for _, host, container in published:
        if host == host_port:
            return container
    pytest.fail(f"service {name!r} publishes no port on host port {host_port}: {published}")


def _mounts(service: Mapping[str, Any]) -> list[tuple[str, str, bool]]:
    """(source, target, read-only) of every volume, short or long syntax."""
    result = []
    for entry in service.get("volumes") or []:
        if isinstance(entry, dict):
            read_only = bool(entry.get("read_only"))
            result.append((str(entry.get("source", "")), str(entry["target"]), read_only))
        elif ":" not in str(entry):  # an anonymous volume: the container's own
            result.append(("", str(entry), False))
        else:
            source, _, rest = str(entry).partition(":")
            target, _, mode = rest.partition(":")
            result.append((source, target, "ro" in mode.split(",")))
    return result


def _command(service: Mapping[str, Any]) -> list[str]:
    command = service.get("command")
    if command is None:
        return []
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def _healthcheck_test(service: Mapping[str, Any]) -> str:
    check = service.get("healthcheck") or {}
    assert not check.get("disable"), "healthcheck is disabled"
    test = check.get("test")
    assert test, "no healthcheck test"
    return test if isinstance(test, str) else " ".join(str(t) for t in test)


def _kafka_properties(env: Mapping[str, str]) -> dict[str, str]:
    """Broker properties the way apache/kafka's image renders them from KAFKA_* variables:
    ``_`` becomes ``.``, ``__`` becomes ``_``, ``___`` becomes ``-``, all lower case."""
    props = {}
    for key, value in env.items():
        if not key.startswith("KAFKA_") or key in KAFKA_IMAGE_NON_PROPERTIES:
            continue
        name = re.sub(r"(?<!_)_(?!_)", ".", key[len("KAFKA_") :])
        props[name.replace("___", "-").replace("__", "_").lower()] = value
    return props


def _listeners(value: str) -> dict[str, tuple[str, int]]:
    """``NAME://host:port,...`` as {NAME: (host, port)}."""
    result = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        match = re.fullmatch(r"([A-Za-z0-9_]+)://\[?([^\]]*)\]?:(\d+)", item)
        assert match, f"listener {item!r} is not NAME://host:port"
        result[match.group(1)] = (match.group(2), int(match.group(3)))
    return result


def _pipeline_env(name: str, service: Mapping[str, Any]) -> dict[str, str]:
    env = _environment(service)
    missing = sorted(set(PIPELINE_ENV) - set(env))
    assert not missing, f"service {name!r} does not set {missing}"
    return env


def _pipeline_services(compose: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Services built from this repository's Dockerfile."""
    found = {}
    for name, service in compose["services"].items():
        build = service.get("build")
        context = build if isinstance(build, str) else (build or {}).get("context")
        if context is not None and (COMPOSE_FILE.parent / context).resolve() == ROOT:
            found[name] = service
    return found


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    result = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, args = stripped.partition(" ")
            result.append((keyword.upper(), args.strip()))
    return result


# --- services ----------------------------------------------------------------
@pytest.mark.parametrize("name", README_SERVICES)
def test_readme_services_exist(compose: dict[str, Any], name: str) -> None:
    _service(compose, name)


def _readme_compose_commands(text: str) -> Iterator[str]:
    """The arguments of every `docker compose` command in a fenced block or a code span."""
    fence = r"^```[^\n]*\n(.*?)^```"
    fenced = re.findall(fence, text, flags=re.M | re.S)
    outside = re.sub(fence, "", text, flags=re.M | re.S)
    lines = [line for block in fenced for line in block.splitlines()]
    lines += re.findall(r"`([^`\n]+)`", outside)
    for line in lines:
        for command in re.split(r"&&|\|\||;|\|", line):
            match = re.search(r"\bdocker[ -]compose(?=\s|$)(.*)", command)
            if match:
                yield match.group(1).split(" #", 1)[0]


#: Options of `docker compose` itself that take a value.
_GLOBAL_VALUED = {
    "-f", "--file", "-p", "--project-name", "--profile", "--env-file", "--project-directory",
    "--ansi", "--progress", "--parallel",
}
#: Options of its subcommands that take a value.
_SUBCOMMAND_VALUED = {
    "-e", "--env", "-u", "--user", "-w", "--workdir", "--entrypoint", "--name", "-l", "--label",
    "--volume", "-p", "--publish", "--scale", "-t", "--timeout", "--tail", "--since", "--until",
    "--index", "--wait-timeout", "--pull", "--exit-code-from", "--attach", "--no-attach",
    "--cap-add", "--cap-drop", "--format", "--signal",
}
#: Short options whose meaning depends on the subcommand: valued only for these.
_VALUED_FOR = {"-v": {"run"}, "-s": {"kill"}}
#: Subcommands whose positional arguments are all service names.
_SERVICES_ARGS = {
    "up", "start", "stop", "restart", "logs", "pull", "build", "ps", "rm", "create", "kill",
    "pause", "unpause", "images", "top", "events", "push", "watch",
}


def _services_and_profiles(arguments: str) -> tuple[set[str], set[str]]:
    """Service names and profiles in the arguments of one `docker compose` command."""
    tokens = shlex.split(arguments)
    services: set[str] = set()
    profiles: set[str] = set()
    subcommand: str | None = None
    positionals: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.startswith("-"):
            option, has_value, value = token.partition("=")
            if subcommand is None:
                valued = option in _GLOBAL_VALUED
            else:
                valued = option in _SUBCOMMAND_VALUED or subcommand in _VALUED_FOR.get(option, ())
            if valued and not has_value:
                i += 1
                value = tokens[i] if i < len(tokens) else ""
            if option == "--profile":
                profiles.add(value)
        elif subcommand is None:
            subcommand = token
        elif subcommand in {"run", "exec"}:
            services.add(token)  # the rest is the container's command
            break
        else:
            positionals.append(token)
        i += 1
    if subcommand in _SERVICES_ARGS:
        services.update(positionals)
    return services, profiles


def test_documented_compose_commands_name_defined_services(compose: dict[str, Any]) -> None:
    defined = set(compose["services"])
    declared_profiles = {p for s in compose["services"].values() for p in s.get("profiles", [])}
    seen = 0
    for doc in DOCS:
        for command in _readme_compose_commands(doc.read_text()):
            seen += 1
            services, profiles = _services_and_profiles(command)
            assert services <= defined, (
                f"{doc.relative_to(ROOT)} runs `docker compose{command}`, but"
                f" docker-compose.yml defines no {sorted(services - defined)}"
                f" (defined: {sorted(defined)})"
            )
            assert profiles <= declared_profiles, (
                f"{doc.relative_to(ROOT)} runs `docker compose{command}`: no service has"
                f" profile(s) {sorted(profiles - declared_profiles)}"
            )
    assert seen, "no document shows a `docker compose` command"


@pytest.mark.parametrize("name", ["kafka", "registry", "postgres"])
def test_infrastructure_has_healthchecks(compose: dict[str, Any], name: str) -> None:
    _healthcheck_test(_service(compose, name))


def test_images_are_pinned(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        image = service.get("image")
        if image is None:
            assert "build" in service, f"service {name!r} has neither image nor build"
            continue
        if "build" in service:
            continue  # built here, tagged locally
        repository, _, tag = str(image).rpartition(":")
        assert repository and "/" not in tag, f"service {name!r}: image {image!r} has no tag"
        assert tag != "latest", f"service {name!r}: image {image!r} is not pinned"


# --- kafka -------------------------------------------------------------------
def test_kafka_image_is_the_stack_version(compose: dict[str, Any], defaults: Settings) -> None:
    version = defaults.stack.kafka_version
    assert version == StackSettings.model_fields["kafka_version"].default
    image = _service(compose, "kafka")["image"]
    assert image == f"apache/kafka:{version}", (
        f"kafka image {image!r} differs from the local stack's Kafka "
        f"(StackSettings.kafka_version = {version!r})"
    )


def test_kafka_host_listener_is_the_settings_port(
    compose: dict[str, Any], defaults: Settings
) -> None:
    kafka = _service(compose, "kafka")
    port = defaults.stack.kafka_port
    container_port = _host_port_to(kafka, "kafka", port)
    props = _kafka_properties(_environment(kafka))
    advertised = _listeners(props.get("advertised.listeners", ""))
    bound = _listeners(props.get("listeners", ""))
    host_side = [name for name, addr in advertised.items() if addr == ("127.0.0.1", port)]
    assert host_side, (
        f"no advertised listener is 127.0.0.1:{port} (stack.kafka_port), so host clients "
        f"with default settings would be sent elsewhere: {advertised}"
    )
    assert bound.get(host_side[0], (None, None))[1] == container_port, (
        f"listener {host_side[0]} binds {bound.get(host_side[0])}, but host port {port} "
        f"is published to container port {container_port}"
    )
    # The host's default bootstrap is that same address.
    assert defaults.kafka.bootstrap_servers == f"127.0.0.1:{port}"


def test_kafka_container_listener_is_what_pipeline_services_use(compose: dict[str, Any]) -> None:
    props = _kafka_properties(_environment(_service(compose, "kafka")))
    advertised = {f"{h}:{p}" for h, p in _listeners(props["advertised.listeners"]).values()}
    for name, service in _pipeline_services(compose).items():
        bootstrap = _pipeline_env(name, service)["QUOTEFLOW_KAFKA__BOOTSTRAP_SERVERS"]
        assert set(bootstrap.split(",")) <= advertised, (
            f"service {name!r} bootstraps from {bootstrap}, which kafka does not advertise "
            f"({sorted(advertised)})"
        )


def test_kafka_listener_names_are_consistent(compose: dict[str, Any]) -> None:
    props = _kafka_properties(_environment(_service(compose, "kafka")))
    protocol_map = props["listener.security.protocol.map"].split(",")
    protocols = dict(item.split(":", 1) for item in protocol_map)
    bound = _listeners(props["listeners"])
    unmapped = set(bound) - set(protocols)
    assert not unmapped, f"listeners without a security protocol: {unmapped}"
    assert set(_listeners(props["advertised.listeners"])) <= set(bound)
    assert props["controller.listener.names"] in bound
    assert props["inter.broker.listener.name"] in bound
    voter_port = int(props["controller.quorum.voters"].rsplit(":", 1)[1])
    assert bound[props["controller.listener.names"]][1] == voter_port


def test_kafka_mirrors_the_local_stack_broker(
    compose: dict[str, Any], defaults: Settings, tmp_path: Path
) -> None:
    """Every non-address property of devstack/stack/kafka/config.py, with the same value."""
    expected = {
        key: value
        for key, value in server_properties(defaults.stack, tmp_path).items()
        if key not in KAFKA_ADDRESS_PROPERTIES
    }
    actual = _kafka_properties(_environment(_service(compose, "kafka")))
    missing = sorted(set(expected) - set(actual))
    assert not missing, f"kafka in docker-compose.yml lacks broker properties {missing}"
    differ = {k: (actual[k], expected[k]) for k in expected if actual[k] != expected[k]}
    assert not differ, f"kafka properties differ from config.py as (compose, config.py): {differ}"


def test_kafka_single_broker_transactions(compose: dict[str, Any]) -> None:
    """faust's exactly_once needs the transaction log to be creatable on one broker."""
    props = _kafka_properties(_environment(_service(compose, "kafka")))
    for key in (
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
        "offsets.topic.replication.factor",
    ):
        assert props.get(key) == "1", f"kafka: {key} is {props.get(key)!r}, one broker needs 1"
    assert props.get("process.roles") == "broker,controller"
    assert props.get("auto.create.topics.enable") == "false"


# --- schema registry ---------------------------------------------------------
def _quarkus_env(key: str) -> str:
    """The environment variable Quarkus reads a property from: upper case, every other
    character ``_`` (``apicurio.datasource.jdbc.initial-size`` ->
    ``APICURIO_DATASOURCE_JDBC_INITIAL_SIZE``)."""
    return re.sub(r"[^A-Za-z0-9]", "_", key).upper()


def _depends_on(service: Mapping[str, Any]) -> dict[str, str]:
    """{service: condition} from either of depends_on's two forms."""
    raw = service.get("depends_on") or {}
    if isinstance(raw, list):
        return {str(name): "service_started" for name in raw}
    return {
        str(name): str((spec or {}).get("condition", "service_started"))
        for name, spec in raw.items()
    }


def test_registry_image_is_the_stack_version(compose: dict[str, Any], defaults: Settings) -> None:
    version = defaults.stack.registry_version
    assert version == StackSettings.model_fields["registry_version"].default
    image = _service(compose, "registry")["image"]
    assert image == f"{REGISTRY_IMAGE}:{version}", (
        f"registry image {image!r} differs from the local stack's registry "
        f"(StackSettings.registry_version = {version!r})"
    )


def test_registry_port_is_the_settings_port(compose: dict[str, Any], defaults: Settings) -> None:
    registry = _service(compose, "registry")
    port = defaults.stack.registry_port
    assert port == StackSettings.model_fields["registry_port"].default
    published = _published(registry)
    assert published == [("127.0.0.1", port, REGISTRY_HTTP_PORT)], (
        f"registry publishes {published}; expected only 127.0.0.1:{port} (stack.registry_port) "
        f"to the API's container port {REGISTRY_HTTP_PORT} (the management interface, "
        f"{REGISTRY_MANAGEMENT_PORT}, unpublished)"
    )
    # Host clients with default settings find it there: the URL they are given.
    url = urlsplit(defaults.schema_registry.url or "")
    assert (url.hostname, url.port, url.path) == ("127.0.0.1", port, APICURIO_CCOMPAT_PATH), (
        f"schema_registry.url defaults to {url.geturl()}, not the port compose publishes"
    )


def test_registry_listens_on_all_interfaces_on_default_ports(compose: dict[str, Any]) -> None:
    """In a container, loopback would be unreachable from the other containers and the host.

    Said explicitly: the native stack's registry_properties() binds both to 127.0.0.1.
    """
    env = _environment(_service(compose, "registry"))
    for key in ("QUARKUS_HTTP_HOST", "QUARKUS_MANAGEMENT_HOST"):
        assert env.get(key) == "0.0.0.0", (
            f"registry: {key}={env.get(key)}, but inside a container it must listen on 0.0.0.0"
        )
    for key in ("QUARKUS_HTTP_PORT", "QUARKUS_MANAGEMENT_PORT"):
        assert key not in env, (
            f"registry sets {key}; this file assumes the image's ports "
            f"{REGISTRY_HTTP_PORT} (API) and {REGISTRY_MANAGEMENT_PORT} (health)"
        )


def test_registry_storage_is_the_stack_storage(compose: dict[str, Any], defaults: Settings) -> None:
    """storage_properties() of the native stack, plus the compose datasource and password."""
    env = _environment(_service(compose, "registry"))
    apicurio = {key: value for key, value in env.items() if key.startswith("APICURIO_")}
    expected = {_quarkus_env(k): v for k, v in storage_properties(defaults).items()}
    assert DATASOURCE_URL_ENV not in expected and PASSWORD_ENV not in expected
    wanted = {*expected, DATASOURCE_URL_ENV, PASSWORD_ENV}
    missing, extra = sorted(wanted - set(apicurio)), sorted(set(apicurio) - wanted)
    assert not missing and not extra, (
        f"registry environment vs storage_properties() of devstack/stack/registry/config.py: "
        f"missing {missing}, not in config.py {extra}"
    )
    differ = {k: (apicurio[k], v) for k, v in expected.items() if apicurio[k] != v}
    assert not differ, f"registry storage differs from config.py as (compose, config.py): {differ}"
    password = defaults.postgres.password.get_secret_value()
    assert password == PostgresSettings.model_fields["password"].default.get_secret_value()
    assert apicurio[PASSWORD_ENV] == password, (
        f"registry: {PASSWORD_ENV} differs from the postgres.password default"
    )


def test_registry_datasource_is_the_postgres_service(
    compose: dict[str, Any], defaults: Settings
) -> None:
    env = _environment(_service(compose, "registry"))
    url = env.get(DATASOURCE_URL_ENV, "")
    assert url.startswith("jdbc:"), f"registry: {DATASOURCE_URL_ENV}={url!r} is no JDBC URL"
    parts = urlsplit(url[len("jdbc:") :])
    database = defaults.stack.registry_database
    assert database == StackSettings.model_fields["registry_database"].default
    expected = ("postgresql", "postgres", POSTGRES_CONTAINER_PORT, f"/{database}")
    actual = (parts.scheme, parts.hostname, parts.port, parts.path)
    assert actual == expected, (
        f"registry: {DATASOURCE_URL_ENV}={url} as (scheme, host, port, path) is {actual}; "
        f"the postgres service and stack.registry_database make {expected}"
    )
    # Where the postgres service's server listens (its published port's target).
    container_ports = {target for _, _, target in _published(_service(compose, "postgres"))}
    assert POSTGRES_CONTAINER_PORT in container_ports, (
        f"postgres publishes container ports {container_ports}, the registry uses "
        f"{POSTGRES_CONTAINER_PORT}"
    )
    conditions = _depends_on(_service(compose, "registry"))
    assert conditions.get("postgres") == "service_healthy", (
        f"registry depends on {conditions}: it must wait for postgres (and its init script)"
    )


def test_registry_healthcheck_asks_readiness(compose: dict[str, Any]) -> None:
    check = _healthcheck_test(_service(compose, "registry"))
    assert f"/dev/tcp/127.0.0.1/{REGISTRY_MANAGEMENT_PORT}" in check, (
        f"registry health check {check!r} does not ask the management port "
        f"{REGISTRY_MANAGEMENT_PORT}"
    )
    assert "GET /health/ready " in check, f"registry health check {check!r}: not /health/ready"
    assert re.search(r'\[ "\$\$status" = 200 \]', check), (
        f"registry health check {check!r} does not require status 200"
    )
    assert not re.search(r"\b(curl|wget)\b", check), (
        f"registry health check {check!r} needs a tool the image may not have"
    )


def test_pipeline_services_reach_the_registry(compose: dict[str, Any]) -> None:
    registry = _service(compose, "registry")
    hostname = registry.get("hostname", "registry")
    assert hostname == "registry", f"registry's hostname is {hostname!r}"
    container_ports = {target for _, _, target in _published(registry)}
    for name, service in _pipeline_services(compose).items():
        url = urlsplit(_pipeline_env(name, service)["QUOTEFLOW_SCHEMA_REGISTRY__URL"])
        assert url.path == APICURIO_CCOMPAT_PATH, (
            f"service {name!r} uses the registry API at {url.path!r}, the local stack at "
            f"{APICURIO_CCOMPAT_PATH!r} (APICURIO_CCOMPAT_PATH)"
        )
        assert (url.hostname, url.port) == ("registry", REGISTRY_HTTP_PORT), (
            f"service {name!r} looks for the registry at {url.hostname}:{url.port}; it "
            f"listens at registry:{REGISTRY_HTTP_PORT}"
        )
        assert url.port in container_ports, f"registry does not publish {url.port}"


def test_schemas_are_registered_before_smoke(compose: dict[str, Any]) -> None:
    schemas = _service(compose, "schemas")
    assert "schemas" in _pipeline_services(compose), "schemas is not built from the Dockerfile"
    assert _command(schemas) == ["schemas", "register"], (
        f"schemas runs `quoteflow {' '.join(_command(schemas))}`, not `quoteflow schemas register`"
    )
    assert not schemas.get("profiles"), "schemas runs by itself before the pipeline: no profile"
    assert _depends_on(schemas).get("registry") == "service_healthy", (
        f"schemas depends on {_depends_on(schemas)}, not on a healthy registry"
    )
    smoke = _depends_on(_service(compose, "smoke"))
    expected = {
        "postgres": "service_healthy",
        "registry": "service_healthy",
        "topics": "service_completed_successfully",
        "schemas": "service_completed_successfully",
    }
    assert smoke == expected, f"smoke depends on {smoke}; expected {expected}"


# --- postgres ----------------------------------------------------------------
def _postgres_options(service: Mapping[str, Any]) -> dict[str, str]:
    command = _command(service)
    options = {}
    for flag, value in itertools.pairwise(command):
        if flag == "-c":
            key, _, setting = value.partition("=")
            options[key] = setting
    return options


def test_postgres_port_and_credentials_are_the_settings_defaults(
    compose: dict[str, Any], defaults: Settings
) -> None:
    postgres = _service(compose, "postgres")
    port = defaults.stack.postgres_port
    container_port = _host_port_to(postgres, "postgres", port)
    assert defaults.postgres.port == port
    env = _environment(postgres)
    assert env.get("POSTGRES_USER") == defaults.postgres.user, "POSTGRES_USER != postgres.user"
    assert env.get("POSTGRES_PASSWORD") == defaults.postgres.password.get_secret_value(), (
        "POSTGRES_PASSWORD differs from the postgres.password default"
    )
    assert defaults.postgres.user == PostgresSettings.model_fields["user"].default
    for name, service in _pipeline_services(compose).items():
        pipeline_port = int(_pipeline_env(name, service)["QUOTEFLOW_POSTGRES__PORT"])
        assert pipeline_port == container_port, (
            f"service {name!r} connects to postgres:{pipeline_port}; the server listens "
            f"on {container_port}"
        )


def test_postgres_is_a_cdc_source(compose: dict[str, Any]) -> None:
    from devstack.stack.postgres import MIN_MAJOR

    postgres = _service(compose, "postgres")
    repository, _, tag = postgres["image"].partition(":")
    assert repository == "postgres"
    assert int(tag.split("-")[0].split(".")[0]) >= MIN_MAJOR
    options = _postgres_options(postgres)
    assert options.get("wal_level") == "logical", f"wal_level is not logical: {options}"
    for key in ("max_replication_slots", "max_wal_senders", "max_slot_wal_keep_size"):
        assert key in options, f"postgres command does not set {key}"
    assert "pg_isready" in _healthcheck_test(postgres)


def test_postgres_init_creates_both_databases_from_the_stack_ddl(
    compose: dict[str, Any], defaults: Settings
) -> None:
    postgres = _service(compose, "postgres")
    # The stack's DDL directory, mounted read-only.
    sql_dir = ROOT / "devstack" / "stack" / "sql"
    targets = [
        (target, read_only)
        for source, target, read_only in _mounts(postgres)
        if source.startswith(".") and (COMPOSE_FILE.parent / source).resolve() == sql_dir
    ]
    assert targets, "postgres does not mount ./devstack/stack/sql"
    mount_target, read_only = targets[0]
    assert read_only, f"./devstack/stack/sql is mounted writable at {mount_target}"
    # The init script, given to the image's /docker-entrypoint-initdb.d as a config.
    scripts = [
        compose["configs"][ref["source"]]["content"]
        for ref in postgres.get("configs", [])
        if isinstance(ref, dict)
        and str(ref.get("target", "")).startswith("/docker-entrypoint-initdb.d/")
    ]
    assert len(scripts) == 1, "expected one init script in /docker-entrypoint-initdb.d"
    script = scripts[0]
    assert f"{mount_target}/" in script, f"the init script does not read {mount_target}"
    pg = defaults.postgres
    for database, ddl in ((pg.qms_database, "qms.sql"), (pg.crm_database, "crm.sql")):
        assert (sql_dir / ddl).is_file(), f"{sql_dir / ddl} is missing"
        assert re.search(rf"^\s*apply_schema\s+{database}\s+{re.escape(ddl)}\s*$", script, re.M), (
            f"the init script does not create database {database!r} from {ddl}"
        )
    # The registry's database: empty (Apicurio creates its tables), owned by the pipeline
    # role (POSTGRES_USER, which test_postgres_port_and_credentials checks).
    registry_database = defaults.stack.registry_database
    assert re.search(rf"^\s*create_database\s+{registry_database}\s*$", script, re.M), (
        f"the init script does not create the registry's database {registry_database!r} "
        "(stack.registry_database)"
    )
    ops_database = defaults.postgres.ops_database
    assert re.search(rf"^\s*create_database\s+{ops_database}\s*$", script, re.M), (
        f"the init script does not create the ESP sink's database {ops_database!r} "
        "(postgres.ops_database)"
    )
    assert 'CREATE DATABASE \\"$$database\\" OWNER \\"$$POSTGRES_USER\\"' in script, (
        "the init script's create_database does not make the pipeline role the owner"
    )


# --- pipeline services -------------------------------------------------------
def _resolve_cli(args: list[str]) -> click.Command | None:
    from quoteflow.cli import cli

    command: click.Command = cli
    for token in args:
        if token.startswith("-"):
            continue
        if not isinstance(command, click.Group):
            break
        sub = command.commands.get(token)
        if sub is None:
            return None
        command = sub
    if isinstance(command, click.Group) and not command.invoke_without_command:
        return None  # a group that only lists its subcommands
    return command


def test_pipeline_services_exist(compose: dict[str, Any]) -> None:
    services = _pipeline_services(compose)
    assert "topics" in services, "topics is not built from the Dockerfile"
    assert _command(services["topics"]) == ["topics", "create"]
    assert _service(compose, "topics")["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert "smoke" in services, "smoke is not built from the Dockerfile"
    smoke = services["smoke"]
    assert _command(smoke) == ["smoke"], f"smoke runs {_command(smoke)}, not `quoteflow smoke`"
    assert smoke.get("profiles") == ["smoke"], "smoke must be opt-in (profile smoke)"


def test_pipeline_commands_exist(compose: dict[str, Any]) -> None:
    """No service runs a `quoteflow` subcommand that the command line does not have."""
    for name, service in _pipeline_services(compose).items():
        args = _command(service)
        assert _resolve_cli(args) is not None, (
            f"service {name!r} runs `quoteflow {' '.join(args)}`, which is no command of "
            "quoteflow.cli"
        )


def test_pipeline_environment_is_valid_settings(
    compose: dict[str, Any], clean_env: pytest.MonkeyPatch
) -> None:
    for name, service in _pipeline_services(compose).items():
        env = _pipeline_env(name, service)
        assert {k: env[k] for k in PIPELINE_ENV} == PIPELINE_ENV, (
            f"service {name!r} environment differs from the container addresses"
        )
        for key in env:
            assert key.startswith(ENV_PREFIX), f"service {name!r}: unexpected variable {key}"
            clean_env.setenv(key, env[key])
        try:
            settings = load_settings()
        except ConfigError as exc:
            pytest.fail(f"service {name!r}: its environment is not valid settings: {exc}")
        # Each variable reached the field it names (nothing was silently dropped).
        for key, value in env.items():
            node: Any = settings
            for part in key[len(ENV_PREFIX) :].lower().split("__"):
                node = getattr(node, part)
            shown = node.get_secret_value() if hasattr(node, "get_secret_value") else node
            assert str(shown) == value, f"service {name!r}: {key}={value} became {shown!r}"
        for key in env:
            clean_env.delenv(key)


def test_pipeline_state_is_a_volume(compose: dict[str, Any]) -> None:
    home = PIPELINE_ENV["QUOTEFLOW_STACK__HOME"]
    named = set(compose.get("volumes") or {})
    for name, service in _pipeline_services(compose).items():
        mounts = {target: source for source, target, _ in _mounts(service)}
        assert home in mounts, f"service {name!r} has no volume at stack.home ({home})"
        assert mounts[home] in named, f"service {name!r}: {mounts[home]} is no named volume"


# --- Dockerfile --------------------------------------------------------------
def test_dockerfile_entrypoint_is_the_console_script() -> None:
    pyproject = tomllib.loads(PYPROJECT.read_text())
    scripts = pyproject["project"]["scripts"]
    entrypoints = [args for keyword, args in _dockerfile_instructions() if keyword == "ENTRYPOINT"]
    assert entrypoints, "Dockerfile has no ENTRYPOINT"
    entrypoint = json.loads(entrypoints[-1])  # exec form: signals reach quoteflow itself
    assert entrypoint == ["quoteflow"], f"ENTRYPOINT {entrypoint} is not the quoteflow script"
    assert "quoteflow" in scripts, "pyproject.toml declares no `quoteflow` console script"
    module, _, attr = scripts["quoteflow"].partition(":")
    assert callable(getattr(importlib.import_module(module), attr))


def test_dockerfile_base_user_and_install() -> None:
    instructions = _dockerfile_instructions()
    bases = [args.split()[0] for keyword, args in instructions if keyword == "FROM"]
    assert bases and re.fullmatch(r"python:\d+\.\d+-slim(-\w+)?", bases[-1]), bases
    pyproject = tomllib.loads(PYPROJECT.read_text())
    minimum = re.search(r">=\s*(\d+)\.(\d+)", pyproject["project"]["requires-python"])
    assert minimum, "requires-python has no lower bound"
    base_version = tuple(int(x) for x in bases[-1].split(":")[1].split("-")[0].split("."))
    assert base_version >= (int(minimum[1]), int(minimum[2])), f"{bases[-1]} vs requires-python"
    users = [args for keyword, args in instructions if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}, "the image runs as root"
    installs = [args for kw, args in instructions if kw == "RUN" and "pip install" in args]
    assert installs, "the Dockerfile does not pip install the project"
    assert not any("[dev" in args or "-e " in args for args in installs), (
        "the image installs dev extras or an editable copy"
    )


def test_dockerignore_keeps_what_pip_install_needs() -> None:
    pyproject = tomllib.loads(PYPROJECT.read_text())
    needed = ["pyproject.toml", pyproject["project"].get("readme", "README.md")]
    packages = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    needed += [pattern.rstrip("*") for pattern in packages]
    patterns = [
        line.strip()
        for line in (DOCKERIGNORE.read_text().splitlines() if DOCKERIGNORE.is_file() else [])
        if line.strip() and not line.startswith("#")
    ]
    for path in needed:
        hits = [p for p in patterns if not p.startswith("!") and fnmatch(path, p.lstrip("/"))]
        assert not hits, f".dockerignore drops {path}, which `pip install .` needs ({hits})"


# --- the running pipeline ----------------------------------------------------
#: Long-running pipeline services, each a `quoteflow` command the end-to-end test runs
#: natively (tests/test_integration/test_pipeline.py reads these very commands).
COMPONENTS = ("cdc", "process", "sink")
SANDBOX_SERVICE = "esp-sandbox"
#: The provider the compose sink delivers to the sandbox as.
SANDBOX_PROVIDER = "customerio"


def _depends_on(service: Mapping[str, Any]) -> dict[str, str]:
    raw = service.get("depends_on") or {}
    if isinstance(raw, list):
        return {name: "service_started" for name in raw}
    return {name: spec.get("condition", "service_started") for name, spec in raw.items()}


@pytest.mark.parametrize("name", COMPONENTS)
def test_components_restart_and_report_their_liveness(compose: dict[str, Any], name: str) -> None:
    service = _service(compose, name)
    assert name in _pipeline_services(compose), f"{name} is not built from the Dockerfile"
    assert service.get("restart") in ("unless-stopped", "always", "on-failure")
    assert _healthcheck_test(service) == "CMD quoteflow health", (
        f"{name}'s health check is not `quoteflow health`"
    )
    assert _environment(service).get("QUOTEFLOW_HEALTH__FILE"), (
        f"{name} writes no heartbeat (QUOTEFLOW_HEALTH__FILE) for `quoteflow health`"
    )
    ready = _depends_on(service)
    for one_shot in ("topics", "schemas"):
        assert ready.get(one_shot) == "service_completed_successfully", (
            f"{name} may start before `{one_shot}` has finished"
        )
    assert "profiles" not in service, f"{name} must start with a plain `docker compose up`"


def test_process_scales_with_state_of_its_own(compose: dict[str, Any],
                                              defaults: Settings) -> None:  # fmt: skip
    """`--scale process=3`: no fixed name or host port, and each replica its own RocksDB
    directory (two workers opening one would fail on its lock)."""
    service = _service(compose, "process")
    assert "container_name" not in service and not service.get("ports")
    home = PIPELINE_ENV["QUOTEFLOW_STACK__HOME"]
    default_home = defaults.stack.home
    assert defaults.streams.data_dir is not None
    data_dir = f"{home}/{defaults.streams.data_dir.relative_to(default_home)}"
    mounts = {target: source for source, target, _ in _mounts(service)}
    assert data_dir in mounts, f"process has no volume of its own at {data_dir}"
    assert mounts[data_dir] == "", (
        f"process mounts {mounts[data_dir]!r} at {data_dir}: replicas would share it"
    )


def test_sink_delivers_to_the_sandbox_on_its_loopback(compose: dict[str, Any]) -> None:
    from devstack.esp_sandbox import Sandbox, SandboxConfig

    sandbox_service = _service(compose, SANDBOX_SERVICE)
    args = _command(sandbox_service)
    assert args[0] == "esp-sandbox"
    port = int(args[args.index("--port") + 1])
    assert _host_port_to(sandbox_service, SANDBOX_SERVICE, port) == port
    assert all(ip == "127.0.0.1" for ip, _, _ in _published(sandbox_service)), (
        "the sandbox accepts a well-known key: publish it on the host's loopback only"
    )
    sink = _service(compose, "sink")
    # The sink sends plain http:// to loopback only: it shares the sandbox's network.
    assert sink.get("network_mode") == f"service:{SANDBOX_SERVICE}"
    assert _depends_on(sink).get(SANDBOX_SERVICE) == "service_healthy"
    expected = Sandbox(SandboxConfig(port=port)).sink_overrides(SANDBOX_PROVIDER)
    env = _environment(sink)
    assert env["QUOTEFLOW_SINK__PROVIDER"] == expected["provider"]
    assert env["QUOTEFLOW_SINK__BASE_URL"] == expected["base_url"]
    assert env["QUOTEFLOW_SINK__SECRET"] == expected["secret"]
    assert env["QUOTEFLOW_SINK__CUSTOMERIO__SITE_ID"] == expected["customerio"]["site_id"]


# --- the demo profile --------------------------------------------------------
DEMO_SERVICE = "demo"
RULES_ENV = "QUOTEFLOW_STREAMS__RULES_FILE"
#: Each component's topic prefix variable: the demo must read the topics they write.
TOPIC_PREFIX_ENV = dict.fromkeys(
    ("cdc", "process", "sink", DEMO_SERVICE), "QUOTEFLOW_TOPICS__PREFIX"
)


def test_demo_profile_attaches_to_the_compose_pipeline(compose: dict[str, Any]) -> None:
    """`docker compose --profile demo run --rm demo`: `quoteflow demo --attach` against
    compose's own sandbox, once cdc, process and sink are healthy, never with a plain up."""
    from quoteflow.cli import cli

    assert DEMO_SERVICE in _pipeline_services(compose), "demo is not built from the Dockerfile"
    demo = _service(compose, DEMO_SERVICE)
    assert demo.get("profiles") == ["demo"], "the demo must be opt-in (profile demo)"
    assert "restart" not in demo, "the demo is a one-shot: a restart would run it again"
    args = _command(demo)
    assert _resolve_cli(args) is cli.commands["demo"], f"demo runs `quoteflow {args}`"
    params = cli.commands["demo"].make_context("demo", args[1:]).params
    assert params["attach"], "the demo must attach to compose's pipeline, not start its own"
    assert not params["keep"] and params["resume"] is None
    sandbox_args = _command(_service(compose, SANDBOX_SERVICE))
    url = urlsplit(params["sandbox_url"])
    assert (url.scheme, url.hostname, url.port) == (
        "http", SANDBOX_SERVICE, int(sandbox_args[sandbox_args.index("--port") + 1])
    ), f"--sandbox {params['sandbox_url']} is not the esp-sandbox service the sink delivers to"
    ready = _depends_on(demo)
    for name in (*COMPONENTS, SANDBOX_SERVICE):
        assert ready.get(name) == "service_healthy", f"demo may start before {name} is healthy"
    prefixes = {name: _environment(_service(compose, name)).get(var, "")
                for name, var in TOPIC_PREFIX_ENV.items()}  # fmt: skip
    assert params["topic_prefix"] in (None, prefixes[DEMO_SERVICE])
    assert len(set(prefixes.values())) == 1, f"topic prefixes differ: {prefixes}"


def test_process_and_demo_read_one_rules_file_the_demos(compose: dict[str, Any]) -> None:
    """The demo plans with streams.rules_file: the processor must decide with the same file,
    and compose gives both the demo's rules (1-minute delay) through one config."""
    from devstack.demo.run import DEMO_RULES

    paths = {name: _environment(_service(compose, name)).get(RULES_ENV)
             for name in ("process", DEMO_SERVICE)}  # fmt: skip
    assert paths["process"] and paths["process"] == paths[DEMO_SERVICE], (
        f"{RULES_ENV} differs between process and demo: {paths}")  # fmt: skip
    for name in ("process", DEMO_SERVICE):
        sources = [c["source"] for c in _service(compose, name).get("configs") or []
                   if isinstance(c, dict) and c.get("target") == paths[name]]  # fmt: skip
        assert len(sources) == 1, f"{name}: no config is mounted at {paths[name]}"
        config = (compose.get("configs") or {}).get(sources[0]) or {}
        assert "file" in config, f"config {sources[0]!r} has no file"
        assert (COMPOSE_FILE.parent / config["file"]).resolve() == DEMO_RULES, (
            f"{name} reads {config['file']}, not the demo's rules {DEMO_RULES}")  # fmt: skip


def _compose_loader() -> Path:
    """compose-go's loader (the library `docker compose` loads files with), built once
    per version into a cache outside the tree (tests/compose_loader)."""
    import hashlib
    import os
    import subprocess

    source = ROOT / "tests" / "compose_loader"
    digest = hashlib.sha256(b"".join((source / f).read_bytes()
                                     for f in ("go.mod", "go.sum", "main.go"))).hexdigest()
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "quoteflow"
    binary = cache / f"compose-loader-{digest[:16]}"
    if not binary.exists():
        import shutil

        go = shutil.which("go") or next((p for p in ("/usr/local/go/bin/go",)
                                         if Path(p).is_file()), None)  # fmt: skip
        assert go, "no Go toolchain (>= 1.24) on PATH: it builds compose's loader for this test"
        cache.mkdir(parents=True, exist_ok=True)
        built = subprocess.run([go, "build", "-o", str(binary), "."], cwd=source,
                               capture_output=True, text=True, timeout=900)  # fmt: skip
        assert built.returncode == 0, f"building compose-go's loader failed:\n{built.stderr}"
    return binary


@pytest.mark.integration
def test_compose_itself_loads_the_file() -> None:
    """What `docker compose config` would say: schema, anchors and merge keys, profiles,
    depends_on and network_mode targets — checked by compose's own loader."""
    import subprocess

    loaded = subprocess.run([str(_compose_loader()), str(COMPOSE_FILE)], capture_output=True,
                            text=True, timeout=120)  # fmt: skip
    assert loaded.returncode == 0, f"compose refuses docker-compose.yml: {loaded.stderr}"
    project = json.loads(loaded.stdout)
    services = project["services"]
    assert {*COMPONENTS, SANDBOX_SERVICE, DEMO_SERVICE} <= set(services)
    assert services[DEMO_SERVICE]["profiles"] == ["demo"]
    from devstack.demo.run import DEMO_RULES

    assert Path(project["configs"]["rules"]["file"]) == DEMO_RULES
    for name in ("process", DEMO_SERVICE):
        (config,) = services[name]["configs"]
        assert config["source"] == "rules"
        assert config["target"] == services[name]["environment"][RULES_ENV]
    for name in COMPONENTS:  # the merged YAML anchors, as compose resolves them
        assert services[name]["healthcheck"]["test"] == ["CMD", "quoteflow", "health"]
        assert services[name]["environment"]["QUOTEFLOW_KAFKA__BOOTSTRAP_SERVERS"] == "kafka:9092"
