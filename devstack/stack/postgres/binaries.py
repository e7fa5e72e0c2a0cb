"""PostgreSQL's server tools: where they are, which version, and installing them.

Debian keeps the server tools off PATH, in ``/usr/lib/postgresql/<version>/bin``,
so those directories are searched first; a directory on PATH holding all the
tools is the fallback, so a PostgreSQL built or installed elsewhere works too.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from devstack.stack.system import apt_install, can_apt_install, run
from quoteflow.errors import StackError
from quoteflow.reporting import Reporter

#: Where Debian's packages put each major version's server binaries.
LIB_ROOT = Path("/usr/lib/postgresql")
#: Read by Debian's postgresql packages when they are installed (host-wide).
CREATECLUSTER_CONF = Path("/etc/postgresql-common/createcluster.conf")
#: ``max_slot_wal_keep_size`` needs 13; older servers would let an idle slot fill the disk.
MIN_MAJOR = 13
TOOLS = ("postgres", "initdb", "pg_ctl")
#: Stripped from our tools' environment: a user's PGDATA or PGPORT must not
#: point them at another cluster.
PG_ENV = ("PG",)


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


def major_of(postgres: Path) -> int | None:
    """Major version reported by a ``postgres`` binary (``postgres (PostgreSQL) 15.18 ...``)."""
    try:
        out = run(
            [str(postgres), "--version"],
            what=f"{postgres} --version",
            timeout_s=10,
            env_remove_prefixes=PG_ENV,
        )
    except StackError:
        return None
    match = re.search(r"\b(\d+)(?:\.\d+)", out)
    return int(match.group(1)) if match else None


def find_binaries(lib_root: Path | None = None, major: int | None = None) -> PgBinaries | None:
    """The newest (or the given major version's) postgres, initdb and pg_ctl."""
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
            found = major_of(bindir / "postgres")
            if found is not None and (major is None or found == major):
                return PgBinaries(bindir, found)
    return None


def binaries_for(data: Path) -> PgBinaries:
    """Binaries for the cluster in ``data``: the version that created it, else the newest."""
    version_file = data / "PG_VERSION"
    try:
        major = int(version_file.read_text().strip()) if version_file.is_file() else None
    except (OSError, ValueError):
        raise StackError(f"{version_file} is unreadable or damaged") from None
    found = find_binaries(major=major)
    if found is None and major is not None:
        raise StackError(
            f"the cluster in {data} was created by PostgreSQL {major}, whose binaries "
            f"are not installed: install postgresql-{major}, or remove {data.parent} "
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


def install_binaries(report: Reporter) -> None:
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
        env_remove_prefixes=PG_ENV,
    )
    found = find_binaries()
    if found is None:
        raise StackError(
            f"apt-get installed postgresql but no server binaries are in {LIB_ROOT}; "
            "check `dpkg -L postgresql`"
        )
    report(f"PostgreSQL: installed version {found.major}")


def _no_default_cluster(report: Reporter) -> None:
    """Stop Debian's packages creating and starting a cluster on 5432, which nobody asked
    for. The file is host-wide (it outlives the stack), so writing it is reported;
    an admin's own createcluster.conf is kept."""
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
    report(
        f"PostgreSQL: wrote {CREATECLUSTER_CONF} (create_main_cluster = false) so that "
        "installing postgresql does not create and start a default cluster on port 5432 "
        "beside the stack's own; this is host-wide and also applies to later PostgreSQL "
        "installs on this machine (delete the file to undo)"
    )
