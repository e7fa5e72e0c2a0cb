"""The local stack's PostgreSQL: pure parts (unit) and a real private cluster (integration).

One cluster per module (initdb and start take about a second), in a fresh
directory under /var/tmp: pytest's tmp_path lives under a 0700 directory that
the ``postgres`` OS user (the server's user when tests run as root) cannot enter.
It listens on a free port, so it never meets the default stack or another run.
Tests run in file order and share that cluster; each leaves it running and
healthy for the next.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import stat
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from connectors.cdc.sources import CDC_SOURCES, CdcSource, source_problems
from devstack import smoke
from devstack.stack.postgres import (
    PgBinaries,
    PostgresComponent,
    config,
    ddl,
    find_binaries,
    first_blocked_dir,
    local_conninfo,
)
from devstack.stack.postgres import binaries as binmod
from quoteflow.errors import StackError
from quoteflow.pgerrors import error_gist
from quoteflow.reporting import silent
from quoteflow.settings import Settings, load_settings

integration = pytest.mark.integration
unit = pytest.mark.unit

QUOTES_COLUMNS = [
    ("quote_id", "bigint", "NO"),
    ("quote_ref", "text", "NO"),
    ("customer_id", "bigint", "NO"),
    ("product_code", "text", "NO"),
    ("channel", "text", "NO"),
    ("premium", "numeric", "NO"),
    ("currency", "character", "NO"),
    ("status", "text", "NO"),
    ("valid_until", "date", "NO"),
    ("created_at", "timestamp with time zone", "NO"),
    ("updated_at", "timestamp with time zone", "NO"),
]
CUSTOMERS_COLUMNS = [
    ("customer_id", "bigint", "NO"),
    ("first_name", "text", "NO"),
    ("last_name", "text", "NO"),
    ("email", "text", "YES"),
    ("phone", "text", "YES"),
    ("marketing_consent", "boolean", "NO"),
    ("consent_updated_at", "timestamp with time zone", "YES"),
    ("timezone", "text", "NO"),
    ("segment", "text", "YES"),
    ("created_at", "timestamp with time zone", "NO"),
    ("updated_at", "timestamp with time zone", "NO"),
]
INSERT_QUOTE = (
    "INSERT INTO public.quotes (quote_ref, customer_id, product_code, channel, premium,"
    " currency, valid_until) VALUES (%s, 42, 'MOTOR', 'WEB', 312.50, 'GBP', '2026-12-31')"
    " RETURNING quote_id"
)


def free_port() -> int:
    """A port nothing listens on now (and not one of the stack's Kafka defaults)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port >= 1024 and port not in (19092, 19093):
            return port


def make_base() -> Path:
    base = Path(tempfile.mkdtemp(prefix="qf-pg-", dir="/var/tmp"))
    base.chmod(0o755)
    return base


def stack_settings(home: Path, port: int, **postgres: object) -> Settings:
    return load_settings(stack={"home": home, "postgres_port": port}, postgres=postgres)


@pytest.fixture(scope="module")
def base() -> Iterator[Path]:
    path = make_base()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def settings(base: Path) -> Settings:
    # A password that appears nowhere else, so the test can look for leaks.
    return stack_settings(base / "home", free_port(), password=f"pw-{uuid.uuid4().hex}")


@pytest.fixture(scope="module")
def component(settings: Settings) -> Iterator[PostgresComponent]:
    comp = PostgresComponent(settings)
    yield comp
    comp.down(silent)


def connect(settings: Settings, database: str) -> psycopg.Connection[Any]:
    """As the pipeline role over TCP, the way the CDC connector connects."""
    return psycopg.connect(local_conninfo(settings, database), autocommit=True)


# -- the shared cluster, in order ----------------------------------------------


@integration
def test_up_from_nothing_is_healthy_with_logical_wal(
    component: PostgresComponent, settings: Settings
) -> None:
    lines: list[str] = []
    assert component.up(lines.append) is True
    status = component.status()
    assert status.running
    assert status.healthy, status.detail
    assert status.address == f"127.0.0.1:{settings.stack.postgres_port}"
    assert "wal_level=logical" in status.detail
    assert "dbs qms,crm" in status.detail
    assert status.pid is not None
    assert any("creating a cluster" in line for line in lines)
    assert component.log_file().is_file()
    socket_dir = settings.stack.home / "postgres" / "run"
    assert stat.S_IMODE(socket_dir.stat().st_mode) == 0o700
    password = settings.postgres.password.get_secret_value()
    assert password not in component.log_file().read_text()
    assert not any(password in line for line in lines)


@integration
def test_up_again_returns_false(component: PostgresComponent) -> None:
    pid = component.status().pid
    lines: list[str] = []
    assert component.up(lines.append) is False
    assert lines == []  # nothing to repair, nothing done
    assert component.status().pid == pid


@integration
def test_server_settings_for_cdc(settings: Settings) -> None:
    with connect(settings, settings.postgres.qms_database) as conn:
        got = dict(
            conn.execute(
                "SELECT name, current_setting(name) FROM unnest(%s::text[]) AS name",
                (
                    [
                        "wal_level",
                        "max_replication_slots",
                        "max_wal_senders",
                        "max_slot_wal_keep_size",
                    ],
                ),
            ).fetchall()
        )
        role = conn.execute(
            "SELECT rolreplication, rolsuper FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
    assert got == {
        "wal_level": "logical",
        "max_replication_slots": "20",
        "max_wal_senders": "20",
        "max_slot_wal_keep_size": "2GB",
    }
    assert role == (True, False)


@integration
@pytest.mark.parametrize(
    ("db_setting", "table", "publication", "expected"),
    [
        ("qms_database", "quotes", "quoteflow_qms", QUOTES_COLUMNS),
        ("crm_database", "customers", "quoteflow_crm", CUSTOMERS_COLUMNS),
    ],
)
def test_tables_match_the_contract(
    settings: Settings,
    db_setting: str,
    table: str,
    publication: str,
    expected: list[tuple[str, str, str]],
) -> None:
    with connect(settings, getattr(settings.postgres, db_setting)) as conn:
        columns = conn.execute(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns"
            " WHERE table_schema = 'public' AND table_name = %s ORDER BY ordinal_position",
            (table,),
        ).fetchall()
        identity, owner = conn.execute(
            "SELECT relreplident, pg_get_userbyid(relowner) FROM pg_class WHERE oid = %s::regclass",
            (f"public.{table}",),
        ).fetchone() or (None, None)
        published = conn.execute(
            "SELECT tablename FROM pg_publication_tables WHERE pubname = %s", (publication,)
        ).fetchall()
    assert columns == expected
    assert identity == "f"  # REPLICA IDENTITY FULL: updates carry the whole `before`
    assert owner == settings.postgres.user
    assert published == [(table,)]


#: What format_type() says for the DDL's short spellings of a type.
_PG_TYPE_SPELLING = {"timestamptz": "timestamp with time zone", "char(3)": "character(3)"}


@integration
@pytest.mark.parametrize("source", CDC_SOURCES, ids=lambda source: source.server_name)
def test_created_tables_have_the_sources_columns_and_key(
    settings: Settings, source: CdcSource
) -> None:
    """What the server made of the DDL is what connectors.cdc.sources declares."""
    with connect(settings, source.database(settings.postgres)) as conn:
        columns = conn.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull"
            " FROM pg_attribute a WHERE a.attrelid = %s::regclass AND a.attnum > 0"
            " AND NOT a.attisdropped ORDER BY a.attnum",
            (source.qualified_table,),
        ).fetchall()
        key = conn.execute(
            "SELECT a.attname FROM pg_index i"
            " CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)"
            " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
            " WHERE i.indrelid = %s::regclass AND i.indisprimary ORDER BY k.n",
            (source.qualified_table,),
        ).fetchall()
    expected = [(c.name, _PG_TYPE_SPELLING.get(c.type, c.type), c.nullable) for c in source.columns]
    assert columns == expected
    assert tuple(name for (name,) in key) == source.key


@integration
def test_quote_constraints_and_updated_at_trigger(settings: Settings) -> None:
    with connect(settings, settings.postgres.qms_database) as conn:
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(INSERT_QUOTE.replace("'WEB'", "'FAX'"), ("Q-CHECK-1",))
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(INSERT_QUOTE.replace("'GBP'", "'gbp'"), ("Q-CHECK-2",))
        row = conn.execute(INSERT_QUOTE, ("Q-TRIGGER-1",)).fetchone()
        assert row is not None
        quote_id = row[0]
        status, created, updated = conn.execute(
            "SELECT status, created_at, updated_at FROM quotes WHERE quote_id = %s", (quote_id,)
        ).fetchone() or (None, None, None)
        assert status == "DRAFT"
        conn.execute("UPDATE quotes SET status = 'QUOTED' WHERE quote_id = %s", (quote_id,))
        bumped = conn.execute(
            "SELECT updated_at FROM quotes WHERE quote_id = %s", (quote_id,)
        ).fetchone()
        assert bumped is not None
        assert bumped[0] > updated
        # An explicit updated_at (backfills, generated history) is kept.
        conn.execute("UPDATE quotes SET updated_at = %s WHERE quote_id = %s", (created, quote_id))
        kept = conn.execute(
            "SELECT updated_at FROM quotes WHERE quote_id = %s", (quote_id,)
        ).fetchone()
        assert kept == (created,)


@integration
def test_logical_slot_sees_an_insert_into_quotes(settings: Settings) -> None:
    slot = f"qf_test_{uuid.uuid4().hex[:12]}"
    with connect(settings, settings.postgres.qms_database) as conn:
        conn.execute("SET statement_timeout = '20s'")
        conn.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (slot,))
        try:
            conn.execute(INSERT_QUOTE, (f"Q-SLOT-{slot}",))
            rows = conn.execute(
                "SELECT data FROM pg_logical_slot_peek_binary_changes(%s, NULL, NULL,"
                " 'proto_version', '1', 'publication_names', 'quoteflow_qms')",
                (slot,),
            ).fetchall()
        finally:
            conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
    kinds = [bytes(row[0])[:1] for row in rows]
    assert kinds[0] == b"B"  # begin
    assert kinds[-1] == b"C"  # commit
    assert b"I" in kinds  # 0x49: the insert itself
    inserts = [bytes(row[0]) for row in rows if bytes(row[0])[:1] == b"I"]
    assert any(f"Q-SLOT-{slot}".encode() in message for message in inserts)


