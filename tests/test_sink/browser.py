"""Headless Chromium for the tests that must see a page as a browser renders it.

The inbox is built by JavaScript, so only a real browser proves what it shows.
Debian's ``chromium`` package is installed when missing (as root, through
apt-get); when that is impossible the test fails with the reason, never skips,
so a green run always means the page was really rendered.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
#: Without the background-networking flags Chromium's own connections (updates, sync,
#: QUIC probes) fail on a closed network and can hold up the dump.
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--virtual-time-budget=5000",
)  # fmt: skip


def ensure_chromium() -> str:
    """The Chromium binary, installed with apt-get when missing; AssertionError if it can't be."""
    found = shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).exists() else None)
    if found:
        return found
    if os.geteuid() != 0:
        raise AssertionError(
            f"{CHROMIUM} is missing and only root can install it: run `apt-get install -y chromium`"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900,
                              check=False)  # fmt: skip
        if done.returncode != 0:
            tail = "\n".join(done.stderr.strip().splitlines()[-5:])
            raise AssertionError(f"{' '.join(command)} failed ({done.returncode}): {tail}")
    if not Path(CHROMIUM).exists():
        raise AssertionError(f"apt-get installed chromium but {CHROMIUM} is not there")
    return CHROMIUM


def dump_dom(chromium: str, url: str, profile: Path) -> str:
    """The page's DOM after its scripts ran (virtual time: timers fire without waiting)."""
    done = subprocess.run(
        [chromium, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"chromium failed ({done.returncode}): {done.stderr[-2000:]}"
    return done.stdout
