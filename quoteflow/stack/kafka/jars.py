"""Resolve the broker's jars from Maven Central with the machine's ``mvn``.

The pom next to this file pins every version. Jars land in a cache directory
outside the source tree, one folder per Kafka version; a marker file written
last makes an interrupted download count as "not there" rather than as a broken
broker.
"""

from __future__ import annotations

import shutil
import tempfile
from importlib import resources
from pathlib import Path

from quoteflow.errors import StackError
from quoteflow.stack.base import Reporter
from quoteflow.stack.system import apt_install, makedirs, run

MARKER = ".complete"


def jar_dir(cache_dir: Path, kafka_version: str) -> Path:
    return cache_dir / f"kafka-{kafka_version}" / "libs"


def ensure_jars(cache_dir: Path, kafka_version: str, report: Reporter) -> Path:
    """Return the folder of broker jars, resolving them with mvn on first use."""
    target = jar_dir(cache_dir, kafka_version)
    if (target / MARKER).is_file():
        return target
    if shutil.which("mvn") is None:
        apt_install(["maven"], report=report, why="Maven (mvn) is needed to fetch Kafka's jars")
    report(f"resolving Apache Kafka {kafka_version} jars with mvn into {target}")
    makedirs(target.parent, 0o755, hint="set stack.cache_dir (env QUOTEFLOW_STACK__CACHE_DIR)")
    staging = Path(tempfile.mkdtemp(prefix="libs-", dir=target.parent))
    try:
        with resources.as_file(resources.files(__package__).joinpath("pom.xml")) as pom:
            run(
                [
                    "mvn", "-B", "-q", "-f", str(pom),
                    f"-Dkafka.version={kafka_version}",
                    "dependency:copy-dependencies",
                    "-DincludeScope=runtime",
                    f"-DoutputDirectory={staging}",
                ],
                what=f"mvn resolving Kafka {kafka_version}",
                timeout_s=1200,
            )
        if not any(staging.glob(f"kafka_2.13-{kafka_version}.jar")):
            raise StackError(f"mvn finished but kafka_2.13-{kafka_version}.jar is missing")
        (staging / MARKER).write_text(kafka_version + "\n")
        if (target / MARKER).is_file():
            return target  # another `stack up` finished the same download first
        if target.exists():
            shutil.rmtree(target)  # an interrupted earlier attempt
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    count = sum(1 for _ in target.glob("*.jar"))
    report(f"resolved {count} jars")
    return target
