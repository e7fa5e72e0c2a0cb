"""The local stack's PostgreSQL: one private cluster holding the QMS and CRM databases.

It stands in for the legacy databases quoteflow captures, so it is set up the way
a CDC source must be (``wal_level = logical``, publications, REPLICA IDENTITY
FULL) and never touches another PostgreSQL on the machine: its own data
directory under ``stack.home``, its own port, its own socket directory, and it
only ever stops the postmaster named in its own ``postmaster.pid``.

PostgreSQL refuses to run as root, so under root every server tool runs as the
``postgres`` OS user (``runuser``) and the directories it writes are chowned to
it. Passwords never appear in SQL text or logs: the role's password is sent as
a SCRAM verifier computed client-side.
"""

from __future__ import annotations

import math
import os
import pwd
import re
import shutil
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import psycopg
from psycopg import sql

from quoteflow.errors import StackError
from quoteflow.settings import Settings
from quoteflow.stack.base import ComponentStatus, Reporter, log_tail_hint, port_open, silent
from quoteflow.stack.system import (
    apt_install,
    can_apt_install,
    is_root,
    makedirs,
    pid_alive,
    run,
)

#: Where Debian's packages put each major version's server binaries.
LIB_ROOT = Path("/usr/lib/postgresql")
#: Read by Debian's postgresql packages when they are installed.
CREATECLUSTER_CONF = Path("/etc/postgresql-common/createcluster.conf")
#: OS user the server runs as when we are root (Debian's packages create it).
PG_OS_USER = "postgres"
#: The cluster's superuser, used only over the private unix socket.
SUPERUSER = "postgres"
#: ``max_slot_wal_keep_size`` needs 13; older servers would let an idle slot fill the disk.
MIN_MAJOR = 13
TOOLS = ("postgres", "initdb", "pg_ctl")

#: Kernel limit on a unix socket path (sun_path is 108 bytes with the NUL).
_SOCKET_PATH_MAX = 107
_PROBE_TIMEOUT_S = 3
_TOOL_TIMEOUT_S = 120.0
_INCLUDE_LINE = "include 'quoteflow.conf'"
#: Stripped from our tools' environment: a user's PGDATA or PGPORT must not
#: point them at another cluster.
_PG_ENV = ("PG",)

#: (database setting, DDL file, table, publication): what ``up`` creates in each database.
_SCHEMAS = (
    ("qms_database", "qms.sql", "quotes", "quoteflow_qms"),
    ("crm_database", "crm.sql", "customers", "quoteflow_crm"),
)

_PG_HBA = """\
# Written by quoteflow on every `stack up`; edits are overwritten.
# Trust only on the unix socket, whose directory only the server's OS user (and
# root) can enter; every TCP client, the pipeline included, proves a password.
# TYPE  DATABASE     USER  ADDRESS        METHOD
local   all          all                  trust
local   replication  all                  trust
host    all          all   127.0.0.1/32   scram-sha-256
host    all          all   ::1/128        scram-sha-256
host    replication  all   127.0.0.1/32   scram-sha-256
host    replication  all   ::1/128        scram-sha-256
"""


@dataclass(frozen=True)
class PgBinaries:
    """One major version's server tools, all from the same directory."""

    bindir: Path
    major: int

    def tool(self, name: str) -> str:
        return str(self.bindir / name)


def _version_key(name: str) -> tuple[int, ...] | None:
    """Sort key for Debian's version directories ("15", "9.6"); None for anything else."""
    if not re.fullmatch(r"\d+(\.\d+)?", name):
        return None
    return tuple(int(part) for part in name.split("."))


def _has_tools(bindir: Path) -> bool:
    return all(os.access(bindir / tool, os.X_OK) for tool in TOOLS)


def _major_of(postgres: Path) -> int | None:
    """Major version reported by a ``postgres`` binary (``postgres (PostgreSQL) 15.18 ...``)."""
    try:
        out = run(
            [str(postgres), "--version"],
            what=f"{postgres} --version",
            timeout_s=10,
            env_remove_prefixes=_PG_ENV,
        )
    except StackError:
        return None
    match = re.search(r"\b(\d+)(?:\.\d+)", out)
    return int(match.group(1)) if match else None


