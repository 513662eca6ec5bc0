"""Container health probes that need no curl in the image.

`python -m chassis.healthcheck http PORT [PATH]` exits 0 when the API answers 2xx;
`python -m chassis.healthcheck worker FILE [MAX_AGE_S]` exits 0 when the worker's
liveness file (WORKER_HEARTBEAT_FILE) was touched within MAX_AGE_S (30): the worker
touches it while every consume loop comes round, whether MongoDB answers or not.
"""

from __future__ import annotations

import os
import sys
import time
import urllib.request


def _http(port: int, path: str) -> int:
    url = f"http://127.0.0.1:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return 0 if 200 <= response.status < 300 else 1
    except OSError:
        return 1


def _worker(path: str, max_age: float) -> int:
    try:
        age = time.time() - os.stat(path).st_mtime
    except OSError:
        return 1
    return 0 if age <= max_age else 1


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "http":
        return _http(int(argv[1]), argv[2] if len(argv) > 2 else "/healthz")
    if len(argv) >= 2 and argv[0] == "worker":
        return _worker(argv[1], float(argv[2]) if len(argv) > 2 else 30.0)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
