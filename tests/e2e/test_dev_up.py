"""`./dev up` as a user runs it: all three services ready, then a clean stop.

Runs the real thing (broker, database, mail sink, three APIs and three workers)
on free ports under a temporary DATA_DIR, so it can run beside a developer's own
`./dev up`.
"""

from __future__ import annotations

import os
import signal
import smtplib
import subprocess
import sys
import time
import urllib.request
from email.message import EmailMessage
from pathlib import Path

import pytest

from devkit.up import fresh_env


def _descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _get(url: str, token: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url)  # noqa: S310 (a local http URL)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=3) as response:  # noqa: S310
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.fixture
def suite_env(tmp_path: Path) -> dict[str, str]:
    return {**fresh_env(dict(os.environ)), "DATA_DIR": str(tmp_path / "data")}


def test_dev_up_gets_ready_and_sigterm_leaves_nothing_behind(
    suite_env: dict[str, str], repo_root: Path
) -> None:
    started = time.monotonic()
    up = subprocess.Popen(
        [sys.executable, "-m", "devkit.up", "--ready-timeout", "90"],
        cwd=repo_root,
        env=suite_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert up.stdout is not None
    output: list[str] = []
    try:
        for line in up.stdout:
            output.append(line)
            if "All services ready" in line or up.poll() is not None:
                break
        ready_after = time.monotonic() - started
        assert any("All services ready" in line for line in output), "".join(output)
        assert ready_after < 60, f"ready after {ready_after:.1f}s"
        table = "".join(output)
        for port_var in ("REGISTRATION_PORT", "COMMISSIONS_PORT", "NOTIFICATIONS_PORT"):
            assert suite_env[port_var] in table
        portal = f"http://127.0.0.1:{suite_env['PORTAL_PORT']}"
        assert portal in table
        assert _get(f"{portal}/readyz")[0] == 200

        for port_var in ("REGISTRATION_PORT", "COMMISSIONS_PORT", "NOTIFICATIONS_PORT"):
            base = f"http://127.0.0.1:{suite_env[port_var]}"
            assert _get(f"{base}/healthz")[0] == 200
            status, body = _get(f"{base}/readyz")
            assert status == 200, body
            status, body = _get(f"{base}/status")
            assert status == 200, body
            status, body = _get(f"{base}/metrics")
            assert status == 200 and "http_requests_total" in body
            assert "channelkeep_worker_assigned_partitions" in body
            assert _get(f"{base}/docs")[0] == 200
            assert _get(f"{base}/openapi.json")[0] == 200

        # CONTRACT 6.1: ./dev up gives registration a CHECKOUT_TOKEN of its own.
        registration = f"http://127.0.0.1:{suite_env['REGISTRATION_PORT']}"
        steer = f"{registration}/v1/checkout/entitlements/LK-NONE/partner-of-record"
        assert _get(steer, suite_env["CHECKOUT_TOKEN"])[0] == 404  # accepted; no such licence
        assert _get(steer, suite_env["ADMIN_TOKEN"])[0] == 403
        assert _get(steer)[0] == 401

        # The mail sink keeps what it is sent as .eml files under DATA_DIR/mail.
        message = EmailMessage()
        message["From"] = "vendor@example.com"
        message["To"] = "customer@example.com"
        message["Subject"] = "sink check"
        message.set_content("hello")
        with smtplib.SMTP("127.0.0.1", int(suite_env["EMBEDDED_SMTP_PORT"]), timeout=5) as smtp:
            smtp.send_message(message)
        mail_dir = Path(suite_env["DATA_DIR"]) / "mail"
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not list(mail_dir.glob("*.eml")):
            time.sleep(0.1)
        [kept] = list(mail_dir.glob("*.eml"))
        assert b"Subject: sink check" in kept.read_bytes()

        family = _descendants(up.pid)
        # broker, database, sink and 3 x (api, worker), at least
        assert len(family) >= 9, family
    finally:
        family = _descendants(up.pid) if up.poll() is None else set()
        stop_started = time.monotonic()
        up.send_signal(signal.SIGTERM)
        try:
            up.wait(timeout=15)
        finally:
            if up.poll() is None:
                up.kill()
    stopped_in = time.monotonic() - stop_started
    assert up.returncode == 0, "".join(output) + (up.stdout.read() if up.stdout else "")
    assert stopped_in < 10, f"stopped in {stopped_in:.1f}s"
    time.sleep(0.5)
    left = sorted(p for p in family if _alive(p))
    assert left == [], f"processes left behind: {left}"
