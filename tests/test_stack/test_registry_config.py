"""The registry's pieces that need no server: its properties, its archive, its cache.

- ``registry.config``: what the local Apicurio Registry listens on and where it
  stores schemas. Both listeners stay on loopback, storage is always the
  stack's own PostgreSQL (never a remote ``postgres.host``), and the password
  never reaches a file, because the properties file is readable on disk.
- ``registry.dist``: unpacking the downloaded archive must not write outside
  the cache folder, whatever the archive's member names say.
- ``maven.cached``: a half-filled folder must never count as complete, so an
  interrupted download is retried instead of started as a broken server.
"""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from devstack.stack.maven import MARKER, cached, is_complete
from devstack.stack.registry import config, dist
from quoteflow.errors import StackError
from quoteflow.settings import Settings, load_settings

pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("clean_env")]

PASSWORD = "Pg-pw-9f3b1c-do-not-leak"


@pytest.fixture
def registry_settings(tmp_path: Path) -> Settings:
    """Non-default ports and database, a distinctive password."""
    return load_settings(
        stack={
            "home": tmp_path / "home",
            "postgres_port": 25432,
            "registry_port": 28081,
            "registry_management_port": 28082,
            "registry_database": "schemas_db",
        },
        postgres={"password": PASSWORD, "user": "qf_user"},
    )


# -- config -----------------------------------------------------------------------


def test_both_listeners_are_on_loopback_with_the_configured_ports(
    registry_settings: Settings,
) -> None:
    props = config.registry_properties(registry_settings)
    assert props["quarkus.http.host"] == "127.0.0.1"
    assert props["quarkus.http.port"] == "28081"
    assert props["quarkus.management.host"] == "127.0.0.1"
    assert props["quarkus.management.port"] == "28082"
    rendered = config.render(props)
    assert "0.0.0.0" not in rendered
    assert "18081" not in rendered and "18082" not in rendered  # no default port left behind


def test_storage_is_the_stacks_postgres_database(registry_settings: Settings) -> None:
    props = config.registry_properties(registry_settings)
    assert props["apicurio.storage.kind"] == "sql"
    assert props["apicurio.storage.sql.kind"] == "postgresql"
    assert props["apicurio.datasource.url"] == config.jdbc_url(registry_settings)
    assert config.jdbc_url(registry_settings).startswith(
        "jdbc:postgresql://127.0.0.1:25432/schemas_db?"
    )
    assert props["apicurio.datasource.username"] == "qf_user"


def test_jdbc_url_ignores_a_remote_postgres_host(tmp_path: Path) -> None:
    """postgres.host may name a legacy QMS server; the registry's schemas stay in the stack."""
    settings = load_settings(
        stack={"home": tmp_path / "home"},
        postgres={"host": "legacy-qms.example.com", "port": 5432},
    )
    url = config.jdbc_url(settings)
    assert url.startswith(
        f"jdbc:postgresql://127.0.0.1:{settings.stack.postgres_port}/"
        f"{settings.stack.registry_database}?"
    )
    assert "legacy-qms" not in url and ":5432/" not in url


def test_no_password_is_written_to_the_properties(registry_settings: Settings) -> None:
    assert registry_settings.postgres.password.get_secret_value() == PASSWORD  # the setting took
    rendered = config.render(config.registry_properties(registry_settings))
    assert PASSWORD not in rendered
    assert not any("password" in key for key in config.registry_properties(registry_settings))


def test_the_connection_pool_is_small(registry_settings: Settings) -> None:
    props = config.registry_properties(registry_settings)
    sizes = {
        key: int(props[f"apicurio.datasource.jdbc.{key}"])
        for key in ("initial-size", "min-size", "max-size")
    }
    assert sizes["min-size"] <= sizes["initial-size"] <= sizes["max-size"] <= 10


def test_global_compatibility_is_backward(registry_settings: Settings) -> None:
    props = config.registry_properties(registry_settings)
    assert props["apicurio.rules.global.compatibility"] == "BACKWARD"


def test_storage_properties_are_a_subset_of_the_registry_properties(
    registry_settings: Settings,
) -> None:
    storage = config.storage_properties(registry_settings)
    full = config.registry_properties(registry_settings)
    assert storage and storage.items() <= full.items()


def test_the_registry_needs_java_21() -> None:
    assert config.MIN_JAVA == 21


# -- dist -------------------------------------------------------------------------