def find_binaries(lib_root: Path | None = None, major: int | None = None) -> PgBinaries | None:
    """The newest (or the given major version's) postgres, initdb and pg_ctl.

    Debian's versioned directories come first because Debian keeps the server
    tools off PATH; a directory on PATH holding all three is the fallback, so a
    PostgreSQL built or installed elsewhere works too.
    """
    lib_root = LIB_ROOT if lib_root is None else lib_root
    candidates: list[tuple[tuple[int, ...], Path]] = []
    if lib_root.is_dir():
        for child in lib_root.iterdir():
            key = _version_key(child.name)
            if key is not None and _has_tools(child / "bin"):
                candidates.append((key, child / "bin"))
    for key, bindir in sorted(candidates, reverse=True):
        if major is None or key[0] == major:
            return PgBinaries(bindir, key[0])
    on_path = shutil.which("pg_ctl")
    if on_path is not None:
        bindir = Path(on_path).resolve().parent
        if _has_tools(bindir):
            found = _major_of(bindir / "postgres")
            if found is not None and (major is None or found == major):
                return PgBinaries(bindir, found)
    return None


def first_blocked_dir(path: Path, uid: int, gids: Iterable[int]) -> Path | None:
    """The first directory on the way to ``path`` that the given user cannot enter.

    Checked up front because the server would otherwise fail with a bare
    "Permission denied" in its log, which does not say which directory to fix.
    Mode bits only (no ACLs): the common cause is a 0700 home or pytest tmp dir.
    """
    groups = set(gids)
    for directory in [*reversed(path.parents), path]:
        try:
            st = directory.stat()
        except OSError:
            return directory
        if st.st_uid == uid:
            bit = stat.S_IXUSR
        elif st.st_gid in groups:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return directory
    return None


def _no_default_cluster(report: Reporter) -> None:
    """Stop Debian's packages creating and starting a cluster on 5432, which nobody asked
    for; an admin's own createcluster.conf is kept."""
    if CREATECLUSTER_CONF.exists():
        return
    try:
        CREATECLUSTER_CONF.parent.mkdir(parents=True, exist_ok=True)
        CREATECLUSTER_CONF.write_text(
            "# Written by quoteflow: its stack runs its own cluster, so Debian's\n"
            "# packages should not create and start a default one on port 5432.\n"
            "create_main_cluster = false\n"
        )
    except OSError as exc:
        raise StackError(f"cannot write {CREATECLUSTER_CONF}: {exc}") from exc
    report(f"PostgreSQL: wrote {CREATECLUSTER_CONF} (no default Debian cluster)")


