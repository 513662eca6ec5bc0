"""Scale-out: 2 and 3 worker processes of one group split the partitions and give what one gives.

For each service, the same input goes to fresh topics and a fresh database three times,
handled by 1, 2 and 3 worker processes (separate OS processes of one consumer group,
distinct WORKER_INSTANCE_IDs, static members). Before any input is produced, the
workers' heartbeats must show the input topic's partitions split among all of them
(each owns some, none owns one twice); after it, each must have consumed some of the
input, and together they must give exactly what the single worker gave:

- commissions: the ledger (and the oracle's ledger), each event committed once;
- registration: the entitlement events (by type, licence key and content) and state;
- notifications: the delivery records and one welcome mail per contact.

Nothing here sleeps for a fixed time: every wait is on an outcome, with a generous bound.

Found by this test (issue 20), now settled: with 2 or 3 workers, a refund produced
*before* its order (the oracle stream's "early" refunds, held until the order arrives)
now and then never gave its clawback. The refunds topic is keyed by order id and the
entitlements topic by licence key, so an order line's order and its refunds are
written by different processes at the same time; a writer that lost the order line's
version check took the winner's version number for its own write and went on. Each
run produces the stream as it comes, early refunds first (the deterministic case is
tests/integration/commissions/test_concurrent_writers.py).
On the shared 2-core box this shows the mechanism, not a speed-up (the broker and the
database share the cores): the cluster arithmetic is in docs/RELIABILITY.md.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from pymongo import AsyncMongoClient

from chassis.heartbeat import COLLECTION as HEARTBEATS
from chassis.kafka import ensure_topics
from services.notifications.adapters.indexes import ensure_indexes as notifications_indexes
from services.registration.adapters.mongo import ensure_indexes as registration_indexes
from shared.envelope import encode, new_envelope
from tests.conftest import Names
from tests.integration.commissions.harness import (
    create_topics,
    env_for,
    produce,
    read_topic,
    settings_for,
)
from tests.integration.commissions.oracle import expected_events
from tests.integration.commissions.test_worker import ledger_summary, make_stream, order_record
from tests.integration.notifications.harness import (
    ADMIN,
    MailSink,
    Service,
    customer,
    registered,
)
from tests.unit.registration.builders import at, line, order

ROOT = Path(__file__).resolve().parents[2]
PARTITIONS = 6  # split evenly by 2 and by 3
WORKERS = (1, 2, 3)
WAIT_S = 150.0  # a bound, not a sleep: on an idle box each wait takes seconds

pytestmark = pytest.mark.timeout(600)


async def until(check: Callable[[], Awaitable[bool]], what: str, within: float = WAIT_S) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out after {within:.0f} s waiting for {what}")


class Fleet:
    """`count` worker processes of one service in one consumer group, and their heartbeats."""

    def __init__(
        self,
        argv: list[str],
        env: dict[str, str],
        db: Any,
        count: int,
        prefix: str,
        log: Path,
    ) -> None:
        self.argv, self.env, self.db, self.count, self.log = argv, env, db, count, log
        self.instances = [f"{prefix}-{n}" for n in range(count)]
        self.processes: list[subprocess.Popen[bytes]] = []
        self.restarted: list[str] = []

    def start(self) -> None:
        for instance in self.instances:
            self.processes.append(self._spawn(instance))

    def _spawn(self, instance: str) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            **self.env,
            "WORKER_INSTANCE_ID": instance,
            "WORKER_HEARTBEAT_SECONDS": "0.5",
            "TOPIC_PARTITIONS": str(PARTITIONS),
            "CONSUMER_EMPTY_FETCH_BACKOFF_MS": "50",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
        with self.log.open("ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", *self.argv],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    async def restart(self, instance: str) -> None:
        """SIGKILL and start again under the same instance id (a static member comes back)."""
        number = self.instances.index(instance)
        process = self.processes[number]
        process.kill()
        await asyncio.to_thread(process.wait, 10)
        self.processes[number] = self._spawn(instance)
        self.restarted.append(instance)

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL: a test never leaves a worker behind."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                await asyncio.to_thread(process.wait, 30)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait, 10)

    async def beats(self) -> dict[str, dict[str, Any]]:
        self.alive()
        found = self.db[HEARTBEATS].find({"_id": {"$in": self.instances}})
        return {doc["_id"]: doc async for doc in found}

    def alive(self) -> None:
        dead = [p.returncode for p in self.processes if p.poll() is not None]
        assert not dead, f"a worker exited with {dead} (log: {self.log})"

    async def split(self, topic: str) -> dict[str, list[str]]:
        """Waits until the workers' heartbeats show `topic`'s partitions split among all."""
        wanted = {f"{topic}:{p}" for p in range(PARTITIONS)}
        owned: dict[str, list[str]] = {}

        async def is_split() -> bool:
            nonlocal owned
            beats = await self.beats()
            owned = {i: sorted(set(b["assigned"]) & wanted) for i, b in beats.items()}
            claims = Counter(tp for tps in owned.values() for tp in tps)
            return (
                len(owned) == self.count
                and all(owned.values())
                and set(claims) == wanted
                and max(claims.values()) == 1
            )

        # When several members join at once the embedded broker now and then answers one
        # of them an empty assignment; aiokafka's coordinator fails on it and that worker
        # never finishes starting (no heartbeat). A worker left out of the split is
        # restarted, as its pod would be, twice at most.
        for attempt in range(3):
            try:
                await until(
                    is_split,
                    f"{self.count} workers to split {topic} (log: {self.log},"
                    f" restarted: {self.restarted})",
                    within=WAIT_S / 3 if attempt < 2 else WAIT_S,
                )
                return owned
            except AssertionError:
                if attempt == 2:
                    raise
                for instance in self.instances:
                    if not owned.get(instance):
                        await self.restart(instance)
        return owned

    async def consumed(self, topic: str, records: int) -> dict[str, float]:
        """Waits until the workers' counters add up to `records` consumed from `topic`."""
        per_worker: dict[str, float] = {}

        async def all_counted() -> bool:
            nonlocal per_worker
            per_worker = {
                instance: sum(
                    c["value"]
                    for c in beat.get("counters", [])
                    if c["name"] == "records_total" and c["labels"].get("topic") == topic
                )
                for instance, beat in (await self.beats()).items()
            }
            return sum(per_worker.values()) >= records

        await until(all_counted, f"{records} records of {topic} counted (log: {self.log})")
        return per_worker