def _tar_gz(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_artifact_and_dist_dir_name_the_version(tmp_path: Path) -> None:
    assert dist.artifact("3.3.3") == "io.apicurio:apicurio-registry-app:3.3.3:tar.gz:all"
    assert dist.dist_dir(tmp_path, "3.3.3") == tmp_path / "apicurio-registry-3.3.3"


def test_unpack_extracts_a_tar_gz(tmp_path: Path) -> None:
    archive = _tar_gz(
        tmp_path / "app.tar.gz",
        {"quarkus-run.jar": b"jar", "lib/main/a.jar": b"a", "app/registry.jar": b"r"},
    )
    into = tmp_path / "into"
    into.mkdir()

    dist.unpack(archive, into)

    assert _files_under(into) == {"quarkus-run.jar", "lib/main/a.jar", "app/registry.jar"}
    assert (into / "lib" / "main" / "a.jar").read_bytes() == b"a"


@pytest.mark.parametrize("evil", ["../escaped.txt", "lib/../../escaped.txt"])
def test_unpack_refuses_a_member_climbing_out(tmp_path: Path, evil: str) -> None:
    workspace = tmp_path / "ws"
    into = workspace / "into"
    into.mkdir(parents=True)
    archive = _tar_gz(tmp_path / "evil.tar.gz", {evil: b"pwned"})

    with pytest.raises(StackError, match=r"cannot unpack .*evil\.tar\.gz"):
        dist.unpack(archive, into)
    assert _files_under(workspace) == set()  # nothing written, inside or out
    assert not (tmp_path / "escaped.txt").exists()


def test_unpack_keeps_an_absolute_member_inside_the_target(tmp_path: Path) -> None:
    """The "data" filter strips the leading slash: the file lands inside, never at that path."""
    outside = tmp_path / "outside" / "abs.txt"
    into = tmp_path / "into"
    into.mkdir()
    archive = _tar_gz(tmp_path / "abs.tar.gz", {str(outside): b"pwned"})

    dist.unpack(archive, into)

    assert not outside.exists()
    assert _files_under(into) == {str(outside).lstrip("/")}


@pytest.mark.parametrize(
    ("kind", "target"),
    [
        (tarfile.SYMTYPE, "/etc/passwd"),
        (tarfile.SYMTYPE, "../../x"),
        (tarfile.LNKTYPE, "/etc/passwd"),
    ],
)
def test_unpack_refuses_links_pointing_outside(tmp_path: Path, kind: bytes, target: str) -> None:
    into = tmp_path / "into"
    into.mkdir()
    archive = tmp_path / "link.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("lib/link")
        info.type = kind
        info.linkname = target
        tar.addfile(info)

    with pytest.raises(StackError, match="cannot unpack"):
        dist.unpack(archive, into)
    assert not os.path.lexists(into / "lib" / "link")


def test_unpack_refuses_device_files(tmp_path: Path) -> None:
    into = tmp_path / "into"
    into.mkdir()
    archive = tmp_path / "fifo.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("fifo")
        info.type = tarfile.FIFOTYPE
        tar.addfile(info)

    with pytest.raises(StackError, match="cannot unpack"):
        dist.unpack(archive, into)
    assert not (into / "fifo").exists()


def test_unpack_of_a_corrupt_archive_is_a_stack_error(tmp_path: Path) -> None:
    archive = tmp_path / "truncated.tar.gz"
    archive.write_bytes(b"\x1f\x8b\x08\x00not really gzip")
    with pytest.raises(StackError, match=r"cannot unpack .*truncated\.tar\.gz"):
        dist.unpack(archive, tmp_path)


# -- maven.cached -----------------------------------------------------------------


def test_cached_returns_at_once_when_the_marker_exists(tmp_path: Path) -> None:
    target = tmp_path / "cache" / "thing-1.0"
    target.mkdir(parents=True)
    (target / MARKER).write_text("1.0\n")

    def fill(staging: Path) -> None:
        raise AssertionError("fill must not be called for a complete folder")

    assert cached(target, fill, marker_text="1.0") == target
    assert sorted(p.name for p in target.parent.iterdir()) == ["thing-1.0"]


def test_cached_marks_the_folder_only_after_fill_succeeds(tmp_path: Path) -> None:
    target = tmp_path / "cache" / "thing-1.0"
    during: list[tuple[bool, bool, bool]] = []

    def fill(staging: Path) -> None:
        during.append((staging.parent == target.parent, target.exists(), is_complete(staging)))
        (staging / "lib").mkdir()
        (staging / "lib" / "a.jar").write_bytes(b"jar")

    assert cached(target, fill, marker_text="1.0") == target

    assert during == [(True, False, False)]  # staged beside the target, unmarked while filling
    assert (target / MARKER).read_text() == "1.0\n"
    assert (target / "lib" / "a.jar").read_bytes() == b"jar"
    assert [p.name for p in target.parent.iterdir()] == ["thing-1.0"]  # no staging left


def test_a_failing_fill_leaves_neither_target_nor_staging(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    target = cache / "thing-1.0"

    def fill(staging: Path) -> None:
        (staging / "half.jar").write_bytes(b"half")
        raise StackError("mvn failed")

    with pytest.raises(StackError, match="mvn failed"):
        cached(target, fill, marker_text="1.0")
    assert list(cache.iterdir()) == []


def test_cached_replaces_an_unmarked_leftover(tmp_path: Path) -> None:
    """A folder without the marker is an interrupted attempt: filled again, not trusted."""
    target = tmp_path / "cache" / "thing-1.0"
    target.mkdir(parents=True)
    (target / "stale.jar").write_bytes(b"stale")

    def fill(staging: Path) -> None:
        (staging / "fresh.jar").write_bytes(b"ok")

    cached(target, fill, marker_text="1.0")

    assert sorted(p.name for p in target.iterdir()) == [MARKER, "fresh.jar"]


def test_cached_keeps_a_folder_another_run_completed_meanwhile(tmp_path: Path) -> None:
    target = tmp_path / "cache" / "thing-1.0"

    def fill(staging: Path) -> None:
        (staging / "mine.jar").write_bytes(b"mine")
        target.mkdir()  # a concurrent `stack up` finishing first
        (target / "theirs.jar").write_bytes(b"theirs")
        (target / MARKER).write_text("1.0\n")

    assert cached(target, fill, marker_text="1.0") == target
    assert sorted(p.name for p in target.iterdir()) == [MARKER, "theirs.jar"]
    assert [p.name for p in target.parent.iterdir()] == ["thing-1.0"]
