"""Advisory fan-out into a local SMTP sink: messages/s, total time, peak RSS, per size.

Starts the embedded broker and database (or uses KAFKA_BOOTSTRAP / MONGO_URL) and
the devkit mail sink as a separate process, seeds N entitlements (one contact
each) straight into the projection, publishes one advisory job and runs the
real fan-out and dispatcher (planning, rendering, isolation check, SMTP,
delivery records, outcomes to Kafka) until every contact has its message.
The baseline is the same number of messages sent over the same SMTP pool with
no planning, rendering or records: the ratio is our overhead. The fan-out is
bounded by the database (two writes per message: the record, then its mark);
the baseline by the SMTP client and sink.

    .venv/bin/python bench/notifications_advisory_fanout.py --sizes 10000,100000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient, monitoring

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _floors import floor_line, notifications_floor  # noqa: E402
from _report import figure  # noqa: E402

from chassis.kafka import ensure_topics, make_producer  # noqa: E402
from chassis.metrics import WorkerCounters  # noqa: E402
from devkit.embedded import EmbeddedSuite, smtp_answers  # noqa: E402
from devkit.processes import free_port  # noqa: E402
from services.notifications.adapters.collections import ENTITLEMENTS  # noqa: E402
from services.notifications.adapters.indexes import ensure_indexes  # noqa: E402
from services.notifications.adapters.jobs import MongoAdvisoryJobs  # noqa: E402
from services.notifications.adapters.outcomes import KafkaOutcomePublisher  # noqa: E402
from services.notifications.adapters.rendering import Renderer  # noqa: E402
from services.notifications.adapters.smtp import SmtpSender  # noqa: E402
from services.notifications.adapters.stores import Stores  # noqa: E402
from services.notifications.adapters.webhooks import FernetSecretBox  # noqa: E402
from services.notifications.bootstrap import vendor_of  # noqa: E402
from services.notifications.config import DEV_WEBHOOK_SECRET_KEYS, Settings  # noqa: E402
from services.notifications.domain.model import contact_id  # noqa: E402
from services.notifications.domain.retry import RetryPolicy  # noqa: E402
from services.notifications.service_layer.advisories import AdvisoryFanout  # noqa: E402
from services.notifications.service_layer.dispatch import (  # noqa: E402
    Dispatcher,
    DispatchSettings,
)
from services.notifications.service_layer.ports import OutgoingEmail, SystemClock  # noqa: E402

ADVISORY_AT = dt.datetime(2027, 6, 1, 9, 0, tzinfo=dt.UTC)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def seed(db: Any, n: int) -> None:
    partners = [f"P-BENCH{i:02d}" for i in range(20)]
    await db["partners"].insert_many(
        [
            {
                "_id": p,
                "display_name": f"Bench Partner {p[-2:]}",
                "legal_name": f"Bench Partner {p[-2:]} Ltd",
                "status": "active",
                "co_brand_customer_messages": True,
                "contact_email": f"partner{p[-2:]}@bench.example",
                "seller_code": None,
                "branding": {},
            }
            for p in partners
        ]
    )
    batch: list[dict[str, Any]] = []
    for i in range(n):
        email = f"contact{i}@customer.example"
        batch.append(
            {
                "_id": f"LK-{i:07d}",
                "product": "secure-pro",
                "sku": "SECURE-PRO-1Y",
                "term_start": "2027-01-10",
                "term_end": "2028-01-09",
                "customer": {
                    "customer_id": f"C-{i}",
                    "org_name": f"Customer {i} GmbH",
                    "contact_name": f"Contact {i}",
                    "email": email,
                },
                "contact_id": contact_id(email),
                "por": partners[i % len(partners)] if i % 3 else None,
                "version": ADVISORY_AT,
            }
        )
        if len(batch) == 5000:
            await db[ENTITLEMENTS].insert_many(batch, ordered=False)
            batch = []
    if batch:
        await db[ENTITLEMENTS].insert_many(batch, ordered=False)


async def baseline(settings: Settings, n: int) -> float:
    sender = SmtpSender(
        host=settings.smtp_host, port=settings.smtp_port, domain="bench.example", connections=16
    )
    text = "x" * 1500
    numbers = iter(range(n))

    async def worker() -> None:  # 16 at a time, without n coroutines in memory
        for i in numbers:
            await sender.send(
                OutgoingEmail(
                    str(uuid.uuid4()),
                    f"b{i}@x.example",
                    "bench@vendor.example",
                    "s",
                    text,
                    f"<p>{text}</p>",
                    None,
                    "security_advisory",
                )
            )

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(16)))
    await sender.close()
    return time.perf_counter() - started


def _cpu_of(pid: int | None) -> float:
    """User + system CPU seconds of `pid` and its children (Linux; 0 elsewhere)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return 0.0
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(_cpu_of(int(child)) for child in children)


