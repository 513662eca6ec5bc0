"""Earned-tier evaluation (CONTRACT 6.4) over many partners and a long order history.

Seeds a private embedded database with `--partners` partners, `--lines` revenue
lines (order lines with a partner of record, EUR/USD/JPY, spread over 15 months,
one in 20 partly refunded) and about one certification per partner, then runs,
each in a fresh child process so its peak RSS is its own:

- baseline: a bare scan of the same revenue lines with the same projection,
  counting them (the floor of reading the history once);
- preview: `TierService.evaluate(apply=False)`, every active partner's verdict;
- evaluate: `TierService.evaluate(apply=True)`, writing the tier changes (each a
  partner update and its `partner.updated` in the outbox) and standings.

It prints seconds and peak RSS of each and the ratio to the baseline. Memory is
meant to grow with partners, not with lines: `--lines` x 4 should leave the
evaluation's peak RSS about where it was.

    .venv/bin/python bench/tier_evaluation.py [--quick] [--partners 10000] [--lines 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

from _report import figure
from pymongo import AsyncMongoClient

from devkit.embedded import EmbeddedSuite
from devkit.processes import free_port
from services.registration.adapters import documents
from services.registration.adapters.mongo import MongoUnitOfWork, ensure_indexes
from services.registration.adapters.tiers import (
    CERTIFICATIONS,
    REVENUE_LINES,
    MongoTierStore,
    ensure_tier_indexes,
    refund_key,
)
from services.registration.domain.partners import Branding, Partner
from services.registration.domain.tiers import Threshold, TierRules
from services.registration.service_layer.tiers import TierService
from shared import seller_code
from shared.events import PartnerTier

ROOT = Path(__file__).resolve().parent.parent
AS_OF = dt.date(2027, 1, 31)
START = dt.datetime(2025, 11, 1, tzinfo=dt.UTC)  # 15 months before AS_OF
TIERS: tuple[PartnerTier, ...] = ("bronze", "silver", "gold", "platinum")
CHUNK = 5000


def _rules() -> TierRules:
    return TierRules(
        version=1,
        effective_from=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
        currency="EUR",
        fx={"USD": Decimal("0.92"), "JPY": Decimal("0.0061")},
        tiers={
            "platinum": Threshold(40_000_000, 4),
            "gold": Threshold(15_000_000, 2),
            "silver": Threshold(5_000_000, 1),
            "bronze": Threshold(0, 0),
        },
        demotion_grace_days=90,
        recorded_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
    )


async def seed(db: Any, partners: int, seed: int = 7) -> None:
    """Partners, about one certification each, and the rules."""
    rng = random.Random(seed)
    await ensure_indexes(db)
    await ensure_tier_indexes(db)
    since = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    docs = []
    for n in range(partners):
        partner = Partner.enroll(
            partner_id=f"P-{n:06d}",
            display_name=f"Partner {n}",
            legal_name=f"Partner {n} GmbH",
            type="var",
            tier=TIERS[n % 4],
            parent=None,
            contact_email=f"p{n}@example.com",
            branding=Branding(),
            co_brand_customer_messages=False,
            customer_ids=[],
            seller_code=seller_code.generate(),
            api_key_hash=f"h{n}",
            effective_at=since,
            now=since,
        )
        docs.append(documents.partner_to_doc(partner, 1))
    for start in range(0, len(docs), CHUNK):
        await db["partners"].insert_many(docs[start : start + CHUNK], ordered=False)
    certs = [
        {
            "_id": f"C-{n}",
            "partner_id": f"P-{rng.randrange(partners):06d}",
            "name": "Secure Pro Engineer",
            "holder": f"Holder {n}",
            "expires_on": (AS_OF + dt.timedelta(days=rng.randrange(-200, 400))).isoformat(),
            "recorded_at": since,
        }
        for n in range(partners)
    ]
    for start in range(0, len(certs), CHUNK):
        await db[CERTIFICATIONS].insert_many(certs[start : start + CHUNK], ordered=False)
    await MongoTierStore(db).add_rules(_rules())


async def seed_lines(db: Any, partners: int, first: int, last: int) -> None:
    """Revenue lines `first` .. `last - 1` (the same for the same arguments)."""
    span = int((dt.datetime(2027, 2, 1, tzinfo=dt.UTC) - START).total_seconds())
    currencies = ("EUR", "EUR", "USD", "JPY")
    rng = random.Random(first)
    for start in range(first, last, CHUNK):
        batch = []
        for n in range(start, min(last, start + CHUNK)):
            currency = rng.choice(currencies)
            net = rng.randrange(1_000, 400_000) * (100 if currency == "JPY" else 1)
            at = START + dt.timedelta(seconds=rng.randrange(span))
            doc: dict[str, Any] = {
                "_id": f"O-{n}/1",
                "p": f"P-{rng.randrange(partners):06d}",
                "c": currency,
                "t": at,
                "n": net,
            }
            if n % 20 == 0:
                doc["r"] = {
                    refund_key(f"R-{n}"): {
                        "a": net // 3,
                        "c": currency,
                        "t": at + dt.timedelta(days=5),
                    }
                }
            batch.append(doc)
        await db[REVENUE_LINES].insert_many(batch, ordered=False)


async def child(mongo_url: str, db_name: str, mode: str) -> dict[str, Any]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url, tz_aware=True)
    db = client[db_name]
    started = time.perf_counter()
    result: dict[str, Any] = {"mode": mode}
    if mode == "baseline":
        count = 0
        async for _ in db[REVENUE_LINES].find(
            {"t": {"$gt": START, "$lte": dt.datetime(2027, 2, 1, tzinfo=dt.UTC)}},
            {"_id": 0, "p": 1, "c": 1, "n": 1, "r": 1},
            batch_size=5000,
        ):
            count += 1
        result["scanned"] = count
    else:
        now = dt.datetime(2027, 2, 1, 3, tzinfo=dt.UTC)
        tiers = TierService(MongoTierStore(db), lambda: MongoUnitOfWork(db), lambda: now)
        evaluation = await tiers.evaluate(AS_OF, apply=mode == "evaluate")
        result.update(
            evaluated=evaluation.evaluated,
            promotions=evaluation.promotions,
            demotions=evaluation.demotions,
            pending=evaluation.pending_demotions,
        )
    result["seconds"] = time.perf_counter() - started
    await client.close()
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def peak_rss_mb() -> float:
    status = Path(f"/proc/{os.getpid()}/status").read_text()
    hwm = next(line for line in status.splitlines() if line.startswith("VmHWM"))
    return int(hwm.split()[1]) / 1024


def run_child(mongo_url: str, db_name: str, mode: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--mongo", mongo_url, "--db", db_name],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"{mode} run failed:\n{out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1k partners, 50k lines")
    parser.add_argument("--partners", type=int, default=10_000)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--child", choices=("baseline", "preview", "evaluate"))
    parser.add_argument("--mongo")
    parser.add_argument("--db")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(await child(args.mongo, args.db, args.child)), flush=True)
        return
    partners, lines = (1_000, 50_000) if args.quick else (args.partners, args.lines)
    with tempfile.TemporaryDirectory() as tmp:
        env = {"EMBEDDED_KAFKA_PORT": str(free_port()), "EMBEDDED_MONGO_PORT": str(free_port())}
        with EmbeddedSuite(data_dir=Path(tmp), env=env, with_smtp=False) as suite:
            db_name = f"bench_tiers_{uuid.uuid4().hex[:8]}"
            client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
                suite.mongo_url, tz_aware=True
            )
            seeding = time.perf_counter()
            await seed(client[db_name], partners)
            # Half the history first: the preview's peak RSS there against the one over
            # all of it shows whether memory follows the lines (it should not).
            await seed_lines(client[db_name], partners, 0, lines // 2)
            half = run_child(suite.mongo_url, db_name, "preview")
            await seed_lines(client[db_name], partners, lines // 2, lines)
            await client.close()
            print(
                f"seeded {partners:,} partners, {lines:,} revenue lines"
                f" in {time.perf_counter() - seeding:.1f} s (a preview at half included)",
                flush=True,
            )
            # A first scan warms the database's cache, so no run pays for a cold one.
            run_child(suite.mongo_url, db_name, "baseline")
            runs = {mode: run_child(suite.mongo_url, db_name, mode) for mode in
                    ("baseline", "preview", "evaluate")}  # fmt: skip
    base = runs["baseline"]
    for mode, r in runs.items():
        extra = {k: v for k, v in r.items() if k not in ("mode", "seconds", "peak_rss_mb")}
        print(
            f"{mode:>9}: {r['seconds']:8.2f} s  peak RSS {r['peak_rss_mb']:6.1f} MB"
            f"  ratio {r['seconds'] / base['seconds']:.2f}  {extra}",
            flush=True,
        )
    print(
        f"preview at {lines // 2:,} lines: {half['seconds']:.2f} s, peak RSS"
        f" {half['peak_rss_mb']:.1f} MB; at {lines:,}: {runs['preview']['seconds']:.2f} s,"
        f" {runs['preview']['peak_rss_mb']:.1f} MB",
        flush=True,
    )
    size = f"{partners // 1000}k partners, {lines // 1000}k lines"
    figure(
        f"tier evaluation ({size})",
        runs["evaluate"]["seconds"],
        "s",
        baseline=base["seconds"],
        baseline_name="bare scan of the lines",
        aim="bounded memory",
    )
    figure(
        f"tier evaluation peak RSS ({size})",
        runs["evaluate"]["peak_rss_mb"],
        "MB",
        baseline=base["peak_rss_mb"],
        baseline_name="bare scan's peak RSS",
        aim="grows with partners, not lines",
    )
    figure(
        f"tier preview peak RSS, {lines // 1000}k vs {lines // 2000}k lines",
        runs["preview"]["peak_rss_mb"],
        "MB",
        baseline=half["peak_rss_mb"],
        baseline_name="same partners, half the lines",
        aim="ratio ~1.0",
    )


if __name__ == "__main__":
    asyncio.run(main())
