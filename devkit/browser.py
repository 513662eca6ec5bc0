"""A headless Chromium for the browser tests: Debian's `chromium`, installed on demand.

Playwright's own browser download is not used (it needs a CDN that CI may not
reach); Playwright drives the system Chromium through `executable_path`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser")
LAUNCH_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


class ChromiumUnavailable(RuntimeError):
    """No Chromium here, and we could not install one."""


def find_chromium() -> str | None:
    explicit = os.environ.get("CHROMIUM_PATH")
    if explicit and Path(explicit).is_file() and os.access(explicit, os.X_OK):
        return explicit
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def ensure_chromium(timeout: float = 900.0) -> str:
    """The path of a Chromium binary, installing Debian's `chromium` with apt-get if missing.

    Installs only as root on a machine with apt-get; otherwise fails, saying what to do.
    """
    found = find_chromium()
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is None:
        raise ChromiumUnavailable(
            "Chromium not found and apt-get is not available: install Chromium and put it on "
            "PATH, or set CHROMIUM_PATH to its binary"
        )
    if os.geteuid() != 0:
        raise ChromiumUnavailable(
            "Chromium not found: run `sudo apt-get install -y chromium` (or set CHROMIUM_PATH); "
            "the tests install it themselves only when run as root"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (
        [apt, "-q", "update"],
        [apt, "-q", "install", "-y", "--no-install-recommends", "chromium"],
    ):
        try:
            result = subprocess.run(
                argv, env=env, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise ChromiumUnavailable(
                f"`{' '.join(argv)}` timed out after {timeout:.0f}s"
            ) from None
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-15:])
            raise ChromiumUnavailable(f"`{' '.join(argv)}` failed ({result.returncode}):\n{tail}")
    found = find_chromium()
    if found is None:
        raise ChromiumUnavailable("apt-get installed chromium, but no chromium binary is on PATH")
    return found
