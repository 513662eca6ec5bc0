"""Throughput of the chassis' transactional processor against a raw aiokafka passthrough.

Both read the same N `order.placed` events from their own fresh topic on the same
embedded broker and write each to an output topic. The baseline commits offsets
and output in one Kafka transaction per batch with no validation; the chassis
loop adds envelope parsing, schema validation and dead-letter routing. Prints
events/s for each over several rounds, their medians and the ratio.

    .venv/bin/python bench/chassis_processor.py [--events 20000] [--rounds 3] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from _passthrough import raw_transactional_passthrough
from _report import figure

from chassis.consumer import TransactionalProcessor
from chassis.kafka import ensure_topics, make_producer
from chassis.metrics import WorkerCounters
from chassis.records import HandlerResult, Inbound, OutRecord
from devkit.embedded import EmbeddedSuite
from devkit.processes import free_port
from shared.envelope import encode
from shared.examples import example_events
from shared.topics import CHECKOUT_ORDERS


async def fill(bootstrap: str, topic: str, events: int) -> None:
    _, order = next((t, e) for t, e in example_events() if t == CHECKOUT_ORDERS)
    producer = make_producer(bootstrap)
    await producer.start()
    try:
        batch = []
        for i in range(events):
            envelope = order.model_copy(update={"event_id": f"bench-{i}"})
            batch.append(await producer.send(topic, encode(envelope), key=str(i).encode()))
            if len(batch) >= 1000:
                await asyncio.gather(*batch)
                batch.clear()
        await asyncio.gather(*batch)
    finally:
        await producer.stop()


async def chassis_loop(bootstrap: str, source: str, out: str, events: int) -> float:
    group = f"bench-chassis-{uuid.uuid4().hex[:8]}"
    seen = 0
    all_seen = asyncio.Event()

    async def forward(batch: list[Inbound]) -> HandlerResult:
        nonlocal seen
        seen += len(batch)
        if seen >= events:
            all_seen.set()
        return HandlerResult(produce=[OutRecord(out, i.key, i.value) for i in batch])

    processor = TransactionalProcessor(
        bootstrap=bootstrap,
        topics=[source],
        group_id=group,
        transactional_id=f"{group}-tx",
        handler=forward,
        counters=WorkerCounters(),
        schema_of={source: CHECKOUT_ORDERS},
    )
    await processor.start()
    started = time.perf_counter()
    task = asyncio.create_task(processor.run())
    await all_seen.wait()
    elapsed = time.perf_counter() - started
    processor.request_stop()
    await task
    await processor.stop()
    return events / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="5,000 events, one round")
    args = parser.parse_args()
    if args.quick:
        args.events, args.rounds = 5_000, 1
    with tempfile.TemporaryDirectory() as tmp:
        env = {"EMBEDDED_KAFKA_PORT": str(free_port()), "EMBEDDED_MONGO_PORT": str(free_port())}
        with EmbeddedSuite(data_dir=Path(tmp), env=env, with_smtp=False) as suite:
            bootstrap = suite.kafka_bootstrap
            raw_rates, chassis_rates = [], []
            for round_no in range(1, args.rounds + 1):
                run = uuid.uuid4().hex[:8]
                src_a, src_b, out = f"bench.a.{run}", f"bench.b.{run}", f"bench.out.{run}"
                await ensure_topics(bootstrap, [src_a, src_b, out], partitions=6)
                await fill(bootstrap, src_a, args.events)
                await fill(bootstrap, src_b, args.events)
                raw = await raw_transactional_passthrough(bootstrap, src_a, out, args.events)
                ours = await chassis_loop(bootstrap, src_b, out, args.events)
                raw_rates.append(raw)
                chassis_rates.append(ours)
                print(
                    f"round {round_no}: raw passthrough {raw:8.0f} ev/s   "
                    f"chassis processor {ours:8.0f} ev/s   ratio {ours / raw:.2f}"
                )
            raw_m, ours_m = statistics.median(raw_rates), statistics.median(chassis_rates)
            print(
                f"median ({args.rounds} rounds, {args.events} events each): raw {raw_m:.0f} ev/s, "
                f"chassis {ours_m:.0f} ev/s, ratio {ours_m / raw_m:.2f}"
            )
            figure(
                "chassis processor (parse, validate, DLQ routing)",
                ours_m,
                "ev/s",
                baseline=raw_m,
                baseline_name="raw passthrough",
            )


if __name__ == "__main__":
    asyncio.run(main())
