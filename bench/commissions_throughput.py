"""End-to-end throughput of the commissions worker against a raw transactional passthrough.

Fills fresh topics with N `entitlement.order_applied` events (direct renewals of a
gold partner under a distributor, so every order line gives two ledger lines), then,
on the same embedded broker in the same run:

- baseline: a raw aiokafka consume -> produce passthrough, offsets and output in one
  Kafka transaction per batch, no parsing, no database;
- commissions: the real worker process (`services.commissions.entrypoints.worker`)
  with exactly-once on: it parses, decides, writes the database in bulk and commits
  the ledger events with its offsets.

Prints order lines/s for both, their ratio, the worker's peak RSS (VmHWM), and the
ledger read back with read_committed: committed events and distinct event ids, both
2 per order line when exactly once held. With --scale it repeats the worker run at
10k, 100k and 1M lines (--scale-up-to 100000 stops before 1M), each beside a
passthrough of the same size, and prints the time per line against the 10k run.

    .venv/bin/python bench/commissions_throughput.py [--events 20000] [--scale]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _floors import commissions_write, floor_line, transactional_floor
from _passthrough import raw_transactional_passthrough
from _report import figure
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pymongo import AsyncMongoClient

from chassis.kafka import ensure_topics, make_producer
from devkit.embedded import DEV_TUNING, EmbeddedSuite
from devkit.processes import free_port
from shared.envelope import encode
from shared.examples import example_events
from shared.topics import REGISTRATION_ENTITLEMENTS

ROOT = Path(__file__).resolve().parent.parent
PARTITIONS = 6


def template() -> str:
    _, envelope = next(
        (t, e)
        for t, e in example_events()
        if t == REGISTRATION_ENTITLEMENTS and e.event_type == "entitlement.order_applied"
    )
    return encode(envelope).decode()


async def fill(
    bootstrap: str, topic: str, events: int, run: str, rate: float | None = None
) -> None:
    """N distinct order lines: the example event with its ids made unique by string edits.

    With `rate`, at about that many events per second instead of as fast as possible.
    """
    base = template()
    producer = make_producer(bootstrap)
    await producer.start()
    try:
        pending = []
        for i in range(events):
            order_id = f"B{run}-{i}"
            value = (
                base.replace("WEB-100017", order_id)
                .replace("LK-5F2A-0001", f"LK-{order_id}")
                .replace(json.loads(base)["event_id"], f"bench-{run}-{i}")
            )
            pending.append(await producer.send(topic, value.encode(), key=order_id.encode()))
            if len(pending) >= 2000:
                await asyncio.gather(*pending)
                pending.clear()
                if rate:
                    await asyncio.sleep(2000 / rate)
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def committed_total(admin: AIOKafkaAdminClient, group: str, topic: str) -> int:
    offsets = await admin.list_consumer_group_offsets(group)
    return sum(m.offset for tp, m in offsets.items() if tp.topic == topic and m.offset > 0)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_pids(suite: EmbeddedSuite) -> dict[str, int]:
    """The embedded broker's and database's own pids (children of their guards)."""
    found = {}
    for process in suite.processes:
        guard = process.pid
        children = Path(f"/proc/{guard}/task/{guard}/children").read_text().split()
        found[process.name.split()[0]] = int(children[0]) if children else guard
    return found


def peak_rss_mb(pid: int) -> tuple[float, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        fields[name] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


async def worker_run(
    suite: EmbeddedSuite, events: int, run: str, batch: int, paced: float | None = None
) -> dict[str, Any]:
    entitlements, refunds, ledger = f"bench.ent.{run}", f"bench.ref.{run}", f"bench.ledger.{run}"
    await ensure_topics(
        suite.kafka_bootstrap, [entitlements, refunds, ledger], partitions=PARTITIONS
    )
    fill_started = time.perf_counter()
    feeding = None
    if paced:
        # Fed while the worker runs, so no backlog builds up (see --paced).
        feeding = asyncio.create_task(fill(suite.kafka_bootstrap, entitlements, events, run, paced))
    else:
        await fill(suite.kafka_bootstrap, entitlements, events, run)
    fill_s = time.perf_counter() - fill_started
    group = f"bench-commissions-{run}"
    env = {
        **os.environ,
        **DEV_TUNING,
        "ADMIN_TOKEN": "bench-admin-token-0123",
        "KAFKA_BOOTSTRAP": suite.kafka_bootstrap,
        "MONGO_URL": suite.mongo_url,
        "COMMISSIONS_MONGO_DB": f"bench_{run}",
        "COMMISSIONS_ENTITLEMENTS_TOPIC": entitlements,
        "COMMISSIONS_REFUNDS_TOPIC": refunds,
        "COMMISSIONS_LEDGER_TOPIC": ledger,
        "COMMISSIONS_WORKER_GROUP": group,
        "COMMISSIONS_OUTBOX_RELAY_ID": f"bench-relay-{run}",
        "TOPIC_PARTITIONS": str(PARTITIONS),
        "CONSUMER_BATCH_MAX": str(batch),
        "LOG_LEVEL": "WARNING",
    }
    worker = subprocess.Popen(  # noqa: ASYNC220 - started once, not awaited on
        [sys.executable, "-m", "services.commissions.entrypoints.worker"], cwd=ROOT, env=env
    )
    admin = AIOKafkaAdminClient(bootstrap_servers=suite.kafka_bootstrap)
    await admin.start()
    rss_samples: list[float] = []
    servers = server_pids(suite)
    try:
        first_at, first_done, done, rss_at_first = None, 0, 0, 0.0
        cpu_start: dict[str, float] = {}
        while done < events:
            # Often enough that a quick run (a few batches) still has a first and last mark.
            await asyncio.sleep(0.1)
            if worker.poll() is not None:
                raise RuntimeError(f"worker exited with {worker.returncode}")
            done = await committed_total(admin, group, entitlements)
            rss_samples.append(peak_rss_mb(worker.pid)[0])
            if done and first_at is None:
                first_at, first_done = time.perf_counter(), done
                rss_at_first = rss_samples[-1]
                cpu_start = {"worker": cpu_seconds(worker.pid)} | {
                    name: cpu_seconds(pid) for name, pid in servers.items()
                }
        elapsed = time.perf_counter() - (first_at or time.perf_counter())
        cpu_end = {"worker": cpu_seconds(worker.pid)} | {
            name: cpu_seconds(pid) for name, pid in servers.items()
        }
        end_rss, peak = peak_rss_mb(worker.pid)
        if feeding is not None:
            await feeding
    finally:
        worker.terminate()
        worker.wait(30)
        await admin.close()
    ledger_records, ledger_ids = (
        await ledger_count(suite.kafka_bootstrap, ledger) if events <= 100_000 else (0, 0)
    )
    quarter = len(rss_samples) // 4
    measured = max(1, events - first_done)
    cpu_ms = {
        f"cpu_ms_per_1000_{name}": (cpu_end[name] - cpu_start.get(name, 0.0)) * 1e6 / measured
        for name in cpu_end
    }
    return {
        **cpu_ms,
        "rss_quartiles_mb": [
            rss_samples[min(len(rss_samples) - 1, len(rss_samples) * q // 4)] for q in range(1, 5)
        ],
        "events": events,
        "ledger_records": ledger_records,
        "ledger_ids": ledger_ids,
        "rate": (events - first_done) / elapsed if elapsed else float("nan"),
        "seconds": elapsed,
        "fill_s": fill_s,
        "peak_rss_mb": peak,
        "rss_at_first_mb": rss_at_first,  # at the first committed batch
        "rss_end_mb": end_rss,  # when the last line was committed
        "rss_early_mb": max(rss_samples[: quarter + 1]),
        "rss_late_mb": max(rss_samples[-(quarter + 1) :]),
    }


async def floor_run(
    suite: EmbeddedSuite, events: int, run: str, batch: int
) -> tuple[float, dict[str, float]]:
    """The stage's floor (bench/_floors.py) over the same input, and its CPU per 1000 lines."""
    source, out = f"bench.floor.{run}", f"bench.floor-out.{run}"
    await ensure_topics(suite.kafka_bootstrap, [source, out], partitions=PARTITIONS)
    await fill(suite.kafka_bootstrap, source, events, run)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(suite.mongo_url, tz_aware=True)
    servers = server_pids(suite)
    try:
        before = {"client": time.process_time()} | {
            name: cpu_seconds(pid) for name, pid in servers.items()
        }
        rate = await transactional_floor(
            suite.kafka_bootstrap,
            source,
            out,
            events,
            write=commissions_write(client[f"bench_floor_{run}"]),
            emits=2,
            batch=batch,
        )
        after = {"client": time.process_time()} | {
            name: cpu_seconds(pid) for name, pid in servers.items()
        }
    finally:
        await client.close()
    return rate, {name: (after[name] - before[name]) * 1e6 / events for name in after}