async def committed(bootstrap: str, group: str, topic: str, records: int) -> None:
    """Waits until `group` has committed offsets past `records` records of `topic`.

    The offsets are committed in the Kafka transaction with the batch's output, so
    once they are, everything the input gave is committed too (counters count records
    when they are consumed, before their batch commits).
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:

        async def all_committed() -> bool:
            offsets = await admin.list_consumer_group_offsets(group)
            done = sum(m.offset for tp, m in offsets.items() if tp.topic == topic and m.offset > 0)
            return bool(done >= records)

        await until(all_committed, f"{group} to commit {records} records of {topic}")
    finally:
        await admin.close()


@asynccontextmanager
async def fleet(
    argv: list[str], env: dict[str, str], db: Any, count: int, prefix: str, log: Path
) -> AsyncIterator[Fleet]:
    workers = Fleet(argv, env, db, count, prefix, log)
    workers.start()
    try:
        yield workers
    finally:
        await workers.stop()


def assert_shared(per_worker: dict[str, float], count: int) -> None:
    assert len(per_worker) == count and all(per_worker.values()), (
        f"each of the {count} workers should have consumed some input: {per_worker}"
    )


@pytest.fixture
def client(mongo_url: str) -> Iterator[AsyncMongoClient[dict[str, Any]]]:
    yield AsyncMongoClient(mongo_url, tz_aware=True)


# --- commissions ---------------------------------------------------------------------------


async def test_commissions_workers_split_the_partitions_and_give_the_same_ledger(
    kafka_bootstrap: str,
    mongo_url: str,
    client: AsyncMongoClient[dict[str, Any]],
    tmp_path: Path,
) -> None:
    ledgers: dict[int, dict[str, tuple[str, str, int]]] = {}
    expected: dict[str, tuple[str, str, int]] = {}
    try:
        for count in WORKERS:
            names = Names()
            settings = settings_for(names, kafka_bootstrap, mongo_url, names.database("scale"))
            settings = settings.model_copy(update={"topic_partitions": PARTITIONS})
            lines, early, late = make_stream(settings, 240, seed=31)
            orders = [order_record(settings, ln, f"evt-{ln.order_id}") for ln in lines]
            expected = expected_events(lines)
            await create_topics(settings)
            db = client[settings.mongo_db]
            argv = ["services.commissions.entrypoints.worker"]
            log = tmp_path / f"commissions-{count}.log"
            async with fleet(argv, env_for(settings), db, count, "commissions", log) as workers:
                await workers.split(settings.entitlements_topic)
                # As the oracle stream comes: some refunds before their orders, held until
                # the order arrives, which another worker may be booking at that moment.
                await produce(kafka_bootstrap, early)
                await produce(kafka_bootstrap, orders)
                await produce(kafka_bootstrap, late)
                records = await read_topic(
                    kafka_bootstrap,
                    settings.ledger_topic,
                    expect=len(expected),
                    wait_s=WAIT_S,
                    settle_s=2,
                )
                assert_shared(
                    await workers.consumed(settings.entitlements_topic, len(orders)), count
                )
            ids = Counter(json.loads(r.value)["event_id"] for r in records)
            assert max(ids.values()) == 1, f"{count} workers committed a ledger event twice"
            ledgers[count] = ledger_summary(records)
            await client.drop_database(settings.mongo_db)
    finally:
        await client.close()
    assert ledgers[1] == expected
    assert ledgers[2] == ledgers[1]
    assert ledgers[3] == ledgers[1]


# --- registration --------------------------------------------------------------------------


def registration_orders() -> list[tuple[bytes, bytes]]:
    """New sales, renewals and a second order on some keys: the same bytes for every run."""
    records = []
    for n in range(180):
        key = f"LK-{n % 120:04d}"
        kind = "new" if n < 120 else "renewal"
        term = ("2027-01-10", "2028-01-09") if n < 120 else ("2028-01-10", "2029-01-09")
        placed = order(f"WEB-{n}", line(key, kind, term=term), customer_id=f"C-{n % 120}")
        envelope = new_envelope(
            "order.placed",
            placed,
            occurred_at=at("2027-01-05T10:00:00Z"),
            producer="webshop",
            event_id=f"evt-order-{n}",
        )
        # Keyed by licence key here so that a key's orders stay in order on one partition.
        records.append((key.encode(), encode(envelope)))
    return records


# Set from the worker's clock when it handles an order, so they differ between runs.
CLOCK_FIELDS = {"created_at", "recorded_at", "updated_at", "version"}


def stable(value: Any) -> Any:
    """`value` without the fields the worker's clock sets."""
    if isinstance(value, dict):
        return {k: stable(v) for k, v in value.items() if k not in CLOCK_FIELDS}
    if isinstance(value, list):
        return [stable(v) for v in value]
    return value


