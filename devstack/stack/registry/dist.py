"""Apicurio Registry's distribution, resolved from Maven Central with ``mvn``.

Apicurio publishes the server as one Quarkus application archive,
``io.apicurio:apicurio-registry-app:<version>:tar.gz:all`` (about 160 MB).
``mvn dependency:copy`` fetches it (into ``~/.m2`` as well, so a second cache
directory costs no download); it is unpacked into ``<cache>/apicurio-registry-<version>``
through :func:`devstack.stack.maven.cached`, and the archive itself is deleted.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

from devstack.stack.maven import cached, is_complete, mvn
from quoteflow.errors import StackError
from quoteflow.reporting import Reporter

#: The plugin version is pinned: invoked without a pom, Maven would otherwise
#: pick whatever release is newest on the day.
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
#: The Quarkus fast-jar launcher inside the distribution.
LAUNCHER = "quarkus-run.jar"


def artifact(version: str) -> str:
    return f"io.apicurio:apicurio-registry-app:{version}:tar.gz:all"


def dist_dir(cache_dir: Path, version: str) -> Path:
    return cache_dir / f"apicurio-registry-{version}"


def ensure_dist(cache_dir: Path, version: str, report: Reporter) -> Path:
    """The unpacked distribution folder (holding :data:`LAUNCHER`), resolved on first use."""
    target = dist_dir(cache_dir, version)
    if is_complete(target):
        return target

    def fill(staging: Path) -> None:
        download = staging / ".download"
        mvn(
            [
                f"{DEPENDENCY_PLUGIN}:copy",
                f"-Dartifact={artifact(version)}",
                f"-DoutputDirectory={download}",
            ],
            what=f"mvn resolving Apicurio Registry {version}",
            report=report,
            why="fetch Apicurio Registry",
        )
        archives = sorted(download.glob("*.tar.gz"))
        if not archives:
            raise StackError(f"mvn finished but {artifact(version)} is not in {download}")
        report(f"unpacking {archives[0].name}")
        unpack(archives[0], staging)
        for archive in archives:
            archive.unlink()
        download.rmdir()
        if not (staging / LAUNCHER).is_file():
            raise StackError(f"{archives[0].name} holds no {LAUNCHER}: not a Quarkus fast-jar app")

    report(f"resolving Apicurio Registry {version} with mvn (about 160 MB on first use)")
    cached(target, fill, marker_text=version)
    report(f"Apicurio Registry {version} unpacked in {target}")
    return target


def unpack(archive: Path, into: Path) -> None:
    """Extract a tar.gz, refusing members that would land outside ``into`` (or be devices)."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(into, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise StackError(f"cannot unpack {archive}: {exc}") from exc