async def ledger_count(bootstrap: str, topic: str) -> tuple[int, int]:
    """Committed ledger records and distinct event ids in them (equal when exactly once)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        isolation_level="read_committed",
        enable_auto_commit=False,
        max_partition_fetch_bytes=64 * 1024 * 1024,
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records, ids = 0, set()
        while True:
            batches = await consumer.getmany(timeout_ms=1000, max_records=20_000)
            for batch in batches.values():
                for record in batch:
                    records += 1
                    ids.add(json.loads(record.value)["event_id"])
            positions = [await consumer.position(tp) for tp in partitions]
            if not batches and all(
                pos >= ends[tp] for pos, tp in zip(positions, partitions, strict=True)
            ):
                return records, len(ids)
    finally:
        await consumer.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=2000, help="worker CONSUMER_BATCH_MAX")
    parser.add_argument("--scale", action="store_true", help="also 10k, 100k and 1M lines")
    parser.add_argument(
        "--scale-up-to", type=int, default=1_000_000, help="largest --scale run (e.g. 100000)"
    )
    parser.add_argument(
        "--paced",
        type=float,
        default=0,
        help="memory run: feed --events at this rate (lines/s) while the worker runs, so no"
        " backlog builds up; the embedded broker ignores fetch size limits and hands a"
        " consumer its whole backlog in one response, which would hide the worker's own RSS",
    )
    parser.add_argument("--quick", action="store_true", help="5,000 order lines, no scale runs")
    args = parser.parse_args()
    if args.quick:
        args.events, args.scale = 5_000, False
    with fresh_suite() as suite:
        if args.paced:
            result = await worker_run(
                suite, args.events, uuid.uuid4().hex[:8], args.batch, args.paced
            )
            quartiles = ", ".join(f"{mb:.0f}" for mb in result["rss_quartiles_mb"])
            print(
                f"paced {args.events:,} lines at {args.paced:,.0f}/s: worker RSS at"
                f" 25/50/75/100% of the run {quartiles} MB, peak {result['peak_rss_mb']:.0f} MB"
            )
            return
        run = uuid.uuid4().hex[:8]
        source, out = f"bench.raw.{run}", f"bench.raw-out.{run}"
        await ensure_topics(suite.kafka_bootstrap, [source, out], partitions=PARTITIONS)
        await fill(suite.kafka_bootstrap, source, args.events, run)
        broker = server_pids(suite)["broker"]
        before = cpu_seconds(broker), time.process_time()
        raw = await raw_transactional_passthrough(suite.kafka_bootstrap, source, out, args.events)
        raw_broker_ms = (cpu_seconds(broker) - before[0]) * 1e6 / args.events
        raw_client_ms = (time.process_time() - before[1]) * 1e6 / args.events
        ours = await worker_run(suite, args.events, run, args.batch)
        floor, floor_cpu = await floor_run(suite, args.events, run, args.batch)
        print(
            f"{args.events} order lines: raw passthrough {raw:,.0f} lines/s, "
            f"commissions worker {ours['rate']:,.0f} lines/s "
            f"(ratio {ours['rate'] / raw:.2f}), peak RSS {ours['peak_rss_mb']:.0f} MB"
        )
        figure(
            "order_applied in to commissions.ledger.v1 out (exactly-once)",
            ours["rate"],
            "lines/s",
            baseline=raw,
            baseline_name="raw transactional passthrough",
            aim=">= 0.50 and >= 5,000 lines/s",
        )
        figure(
            "order_applied in to ledger out, against the stage's floor",
            ours["rate"],
            "lines/s",
            baseline=floor,
            baseline_name="floor (consume, bulk insert, produce)",
            aim=">= 0.60",
        )
        figure("commissions worker peak RSS", ours["peak_rss_mb"], "MB")
        print(floor_line("commissions", ours["rate"], floor), flush=True)
        print(
            "CPU per 1000 lines, floor: "
            + ", ".join(f"{name} {value:.0f} ms" for name, value in floor_cpu.items())
        )
        print(
            f"ledger: {ours['ledger_records']:,} committed events,"
            f" {ours['ledger_ids']:,} distinct event ids (expected {2 * args.events:,})"
        )
        print(
            f"CPU per 1000 lines, passthrough: client {raw_client_ms:.0f} ms,"
            f" broker {raw_broker_ms:.0f} ms"
        )
        print(
            "CPU per 1000 order lines, commissions: "
            + ", ".join(
                f"{name.rsplit('_', 1)[1]} {value:.0f} ms"
                for name, value in ours.items()
                if name.startswith("cpu_ms")
            )
        )
    if args.scale:
        await scale_runs(args)


@contextlib.contextmanager
def fresh_suite() -> Iterator[EmbeddedSuite]:
    """An embedded broker and database of their own, removed afterwards."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {"EMBEDDED_KAFKA_PORT": str(free_port()), "EMBEDDED_MONGO_PORT": str(free_port())}
        with EmbeddedSuite(data_dir=Path(tmp), env=env, with_smtp=False) as suite:
            yield suite


