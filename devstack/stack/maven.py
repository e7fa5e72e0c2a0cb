"""Artifacts from Maven Central, resolved with the machine's ``mvn`` into a cache folder.

Kafka's jars and Apicurio Registry's distribution both come this way. Each
lands in its own folder of the cache (outside the source tree), filled in a
staging folder beside it and renamed into place only when complete, with a
marker file written last: an interrupted download counts as "not there"
rather than as a broken server, and two ``stack up`` runs racing each other
cannot leave a half-filled folder behind.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from devstack.stack.system import apt_install, makedirs, run
from quoteflow.reporting import Reporter

MARKER = ".complete"
#: Generous: a cold ~/.m2 on a slow mirror. mvn prints nothing with -q, so a
#: hang would otherwise be silent forever.
MVN_TIMEOUT_S = 1200
CACHE_HINT = "set stack.cache_dir (env QUOTEFLOW_STACK__CACHE_DIR)"


def is_complete(target: Path) -> bool:
    return (target / MARKER).is_file()


def mvn(args: Sequence[str], *, what: str, report: Reporter, why: str) -> str:
    """Run ``mvn -B -q <args>`` (installing Maven first when root and it is missing).

    ``--strict-checksums`` turns a corrupt download into an error instead of
    a warning: these artifacts are servers we run.
    """
    if shutil.which("mvn") is None:
        apt_install(["maven"], report=report, why=f"Maven (mvn) is needed to {why}")
    return run(
        ["mvn", "-B", "-q", "--strict-checksums", *args], what=what, timeout_s=MVN_TIMEOUT_S
    )


def cached(target: Path, fill: Callable[[Path], None], *, marker_text: str) -> Path:
    """``target``, filled by ``fill(staging)`` on first use; later calls return at once.

    ``fill`` must raise when the staging folder is not what it should be
    (missing jar, empty archive), so nothing incomplete is ever marked.
    """
    if is_complete(target):
        return target
    makedirs(target.parent, 0o755, hint=CACHE_HINT)
    staging = Path(tempfile.mkdtemp(prefix=f"{target.name}-", dir=target.parent))
    try:
        fill(staging)
        (staging / MARKER).write_text(marker_text + "\n")
        if is_complete(target):
            return target  # another `stack up` finished the same download first
        if target.exists():
            shutil.rmtree(target)  # an interrupted earlier attempt
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target