@integration
def test_a_changed_password_is_applied_by_up(
    component: PostgresComponent, settings: Settings
) -> None:
    changed = stack_settings(
        settings.stack.home, settings.stack.postgres_port, password="a-new-Pass'word"
    )
    repaired = PostgresComponent(changed)
    assert not repaired.status().healthy  # old password still set
    try:
        assert repaired.up(silent) is False  # running already: repaired, not started
        assert repaired.status().healthy
        assert not component.status().healthy
    finally:
        assert component.up(silent) is False
    assert component.status().healthy


@integration
@pytest.mark.parametrize("source", CDC_SOURCES, ids=lambda source: source.table)
def test_source_problems_are_reported_and_repaired_by_up(
    component: PostgresComponent, settings: Settings, source: CdcSource
) -> None:
    database = source.database(settings.postgres)
    table = source.qualified_table
    with connect(settings, database) as conn:
        assert source_problems(conn, source) == []
        conn.execute(f"ALTER PUBLICATION {source.publication} DROP TABLE {table}")
        conn.execute(f"ALTER TABLE {table} REPLICA IDENTITY DEFAULT")
        problems = source_problems(conn, source)
    assert problems == [
        f"table {table} has REPLICA IDENTITY DEFAULT, not FULL"
        " (updates and deletes would lack the old row)",
        f"table {table} is not in publication {source.publication}",
    ]
    # smoke reads the configured server (here the same one) and says the same.
    ok, detail = smoke._check_postgres(settings, silent)
    assert not ok
    assert f"{database}: table {table} is not in publication {source.publication}" in detail
    status = component.status()
    assert status.healthy  # it answers; the detail says what is wrong
    assert f"CDC: {database}: table {table} has REPLICA IDENTITY DEFAULT" in status.detail
    lines: list[str] = []
    assert component.up(lines.append) is False
    assert "PostgreSQL: running but not fully set up; repairing" in lines
    with connect(settings, database) as conn:
        assert source_problems(conn, source) == []
    assert "CDC" not in component.status().detail
    assert smoke._check_postgres(settings, silent)[0]