async def scale_runs(args: argparse.Namespace) -> None:
    """The worker at 10k, 100k and 1M lines, each beside the passthrough at the same size.

    Linear time means seconds per line flat across sizes. Every run gets a fresh broker
    and database: the embedded broker keeps everything it holds in memory and rewrites
    all of it to one JSON file while writes keep coming, so a run on a broker that
    already holds the smaller runs (or, at 1M, the passthrough's 2M records) is slowed
    by them; at 1M it was OOM-killed at 22.5 GB (~5M records, a 13.7 GB JSON file).
    The passthrough shows what the broker alone does at each size.
    """
    first: dict[str, float] = {}
    for events in [n for n in (10_000, 100_000, 1_000_000) if n <= args.scale_up_to]:
        run = uuid.uuid4().hex[:8]
        source, out = f"bench.raw.{run}", f"bench.raw-out.{run}"
        with fresh_suite() as suite:
            await ensure_topics(suite.kafka_bootstrap, [source, out], partitions=PARTITIONS)
            await fill(suite.kafka_bootstrap, source, events, run)
            raw = await raw_transactional_passthrough(suite.kafka_bootstrap, source, out, events)
        with fresh_suite() as suite:
            result = await worker_run(suite, events, uuid.uuid4().hex[:8], args.batch)
        us_per_line = {"worker": 1e6 / result["rate"], "passthrough": 1e6 / raw}
        first = first or us_per_line
        print(
            f"scale {events:>9,}: {result['rate']:8,.0f} lines/s in "
            f"{result['seconds']:7.1f} s (passthrough {raw:,.0f}/s,"
            f" ratio {result['rate'] / raw:.2f});"
            f" µs per line vs the 10k run: worker x{us_per_line['worker'] / first['worker']:.2f},"
            f" passthrough x{us_per_line['passthrough'] / first['passthrough']:.2f};"
            f" RSS early {result['rss_early_mb']:.0f} MB,"
            f" late {result['rss_late_mb']:.0f} MB, peak {result['peak_rss_mb']:.0f} MB"
            + (
                f"; ledger {result['ledger_records']:,} events, {result['ledger_ids']:,} distinct"
                if result["ledger_records"]
                else ""
            ),
            flush=True,
        )


if __name__ == "__main__":
    asyncio.run(main())
