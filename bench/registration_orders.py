"""Order consumption of the registration worker against a raw aiokafka passthrough.

Both read N `order.placed` events (one line each: a mix of new sales, direct
renewals with a seller code and partner-channel sales, over a pool of
licence keys) from their own fresh topic on the same embedded broker. The
baseline consumes and produces each record in one Kafka transaction per poll
batch, with no parsing and no database. The registration worker parses and
validates, reads and writes MongoDB in bulk per batch (one transaction) and
produces `entitlement.order_applied` (plus `updated` / `attribution_changed`)
in its Kafka transaction. Prints orders/s for each, over several rounds, the
medians and the ratio.

    .venv/bin/python bench/registration_orders.py [--orders 20000] [--rounds 3] [--batch 500]

`--batch` is the records per poll of both loops (the worker's CONSUMER_BATCH_MAX).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from _floors import floor_line, registration_write, transactional_floor
from _passthrough import raw_transactional_passthrough
from _report import figure
from pymongo import AsyncMongoClient

from chassis.kafka import ensure_topics, make_producer
from chassis.metrics import WorkerCounters
from devkit.embedded import DEV_TUNING, EmbeddedSuite
from devkit.processes import free_port
from services.registration.adapters.mongo import MongoUnitOfWork
from services.registration.bootstrap import build_processors, prepare_worker, utc_now
from services.registration.config import Settings
from services.registration.service_layer.partners import NewPartner, PartnerService
from shared.envelope import encode, new_envelope
from shared.events import OrderPlaced
from shared.topics import CHECKOUT_ORDERS, REGISTRATION_ENTITLEMENTS

BATCH = 500


def make_order(i: int, rng: random.Random, codes: list[str], keys: int) -> OrderPlaced:
    key = f"LK-{rng.randrange(keys):07d}"
    kind = rng.choice(["new", "renewal", "renewal", "upgrade"])
    channel = "partner" if rng.random() < 0.3 else "direct"
    return OrderPlaced.model_validate(
        {
            "order_id": f"BENCH-{i}",
            "sales_channel": channel,
            "storefront": "web",
            "partner_code": rng.choice(codes) if channel == "partner" else None,
            "seller_code": rng.choice(codes)
            if channel == "direct" and rng.random() < 0.3
            else None,
            "currency": "EUR",
            "customer": {
                "customer_id": f"C-{rng.randrange(keys)}",
                "org_name": "Müller Logistik GmbH",
                "contact_name": "Jana Müller",
                "email": "jana@mueller-logistik.example",
                "country": "DE",
            },
            "lines": [
                {
                    "line_id": "1",
                    "kind": kind,
                    "license_key": key,
                    "sku": "SECURE-PRO-1Y",
                    "product": "secure-pro",
                    "quantity": 1,
                    "term_start": "2027-01-10",
                    "term_end": f"{2028 + rng.randrange(3)}-01-09",
                    "net_amount_minor": rng.randrange(1, 500_000),
                }
            ],
        }
    )


async def fill(bootstrap: str, topic: str, orders: Iterable[OrderPlaced]) -> None:
    producer = make_producer(bootstrap)
    await producer.start()
    base = dt.datetime(2027, 1, 5, tzinfo=dt.UTC)
    try:
        pending = []
        for i, placed in enumerate(orders):
            envelope = new_envelope(
                "order.placed",
                placed,
                occurred_at=base + dt.timedelta(seconds=i),
                producer="bench",
                event_id=f"bench-{uuid.uuid4()}",
            )
            pending.append(
                await producer.send(topic, encode(envelope), key=placed.order_id.encode())
            )
            if len(pending) >= 1000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


def _cpu_of(pid: int) -> float:
    """User + system CPU seconds of `pid` and its children (Linux; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return 0.0
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(_cpu_of(int(child)) for child in children)


def cpu_seconds(suite: EmbeddedSuite) -> dict[str, float]:
    """CPU used so far by this process (the loop under test), the database and the broker.

    On a shared machine wall time follows whatever else runs; CPU per order does not.
    """
    times = os.times()
    found = {"loop": times.user + times.system}
    for process in suite.processes:
        label = "database" if "database" in process.name else "broker"
        found[label] = _cpu_of(process.proc.pid) if process.proc is not None else 0.0
    return found


def per_order_ms(before: dict[str, float], after: dict[str, float], orders: int) -> str:
    return " ".join(
        f"{label} {1000 * (after[label] - before[label]) / orders:.2f}" for label in sorted(after)
    )


async def registration_worker(
    settings: Settings, db: Any, source: str, out: str, events: int
) -> float:
    counters = WorkerCounters()
    [processor] = build_processors(
        settings,
        topics=[source],
        group_id=f"bench-registration-{uuid.uuid4().hex[:8]}",
        schema_of={source: CHECKOUT_ORDERS},
        topic_map={REGISTRATION_ENTITLEMENTS: out},
    )(db, counters, "bench")
    await processor.start()
    task = asyncio.create_task(processor.run())
    # Like the passthrough, the clock starts at the first batch (not at the group join).
    while counters.get("records_total", topic=source) == 0 and not task.done():  # noqa: ASYNC110
        await asyncio.sleep(0.005)
    started = time.perf_counter()
    while counters.get("orders_applied_total") < events and not task.done():  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - started
    processor.request_stop()
    await task
    await processor.stop()
    retries = counters.get("batch_retries_total")
    if retries:
        print(f"  (worker retried {retries} batch(es))")
    return events / elapsed


async def prepare(
    suite: EmbeddedSuite, run: str, batch: int
) -> tuple[Settings, AsyncMongoClient[dict[str, Any]], Any, list[str]]:
    """A fresh database `bench_<run>` with its indexes and 20 partners: the worker's settings,
    the client (close it), the database and the partners' seller codes."""
    settings = Settings(
        admin_token="bench-admin-token",  # noqa: S106 - a throwaway local token
        kafka_bootstrap=suite.kafka_bootstrap,
        mongo_url=suite.mongo_url,
        consumer_batch_max=batch,
        consumer_empty_fetch_backoff_ms=int(DEV_TUNING["CONSUMER_EMPTY_FETCH_BACKOFF_MS"]),
        **{"REGISTRATION_MONGO_DB": f"bench_{run}"},
    )
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(suite.mongo_url, tz_aware=True)
    db = client[f"bench_{run}"]
    await prepare_worker(db)  # as the worker does before it consumes
    partners = PartnerService(lambda db=db: MongoUnitOfWork(db), utc_now)
    codes = []
    for n in range(20):
        partner, _ = await partners.create(
            NewPartner(
                f"Partner {n}",
                f"Partner {n} GmbH",
                "var",
                "gold",
                f"p{n}@example.com",
                effective_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
            )
        )
        codes.append(partner.seller_code)
    return settings, client, db, codes


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keys", type=int, default=0, help="licence-key pool (default orders/2)")
    parser.add_argument("--batch", type=int, default=BATCH, help="records per poll, both loops")
    parser.add_argument("--quick", action="store_true", help="5,000 orders, one round")
    args = parser.parse_args()
    if args.quick:
        args.orders, args.rounds = 5_000, 1
    keys = args.keys or max(1, args.orders // 2)
    with tempfile.TemporaryDirectory() as tmp:
        env = {"EMBEDDED_KAFKA_PORT": str(free_port()), "EMBEDDED_MONGO_PORT": str(free_port())}
        with EmbeddedSuite(data_dir=Path(tmp), env=env, with_smtp=False) as suite:
            bootstrap = suite.kafka_bootstrap
            raw_rates, ours_rates, floor_rates = [], [], []
            for round_no in range(1, args.rounds + 1):
                run = uuid.uuid4().hex[:8]
                settings, client, db, codes = await prepare(suite, run, args.batch)
                rng = random.Random(round_no)
                orders = [make_order(i, rng, codes, keys) for i in range(args.orders)]
                src_a, src_b = f"bench.orders.a.{run}", f"bench.orders.b.{run}"
                out_a, out_b = f"bench.out.a.{run}", f"bench.out.b.{run}"
                src_c, out_c = f"bench.orders.c.{run}", f"bench.out.c.{run}"
                await ensure_topics(
                    bootstrap, [src_a, src_b, src_c, out_a, out_b, out_c], partitions=6
                )
                for source in (src_a, src_b, src_c):
                    await fill(bootstrap, source, orders)
                cpu_0 = cpu_seconds(suite)
                raw = await raw_transactional_passthrough(
                    bootstrap, src_a, out_a, args.orders, args.batch
                )
                cpu_1 = cpu_seconds(suite)
                ours = await registration_worker(settings, db, src_b, out_b, args.orders)
                cpu_2 = cpu_seconds(suite)
                floor = await transactional_floor(
                    bootstrap,
                    src_c,
                    out_c,
                    args.orders,
                    write=registration_write(db),
                    batch=args.batch,
                )
                cpu_3 = cpu_seconds(suite)
                await client.drop_database(db.name)
                await client.close()
                raw_rates.append(raw)
                ours_rates.append(ours)
                floor_rates.append(floor)
                print(
                    f"round {round_no}: raw passthrough {raw:8.0f} orders/s   "
                    f"registration worker {ours:8.0f} orders/s   ratio {ours / raw:.2f}   "
                    f"floor {floor:8.0f} orders/s   ratio {ours / floor:.2f}"
                )
                print(
                    f"  CPU ms/order: passthrough {per_order_ms(cpu_0, cpu_1, args.orders)};"
                    f" registration {per_order_ms(cpu_1, cpu_2, args.orders)};"
                    f" floor {per_order_ms(cpu_2, cpu_3, args.orders)}"
                )
            raw_m, ours_m = statistics.median(raw_rates), statistics.median(ours_rates)
            floor_m = statistics.median(floor_rates)
            print(
                f"median ({args.rounds} rounds, {args.orders} orders each, {keys} licence keys,"
                f" batches of {args.batch}): "
                f"raw {raw_m:.0f} orders/s, registration {ours_m:.0f} orders/s, "
                f"ratio {ours_m / raw_m:.2f}"
            )
            figure(
                "orders in to entitlement.order_applied out",
                ours_m,
                "orders/s",
                baseline=raw_m,
                baseline_name="raw passthrough",
                aim=">= 0.40",
            )
            figure(
                "orders in to entitlement events out, against the stage's floor",
                ours_m,
                "orders/s",
                baseline=floor_m,
                baseline_name="floor (consume, bulk upsert, produce)",
                aim=">= 0.50",
            )
            print(floor_line("registration", ours_m, floor_m), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
