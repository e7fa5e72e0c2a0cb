"""Finding a Java runtime new enough for each JVM of the stack.

Kafka 4 needs Java 17; Apicurio Registry 3.3 needs 21. Debian 12's packages
stop at 17, so a newer JDK is often installed *beside* the system one (Temurin,
say, under ``/usr/lib/jvm``) and is not what ``java`` on PATH runs. Components
therefore ask for a minimum major version and get the first runtime that meets
it, in an order that respects the user's choice first:

1. an explicit setting (the component's own ``*_java_home``),
2. ``JAVA_HOME``,
3. ``java`` on PATH,
4. every JVM under ``/usr/lib/jvm`` (where Debian, Ubuntu, Fedora and the
   Temurin packages install them), newest first.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from devstack.stack.system import apt_install, apt_knows, can_apt_install, run
from quoteflow.errors import StackError
from quoteflow.reporting import Reporter

#: Where Linux distributions and vendor packages put JVMs, one folder each.
JVM_ROOTS: tuple[Path, ...] = (Path("/usr/lib/jvm"),)


@dataclass(frozen=True)
class Java:
    """One runtime: its launcher, major version and where it was found."""

    path: str
    major: int
    source: str  # "setting stack.x", "JAVA_HOME", "PATH", "/usr/lib/jvm"

    def describe(self) -> str:
        return f"{self.path} (Java {self.major}, from {self.source})"


def parse_major(version_output: str) -> int:
    """The major version in ``java -version`` output; 0 when it cannot be read.

    ``1.8.0_392`` is Java 8; ``17.0.15`` and ``25`` are 17 and 25.
    """
    match = re.search(r'version "(\d+)(?:\.(\d+))?', version_output)
    if not match:
        return 0
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


@functools.lru_cache(maxsize=64)
def java_major(java: str) -> int:
    """Run ``java -version`` once per launcher and process (it takes ~0.1 s)."""
    return parse_major(run([java, "-version"], what=f"{java} -version", timeout_s=30))


def _launcher(home: Path, what: str) -> str:
    java = home / "bin" / "java"
    if not os.access(java, os.X_OK):
        raise StackError(f"{what}={home} has no executable bin/java; fix or unset it")
    return str(java)


def candidates(
    *, setting: tuple[str, Path] | None = None, scan: bool = True
) -> Iterator[tuple[str, str]]:
    """(launcher, source) in order of preference, each real file once.

    ``setting`` is (its name, its JDK home). A broken explicit choice — a
    setting or ``JAVA_HOME`` without ``bin/java`` — is an error, not skipped:
    the user asked for that runtime.
    """
    seen: set[str] = set()

    def once(path: str, source: str) -> Iterator[tuple[str, str]]:
        real = os.path.realpath(path)
        if real not in seen:
            seen.add(real)
            yield path, source

    if setting is not None:
        name, home = setting
        yield from once(_launcher(home, f"setting {name}"), f"setting {name}")
    home_env = os.environ.get("JAVA_HOME")
    if home_env:
        yield from once(_launcher(Path(home_env), "JAVA_HOME"), "JAVA_HOME")
    on_path = shutil.which("java")
    if on_path:
        yield from once(on_path, "PATH")
    if scan:
        for root in JVM_ROOTS:
            for launcher in _scanned(root):
                yield from once(launcher, str(root))


def _scanned(root: Path) -> list[str]:
    """The launchers under one JVM root, newest version first (names sort badly: 8 > 25)."""
    try:
        found = [
            str(home / "bin" / "java")
            for home in root.iterdir()
            if os.access(home / "bin" / "java", os.X_OK)
        ]
    except OSError:
        return []
    return sorted(found, key=_major_or_zero, reverse=True)


def _major_or_zero(java: str) -> int:
    """A runtime nobody asked for that cannot say its version (another arch, a broken
    install) must not stop the search for one that can: it counts as version 0."""
    try:
        return java_major(java)
    except StackError:
        return 0


def find_java(min_major: int, found: Iterable[tuple[str, str]]) -> tuple[Java | None, list[Java]]:
    """The first runtime of ``found`` at least ``min_major``, and every runtime looked at."""
    seen: list[Java] = []
    for path, source in found:
        explicit = source.startswith("setting ") or source == "JAVA_HOME"
        java = Java(path, java_major(path) if explicit else _major_or_zero(path), source)
        seen.append(java)
        if java.major >= min_major:
            return java, seen
    return None, seen


def require_java(
    min_major: int,
    *,
    needed_by: str,
    report: Reporter,
    advice: str,
    packages: Sequence[str] = (),
    setting: tuple[str, Path] | None = None,
) -> Java:
    """The first runtime of :func:`candidates` that is new enough, installing one if we can.

    ``packages`` are Debian packages that would provide one, tried in order
    when running as root and apt knows them (``default-jre-headless`` is 17 on
    Debian 12, 21 on Debian 13). Otherwise the error lists every runtime
    looked at and ends with ``advice``.
    """
    java, seen = find_java(min_major, candidates(setting=setting))
    if java is not None:
        return java
    installable = [p for p in packages if can_apt_install() and apt_knows(p)]
    if installable:
        apt_install(
            installable[:1], report=report, why=f"Java {min_major}+ is needed to run {needed_by}"
        )
        java_major.cache_clear()
        java, seen = find_java(min_major, candidates(setting=setting))
        if java is not None:
            return java
    found = "; ".join(j.describe() for j in seen) if seen else "no Java at all"
    raise StackError(f"{needed_by} needs Java {min_major} or newer, found {found}: {advice}")


def render_properties(properties: Mapping[str, str]) -> str:
    """A JVM server's ``.properties`` file, as the stack writes it on every start."""
    lines = ["# Written by `quoteflow stack up`; edits are overwritten at the next start."]
    lines += [f"{key}={value}" for key, value in properties.items()]
    return "\n".join(lines) + "\n"