def cpu_seconds(suite: EmbeddedSuite, sink: subprocess.Popen[bytes]) -> dict[str, float]:
    """CPU used so far by this process (the fan-out), the database, the broker and the sink."""
    times = os.times()
    found = {"worker": times.user + times.system, "smtp sink": _cpu_of(sink.pid)}
    for process in suite.processes:
        label = "database" if "database" in process.name else "broker"
        found[label] = _cpu_of(process.pid)
    return found


def per_message_ms(before: dict[str, float], after: dict[str, float], n: int) -> str:
    return ", ".join(
        f"{label} {1000 * (after[label] - before[label]) / n:.2f}" for label in sorted(after)
    )


async def floor(settings: Settings, n: int, *, drop: bool = True) -> float:
    """The stage's floor (bench/_floors.py): record, pipelined send, outcome, in bulk."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        settings.mongo_url.get_secret_value(), tz_aware=True
    )
    db = client[f"bench_floor_{uuid.uuid4().hex[:8]}"]
    sender = SmtpSender(
        host=settings.smtp_host,
        port=settings.smtp_port,
        domain="vendor.example",
        connections=settings.smtp_connections,
    )
    text = "An attacker on the network can run code as SYSTEM. " * 30

    async def send(i: int) -> None:
        await sender.send(
            OutgoingEmail(
                str(uuid.uuid4()),
                f"contact{i}@customer.example",
                settings.smtp_from,
                "Security advisory ADV-BENCH",
                text,
                f"<p>{text}</p>",
                None,
                "security_advisory",
            )
        )

    try:
        return await notifications_floor(
            db,
            send,
            n,
            batch=settings.dispatch_batch_size,
            concurrency=settings.dispatch_concurrency,
        )
    finally:
        await sender.close()
        if drop:
            await client.drop_database(db.name)
        await client.close()


class CommandTally(monitoring.CommandListener):
    """Database commands of the fan-out by name: how many, and their round-trip time."""

    def __init__(self) -> None:
        self.count: Counter[str] = Counter()
        self.seconds: Counter[str] = Counter()
        self.active = False

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        pass

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        if self.active:
            self.count[event.command_name] += 1
            self.seconds[event.command_name] += event.duration_micros / 1e6

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self.succeeded(event)  # type: ignore[arg-type]

    def report(self, n: int) -> str:
        return ", ".join(
            f"{name} {self.count[name] / n:.2f}/msg {1000 * self.seconds[name] / n:.2f} ms/msg"
            for name, _ in self.seconds.most_common()
        )


async def fan_out(
    settings: Settings,
    n: int,
    *,
    drop: bool = True,
    cpu_probe: Callable[[], dict[str, float]] | None = None,
    cpu_marks: list[dict[str, float]] | None = None,
    tally: CommandTally | None = None,
) -> dict[str, float]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        settings.mongo_url.get_secret_value(),
        tz_aware=True,
        event_listeners=[tally] if tally is not None else [],
    )
    db = client[f"bench_{uuid.uuid4().hex[:8]}"]
    topic = f"notifications.deliveries.v1.bench-{uuid.uuid4().hex[:6]}"
    await ensure_topics(settings.kafka_bootstrap, [topic], partitions=6)
    producer = make_producer(settings.kafka_bootstrap)
    await producer.start()
    sender = SmtpSender(
        host=settings.smtp_host,
        port=settings.smtp_port,
        domain="vendor.example",
        connections=settings.smtp_connections,
    )
    try:
        await ensure_indexes(db)
        seeded = time.perf_counter()
        await seed(db, n)
        seed_s = time.perf_counter() - seeded
        stores = Stores.over(db)
        counters = WorkerCounters()
        clock = SystemClock()
        await MongoAdvisoryJobs(db).open(
            {
                "advisory_id": "ADV-BENCH",
                "severity": "critical",
                "title": "Remote code execution in the update agent",
                "summary": "An attacker on the network can run code as SYSTEM. " * 4,
                "url": "https://vendor.example/advisories/ADV-BENCH",
                "products": ["secure-pro"],
            },
            ADVISORY_AT,
        )
        fanout = AdvisoryFanout(
            jobs=stores.advisory_jobs,
            entitlements=stores.projections,
            deliveries=stores.deliveries,
            webhooks=stores.webhooks,
            clock=clock,
            counters=counters,
            page_size=settings.advisory_page_size,
        )
        dispatcher = Dispatcher(
            deliveries=stores.deliveries,
            projections=stores.projections,
            preferences=stores.preferences,
            webhooks=stores.webhooks,
            advisories=stores.advisory_jobs,
            email_sender=sender,
            webhook_sender=None,  # type: ignore[arg-type]
            publisher=KafkaOutcomePublisher(producer, topic),
            secret_box=FernetSecretBox([DEV_WEBHOOK_SECRET_KEYS]),
            renderer=Renderer(vendor_of(settings)),
            vendor=vendor_of(settings),
            clock=clock,
            counters=counters,
            settings=DispatchSettings(
                from_address=settings.smtp_from,
                public_base_url=settings.public_base_url,
                unsubscribe_secret=b"bench",
                email_retry=RetryPolicy(3),
                webhook_retry=RetryPolicy(3),
                batch_size=settings.dispatch_batch_size,
                concurrency=settings.dispatch_concurrency,
            ),
        )
        started = time.perf_counter()
        if cpu_probe is not None and cpu_marks is not None:
            cpu_marks.append(cpu_probe())  # after seeding: the fan-out's own CPU only
        if tally is not None:
            tally.active = True

        async def plan() -> None:
            while await fanout.step():
                pass

        async def send() -> None:
            while True:
                handled = await dispatcher.run_once()
                if handled == 0:
                    job = await stores.advisory_jobs.get("ADV-BENCH")
                    done = job is not None and job["phase"] == "done"
                    if done and await dispatcher.run_once() == 0:
                        return
                    await asyncio.sleep(0.05)

        await asyncio.gather(plan(), send())
        total_s = time.perf_counter() - started
        if tally is not None:
            tally.active = False
        sent = counters.get(
            "deliveries_total", type="security_advisory", channel="email", status="sent"
        )
        assert sent == n, f"sent {sent} of {n}"
        return {"seed_s": seed_s, "total_s": total_s, "sent": sent}
    finally:
        await sender.close()
        await producer.stop()
        if drop:  # an external database; the embedded one goes with its directory
            await client.drop_database(db.name)
        await client.close()


@contextlib.contextmanager
def bench_servers() -> Iterator[tuple[EmbeddedSuite, subprocess.Popen[bytes], Settings, bool]]:
    """The embedded broker and database (or KAFKA_BOOTSTRAP / MONGO_URL), the devkit mail
    sink as its own process and the notifications settings over them; all removed afterwards.

    Yields the suite, the sink, the settings and whether the database is external (then
    what a run creates in it is dropped; the embedded one goes with its directory).
    """
    work = Path(tempfile.mkdtemp(prefix="ck-bench-notif-"))
    env = {k: os.environ[k] for k in ("KAFKA_BOOTSTRAP", "MONGO_URL") if os.environ.get(k)}
    env["EMBEDDED_KAFKA_PORT"], env["EMBEDDED_MONGO_PORT"] = str(free_port()), str(free_port())
    suite = EmbeddedSuite(data_dir=work / "embedded", env=env, with_smtp=False).start()
    smtp_port = free_port()
    sink = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devkit.smtp_sink",
            "--host",
            "127.0.0.1",
            "--port",
            str(smtp_port),
            "--dir",
            str(work / "mail"),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if smtp_answers("127.0.0.1", smtp_port):
                    break
            except OSError:
                time.sleep(0.2)
        settings = Settings(
            environment="dev",
            kafka_bootstrap=suite.kafka_bootstrap,
            mongo_url=suite.mongo_url,
            admin_token="bench-admin-token",  # noqa: S106 (a throwaway local run)
            smtp_host="127.0.0.1",
            smtp_port=smtp_port,
        )
        yield suite, sink, settings, "MONGO_URL" in env
    finally:
        sink.terminate()
        sink.wait(10)
        suite.stop()
        shutil.rmtree(work, ignore_errors=True)  # the embedded data and every .eml


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--quick", action="store_true", help="1,000 entitlements only")
    args = parser.parse_args()
    if args.quick:
        args.sizes = "1000"
    sizes = [int(s) for s in args.sizes.split(",")]
    with bench_servers() as (suite, sink, settings, external):
        print(
            f"{'size':>8} {'total s':>9} {'msgs/s':>9} {'peak RSS MB':>12} "
            f"{'baseline s':>11} {'ratio':>7} {'floor/s':>9} {'ratio':>7}"
        )
        floors: list[tuple[float, float]] = []
        for n in sizes:
            marks: list[dict[str, float]] = []
            tally = CommandTally()
            figures = asyncio.run(
                fan_out(
                    settings,
                    n,
                    drop=external,
                    cpu_probe=lambda: cpu_seconds(suite, sink),
                    cpu_marks=marks,
                    tally=tally,
                )
            )
            cpu_0 = marks[0]
            cpu_1 = cpu_seconds(suite, sink)
            rss = peak_rss_mb()  # the fan-out's (seeding included), before the baseline's
            base = asyncio.run(baseline(settings, n))
            cpu_2 = cpu_seconds(suite, sink)
            floor_rate = asyncio.run(floor(settings, n, drop=external))
            cpu_3 = cpu_seconds(suite, sink)
            rate = n / figures["total_s"]
            floors.append((rate, floor_rate))
            print(
                f"{n:>8} {figures['total_s']:>9.1f} {rate:>9.0f} {rss:>12.0f} "
                f"{base:>11.1f} {figures['total_s'] / base:>7.1f} "
                f"{floor_rate:>9.0f} {rate / floor_rate:>7.2f}",
                flush=True,
            )
            print(
                f"  CPU ms/message: fan-out {per_message_ms(cpu_0, cpu_1, n)};"
                f" floor {per_message_ms(cpu_2, cpu_3, n)}",
                flush=True,
            )
            print(f"  database commands of the fan-out: {tally.report(n)}", flush=True)
            figure(
                f"advisory fan-out to {n:,} contacts, against the stage's floor",
                rate,
                "msg/s",
                baseline=floor_rate,
                baseline_name="floor (record, pipelined send, outcome)",
                aim=">= 0.50",
            )
            figure(
                f"advisory fan-out to {n:,} contacts",
                rate,
                "msg/s",
                baseline=n / base,
                baseline_name="same mails, bare SMTP pool",
                aim="100k in < 60 s (1,667 msg/s)",
            )
            figure(f"peak RSS, {n:,} contacts", rss, "MB", aim="< 300 MB")
        # One line per run, for the largest size (what bench/_guard.py reads).
        print(floor_line("notifications", *floors[-1]), flush=True)


if __name__ == "__main__":
    main()