def event_summary(records: list[Any]) -> Counter[str]:
    """The entitlement events without their fresh ids and clocks."""
    summary: Counter[str] = Counter()
    for record in records:
        envelope = json.loads(record.value)
        content = [envelope["event_type"], stable(envelope["data"])]
        summary[json.dumps(content, sort_keys=True, default=str)] += 1
    return summary


async def test_registration_workers_split_the_partitions_and_give_the_same_events(
    kafka_bootstrap: str,
    mongo_url: str,
    client: AsyncMongoClient[dict[str, Any]],
    tmp_path: Path,
) -> None:
    inputs = registration_orders()
    events: dict[int, Counter[str]] = {}
    states: dict[int, list[Any]] = {}
    try:
        for count in WORKERS:
            names = Names()
            source, out = names.topic("orders"), names.topic("entitlements")
            await ensure_topics(kafka_bootstrap, [source, out], partitions=PARTITIONS)
            db = client[names.database("scale")]
            await registration_indexes(db)
            env = {
                "ADMIN_TOKEN": "integration-admin-token",
                "KAFKA_BOOTSTRAP": kafka_bootstrap,
                "MONGO_URL": mongo_url,
                "REGISTRATION_MONGO_DB": db.name,
                "CONSUMER_BATCH_MAX": "50",
            }
            group = names.group()
            argv = ["tests.integration.registration.worker_process", source, out, group]
            log = tmp_path / f"registration-{count}.log"
            async with fleet(argv, env, db, count, "registration", log) as workers:
                await workers.split(source)
                await produce(kafka_bootstrap, [(source, k, v) for k, v in inputs])
                per_worker = await workers.consumed(source, len(inputs))
                assert_shared(per_worker, count)
                await committed(kafka_bootstrap, group, source, len(inputs))
            records = await read_topic(kafka_bootstrap, out, expect=len(inputs), settle_s=2)
            ids = Counter(json.loads(r.value)["event_id"] for r in records)
            assert records and max(ids.values()) == 1, f"{count} workers: an event twice"
            events[count] = event_summary(records)
            states[count] = [stable(doc) async for doc in db["entitlements"].find({}).sort("_id")]
            await client.drop_database(db.name)
    finally:
        await client.close()
    assert sum(events[1].values()) >= len(inputs)
    assert events[2] == events[1]
    assert events[3] == events[1]
    assert len(states[1]) == 120
    assert states[2] == states[1]
    assert states[3] == states[1]


