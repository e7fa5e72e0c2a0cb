"""Finding a Java runtime: version parsing, the order runtimes are tried in, and the errors.

Kafka and the registry need different minimum versions, and the runtime that
meets one is often not the ``java`` on PATH, so the order (explicit setting,
JAVA_HOME, PATH, then ``/usr/lib/jvm`` newest first), the deduplication of one
launcher reached twice, and an error that lists everything looked at are what
make ``stack up`` pick the right JVM or say why it cannot. No real JVM runs:
the launchers are tiny shell scripts printing a ``java -version`` banner, and
apt is replaced by fakes, so nothing is ever installed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from devstack.stack import java, system
from devstack.stack.java import (
    Java,
    candidates,
    find_java,
    java_major,
    parse_major,
    render_properties,
    require_java,
)
from quoteflow.errors import StackError
from quoteflow.reporting import silent

pytestmark = pytest.mark.unit

#: ``java -version`` banners (on stderr, as real JVMs print them) by major version.
BANNERS = {
    8: 'openjdk version "1.8.0_392"\nOpenJDK Runtime Environment (build 1.8.0_392-b08)',
    11: 'openjdk version "11.0.22" 2024-01-16',
    17: 'openjdk version "17.0.15" 2025-04-15',
    21: 'openjdk version "21.0.2" 2024-01-16',
    25: 'openjdk version "25.0.3" 2026-04-21 LTS',
}

ADVICE = "install a JDK 21 or newer, or point stack.registry_java_home at it"


def make_jdk(home: Path, major: int) -> Path:
    """A fake JDK home whose ``bin/java -version`` prints the banner of ``major``."""
    launcher = home / "bin" / "java"
    launcher.parent.mkdir(parents=True, exist_ok=True)
    # Shell builtins only: the tests run with an empty PATH.
    lines = " ".join(f"'{line}'" for line in BANNERS[major].splitlines())
    launcher.write_text(f"#!/bin/sh\nprintf '%s\\n' {lines} >&2\nexit 0\n")
    launcher.chmod(0o755)
    return launcher


@pytest.fixture
def jvm_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty private /usr/lib/jvm, no JAVA_HOME, an empty PATH and a cold version cache."""
    root = tmp_path / "usr-lib-jvm"
    root.mkdir()
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setattr(java, "JVM_ROOTS", (root,))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(empty))
    java_major.cache_clear()
    yield root
    java_major.cache_clear()


def on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: Path) -> Path:
    """Put a ``java`` symlink to ``target`` on PATH, as update-alternatives does."""
    bin_dir = tmp_path / "path-bin"
    bin_dir.mkdir(exist_ok=True)
    link = bin_dir / "java"
    link.symlink_to(target)
    monkeypatch.setenv("PATH", str(bin_dir))
    return link


def sources(found: Sequence[tuple[str, str]]) -> list[str]:
    return [source for _, source in found]


# -- parse_major ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (BANNERS[8], 8),
        ('java version "1.8.0_392"', 8),
        (BANNERS[17], 17),
        ('openjdk version "21" 2023-09-19', 21),
        (BANNERS[25], 25),
        ("Picked up JAVA_TOOL_OPTIONS: -Xss4m\n" + BANNERS[21], 21),
        ("bash: java: command not found", 0),
        ("", 0),
    ],
)
def test_parse_major_reads_old_and_new_version_schemes(output: str, expected: int) -> None:
    assert parse_major(output) == expected


def test_java_major_runs_the_launcher(jvm_root: Path, tmp_path: Path) -> None:
    assert java_major(str(make_jdk(tmp_path / "jdk-25", 25))) == 25
    assert java_major(str(make_jdk(tmp_path / "jdk-8", 8))) == 8


# -- candidates -------------------------------------------------------------------