def _reason(exc: psycopg.Error) -> str:
    """A psycopg error's gist: its last line (libpq puts the server's FATAL there)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


def _quote_conf(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def ddl(name: str) -> str:
    """The text of one of the packaged DDL files (``qms.sql``, ``crm.sql``)."""
    return (files("quoteflow.stack") / "sql" / name).read_text(encoding="utf-8")


def local_conninfo(settings: Settings, database: str) -> str:
    """Conninfo for the local stack's ``database`` as the pipeline role, over TCP.

    The local stack is always 127.0.0.1:<stack.postgres_port>, even when
    ``postgres.host`` points the pipeline at a real legacy server: stack
    commands must never run DDL there.
    """
    local = settings.postgres.model_copy(
        update={"host": "127.0.0.1", "port": settings.stack.postgres_port}
    )
    return local.conninfo(database)


def apply_schema(settings: Settings, report: Reporter = silent) -> None:
    """Create (or complete) the QMS and CRM tables and publications in the local stack.

    Runs as the pipeline role so it owns the tables, which CREATE PUBLICATION
    requires. Each file runs in one transaction under an advisory lock, so two
    concurrent callers cannot trip over each other and a failure leaves nothing
    half-applied. Idempotent.
    """
    for setting, filename, table, _ in _SCHEMAS:
        database: str = getattr(settings.postgres, setting)
        report(f"PostgreSQL: applying {filename} to database {database}")
        try:
            with psycopg.connect(local_conninfo(settings, database)) as conn:
                conn.execute("SELECT pg_advisory_xact_lock(hashtext('quoteflow.stack.schema'))")
                conn.execute(ddl(filename).encode())
        except psycopg.Error as exc:
            raise StackError(
                f"could not create table {table} in database {database} as role "
                f"{settings.postgres.user}: {_reason(exc)}"
            ) from exc


@dataclass(frozen=True)
class _Postmaster:
    pid: int
    port: int | None


@dataclass(frozen=True)
class _Probe:
    healthy: bool
    ready: bool  # healthy, logical WAL and both databases present
    detail: str


class PostgresComponent:
    """The local stack's PostgreSQL cluster (see the module docstring)."""

    name = "postgres"

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._port = settings.stack.postgres_port
        self._root = settings.stack.home / "postgres"
        self._data = self._root / "data"
        self._run_dir = self._root / "run"
        self._log = settings.stack.logs_dir / "postgres.log"

    # -- Component protocol -------------------------------------------------

    def install(self, report: Reporter) -> None:
        """Install Debian's postgresql package when no server binaries are found.

        Only root can; others get the command to run. Cluster creation by the
        package is switched off first (see :func:`_no_default_cluster`).
        """
        if find_binaries() is not None:
            return
        if can_apt_install():
            _no_default_cluster(report)
        apt_install(
            ["postgresql"],
            report=lambda line: report(f"PostgreSQL: {line}"),
            why=f"PostgreSQL server binaries not found (looked in {LIB_ROOT}/<version>/bin "
            "and on PATH)",
            alternative=f"or put a directory holding {', '.join(TOOLS)} of PostgreSQL "
            f"{MIN_MAJOR} or newer on PATH",
            env_remove_prefixes=_PG_ENV,
        )
        found = find_binaries()
        if found is None:
            raise StackError(
                f"apt-get installed postgresql but no server binaries are in {LIB_ROOT}; "
                "check `dpkg -L postgresql`"
            )
        report(f"PostgreSQL: installed version {found.major}")

    def up(self, report: Reporter) -> bool:
        """Start the cluster (creating it on first use) and set up role, databases, tables.

        Returns False without doing anything when it is already running and fully
        set up. When it runs but is not (an earlier ``up`` was interrupted, or the
        password in the settings changed), it is repaired and False returned too:
        nothing was started.
        """
        self.install(report)
        running = self._postmaster()
        if running is not None:
            self._require_our_port(running)
            if self._probe().ready and self._schema_present():
                return False
            report("PostgreSQL: running but not fully set up; repairing")
            self._bootstrap(report)
            self._require_healthy()
            return False

        binaries = self._binaries()
        try:
            self._prepare_dirs()
        except OSError as exc:
            raise StackError(
                f"cannot prepare {exc.filename or self._root}: {exc.strerror}; "
                "check its owner and permissions, or set stack.home (env QUOTEFLOW_STACK__HOME)"
            ) from None
        if port_open("127.0.0.1", self._port):
            raise StackError(
                f"port {self._port} is already in use by another program (not the stack's "
                f"PostgreSQL in {self._data}): stop it, or choose another port with "
                "stack.postgres_port (env QUOTEFLOW_STACK__POSTGRES_PORT)"
            )
        if not (self._data / "PG_VERSION").is_file():
            self._initdb(binaries, report)
        try:
            self._write_config()
        except OSError as exc:
            raise StackError(f"cannot write the configuration in {self._data}: {exc}") from None
        report(f"PostgreSQL {binaries.major}: starting on 127.0.0.1:{self._port}")
        wait_s = math.ceil(self._settings.stack.start_timeout_s)
        self._run_pg(
            [binaries.tool("pg_ctl"), "start", "-D", str(self._data), "-l", str(self._log),
             "-w", "-t", str(wait_s)],
            what="pg_ctl start",
            timeout_s=wait_s + 30,
        )  # fmt: skip
        self._bootstrap(report)
        self._require_healthy()
        report(f"PostgreSQL {binaries.major}: ready on 127.0.0.1:{self._port}")
        return True

    def down(self, report: Reporter) -> bool:
        """Stop our postmaster (fast mode: sessions are ended, data is safe)."""
        running = self._postmaster()
        if running is None:
            return False
        binaries = self._binaries()
        report(f"PostgreSQL: stopping (pid {running.pid})")
        wait_s = math.ceil(self._settings.stack.start_timeout_s)
        self._run_pg(
            [binaries.tool("pg_ctl"), "stop", "-D", str(self._data), "-m", "fast",
             "-w", "-t", str(wait_s)],
            what="pg_ctl stop",
            timeout_s=wait_s + 30,
        )  # fmt: skip
        return True

    def status(self) -> ComponentStatus:
        """Our postmaster's state and a real query as the pipeline role; no side effects."""
        address = f"127.0.0.1:{self._port}"
        running = self._postmaster()
        if running is None:
            detail = "not running"
            if port_open("127.0.0.1", self._port):
                detail += f"; port {self._port} is in use by another program"
            return ComponentStatus(self.name, address, running=False, healthy=False, detail=detail)
        if running.port is not None and running.port != self._port:
            return ComponentStatus(
                self.name,
                address,
                running=True,
                healthy=False,
                detail=f"running on port {running.port}, but settings say {self._port}",
                pid=running.pid,
            )
        probe = self._probe()
        return ComponentStatus(
            self.name, address, running=True, healthy=probe.healthy, detail=probe.detail,
            pid=running.pid,
        )  # fmt: skip

    def log_file(self) -> Path:
        return self._log

    # -- helpers ------------------------------------------------------------

    def _postmaster(self) -> _Postmaster | None:
        """Our postmaster if ``postmaster.pid`` names a live one (a stale file means stopped)."""
        try:
            lines = (self._data / "postmaster.pid").read_text().splitlines()
            pid = int(lines[0])
        except (OSError, ValueError, IndexError):
            return None
        if not pid_alive(pid, comm_prefix="postgres"):
            return None
        port = int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None
        return _Postmaster(pid, port)

    def _require_our_port(self, running: _Postmaster) -> None:
        if running.port is not None and running.port != self._port:
            raise StackError(
                f"the stack's PostgreSQL is running on port {running.port}, but settings say "
                f"{self._port}: run `quoteflow stack down` with the old settings first"
            )

    def _binaries(self) -> PgBinaries:
        """Binaries for our cluster: the version that created it, else the newest."""
        version_file = self._data / "PG_VERSION"
        try:
            major = int(version_file.read_text().strip()) if version_file.is_file() else None
        except (OSError, ValueError):
            raise StackError(f"{version_file} is unreadable or damaged") from None
        found = find_binaries(major=major)
        if found is None and major is not None:
            raise StackError(
                f"the cluster in {self._data} was created by PostgreSQL {major}, whose binaries "
                f"are not installed: install postgresql-{major}, or remove {self._root} "
                "to start afresh (its data is lost)"
            )
        if found is None:
            raise StackError(
                "PostgreSQL server binaries not found: run `quoteflow stack up` as root, "
                "or `sudo apt-get install postgresql`"
            )
        if found.major < MIN_MAJOR:
            raise StackError(
                f"PostgreSQL {found.major} in {found.bindir} is too old: the stack needs "
                f"{MIN_MAJOR} or newer (max_slot_wal_keep_size)"
            )
        return found

    def _server_user(self) -> pwd.struct_passwd | None:
        """The OS user the server runs as when we are root; None when we are not."""
        if not is_root():
            return None
        try:
            return pwd.getpwnam(PG_OS_USER)
        except KeyError:
            raise StackError(
                f"PostgreSQL refuses to run as root and there is no {PG_OS_USER!r} OS user: "
                "install the postgresql package (it creates one) or run as a normal user"
            ) from None

    def _run_pg(self, cmd: list[str], *, what: str, timeout_s: float = _TOOL_TIMEOUT_S) -> str:
        """Run a server tool as the server's OS user, from a directory it can enter."""
        if self._server_user() is not None:
            cmd = ["runuser", "-u", PG_OS_USER, "--", *cmd]
        return run(
            cmd,
            what=what,
            timeout_s=timeout_s,
            cwd=self._root,
            log_file=self._log,
            env_remove_prefixes=_PG_ENV,
        )

    def _prepare_dirs(self) -> None:
        """Create the data, socket and log locations with owners and modes the server accepts."""
        socket_path = f"{self._run_dir}/.s.PGSQL.{self._port}"
        if len(socket_path.encode()) > _SOCKET_PATH_MAX:
            raise StackError(
                f"stack.home {self._settings.stack.home} is too long: the socket path "
                f"{socket_path} exceeds the {_SOCKET_PATH_MAX}-byte limit of unix sockets; "
                "choose a shorter stack.home"
            )
        home = self._settings.stack.home
        makedirs(home, 0o755)
        makedirs(self._log.parent, 0o755)
        for directory in (self._root, self._data, self._run_dir):
            directory.mkdir(mode=0o700, exist_ok=True)
            directory.chmod(0o700)
        self._log.touch(mode=0o640, exist_ok=True)
        user = self._server_user()
        if user is None:
            return
        gids = os.getgrouplist(user.pw_name, user.pw_gid)
        for target in (home, self._log.parent):
            blocked = first_blocked_dir(target.resolve(), user.pw_uid, gids)
            if blocked is not None:
                raise StackError(
                    f"PostgreSQL runs as OS user {PG_OS_USER!r}, which cannot enter {blocked} "
                    f"(mode {stat.S_IMODE(blocked.stat().st_mode):04o}): allow it "
                    f"(chmod o+x {blocked}) or set stack.home (env QUOTEFLOW_STACK__HOME) "
                    "to a directory outside it, e.g. under /var/lib"
                )
        for path in (self._root, self._data, self._run_dir, self._log):
            os.chown(path, user.pw_uid, user.pw_gid)

    def _initdb(self, binaries: PgBinaries, report: Reporter) -> None:
        report(f"PostgreSQL {binaries.major}: creating a cluster in {self._data}")
        if any(self._data.iterdir()):
            raise StackError(
                f"{self._data} is not empty but holds no PostgreSQL cluster (no PG_VERSION): "
                "move it away and run again"
            )
        base = [binaries.tool("initdb"), "-D", str(self._data), "-U", SUPERUSER, "-E", "UTF8",
                "--auth-local=trust", "--auth-host=scram-sha-256"]  # fmt: skip
        try:
            self._run_pg([*base, "--locale=C.UTF-8"], what="initdb")
        except StackError as exc:
            # C.UTF-8 (UTF-8 character classes, byte-order collation) is in every
            # recent glibc; plain C is the fallback where it is not. initdb has
            # already emptied the directory after its failure.
            if "C.UTF-8" not in str(exc):
                raise
            self._run_pg([*base, "--locale=C"], what="initdb")

    def _write_config(self) -> None:
        """(Re)write our settings on every start, so a changed port takes effect."""
        lines = {
            "listen_addresses": _quote_conf("127.0.0.1"),
            "port": str(self._port),
            "unix_socket_directories": _quote_conf(str(self._run_dir)),
            # Logical decoding for CDC; slots and senders for several connectors/tests.
            "wal_level": "logical",
            "max_replication_slots": "20",
            "max_wal_senders": "20",
            # An idle or abandoned slot must never fill the disk: past 2GB of WAL
            # the slot is invalidated instead (the connector then re-snapshots).
            "max_slot_wal_keep_size": "2GB",
            "shared_buffers": "128MB",
            # Timestamps in decoded changes and logs do not depend on the host's zone.
            "timezone": _quote_conf("UTC"),
            "log_timezone": _quote_conf("UTC"),
        }
        text = "# Written by quoteflow on every `stack up`; edits are overwritten.\n" + "".join(
            f"{key} = {value}\n" for key, value in lines.items()
        )
        self._write_owned(self._data / "quoteflow.conf", text)
        self._write_owned(self._data / "pg_hba.conf", _PG_HBA)
        main_conf = self._data / "postgresql.conf"
        current = main_conf.read_text()
        if _INCLUDE_LINE not in current.splitlines():
            suffix = "" if current.endswith("\n") else "\n"
            with main_conf.open("a") as handle:
                handle.write(f"{suffix}# Added by quoteflow; must stay last.\n{_INCLUDE_LINE}\n")

    def _write_owned(self, path: Path, text: str) -> None:
        path.write_text(text)
        path.chmod(0o600)
        user = self._server_user()
        if user is not None:
            os.chown(path, user.pw_uid, user.pw_gid)

    def _bootstrap(self, report: Reporter) -> None:
        """Role and databases as superuser over the private socket, then the DDL as the role."""
        pg = self._settings.postgres
        try:
            with psycopg.connect(
                host=str(self._run_dir),
                port=self._port,
                user=SUPERUSER,
                dbname="postgres",
                connect_timeout=pg.connect_timeout_s,
                autocommit=True,
            ) as conn:
                # A SCRAM verifier, not the password: the statement text can end up in
                # the server log (e.g. when it fails), the verifier is safe there.
                verifier = conn.pgconn.encrypt_password(
                    pg.password.get_secret_value().encode(), pg.user.encode(), b"scram-sha-256"
                ).decode()
                exists = conn.execute(
                    "SELECT 1 FROM pg_roles WHERE rolname = %s", (pg.user,)
                ).fetchone()
                statement = (
                    sql.SQL("ALTER ROLE {} WITH LOGIN REPLICATION PASSWORD {}")
                    if exists
                    else sql.SQL("CREATE ROLE {} WITH LOGIN REPLICATION PASSWORD {}")
                )
                if not exists:
                    report(f"PostgreSQL: creating role {pg.user}")
                conn.execute(statement.format(sql.Identifier(pg.user), sql.Literal(verifier)))
                wanted = [pg.qms_database, pg.crm_database]
                present = {
                    row[0]
                    for row in conn.execute(
                        "SELECT datname FROM pg_database WHERE datname = ANY(%s)", (wanted,)
                    )
                }
                for database in dict.fromkeys(wanted):
                    if database not in present:
                        report(f"PostgreSQL: creating database {database}")
                        conn.execute(
                            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                                sql.Identifier(database), sql.Identifier(pg.user)
                            )
                        )
        except psycopg.Error as exc:
            raise StackError(
                f"could not set up role {pg.user} and databases over the socket in "
                f"{self._run_dir}: {_reason(exc)}{log_tail_hint(self._log)}"
            ) from exc
        apply_schema(self._settings, report)

    def _probe(self) -> _Probe:
        """``SELECT 1`` over TCP as the pipeline role, plus what ``status`` shows."""
        pg = self._settings.postgres
        wanted = list(dict.fromkeys([pg.qms_database, pg.crm_database]))
        try:
            with psycopg.connect(
                local_conninfo(self._settings, "postgres"),
                connect_timeout=_PROBE_TIMEOUT_S,
                options="-c statement_timeout=5000",
                autocommit=True,
            ) as conn:
                conn.execute("SELECT 1").fetchone()
                row = conn.execute(
                    "SELECT current_setting('server_version'), current_setting('wal_level')"
                ).fetchone()
                present = {
                    r[0]
                    for r in conn.execute(
                        "SELECT datname FROM pg_database WHERE datname = ANY(%s)", (wanted,)
                    )
                }
        except psycopg.Error as exc:
            return _Probe(False, False, f"not answering as role {pg.user}: {_reason(exc)}")
        version, wal_level = (str(row[0]).split()[0], str(row[1])) if row else ("?", "?")
        dbs = ",".join(db for db in wanted if db in present) or "none"
        missing = [db for db in wanted if db not in present]
        detail = f"PostgreSQL {version}, wal_level={wal_level}, dbs {dbs}"
        if missing:
            detail += f" (missing {','.join(missing)})"
        return _Probe(True, wal_level == "logical" and not missing, detail)

    def _schema_present(self) -> bool:
        """Whether each database has its table in its publication. The DDL runs in one
        transaction, so the publication's membership implies the rest of the file."""
        for setting, _, table, publication in _SCHEMAS:
            database: str = getattr(self._settings.postgres, setting)
            try:
                with psycopg.connect(
                    local_conninfo(self._settings, database),
                    connect_timeout=_PROBE_TIMEOUT_S,
                    autocommit=True,
                ) as conn:
                    row = conn.execute(
                        "SELECT 1 FROM pg_publication_tables WHERE pubname = %s"
                        " AND schemaname = 'public' AND tablename = %s",
                        (publication, table),
                    ).fetchone()
            except psycopg.Error:
                return False
            if row is None:
                return False
        return True

    def _require_healthy(self) -> None:
        probe = self._probe()
        if not probe.ready:
            raise StackError(
                f"PostgreSQL started but is not usable: {probe.detail}{log_tail_hint(self._log)}"
            )