# --- notifications -------------------------------------------------------------------------


@pytest.fixture
def mail() -> Iterator[MailSink]:
    sink = MailSink().start()
    try:
        yield sink
    finally:
        sink.stop()


async def test_notifications_workers_split_the_partitions_and_give_the_same_deliveries(
    kafka_bootstrap: str,
    mongo_url: str,
    client: AsyncMongoClient[dict[str, Any]],
    mail: MailSink,
    tmp_path: Path,
) -> None:
    contacts = 90
    inputs = [registered(f"LK-{n:04d}", customer(n), None) for n in range(contacts)]
    deliveries: dict[int, list[tuple[str, str, str]]] = {}
    try:
        for count in WORKERS:
            names = Names()
            service = Service(
                kafka_bootstrap, mongo_url, names.run, mail.port, topic_partitions=PARTITIONS
            )
            await ensure_topics(
                kafka_bootstrap,
                [*service.topics, service.deliveries_topic],
                partitions=PARTITIONS,
            )
            db = client[service.settings.mongo_db]
            await notifications_indexes(db)
            env = {
                "KAFKA_BOOTSTRAP": kafka_bootstrap,
                "MONGO_URL": mongo_url,
                "NOTIFICATIONS_MONGO_DB": service.settings.mongo_db,
                "ADMIN_TOKEN": ADMIN,
                "ENVIRONMENT": "dev",
                "SMTP_HOST": "127.0.0.1",
                "SMTP_PORT": str(mail.port),
                "DISPATCH_IDLE_SECONDS": "0.05",
                "REMINDER_RUN_HOUR_UTC": "23",
            }
            argv = ["tests.integration.notifications.worker_process", names.run, service.group]
            log = tmp_path / f"notifications-{count}.log"
            source = service.contract_to_actual["registration.entitlements.v1"]
            async with fleet(argv, env, db, count, "notifications", log) as workers:
                await workers.split(source)
                await service.produce(*inputs)
                assert_shared(await workers.consumed(source, contacts), count)

                async def all_sent(db: Any = db) -> bool:
                    sent = await db["deliveries"].count_documents({"status": "sent"})
                    return bool(sent >= contacts)

                await until(all_sent, f"{contacts} deliveries sent (log: {log})")
            deliveries[count] = [
                (doc["_id"], doc["type"], doc["status"])
                async for doc in db["deliveries"].find({}).sort("_id")
            ]
            await client.drop_database(db.name)
    finally:
        await client.close()
    assert len(deliveries[1]) == contacts
    assert {status for _, _, status in deliveries[1]} == {"sent"}
    assert deliveries[2] == deliveries[1]
    assert deliveries[3] == deliveries[1]
    # One sink for the three runs: every contact welcomed exactly once per run.
    welcomed = Counter(
        str(m["To"]) for m in mail.mails(lambda m: m["X-Notification-Type"] == "welcome")
    )
    assert len(welcomed) == contacts
    assert set(welcomed.values()) == {len(WORKERS)}
