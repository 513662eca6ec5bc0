"""One renewal-reminder pass over N due entitlements: time, RSS, database CPU per entitlement.

CONTRACT 6.1 makes the pass follow each partner of record's renewal mode in force
at `as_of`. This runs the real pass (`ReminderPass` on the MongoDB projections
and delivery records) over N entitlements all due in one pass (a third each at
-90, -30 and -7 days; two licences per contact, every fifth contact's under two
partners; a quarter without a PoR), twice
in the same run on the same embedded database, each on its own fresh database:

- **mixed**: the partners' modes split evenly between `partner_first`,
  `partner_only` and `vendor_direct` (with mode histories, so `as_of` is looked up);
- **baseline**: every partner `vendor_direct`, i.e. what the pass did before
  renewal modes existed (reminders at -90/-30/-7 for everyone, opportunities at -90).

Figures per round: wall time, database CPU (the embedded database process's user
+ system time, which a loaded machine does not inflate as it does wall time) and
this process's CPU, each per entitlement, the deliveries planned, and this
process's RSS growth over the pass. Only planning is measured: sending is the
dispatcher's (bench/notifications_advisory_fanout.py). Nothing fails on a time.

    .venv/bin/python bench/reminder_pass.py --sizes 10000,100000 [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _report import figure  # noqa: E402

from chassis.metrics import WorkerCounters  # noqa: E402
from devkit.embedded import EmbeddedSuite  # noqa: E402
from devkit.processes import free_port  # noqa: E402
from services.notifications.adapters.collections import ENTITLEMENTS, PARTNERS  # noqa: E402
from services.notifications.adapters.indexes import ensure_indexes  # noqa: E402
from services.notifications.adapters.stores import Stores  # noqa: E402
from services.notifications.domain.model import contact_id  # noqa: E402
from services.notifications.service_layer.ports import SystemClock  # noqa: E402
from services.notifications.service_layer.reminders import ReminderPass  # noqa: E402

AS_OF = dt.date(2027, 10, 11)
OFFSETS = (90, 30, 7)
PARTNER_COUNT = 60
MODES = ("partner_first", "partner_only", "vendor_direct")
SINCE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _cpu_of(pid: int) -> float:
    """User + system CPU seconds of `pid` and its children (Linux; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return 0.0
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(_cpu_of(int(child)) for child in children)


def database_cpu(suite: EmbeddedSuite) -> float:
    return sum(
        _cpu_of(p.proc.pid) for p in suite.processes if "database" in p.name and p.proc is not None
    )


def rss_mb() -> float:
    """This process's resident set now (VmRSS), or its peak where /proc is absent."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def partner_docs(mixed: bool) -> list[dict[str, Any]]:
    docs = []
    for i in range(PARTNER_COUNT):
        # Not `i % 3`: contacts pick partners by `contact % 60` and offsets by `contact % 3`,
        # and each mode must have licences at every offset.
        mode = MODES[(i // 3) % 3] if mixed else "vendor_direct"
        # A history of two entries, the mode changed after `since`: as_of is looked up.
        changed = dt.datetime(2027, 3, 1, tzinfo=dt.UTC)
        terms = {
            str(round(SINCE.timestamp() * 1000)): {
                "effective_at": SINCE,
                "status": "active",
                "renewal_mode": "vendor_direct",
            },
            str(round(changed.timestamp() * 1000)): {
                "effective_at": changed,
                "status": "active",
                "renewal_mode": mode,
            },
        }
        docs.append(
            {
                "_id": f"P-BENCH{i:03d}",
                "display_name": f"Bench Partner {i:03d}",
                "legal_name": f"Bench Partner {i:03d} Ltd",
                "status": "active",
                "co_brand_customer_messages": i % 2 == 0,
                "contact_email": f"partner{i:03d}@bench.example",
                "seller_code": None,
                "branding": {"phone": f"+49 30 {i:07d}", "website": f"https://p{i}.example"},
                "renewal_mode": mode,
                "terms": terms,
                "version": changed,
            }
        )
    return docs


async def seed(db: Any, n: int, mixed: bool) -> None:
    await db[PARTNERS].insert_many(partner_docs(mixed))
    batch: list[dict[str, Any]] = []
    for i in range(n):
        contact = i // 2  # two licences per contact, at the same offset
        offset = OFFSETS[contact % 3]
        email = f"contact{contact}-{offset}@customer.example"
        # A quarter without a PoR; a contact's two licences under one partner, or (every
        # fifth contact) under two, so it gets one message per scope.
        partner = contact + (i % 2 if contact % 5 == 0 else 0)
        por = None if contact % 4 == 0 else f"P-BENCH{partner % PARTNER_COUNT:03d}"
        batch.append(
            {
                "_id": f"LK-{i:07d}",
                "product": "secure-pro",
                "sku": "SECURE-PRO-1Y",
                "term_start": "2026-10-11",
                "term_end": (AS_OF + dt.timedelta(days=offset)).isoformat(),
                "customer": {
                    "customer_id": f"C-{contact}",
                    "org_name": f"Customer {contact} GmbH",
                    "contact_name": f"Contact {contact}",
                    "email": email,
                },
                "contact_id": contact_id(email),
                "por": por,
                "version": SINCE,
            }
        )
        if len(batch) == 5000:
            await db[ENTITLEMENTS].insert_many(batch, ordered=False)
            batch = []
    if batch:
        await db[ENTITLEMENTS].insert_many(batch, ordered=False)


async def one_pass(suite: EmbeddedSuite, n: int, mixed: bool) -> dict[str, float]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(suite.mongo_url, tz_aware=True)
    db = client[f"bench_{uuid.uuid4().hex[:8]}"]
    try:
        await ensure_indexes(db)
        await seed(db, n, mixed)
        stores = Stores.over(db)
        reminder_pass = ReminderPass(
            source=stores.projections,
            partners=stores.projections,
            deliveries=stores.deliveries,
            webhooks=stores.webhooks,
            runs=stores.reminder_runs,
            clock=SystemClock(),
            counters=WorkerCounters(),
        )
        rss_0, db_0, own_0 = rss_mb(), database_cpu(suite), time.process_time()
        started = time.perf_counter()
        summary = await reminder_pass.run(AS_OF)
        wall = time.perf_counter() - started
        db_cpu, own_cpu = database_cpu(suite) - db_0, time.process_time() - own_0
        rss_growth = rss_mb() - rss_0
        assert summary.considered == n, summary
        return {
            "wall_s": wall,
            "db_ms_per": 1000 * db_cpu / n,
            "own_ms_per": 1000 * own_cpu / n,
            "planned": summary.new,
            "rss_growth_mb": rss_growth,
        }
    finally:
        await client.drop_database(db.name)
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000")
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds; medians")
    parser.add_argument("--quick", action="store_true", help="3,000 entitlements, one round")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.rounds = "3000", 1
    sizes = [int(s) for s in args.sizes.split(",")]
    work = Path(tempfile.mkdtemp(prefix="ck-bench-reminders-"))
    env = {"MONGO_URL": os.environ["MONGO_URL"]} if os.environ.get("MONGO_URL") else {}
    env["EMBEDDED_MONGO_PORT"] = str(free_port())
    env["KAFKA_BOOTSTRAP"] = "unused:9092"  # the pass only plans: no broker is started
    suite = EmbeddedSuite(data_dir=work / "embedded", env=env, with_smtp=False).start()
    try:
        print(
            f"{'size':>8} {'pass':>9} {'wall s':>8} {'ent/s':>8} {'db ms/ent':>10}"
            f" {'own ms/ent':>11} {'planned':>8} {'RSS +MB':>8} {'peak RSS MB':>12}"
        )
        for n in sizes:
            results: dict[str, list[dict[str, float]]] = {"baseline": [], "mixed": []}
            for _ in range(args.rounds):
                for name in ("baseline", "mixed"):
                    got = asyncio.run(one_pass(suite, n, mixed=name == "mixed"))
                    results[name].append(got)
                    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                    print(
                        f"{n:>8} {name:>9} {got['wall_s']:>8.2f} {n / got['wall_s']:>8.0f}"
                        f" {got['db_ms_per']:>10.3f} {got['own_ms_per']:>11.3f}"
                        f" {got['planned']:>8.0f} {got['rss_growth_mb']:>8.1f} {peak:>12.0f}",
                        flush=True,
                    )

            def median(
                name: str, key: str, of: dict[str, list[dict[str, float]]] = results
            ) -> float:
                return statistics.median(r[key] for r in of[name])

            base_name = "all vendor_direct (the pass before renewal modes)"
            figure(
                f"reminder pass over {n:,} entitlements, three modes",
                n / median("mixed", "wall_s"),
                "ent/s",
                baseline=n / median("baseline", "wall_s"),
                baseline_name=base_name,
                aim="no worse per entitlement than the baseline",
            )
            figure(
                f"database CPU per entitlement, {n:,}",
                median("mixed", "db_ms_per"),
                "ms",
                baseline=median("baseline", "db_ms_per"),
                baseline_name=base_name,
                aim="no worse than the baseline",
            )
            figure(
                f"pass process RSS growth, {n:,}",
                median("mixed", "rss_growth_mb"),
                "MB",
                baseline=median("baseline", "rss_growth_mb"),
                baseline_name=base_name,
                aim="flat in N (one contact in memory)",
            )
    finally:
        suite.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