@integration
def test_source_problems_for_a_missing_table_and_publication(settings: Settings) -> None:
    source = dataclasses.replace(CDC_SOURCES[0], table="no_such_table", publication="no_such_pub")
    with connect(settings, source.database(settings.postgres)) as conn:
        assert source_problems(conn, source) == [
            "table public.no_such_table does not exist",
            "publication no_such_pub does not exist",
        ]


@integration
def test_port_taken_by_another_program_is_refused(base: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        comp = PostgresComponent(stack_settings(base / "squatted", port))
        with pytest.raises(StackError, match=f"port {port} is already in use"):
            comp.up(silent)
        assert not (base / "squatted" / "postgres" / "data" / "PG_VERSION").exists()
        status = comp.status()
        assert not status.running
        assert "in use by another program" in status.detail


@integration
def test_down_then_up_keeps_data(component: PostgresComponent, settings: Settings) -> None:
    ref = f"Q-SURVIVOR-{uuid.uuid4().hex[:8]}"
    with connect(settings, settings.postgres.qms_database) as conn:
        conn.execute(INSERT_QUOTE, (ref,))
    assert component.down(silent) is True
    status = component.status()
    assert not status.running
    assert not status.healthy
    assert status.pid is None
    assert component.down(silent) is False
    assert component.up(silent) is True
    with connect(settings, settings.postgres.qms_database) as conn:
        row = conn.execute("SELECT count(*) FROM quotes WHERE quote_ref = %s", (ref,)).fetchone()
    assert row == (1,)
    assert component.status().healthy


# -- no server needed ----------------------------------------------


@unit
def test_down_and_status_on_a_never_started_home(base: Path) -> None:
    home = base / "never"
    comp = PostgresComponent(stack_settings(home, free_port()))
    assert comp.down(silent) is False
    assert comp.status().running is False
    assert not home.exists()  # probing creates nothing


@integration  # up() looks for (and as root would install) the real server binaries
@pytest.mark.skipif(os.geteuid() != 0, reason="the server's OS user differs only under root")
def test_home_the_server_user_cannot_enter_is_refused() -> None:
    private = Path(tempfile.mkdtemp(prefix="qf-pg-private-", dir="/var/tmp"))  # mode 0700
    try:
        comp = PostgresComponent(stack_settings(private / "home", free_port()))
        with pytest.raises(StackError, match=f"cannot enter {private}"):
            comp.up(silent)
    finally:
        shutil.rmtree(private)


@unit
@pytest.mark.parametrize("source", CDC_SOURCES, ids=lambda source: source.table)
def test_ddl_files_create_what_the_cdc_contract_names(source: CdcSource) -> None:
    text = ddl(source.ddl_file)
    table = source.qualified_table
    assert f"CREATE TABLE IF NOT EXISTS {table} (" in text
    assert f"ALTER TABLE {table} REPLICA IDENTITY FULL;" in text
    assert f"CREATE PUBLICATION {source.publication} FOR TABLE {table};" in text
    assert f"ALTER PUBLICATION {source.publication} ADD TABLE {table};" in text


@unit
def test_cdc_sources_read_their_database_from_the_settings() -> None:
    pg = load_settings(postgres={"qms_database": "legacy_qms", "crm_database": "legacy_crm"})
    assert [s.database(pg.postgres) for s in CDC_SOURCES] == ["legacy_qms", "legacy_crm"]


@unit
def test_error_gist_is_the_last_line_or_the_type() -> None:
    multi = psycopg.OperationalError('connection failed\n  FATAL:  role "x" does not exist\n')
    assert error_gist(multi) == 'FATAL:  role "x" does not exist'
    assert error_gist(psycopg.OperationalError("")) == "OperationalError"


@unit
def test_server_conf_and_include_line(tmp_path: Path) -> None:
    text = config.render_server_conf(5555, tmp_path / "it's")
    assert "wal_level = logical\n" in text
    assert "port = 5555\n" in text
    assert f"unix_socket_directories = '{tmp_path}/it''s'\n" in text
    addition = config.include_addition("shared_buffers = 1MB")
    assert addition.startswith("\n# Added by quoteflow")
    assert config.include_addition("shared_buffers = 1MB" + addition) == ""


@unit
def test_first_blocked_dir() -> None:
    base = make_base()
    try:
        inner = base / "a" / "b"
        inner.mkdir(parents=True)
        (base / "a").chmod(0o710)
        owner, group = base.stat().st_uid, (base / "a").stat().st_gid
        stranger = 65534 if owner != 65534 else 65533
        assert first_blocked_dir(inner, owner, [group]) is None
        assert first_blocked_dir(inner, stranger, []) == base / "a"
        assert first_blocked_dir(inner, stranger, [group]) is None  # via the group bit
        assert first_blocked_dir(base / "missing", owner, [group]) == base / "missing"
    finally:
        shutil.rmtree(base)


def _fake_tools(bindir: Path) -> None:
    bindir.mkdir(parents=True)
    for tool in ("postgres", "initdb", "pg_ctl"):
        (bindir / tool).write_text("#!/bin/sh\necho 'postgres (PostgreSQL) 99.1'\n")
        (bindir / tool).chmod(0o755)


@unit
def test_find_binaries_prefers_the_newest_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    for version in ("9.6", "13", "16"):
        _fake_tools(tmp_path / version / "bin")
    (tmp_path / "17" / "bin").mkdir(parents=True)  # incomplete: ignored
    (tmp_path / "README").write_text("not a version")
    found = find_binaries(tmp_path)
    assert found == PgBinaries(tmp_path / "16" / "bin", 16)
    assert find_binaries(tmp_path, major=13) == PgBinaries(tmp_path / "13" / "bin", 13)
    assert find_binaries(tmp_path, major=15) is None


@unit
def test_find_binaries_falls_back_to_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_tools(tmp_path / "custom" / "bin")
    monkeypatch.setenv("PATH", str(tmp_path / "custom" / "bin"))
    found = find_binaries(tmp_path / "no-debian-dirs")
    assert found == PgBinaries(tmp_path / "custom" / "bin", 99)


@pytest.fixture
def no_postgres(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A machine without PostgreSQL: empty lib root, PATH with only our fakes."""
    fakebin = tmp_path / "fakebin"
    fakebin.mkdir()
    monkeypatch.setattr(binmod, "LIB_ROOT", tmp_path / "lib" / "postgresql")
    monkeypatch.setattr(binmod, "CREATECLUSTER_CONF", tmp_path / "etc" / "createcluster.conf")
    monkeypatch.setenv("PATH", str(fakebin))
    return fakebin


@unit
def test_install_as_non_root_says_what_to_run(
    no_postgres: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    comp = PostgresComponent(stack_settings(tmp_path / "home", free_port()))
    with pytest.raises(StackError, match="sudo apt-get install postgresql"):
        comp.install(silent)


def _fake_apt_get(fakebin: Path, lib_root: Path, *, fail: bool = False) -> Path:
    calls = fakebin.parent / "apt-calls"
    failing = 'echo "E: Unable to locate package postgresql"; exit 100' if fail else ""
    script = f"""#!/bin/sh
echo "$* DEBIAN_FRONTEND=$DEBIAN_FRONTEND" >> {calls}
if [ "$1" = install ]; then
  {failing}
  /bin/mkdir -p {lib_root}/16/bin
  for t in postgres initdb pg_ctl; do
    printf '#!/bin/sh\\n' > {lib_root}/16/bin/$t; /bin/chmod 755 {lib_root}/16/bin/$t
  done
  echo "Setting up postgresql-16 (16.9-1) ..."
fi
echo "Reading package lists..."
"""
    (fakebin / "apt-get").write_text(script)
    (fakebin / "apt-get").chmod(0o755)
    return calls


@unit
def test_install_as_root_runs_apt_get_without_a_default_cluster(
    no_postgres: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    calls = _fake_apt_get(no_postgres, binmod.LIB_ROOT)
    comp = PostgresComponent(stack_settings(tmp_path / "home", free_port()))
    lines: list[str] = []
    comp.install(lines.append)
    assert calls.read_text().splitlines() == [
        "update DEBIAN_FRONTEND=noninteractive",
        "install -y --no-install-recommends -o Dpkg::Options::=--force-confdef"
        " -o Dpkg::Options::=--force-confold postgresql DEBIAN_FRONTEND=noninteractive",
    ]
    assert "create_main_cluster = false" in binmod.CREATECLUSTER_CONF.read_text()
    # A host-wide side effect: said, with the file and the reason.
    wrote = [line for line in lines if f"wrote {binmod.CREATECLUSTER_CONF}" in line]
    assert len(wrote) == 1
    assert "host-wide" in wrote[0] and "default cluster on port 5432" in wrote[0]
    assert any("Setting up postgresql-16" in line for line in lines)
    assert lines[-1] == "PostgreSQL: installed version 16"
    comp.install(lines.append)  # now a no-op
    assert len(calls.read_text().splitlines()) == 2


@unit
def test_install_keeps_an_existing_createcluster_conf_and_reports_apt_failure(
    no_postgres: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    binmod.CREATECLUSTER_CONF.parent.mkdir(parents=True)
    binmod.CREATECLUSTER_CONF.write_text("# the admin's own\n")
    _fake_apt_get(no_postgres, binmod.LIB_ROOT, fail=True)
    comp = PostgresComponent(stack_settings(tmp_path / "home", free_port()))
    lines: list[str] = []
    with pytest.raises(
        StackError, match=r"(?s)apt-get install postgresql failed.*Unable to locate"
    ):
        comp.install(lines.append)
    assert not any("createcluster.conf" in line for line in lines)  # not written: not said
    assert binmod.CREATECLUSTER_CONF.read_text() == "# the admin's own\n"
