"""Time per item and RSS of each stage as its input grows (issue 20: both should stay flat).

For each stage and each size, a child process of its own runs the stage the way its
own benchmark does, on a fresh embedded broker and database (the embedded broker keeps
everything in memory and rewrites it all to one file, so a broker that already holds
the smaller runs slows the larger; see `commissions_throughput.scale_runs`):

- registration: the worker's processor in the child itself, over N `order.placed`
  events (`registration_orders.registration_worker`, one line per order, licence keys
  drawn from a pool of N/2);
- commissions: the real worker process over N `entitlement.order_applied` events
  (`commissions_throughput.worker_run`, two ledger events per line);
- notifications: the advisory fan-out and dispatcher in the child itself, to N
  contacts through the mail sink (`notifications_advisory_fanout.fan_out`).

Per size it prints the items, the seconds from the first batch to the last, items/s,
microseconds of wall time per item, CPU milliseconds per item of each component (the
worker, the broker, the database; the mail sink for notifications) and the worker's
RSS: when its run starts, its peak and at the end (sampled every 0.1 s from
/proc/<pid>/status; for the in-process stages the child's own, after the input was
written). Then, per stage, one line:

    scaling <stage>: per-item time at <largest> is <ratio>x that at <smallest>, RSS <a> -> <b> MB

(RSS: the worker's peak at the smallest size and at the largest), followed by the same
ratio for the CPU per item of every component together, which the load of a shared box
moves far less than wall time. Nothing fails on a time. The defaults (10k and 30k,
each stage's own batch size; `--quick` 2k and 6k) keep `./dev bench` short; issue 20's
figures:

    .venv/bin/python bench/scaling.py --sizes 10000,100000,1000000 --stages registration,commissions
    .venv/bin/python bench/scaling.py --sizes 10000,100000 --stages notifications

`--broker-preload N` first gives each fresh broker N unrelated 1 KB records: the same
size run beside one without shows what the broker's own size costs (its CPU per item).

Read RSS with the embedded broker in mind: it ignores fetch size limits and hands a
consumer its whole backlog in one response, so a worker started on a full topic holds
its backlog for a while (`commissions_throughput.py --paced` feeds it instead).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import commissions_throughput as commissions
import notifications_advisory_fanout as notifications
import registration_orders as registration
from _report import figure

from chassis.kafka import ensure_topics, make_producer

HERE = Path(__file__).resolve().parent
STAGES = ("registration", "commissions", "notifications")
RESULT = "SCALING-RESULT "


def vm_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class RssSampler:
    """VmRSS of a process every `every` seconds, on a thread (a busy event loop cannot delay it)."""

    def __init__(self, pid: int, every: float = 0.1) -> None:
        self.pid, self.every = pid, every
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self.samples.append(vm_rss_mb(self.pid))
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.samples.append(vm_rss_mb(self.pid))

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        self.samples.append(vm_rss_mb(self.pid))
        return {
            "rss_start_mb": self.samples[0],
            "rss_peak_mb": max(self.samples),
            "rss_end_mb": self.samples[-1],
        }


async def preload(bootstrap: str, records: int) -> None:
    """`records` unrelated 1 KB records on a topic of their own: the same stage run on a
    broker that already holds data, to tell what grows with the broker from the stage."""
    if not records:
        return
    topic = f"bench.preload.{uuid.uuid4().hex[:8]}"
    await ensure_topics(bootstrap, [topic], partitions=6)
    producer = make_producer(bootstrap)
    await producer.start()
    try:
        pending = []
        for i in range(records):
            pending.append(await producer.send(topic, b"x" * 1000, key=b"%d" % i))
            if len(pending) >= 2000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def registration_size(n: int, batch: int, preloaded: int = 0) -> dict[str, Any]:
    with commissions.fresh_suite() as suite:
        await preload(suite.kafka_bootstrap, preloaded)
        run = uuid.uuid4().hex[:8]
        settings, client, db, codes = await registration.prepare(suite, run, batch)
        source, out = f"bench.orders.{run}", f"bench.out.{run}"
        await ensure_topics(suite.kafka_bootstrap, [source, out], partitions=6)
        rng, keys = random.Random(1), max(1, n // 2)
        orders = (registration.make_order(i, rng, codes, keys) for i in range(n))
        await registration.fill(suite.kafka_bootstrap, source, orders)
        gc.collect()
        rss = RssSampler(os.getpid())
        rss.start()
        cpu_0 = registration.cpu_seconds(suite)
        rate = await registration.registration_worker(settings, db, source, out, n)
        cpu_1 = registration.cpu_seconds(suite)
        await client.close()
        cpu = {
            ("worker" if name == "loop" else name): (cpu_1[name] - cpu_0[name]) * 1000 / n
            for name in cpu_1
        }
        return {"rate": rate, "seconds": n / rate, "cpu_ms": cpu, **rss.stop()}


async def commissions_size(n: int, batch: int, preloaded: int = 0) -> dict[str, Any]:
    with commissions.fresh_suite() as suite:
        await preload(suite.kafka_bootstrap, preloaded)
        found = await commissions.worker_run(suite, n, uuid.uuid4().hex[:8], batch)
    cpu = {
        name.rsplit("_", 1)[1]: value / 1000
        for name, value in found.items()
        if name.startswith("cpu_ms_per_1000_")
    }
    extra = {}
    if found["ledger_records"]:  # read back up to 100k lines: exactly once held?
        extra["ledger"] = f"{found['ledger_records']:,} events, {found['ledger_ids']:,} distinct"
    return {
        "rate": found["rate"],
        "seconds": found["seconds"],
        "cpu_ms": cpu,
        "rss_start_mb": found["rss_at_first_mb"],
        "rss_peak_mb": found["peak_rss_mb"],
        "rss_end_mb": found["rss_end_mb"],
        "rss_late_mb": found["rss_late_mb"],
        **extra,
    }


def notifications_size(n: int, preloaded: int = 0) -> dict[str, Any]:
    with notifications.bench_servers() as (suite, sink, settings, external):
        asyncio.run(preload(settings.kafka_bootstrap, preloaded))
        rss = RssSampler(os.getpid())
        marks: list[dict[str, float]] = []

        def probe() -> dict[str, float]:  # called once the contacts are seeded
            gc.collect()
            rss.start()
            return notifications.cpu_seconds(suite, sink)

        found = asyncio.run(
            notifications.fan_out(settings, n, drop=external, cpu_probe=probe, cpu_marks=marks)
        )
        after = notifications.cpu_seconds(suite, sink)
        cpu = {name: (after[name] - marks[0][name]) * 1000 / n for name in after}
        return {
            "rate": n / found["total_s"],
            "seconds": found["total_s"],
            "cpu_ms": cpu,
            **rss.stop(),
        }


def child(stage: str, n: int, batch: int, preloaded: int) -> None:
    if stage == "registration":
        found = asyncio.run(registration_size(n, batch or registration.BATCH, preloaded))
    elif stage == "commissions":
        found = asyncio.run(commissions_size(n, batch or 2000, preloaded))
    else:
        found = notifications_size(n, preloaded)
    print(RESULT + json.dumps({"stage": stage, "items": n, **found}), flush=True)


def run_child(stage: str, n: int, batch: int, preloaded: int) -> dict[str, Any] | None:
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", stage, str(n)]
    argv += ["--batch", str(batch)] if batch else []
    argv += ["--broker-preload", str(preloaded)] if preloaded else []
    found: dict[str, Any] | None = None
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, bufsize=1) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(RESULT):
                found = json.loads(line[len(RESULT) :])
            else:
                print(f"  {line}", end="", flush=True)
    if proc.returncode != 0 or found is None:
        print(f"{stage} {n:,}: the run failed (exit {proc.returncode})", flush=True)
        return None
    return found


def size_line(r: dict[str, Any]) -> str:
    cpu = ", ".join(f"{name} {ms:.3f}" for name, ms in sorted(r["cpu_ms"].items()))
    late = f", late {r['rss_late_mb']:.0f}" if "rss_late_mb" in r else ""
    ledger = f"; ledger {r['ledger']}" if "ledger" in r else ""
    if not r["rate"] > 0:  # 0 or NaN: the whole run was one batch, so no span to time
        return f"{r['stage']:<13} {r['items']:>9,} items: one batch, too few to time"
    return (
        f"{r['stage']:<13} {r['items']:>9,} items {r['seconds']:8.1f} s {r['rate']:8,.0f}/s"
        f" {1e6 / r['rate']:8,.0f} µs/item; CPU ms/item: {cpu};"
        f" worker RSS start {r['rss_start_mb']:.0f}, peak {r['rss_peak_mb']:.0f},"
        f" end {r['rss_end_mb']:.0f}{late} MB{ledger}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,30000", help="comma-separated item counts")
    parser.add_argument("--stages", default=",".join(STAGES), help="comma-separated stages")
    parser.add_argument("--batch", type=int, default=0, help="records per poll (stage default)")
    parser.add_argument(
        "--quick", action="store_true", help="2,000 and 6,000 items, batches of 500"
    )
    parser.add_argument(
        "--broker-preload",
        type=int,
        default=0,
        metavar="N",
        help="first give each fresh broker N unrelated 1 KB records (what the broker's size costs)",
    )
    parser.add_argument("--child", nargs=2, metavar=("STAGE", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), args.batch, args.broker_preload)
        return
    if args.quick:  # several batches even at 2,000 (commissions' own batch is 2,000)
        args.sizes, args.batch = "2000,6000", args.batch or 500
    sizes = sorted(int(s) for s in args.sizes.split(","))
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = set(stages) - set(STAGES)
    if unknown:
        parser.error(f"unknown stage(s) {', '.join(sorted(unknown))}; known: {', '.join(STAGES)}")
    summary = []
    for stage in stages:
        results = []
        for n in sizes:
            started = time.monotonic()
            found = run_child(stage, n, args.batch, args.broker_preload)
            if found is None:
                break
            print(size_line(found) + f" (child {time.monotonic() - started:.0f} s)", flush=True)
            if found["rate"] > 0:
                results.append(found)
        if len(results) < 2:
            continue
        small, large = results[0], results[-1]
        ratio = small["rate"] / large["rate"]  # per-item time at the largest / at the smallest
        # CPU per item of every component together: what the shared box's load does not move.
        cpu = sum(large["cpu_ms"].values()) / sum(small["cpu_ms"].values())
        summary.append(
            f"scaling {stage}: per-item time at {large['items']:,} is {ratio:.2f}x that at"
            f" {small['items']:,}, RSS {small['rss_peak_mb']:.0f} -> {large['rss_peak_mb']:.0f} MB"
            f" (CPU per item, all components: {cpu:.2f}x)"
        )
        figure(
            f"{stage}: time per item at {large['items']:,} against {small['items']:,}",
            ratio,
            "x",
            aim="flat (about 1)",
        )
    print("\n".join(summary), flush=True)


if __name__ == "__main__":
    main()
