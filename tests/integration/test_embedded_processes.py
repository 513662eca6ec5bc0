"""The embedded servers: clear errors on taken ports, and no orphans, ever."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devkit.embedded import EmbeddedSuite
from devkit.processes import PortInUse, free_port


def test_a_taken_port_names_the_port_and_the_variable(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        suite = EmbeddedSuite(data_dir=tmp_path, env={"EMBEDDED_KAFKA_PORT": str(port)})
        with pytest.raises(PortInUse) as raised:
            suite.start()
    message = str(raised.value)
    assert str(port) in message
    assert "EMBEDDED_KAFKA_PORT" in message
    assert "\n" not in message
    assert suite.processes == []


def test_given_servers_are_used_and_nothing_is_started(tmp_path: Path) -> None:
    env = {
        "KAFKA_BOOTSTRAP": "kafka.example:9092",
        "MONGO_URL": "mongodb://db.example/",
        "SMTP_HOST": "mail.example",
        "SMTP_PORT": "25",
    }
    suite = EmbeddedSuite(data_dir=tmp_path, env=env).start()
    assert suite.processes == []
    assert suite.service_env()["KAFKA_BOOTSTRAP"] == "kafka.example:9092"
    assert suite.service_env()["MONGO_URL"] == "mongodb://db.example/"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _children(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                found.append(int(entry.name))
    return found


def _wait_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [p for p in pids if _alive(p)]
        if not left:
            return []
        time.sleep(0.2)
    return [p for p in pids if _alive(p)]


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_servers_die_with_their_parent(tmp_path: Path, how: str) -> None:
    """A parent that is killed outright (a crash) still leaves no server behind."""
    script = (
        "import sys, time, signal\n"
        "from pathlib import Path\n"
        "from devkit.embedded import EmbeddedSuite\n"
        f"env = {{'EMBEDDED_KAFKA_PORT': '{free_port()}', 'EMBEDDED_MONGO_PORT': '{free_port()}',"
        f" 'EMBEDDED_SMTP_PORT': '{free_port()}'}}\n"
        f"suite = EmbeddedSuite(data_dir=Path({str(tmp_path)!r}), env=env)\n"
        "signal.signal(signal.SIGTERM, lambda *a: (suite.stop(), sys.exit(0)))\n"
        "suite.start()\n"
        "print(' '.join(str(p.pid) for p in suite.processes), flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=os.getcwd()
    )
    assert parent.stdout is not None
    line = parent.stdout.readline()
    guards = [int(p) for p in line.split()]
    assert len(guards) == 3, f"expected broker, database and sink guards, got {line!r}"
    servers = [pid for guard in guards for pid in _children(guard)]
    assert len(servers) == 3, servers
    pids = guards + servers
    assert all(_alive(p) for p in pids)
    parent.send_signal(signal.SIGKILL if how == "sigkill" else signal.SIGTERM)
    parent.wait(timeout=15)
    assert _wait_gone(pids, timeout=10) == []
