"""PostgresComponent: the local stack's PostgreSQL, driven through the Component protocol.

Files and processes are :class:`~devstack.stack.postgres.cluster.Cluster`'s
business; the role, databases and CDC sources are set up by
:mod:`~devstack.stack.postgres.roles` and :mod:`~devstack.stack.postgres.schema`;
this module puts them in order and probes the result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.rows import TupleRow

from connectors.cdc.sources import CDC_SOURCES, source_problems
from devstack.stack.base import ComponentStatus, log_tail_hint, port_open
from devstack.stack.postgres.binaries import binaries_for, install_binaries
from devstack.stack.postgres.cluster import Cluster, Postmaster
from devstack.stack.postgres.roles import ensure_role_and_databases, stack_databases
from devstack.stack.postgres.schema import apply_schema, local_conninfo
from quoteflow.errors import StackError
from quoteflow.pgerrors import error_gist
from quoteflow.reporting import Reporter
from quoteflow.settings import Settings

_PROBE_TIMEOUT_S = 3


@dataclass(frozen=True)
class _Probe:
    healthy: bool  # answers a query as the pipeline role
    ready: bool  # healthy, and every CDC source is ready for logical decoding
    detail: str


class PostgresComponent:
    """The local stack's PostgreSQL cluster (see the package docstring)."""

    name = "postgres"

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._port = settings.stack.postgres_port
        self._cluster = Cluster(settings.stack.home, settings.stack.logs_dir, self._port)

    # -- Component protocol -------------------------------------------------

    def install(self, report: Reporter) -> None:
        """Install Debian's postgresql package when no server binaries are found."""
        install_binaries(report)

    def up(self, report: Reporter) -> bool:
        """Start the cluster (creating it on first use) and set up role, databases, tables.

        Returns False without doing anything when it is already running and fully
        set up. When it runs but is not (an earlier ``up`` was interrupted, the
        password in the settings changed, a source lost its publication or its
        replica identity), it is repaired and False returned too: nothing was started.
        """
        self.install(report)
        cluster = self._cluster
        running = cluster.postmaster()
        if running is not None:
            self._require_our_port(running)
            if self._probe().ready:
                return False
            report("PostgreSQL: running but not fully set up; repairing")
            self._bootstrap(report)
            self._require_ready()
            return False

        binaries = binaries_for(cluster.data)
        cluster.prepare_dirs()
        if port_open("127.0.0.1", self._port):
            raise StackError(
                f"port {self._port} is already in use by another program (not the stack's "
                f"PostgreSQL in {cluster.data}): stop it, or choose another port with "
                "stack.postgres_port (env QUOTEFLOW_STACK__POSTGRES_PORT)"
            )
        if not cluster.initialised():
            cluster.initdb(binaries, report)
        cluster.write_config()
        report(f"PostgreSQL {binaries.major}: starting on 127.0.0.1:{self._port}")
        cluster.pg_ctl(binaries, "start", "-l", str(cluster.log), wait_s=self._wait_s())
        self._bootstrap(report)
        self._require_ready()
        report(f"PostgreSQL {binaries.major}: ready on 127.0.0.1:{self._port}")
        return True

    def down(self, report: Reporter) -> bool:
        """Stop our postmaster (fast mode: sessions are ended, data is safe)."""
        running = self._cluster.postmaster()
        if running is None:
            return False
        binaries = binaries_for(self._cluster.data)
        report(f"PostgreSQL: stopping (pid {running.pid})")
        self._cluster.pg_ctl(binaries, "stop", "-m", "fast", wait_s=self._wait_s())
        return True

    def status(self) -> ComponentStatus:
        """Our postmaster's state and real queries as the pipeline role; no side effects."""
        address = f"127.0.0.1:{self._port}"
        running = self._cluster.postmaster()
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
        return self._cluster.log

    # -- helpers ------------------------------------------------------------

    def _wait_s(self) -> int:
        return math.ceil(self._settings.stack.start_timeout_s)

    def _require_our_port(self, running: Postmaster) -> None:
        if running.port is not None and running.port != self._port:
            raise StackError(
                f"the stack's PostgreSQL is running on port {running.port}, but settings say "
                f"{self._port}: run `quoteflow stack down` with the old settings first"
            )

    def _bootstrap(self, report: Reporter) -> None:
        """Role and databases as superuser over the private socket, then the DDL as the role."""
        cluster = self._cluster
        ensure_role_and_databases(
            self._settings.postgres,
            stack_databases(self._settings),
            cluster.socket_dir,
            self._port,
            log=cluster.log,
            report=report,
        )
        apply_schema(self._settings, report)

    def _probe(self) -> _Probe:
        """``SELECT 1`` over TCP as the pipeline role, plus what ``status`` shows, plus
        :func:`source_problems` for each CDC source (catalogue queries only)."""
        pg = self._settings.postgres
        wanted = stack_databases(self._settings)
        try:
            with self._connect("postgres") as conn:
                row = conn.execute(
                    "SELECT current_setting('server_version'), current_setting('wal_level')"
                ).fetchone()
                present = {
                    str(r[0])
                    for r in conn.execute(
                        "SELECT datname FROM pg_database WHERE datname = ANY(%s)", (wanted,)
                    )
                }
        except psycopg.Error as exc:
            return _Probe(False, False, f"not answering as role {pg.user}: {error_gist(exc)}")
        version, wal_level = (str(row[0]).split()[0], str(row[1])) if row else ("?", "?")
        dbs = ",".join(db for db in wanted if db in present) or "none"
        missing = [db for db in wanted if db not in present]
        detail = f"PostgreSQL {version}, wal_level={wal_level}, dbs {dbs}"
        if missing:
            detail += f" (missing {','.join(missing)})"
        problems = self._cdc_problems(present)
        if problems:
            detail += "; CDC: " + "; ".join(problems)
        ready = wal_level == "logical" and not missing and not problems
        return _Probe(True, ready, detail)

    def _cdc_problems(self, databases: set[str]) -> list[str]:
        """What keeps the CDC sources in the existing ``databases`` from being captured."""
        problems = []
        for source in CDC_SOURCES:
            database = source.database(self._settings.postgres)
            if database not in databases:
                continue
            try:
                with self._connect(database) as conn:
                    found = source_problems(conn, source)
            except psycopg.Error as exc:
                found = [error_gist(exc)]
            problems += [f"{database}: {problem}" for problem in found]
        return problems

    def _connect(self, database: str) -> psycopg.Connection[TupleRow]:
        return psycopg.connect(
            local_conninfo(self._settings, database),
            connect_timeout=_PROBE_TIMEOUT_S,
            options="-c statement_timeout=5000",
            autocommit=True,
        )

    def _require_ready(self) -> None:
        probe = self._probe()
        if not probe.ready:
            raise StackError(
                f"PostgreSQL started but is not usable: {probe.detail}"
                f"{log_tail_hint(self._cluster.log)}"
            )
