"""Runs one server and makes sure it never outlives the process that asked for it.

`python -m devkit.guard PARENT_PID -- ARGV...`: starts ARGV, then stops it (SIGTERM,
then SIGKILL after a grace period) when PARENT_PID goes away or when the guard is
told to stop. Needed because a server may take its time over SIGTERM, and the
kernel's parent-death signal cannot escalate to SIGKILL by itself.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

GRACE_SECONDS = 5.0


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    parent = int(argv[0])
    child = subprocess.Popen(argv[2:])
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while child.poll() is None:
        if stopping or os.getppid() != parent:
            child.terminate()
            try:
                child.wait(timeout=GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            break
        time.sleep(0.2)
    return child.returncode if child.returncode is not None else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
