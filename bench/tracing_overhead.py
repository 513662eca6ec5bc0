"""What tracing costs the consume loop: off (the default), off with traceparents, and on.

The chassis' TransactionalProcessor runs over an in-memory consumer and producer (no
broker: only the loop's own CPU is measured), batches of 500 `entitlement.order_applied`
records, a handler producing one record per input that names it as its cause. The
baseline is the same loop with tracing's two calls (`carry`, `batch_span`) replaced by
nothing, i.e. the loop before tracing. Prints microseconds per record and the ratio.

    .venv/bin/python bench/tracing_overhead.py [--batches 200] [--rounds 5] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from _report import figure
from aiokafka import TopicPartition
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from chassis import tracing
from chassis.consumer import TransactionalProcessor
from chassis.metrics import WorkerCounters
from chassis.records import HandlerResult, Inbound, OutRecord
from shared.envelope import encode
from shared.examples import example_events
from shared.topics import REGISTRATION_ENTITLEMENTS

TOPIC = "bench.traced"
TP = TopicPartition(TOPIC, 0)
BATCH = 500
TRACEPARENT = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


class _Record:
    __slots__ = ("headers", "key", "offset", "value")

    def __init__(self, offset: int, value: bytes, headers: tuple[tuple[str, bytes], ...]):
        self.offset, self.value, self.headers, self.key = offset, value, headers, b"LK-1"


class _Consumer:
    def __init__(self, polls: list[list[_Record]], processor: TransactionalProcessor) -> None:
        self.polls, self.processor = polls, processor

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, Any]:
        if not self.polls:
            self.processor.request_stop()
            return {}
        return {TP: self.polls.pop()}

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    def highwater(self, tp: TopicPartition) -> None:
        return None


class _Producer:
    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        yield

    async def send(self, topic: str, value: bytes, **_: Any) -> asyncio.Future[None]:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def send_offsets_to_transaction(self, offsets: Any, group: str) -> None:
        return None


class _Drop(SpanExporter):
    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


async def handler(batch: list[Inbound]) -> HandlerResult:
    return HandlerResult(
        produce=[OutRecord("out", i.key, i.value[:64], cause=i.envelope.event_id) for i in batch]
    )


def polls(batches: int, traced: bool) -> list[list[_Record]]:
    _, envelope = next(
        (t, e)
        for t, e in example_events()
        if t == REGISTRATION_ENTITLEMENTS and e.event_type == "entitlement.order_applied"
    )
    headers = (("traceparent", TRACEPARENT),) if traced else ()
    made = []
    for b in range(batches):
        made.append(
            [
                _Record(
                    b * BATCH + n,
                    encode(envelope.model_copy(update={"event_id": f"e-{b}-{n}"})),
                    headers,
                )
                for n in range(BATCH)
            ]
        )
    return made


async def run_once(batches: list[list[_Record]]) -> float:
    processor = TransactionalProcessor(
        bootstrap="127.0.0.1:1",
        topics=[TOPIC],
        group_id="bench",
        transactional_id="bench",
        handler=handler,
        counters=WorkerCounters(),
        schema_of={TOPIC: REGISTRATION_ENTITLEMENTS},
    )
    processor._consumer = _Consumer(list(batches), processor)  # type: ignore[assignment]
    processor._producer = _Producer()  # type: ignore[assignment]
    records = sum(len(b) for b in batches)
    started = time.perf_counter()
    await processor.run()
    return (time.perf_counter() - started) / records * 1e6


@contextlib.contextmanager
def without_tracing() -> Iterator[None]:
    """The loop as it was before tracing: both calls replaced by nothing."""
    carry, batch_span = tracing.carry, tracing.batch_span
    tracing.carry = lambda inputs, outputs: outputs  # type: ignore[assignment]
    tracing.batch_span = lambda *_: contextlib.nullcontext()  # type: ignore[assignment]
    try:
        yield
    finally:
        tracing.carry, tracing.batch_span = carry, batch_span  # type: ignore[assignment]


@contextlib.contextmanager
def tracing_on() -> Iterator[None]:
    tracing.configure("bench", exporter=_Drop())
    try:
        yield
    finally:
        tracing.shutdown()


def added_cost(traced: bool, on: bool, repeat: int = 200) -> float:
    """Microseconds per record of what tracing adds to a batch: `batch_span` and `carry`."""
    headers = (("traceparent", TRACEPARENT),) if traced else ()
    inputs = [(f"e-{n}", headers) for n in range(BATCH)]
    outputs = [OutRecord("out", b"k", b"v", cause=f"e-{n}") for n in range(BATCH)]
    parents = [headers] * BATCH
    with tracing_on() if on else contextlib.nullcontext():
        started = time.perf_counter()
        for _ in range(repeat):
            with tracing.batch_span("bench", [TOPIC], parents):
                tracing.carry(inputs, outputs)
        elapsed = time.perf_counter() - started
    return elapsed / (repeat * BATCH) * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    loop = asyncio.get_running_loop()

    def quiet(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        # The loop under test builds (and never starts) a real consumer and producer.
        if not str(context.get("message", "")).startswith("Unclosed AIOKafka"):
            loop.default_exception_handler(context)

    loop.set_exception_handler(quiet)
    if args.quick:
        args.batches, args.rounds = 20, 3
    plain, traced = polls(args.batches, False), polls(args.batches, True)
    cases = {
        "baseline (no tracing code)": (without_tracing, plain),
        "off, no traceparent": (contextlib.nullcontext, plain),
        "off, traceparent on every record": (contextlib.nullcontext, traced),
        "on (SDK, spans dropped)": (tracing_on, traced),
    }
    results: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.rounds):  # interleaved, so drift hits every case alike
        for name, (context, batches) in cases.items():
            with context():
                results[name].append(await run_once(batches))
    # Best of the rounds: the machine is shared, and noise only ever adds time.
    base = min(results["baseline (no tracing code)"])
    print(f"{args.batches} batches of {BATCH} records, {args.rounds} rounds (best)")
    for name, values in results.items():
        value = min(values)
        print(f"  {name:36} {value:7.2f} us/record  x{value / base:.3f}")
    print("what tracing adds per record (batch_span + carry), best of 5:")
    for name, traced, on in (
        ("off, no traceparent", False, False),
        ("off, traceparent on every record", True, False),
        ("on (SDK, spans dropped)", True, True),
    ):
        cost = min(added_cost(traced, on) for _ in range(5))
        print(f"  {name:36} {cost:7.3f} us/record  ({cost / base:.2%} of the loop's)")
    for name, key in (
        ("tracing off: loop us/record", "off, no traceparent"),
        ("tracing off, traceparents carried: loop us/record", "off, traceparent on every record"),
        ("tracing on: loop us/record", "on (SDK, spans dropped)"),
    ):
        figure(
            name,
            round(min(results[key]), 2),
            "us/record",
            baseline=round(base, 2),
            baseline_name="the loop without tracing",
            aim="off: ~1.0x",
        )


if __name__ == "__main__":
    asyncio.run(main())
