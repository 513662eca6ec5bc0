"""Child processes that never outlive us: own process group, killed as a group.

Each child runs under `devkit.guard` in its own session (so a Ctrl-C in the terminal
reaches only us and we stop children in order). The guard has PR_SET_PDEATHSIG and
also watches our pid, so if we die without cleaning up (SIGKILL, a crash) it stops
the server: SIGTERM, then SIGKILL after a grace period.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

_PR_SET_PDEATHSIG = 1


class PortInUse(RuntimeError):
    """A port we must bind is taken; the message names the port and the variable to change."""


def _die_with_parent(parent_pid: int) -> None:
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def ensure_port_free(host: str, port: int, variable: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise PortInUse(
                    f"port {port} on {host} is already in use: set {variable} to a free port"
                ) from None
            raise


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class ManagedProcess:
    """One child (and everything it spawns), with its output in a log file."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        parent = os.getpid()
        # The guard stops the server if we vanish, escalating to SIGKILL after a grace period.
        guarded = [sys.executable, "-m", "devkit.guard", str(parent), "--", *self.argv]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                guarded,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
                preexec_fn=lambda: _die_with_parent(parent),
            )

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def signal_group(self, sig: int) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def stop(self, timeout: float = 6.0) -> None:
        """SIGTERM the group, wait, then SIGKILL whatever is left of it."""
        if self.proc is None:
            return
        # The guard alone: it passes SIGTERM on and escalates by itself.
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=timeout)
        self.signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=2)


def wait_until(
    check: Callable[[], bool],
    *,
    timeout: float,
    interval: float = 0.2,
    process: ManagedProcess | None = None,
) -> None:
    """Polls `check()` until true; fails fast with the log tail if `process` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and not process.alive():
            raise RuntimeError(
                f"{process.name} exited during start-up (log {process.log_path}):\n"
                f"{process.log_tail()}"
            )
        try:
            if check():
                return
        except Exception:  # noqa: S110 (not answering yet is what we are waiting for)
            pass
        time.sleep(interval)
    name = process.name if process else "server"
    raise TimeoutError(f"{name} did not become ready within {timeout:.0f}s")


def stop_all(processes: Sequence[ManagedProcess], timeout: float = 6.0) -> None:
    """Asks every guard to stop at once, then waits; stragglers' groups get SIGKILL."""
    for process in processes:
        if process.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in processes:
        if process.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        process.stop(timeout=0.5)
