"""Resolve the broker's jars from Maven Central with the machine's ``mvn``.

The pom next to this file pins every version. Jars land in a cache directory
outside the source tree, one folder per Kafka version (see
:mod:`devstack.stack.maven` for how an interrupted download is kept out).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from devstack.stack.maven import MARKER, cached, is_complete, mvn
from quoteflow.errors import StackError
from quoteflow.reporting import Reporter

__all__ = ["MARKER", "ensure_jars", "jar_dir"]


def jar_dir(cache_dir: Path, kafka_version: str) -> Path:
    return cache_dir / f"kafka-{kafka_version}" / "libs"


def ensure_jars(cache_dir: Path, kafka_version: str, report: Reporter) -> Path:
    """Return the folder of broker jars, resolving them with mvn on first use."""
    target = jar_dir(cache_dir, kafka_version)
    if is_complete(target):
        return target

    def fill(staging: Path) -> None:
        with resources.as_file(resources.files(__package__).joinpath("pom.xml")) as pom:
            mvn(
                [
                    "-f", str(pom),
                    f"-Dkafka.version={kafka_version}",
                    "dependency:copy-dependencies",
                    "-DincludeScope=runtime",
                    f"-DoutputDirectory={staging}",
                ],
                what=f"mvn resolving Kafka {kafka_version}",
                report=report,
                why="fetch Kafka's jars",
            )  # fmt: skip
        if not any(staging.glob(f"kafka_2.13-{kafka_version}.jar")):
            raise StackError(f"mvn finished but kafka_2.13-{kafka_version}.jar is missing")

    report(f"resolving Apache Kafka {kafka_version} jars with mvn into {target}")
    cached(target, fill, marker_text=kafka_version)
    report(f"resolved {sum(1 for _ in target.glob('*.jar'))} jars")
    return target
