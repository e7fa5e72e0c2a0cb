"""The stack's cluster on disk and its postmaster: directories, owners, server tools.

Everything lives under ``<stack.home>/postgres`` (data and socket directories)
and the stack's log directory; the only postmaster ever stopped is the one named
in our own ``postmaster.pid``. PostgreSQL refuses to run as root, so under root
every server tool runs as the ``postgres`` OS user (``runuser``) and the
directories it writes are chowned to it.
"""

from __future__ import annotations

import os
import pwd
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from devstack.stack.postgres import config
from devstack.stack.postgres.binaries import PG_ENV, PgBinaries
from devstack.stack.system import is_root, makedirs, pid_alive, run
from quoteflow.errors import StackError
from quoteflow.reporting import Reporter

#: OS user the server runs as when we are root (Debian's packages create it).
PG_OS_USER = "postgres"
#: The cluster's superuser, used only over the private unix socket.
SUPERUSER = "postgres"
#: Kernel limit on a unix socket path (sun_path is 108 bytes with the NUL).
SOCKET_PATH_MAX = 107
TOOL_TIMEOUT_S = 120.0


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


@dataclass(frozen=True)
class Postmaster:
    pid: int
    port: int | None


class Cluster:
    """One cluster's files and server tools (no SQL: see ``component`` and ``schema``)."""

    def __init__(self, home: Path, logs_dir: Path, port: int) -> None:
        self.home = home
        self.port = port
        self.root = home / "postgres"
        self.data = self.root / "data"
        self.socket_dir = self.root / "run"
        self.log = logs_dir / "postgres.log"

    def postmaster(self) -> Postmaster | None:
        """Our postmaster if ``postmaster.pid`` names a live one (a stale file means stopped)."""
        try:
            lines = (self.data / "postmaster.pid").read_text().splitlines()
            pid = int(lines[0])
        except (OSError, ValueError, IndexError):
            return None
        if not pid_alive(pid, comm_prefix="postgres"):
            return None
        port = int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None
        return Postmaster(pid, port)

    def initialised(self) -> bool:
        return (self.data / "PG_VERSION").is_file()

    def server_user(self) -> pwd.struct_passwd | None:
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

    def run_tool(self, cmd: list[str], *, what: str, timeout_s: float = TOOL_TIMEOUT_S) -> str:
        """Run a server tool as the server's OS user, from a directory it can enter."""
        if self.server_user() is not None:
            cmd = ["runuser", "-u", PG_OS_USER, "--", *cmd]
        return run(
            cmd, what=what, timeout_s=timeout_s, cwd=self.root, log_file=self.log,
            env_remove_prefixes=PG_ENV,
        )  # fmt: skip

    def prepare_dirs(self) -> None:
        """Create the data, socket and log locations with owners and modes the server accepts."""
        socket_path = f"{self.socket_dir}/.s.PGSQL.{self.port}"
        if len(socket_path.encode()) > SOCKET_PATH_MAX:
            raise StackError(
                f"stack.home {self.home} is too long: the socket path {socket_path} exceeds "
                f"the {SOCKET_PATH_MAX}-byte limit of unix sockets; choose a shorter stack.home"
            )
        makedirs(self.home, 0o755)
        makedirs(self.log.parent, 0o755)
        try:
            self._make_private_dirs()
        except OSError as exc:
            raise StackError(
                f"cannot prepare {exc.filename or self.root}: {exc.strerror}; "
                "check its owner and permissions, or set stack.home (env QUOTEFLOW_STACK__HOME)"
            ) from None

    def _make_private_dirs(self) -> None:
        for directory in (self.root, self.data, self.socket_dir):
            directory.mkdir(mode=0o700, exist_ok=True)
            directory.chmod(0o700)
        self.log.touch(mode=0o640, exist_ok=True)
        user = self.server_user()
        if user is None:
            return
        gids = os.getgrouplist(user.pw_name, user.pw_gid)
        for target in (self.home, self.log.parent):
            blocked = first_blocked_dir(target.resolve(), user.pw_uid, gids)
            if blocked is not None:
                raise StackError(
                    f"PostgreSQL runs as OS user {PG_OS_USER!r}, which cannot enter {blocked} "
                    f"(mode {stat.S_IMODE(blocked.stat().st_mode):04o}): allow it "
                    f"(chmod o+x {blocked}) or set stack.home (env QUOTEFLOW_STACK__HOME) "
                    "to a directory outside it, e.g. under /var/lib"
                )
        for path in (self.root, self.data, self.socket_dir, self.log):
            os.chown(path, user.pw_uid, user.pw_gid)

    def initdb(self, binaries: PgBinaries, report: Reporter) -> None:
        report(f"PostgreSQL {binaries.major}: creating a cluster in {self.data}")
        if any(self.data.iterdir()):
            raise StackError(
                f"{self.data} is not empty but holds no PostgreSQL cluster (no PG_VERSION): "
                "move it away and run again"
            )
        base = [binaries.tool("initdb"), "-D", str(self.data), "-U", SUPERUSER, "-E", "UTF8",
                "--auth-local=trust", "--auth-host=scram-sha-256"]  # fmt: skip
        try:
            self.run_tool([*base, "--locale=C.UTF-8"], what="initdb")
        except StackError as exc:
            # C.UTF-8 (UTF-8 character classes, byte-order collation) is in every
            # recent glibc; plain C is the fallback where it is not. initdb has
            # already emptied the directory after its failure.
            if "C.UTF-8" not in str(exc):
                raise
            self.run_tool([*base, "--locale=C"], what="initdb")

    def write_config(self) -> None:
        """(Re)write our settings on every start, so a changed port takes effect."""
        try:
            self._write_owned(
                self.data / config.SERVER_CONF,
                config.render_server_conf(self.port, self.socket_dir),
            )
            self._write_owned(self.data / "pg_hba.conf", config.PG_HBA)
            main_conf = self.data / "postgresql.conf"
            addition = config.include_addition(main_conf.read_text())
            if addition:
                with main_conf.open("a") as handle:
                    handle.write(addition)
        except OSError as exc:
            raise StackError(f"cannot write the configuration in {self.data}: {exc}") from None

    def pg_ctl(self, binaries: PgBinaries, action: str, *args: str, wait_s: int) -> None:
        """``pg_ctl start|stop`` on our data directory, waiting up to ``wait_s``."""
        self.run_tool(
            [binaries.tool("pg_ctl"), action, "-D", str(self.data), *args,
             "-w", "-t", str(wait_s)],
            what=f"pg_ctl {action}",
            timeout_s=wait_s + 30,
        )  # fmt: skip

    def _write_owned(self, path: Path, text: str) -> None:
        path.write_text(text)
        path.chmod(0o600)
        user = self.server_user()
        if user is not None:
            os.chown(path, user.pw_uid, user.pw_gid)
