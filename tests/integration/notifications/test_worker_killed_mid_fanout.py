"""A worker killed in the middle of an advisory fan-out, then restarted."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Names
from tests.integration.notifications.harness import (
    ADMIN,
    MailSink,
    Service,
    advisory,
    customer,
    eventually,
    registered,
)

CONTACTS = 120
CONCURRENCY = 2


@pytest.fixture
def slow_mail() -> Iterator[MailSink]:
    sink = MailSink(delay_s=0.02).start()
    try:
        yield sink
    finally:
        sink.stop()


def spawn(service: Service, repo_root: Path, log: Path, group: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP": service.settings.kafka_bootstrap,
        "MONGO_URL": service.settings.mongo_url.get_secret_value(),
        "NOTIFICATIONS_MONGO_DB": service.settings.mongo_db,
        "ADMIN_TOKEN": ADMIN,
        "ENVIRONMENT": "dev",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(service.settings.smtp_port),
        "DISPATCH_CONCURRENCY": str(CONCURRENCY),
        "DISPATCH_BATCH_SIZE": "10",
        "DISPATCH_IDLE_SECONDS": "0.05",
        "ADVISORY_PAGE_SIZE": "20",
        "LEASE_SECONDS": "3",
        "TOPIC_PARTITIONS": "2",
        "WORKER_HEARTBEAT_SECONDS": "0.5",
        "REMINDER_RUN_HOUR_UTC": "23",
        "PYTHONUNBUFFERED": "1",
        # Stable, as in production: the restarted worker's transactional id fences the
        # killed one's at once instead of waiting for its transaction to time out.
        "WORKER_INSTANCE_ID": "notifications-0",
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.integration.notifications.worker_process",
                service.run,
                group,
            ],
            cwd=repo_root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL: a test never leaves a worker behind."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(process.wait, 20)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait, 10)


async def fan_out_with_a_kill(
    service: Service, mail: MailSink, repo_root: Path, tmp_path: Path, sig: signal.Signals
) -> Counter[str]:
    events = [registered(f"LK-{n:04d}", customer(n), None) for n in range(CONTACTS)]
    await service.produce(*events, advisory("ADV-KILL", ["secure-pro"]))
    log = tmp_path / "worker.log"
    first = spawn(service, repo_root, log, service.group)
    try:
        await eventually(
            lambda: (
                len(mail.mails(lambda m: m["X-Notification-Type"] == "security_advisory")) >= 20
            ),
            within=90,
            what=f"the fan-out to start (log: {log})",
        )
        first.send_signal(sig)
        await asyncio.to_thread(first.wait, 20)
    finally:
        await stop_process(first)
    delivered = len(mail.mails(lambda m: m["X-Notification-Type"] == "security_advisory"))
    assert delivered < CONTACTS, "the fan-out finished before the kill; make it slower"

    # After a SIGKILL the embedded broker keeps the dead member in the consumer group
    # for minutes, and a consumer's start waits for its assignment; a fresh group
    # replays the topics instead (idempotent). The fan-out resumes from the database
    # either way, which is what this test is about.
    group = service.group if sig == signal.SIGTERM else f"{service.group}-restarted"
    second = spawn(service, repo_root, log, group)
    try:
        await eventually(
            lambda: (
                len(
                    {
                        m["To"]
                        for m in mail.mails(
                            lambda m: m["X-Notification-Type"] == "security_advisory"
                        )
                    }
                )
                == CONTACTS
            ),
            within=120,
            what=f"every contact after the restart (log: {log})",
        )
        await asyncio.sleep(1.0)  # anything sent twice would show up by now
    finally:
        await stop_process(second)
    return Counter(
        m["To"] for m in mail.mails(lambda m: m["X-Notification-Type"] == "security_advisory")
    )


async def test_sigterm_mid_fanout_then_restart_sends_every_advisory_exactly_once(
    kafka_bootstrap: str,
    mongo_url: str,
    names: Names,
    slow_mail: MailSink,
    repo_root: Path,
    tmp_path: Path,
) -> None:
    service = Service(kafka_bootstrap, mongo_url, names.run, slow_mail.port)
    await service.provision()
    per_contact = await fan_out_with_a_kill(service, slow_mail, repo_root, tmp_path, signal.SIGTERM)
    assert len(per_contact) == CONTACTS
    assert set(per_contact.values()) == {1}


async def test_sigkill_mid_fanout_then_restart_misses_nobody_and_repeats_at_most_in_flight(
    kafka_bootstrap: str,
    mongo_url: str,
    names: Names,
    slow_mail: MailSink,
    repo_root: Path,
    tmp_path: Path,
) -> None:
    service = Service(kafka_bootstrap, mongo_url, names.run, slow_mail.port)
    await service.provision()
    per_contact = await fan_out_with_a_kill(service, slow_mail, repo_root, tmp_path, signal.SIGKILL)
    assert len(per_contact) == CONTACTS
    repeated = [to for to, n in per_contact.items() if n > 1]
    # Only messages in flight at the kill (sent, not yet marked) can go twice, and a
    # repeat carries the same Message-ID, so mail clients can recognise it.
    assert len(repeated) <= CONCURRENCY
    for to in repeated:
        ids = {m["Message-ID"] for m in slow_mail.to(to, "security_advisory")}
        assert len(ids) == 1