def test_candidates_come_setting_then_java_home_then_path_then_the_scan(
    jvm_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    setting_home = tmp_path / "chosen-jdk"
    setting = str(make_jdk(setting_home, 17))
    java_home = str(make_jdk(tmp_path / "java-home", 11))
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "java-home"))
    path_java = str(on_path(tmp_path, monkeypatch, make_jdk(tmp_path / "system-jdk", 8)))
    scanned = str(make_jdk(jvm_root / "temurin-21-jdk-amd64", 21))

    found = list(candidates(setting=("stack.registry_java_home", setting_home)))

    assert found == [
        (setting, "setting stack.registry_java_home"),
        (java_home, "JAVA_HOME"),
        (path_java, "PATH"),
        (scanned, str(jvm_root)),
    ]


def test_candidates_list_each_real_launcher_once(
    jvm_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PATH's java is usually a symlink into /usr/lib/jvm, and JAVA_HOME often names it too."""
    home = jvm_root / "java-17-openjdk-amd64"
    launcher = make_jdk(home, 17)
    (jvm_root / "default-java").symlink_to(home)  # Debian's alias of the default JDK
    monkeypatch.setenv("JAVA_HOME", str(jvm_root / "default-java"))
    on_path(tmp_path, monkeypatch, launcher)
    other = make_jdk(jvm_root / "temurin-21-jdk-amd64", 21)

    found = list(candidates())

    assert sources(found) == ["JAVA_HOME", str(jvm_root)]
    assert found[1][0] == str(other)
    assert len({os.path.realpath(path) for path, _ in found}) == len(found)


def test_the_scan_tries_the_newest_version_first_whatever_the_folder_names(
    jvm_root: Path,
) -> None:
    # By name these sort java-21 < java-8 < temurin-25; by version 25 > 21 > 8.
    homes = {
        8: "java-8-openjdk-amd64",
        25: "temurin-25-jdk-amd64",
        21: "java-21-openjdk-amd64",
    }
    for major, name in homes.items():
        make_jdk(jvm_root / name, major)

    found = list(candidates())

    assert [path for path, _ in found] == [
        str(jvm_root / homes[major] / "bin" / "java") for major in (25, 21, 8)
    ]
    assert set(sources(found)) == {str(jvm_root)}


def test_the_scan_skips_folders_without_a_launcher_and_missing_roots(
    jvm_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (jvm_root / "openjfx").mkdir()  # no bin/java
    not_executable = jvm_root / "half-removed" / "bin" / "java"
    not_executable.parent.mkdir(parents=True)
    not_executable.write_text("#!/bin/sh\n")
    not_executable.chmod(0o644)
    (jvm_root / ".java-21-openjdk-amd64.jinfo").write_text("name=java-21\n")
    good = make_jdk(jvm_root / "java-21-openjdk-amd64", 21)
    monkeypatch.setattr(java, "JVM_ROOTS", (tmp_path / "no-such-root", jvm_root))

    assert list(candidates()) == [(str(good), str(jvm_root))]


def test_scan_false_stops_after_path(
    jvm_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_jdk(jvm_root / "temurin-25-jdk-amd64", 25)
    on_path(tmp_path, monkeypatch, make_jdk(tmp_path / "system-jdk", 17))

    assert sources(list(candidates(scan=False))) == ["PATH"]


def test_no_java_anywhere_gives_no_candidates(jvm_root: Path) -> None:
    assert list(candidates()) == []


def test_a_broken_java_home_is_an_error_naming_it(
    jvm_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The user asked for that runtime: silently using another one would hide the mistake."""
    broken = tmp_path / "jdk-uninstalled"
    broken.mkdir()
    monkeypatch.setenv("JAVA_HOME", str(broken))
    make_jdk(jvm_root / "temurin-25-jdk-amd64", 25)  # a good one exists, yet is not used

    with pytest.raises(StackError) as caught:
        list(candidates())
    assert f"JAVA_HOME={broken}" in str(caught.value)
    assert "bin/java" in str(caught.value)


def test_a_broken_setting_is_an_error_naming_it(
    jvm_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good_home = tmp_path / "good-jdk"
    make_jdk(good_home, 21)
    monkeypatch.setenv("JAVA_HOME", str(good_home))
    # A launcher that exists but cannot be executed is as broken as a missing one.
    broken = tmp_path / "jdk-not-executable"
    make_jdk(broken, 21).chmod(0o644)

    with pytest.raises(StackError) as caught:
        list(candidates(setting=("stack.registry_java_home", broken)))
    assert f"setting stack.registry_java_home={broken}" in str(caught.value)


# -- find_java --------------------------------------------------------------------


def test_find_java_returns_the_first_new_enough_and_what_it_looked_at(
    jvm_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    java_home = make_jdk(tmp_path / "java-home", 8)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "java-home"))
    path_java = on_path(tmp_path, monkeypatch, make_jdk(tmp_path / "system-jdk", 17))
    newest = make_jdk(jvm_root / "temurin-25-jdk-amd64", 25)
    make_jdk(jvm_root / "java-21-openjdk-amd64", 21)

    chosen, seen = find_java(17, candidates())
    assert chosen == Java(str(path_java), 17, "PATH")
    assert seen == [Java(str(java_home), 8, "JAVA_HOME"), chosen]

    # PATH's 17 is not enough for the registry: the scan's newest is next.
    chosen, seen = find_java(21, candidates())
    assert chosen == Java(str(newest), 25, str(jvm_root))
    assert [j.major for j in seen] == [8, 17, 25]


def test_find_java_without_a_new_enough_runtime_returns_none_and_everything_seen(
    jvm_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_path(tmp_path, monkeypatch, make_jdk(tmp_path / "system-jdk", 17))
    make_jdk(jvm_root / "java-11-openjdk-amd64", 11)

    chosen, seen = find_java(21, candidates())

    assert chosen is None
    assert [(j.major, j.source) for j in seen] == [(17, "PATH"), (11, str(jvm_root))]


def test_java_describe_says_path_version_and_source() -> None:
    assert Java("/opt/jdk/bin/java", 21, "JAVA_HOME").describe() == (
        "/opt/jdk/bin/java (Java 21, from JAVA_HOME)"
    )


def test_a_broken_jvm_under_the_scan_root_does_not_hide_a_good_one(jvm_root: Path) -> None:
    good = make_jdk(jvm_root / "temurin-21-jdk-amd64", 21)
    broken = jvm_root / "java-17-openjdk-i386" / "bin" / "java"  # e.g. another architecture's
    broken.parent.mkdir(parents=True)
    broken.write_text("#!/bin/sh\necho 'cannot execute binary file' >&2\nexit 126\n")
    broken.chmod(0o755)

    chosen, _ = find_java(21, candidates())

    assert chosen is not None and chosen.path == str(good)


# -- require_java -----------------------------------------------------------------


class FakeApt:
    """Stands in for apt: records what would be installed, runs ``on_install`` instead."""

    def __init__(self) -> None:
        self.knows: set[str] = set()
        self.asked: list[str] = []
        self.installed: list[list[str]] = []
        self.on_install: Callable[[], object] | None = None

    def apt_knows(self, package: str) -> bool:
        self.asked.append(package)
        return package in self.knows

    def apt_install(self, packages: Sequence[str], **_: object) -> None:
        self.installed.append(list(packages))
        if self.on_install is not None:
            self.on_install()


@pytest.fixture
def apt(monkeypatch: pytest.MonkeyPatch) -> FakeApt:
    fake = FakeApt()
    monkeypatch.setattr(java, "apt_knows", fake.apt_knows)
    monkeypatch.setattr(java, "apt_install", fake.apt_install)
    return fake


def test_require_java_returns_a_new_enough_runtime_without_apt(
    jvm_root: Path, apt: FakeApt
) -> None:
    launcher = make_jdk(jvm_root / "temurin-21-jdk-amd64", 21)

    found = require_java(
        21, needed_by="the registry", report=silent, advice=ADVICE, packages=["openjdk-21"]
    )

    assert found == Java(str(launcher), 21, str(jvm_root))
    assert apt.asked == [] and apt.installed == []


def test_require_java_when_not_root_lists_every_runtime_and_ends_with_the_advice(
    jvm_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, apt: FakeApt
) -> None:
    monkeypatch.setattr(system, "is_root", lambda: False)
    apt.knows = {"openjdk-21-jre-headless"}
    java_home = make_jdk(tmp_path / "java-home", 8)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "java-home"))
    path_java = on_path(tmp_path, monkeypatch, make_jdk(tmp_path / "system-jdk", 17))
    scanned = make_jdk(jvm_root / "java-11-openjdk-amd64", 11)

    with pytest.raises(StackError) as caught:
        require_java(
            21,
            needed_by="Apicurio Registry 3.3.3",
            report=silent,
            advice=ADVICE,
            packages=["openjdk-21-jre-headless"],
        )

    message = str(caught.value)
    assert message.startswith("Apicurio Registry 3.3.3 needs Java 21 or newer, found ")
    assert f"{java_home} (Java 8, from JAVA_HOME)" in message
    assert f"{path_java} (Java 17, from PATH)" in message
    assert f"{scanned} (Java 11, from {jvm_root})" in message
    assert message.endswith(ADVICE)
    assert apt.asked == [] and apt.installed == []  # apt is never touched without root


def test_require_java_with_no_runtime_at_all_says_so(
    jvm_root: Path, monkeypatch: pytest.MonkeyPatch, apt: FakeApt
) -> None:
    monkeypatch.setattr(system, "is_root", lambda: False)
    with pytest.raises(StackError, match=r"needs Java 17 or newer, found no Java at all: "):
        require_java(17, needed_by="Kafka", report=silent, advice=ADVICE)


def test_require_java_as_root_installs_the_first_package_apt_knows_and_looks_again(
    jvm_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, apt: FakeApt
) -> None:
    monkeypatch.setattr(java, "can_apt_install", lambda: True)
    apt.knows = {"openjdk-25-jre-headless", "default-jre-headless"}
    path_java = on_path(tmp_path, monkeypatch, make_jdk(tmp_path / "system-jdk", 17))
    # The package replaces what PATH's java runs (update-alternatives): its version
    # must be asked again, not taken from the cache.
    apt.on_install = lambda: make_jdk(tmp_path / "system-jdk", 25)

    found = require_java(
        21,
        needed_by="the registry",
        report=silent,
        advice=ADVICE,
        packages=["openjdk-21-jre-headless", "openjdk-25-jre-headless", "default-jre-headless"],
    )

    assert apt.installed == [["openjdk-25-jre-headless"]]
    assert found == Java(str(path_java), 25, "PATH")


def test_require_java_as_root_without_a_known_package_installs_nothing(
    jvm_root: Path, monkeypatch: pytest.MonkeyPatch, apt: FakeApt
) -> None:
    monkeypatch.setattr(java, "can_apt_install", lambda: True)
    make_jdk(jvm_root / "java-17-openjdk-amd64", 17)

    with pytest.raises(StackError, match=r"\(Java 17, from .*\): " + ADVICE):
        require_java(
            21, needed_by="the registry", report=silent, advice=ADVICE, packages=["openjdk-21"]
        )
    assert apt.asked == ["openjdk-21"]
    assert apt.installed == []


# -- render_properties ----------------------------------------------------------------


def test_render_properties_writes_a_comment_then_one_line_per_property_in_order() -> None:
    text = render_properties({"quarkus.http.port": "18081", "b.a": "x=y", "a.b": ""})
    lines = text.splitlines()
    assert lines[0].startswith("# ") and "overwritten" in lines[0]
    assert lines[1:] == ["quarkus.http.port=18081", "b.a=x=y", "a.b="]
    assert text.endswith("\n") and not text.endswith("\n\n")


def test_render_properties_of_nothing_is_only_the_comment() -> None:
    assert len(render_properties({}).splitlines()) == 1
