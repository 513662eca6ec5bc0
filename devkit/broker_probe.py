"""`python -m devkit.broker_probe`: does the embedded broker keep what it acknowledged
across a clean restart?

Starts a private noida-db, produces keyed records with a plain aiokafka producer
(acks=all, each batch awaited) and restarts the broker with SIGTERM while it runs, then
reads everything back and prints how many acknowledged records are gone. With
`--quiesce` the producer is paused while the broker stops and starts (what the fault
run does for its clients). Used to tell a broker defect from one of ours; the figures
are in docs/RELIABILITY.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import threading
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from devkit.embedded import kafka_answers, noida_binary
from devkit.processes import ManagedProcess, free_port, wait_until

TOPIC = "probe"


class Probe:
    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir = data_dir
        self.bootstrap = f"127.0.0.1:{port}"
        self.port = port
        self.acked: set[int] = set()
        self.gate = threading.Lock()
        self.done = threading.Event()
        self.broker = self._broker()

    def _broker(self) -> ManagedProcess:
        argv = [noida_binary(), "start", "--data-dir", str(self.data_dir / "kafka")]
        argv += ["--host", "127.0.0.1", "--only", "kafka", "--kafka-port", str(self.port)]
        return ManagedProcess("broker", argv, log_path=self.data_dir / "broker.log")

    def start_broker(self) -> None:
        self.broker = self._broker()
        self.broker.start()
        wait_until(lambda: kafka_answers(self.bootstrap), timeout=60, process=self.broker)

    async def produce(self) -> None:
        producer: AIOKafkaProducer | None = None
        next_key = 0
        while not self.done.is_set():
            try:
                if producer is None:
                    producer = AIOKafkaProducer(
                        bootstrap_servers=self.bootstrap, acks="all", linger_ms=5
                    )
                    await producer.start()
                with self.gate:
                    keys = range(next_key, next_key + 200)
                    futures = [
                        await producer.send(TOPIC, b"x" * 400, key=str(k).encode()) for k in keys
                    ]
                    await asyncio.gather(*futures)
                self.acked.update(keys)
                next_key += 200
            except Exception:  # the broker is restarting: a new producer, the next keys
                next_key += 200
                if producer is not None:
                    with contextlib.suppress(Exception):
                        await producer.stop()
                producer = None
                await asyncio.sleep(0.2)
            await asyncio.sleep(0.005)
        if producer is not None:
            await producer.stop()

    async def surviving(self) -> set[int]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            partitions = [
                TopicPartition(TOPIC, p) for p in consumer.partitions_for_topic(TOPIC) or ()
            ]
            consumer.assign(partitions)
            ends = await consumer.end_offsets(partitions)
            await consumer.seek_to_beginning(*partitions)
            seen: set[int] = set()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    seen.update(int(r.key or b"-1") for r in records)
                if all([await consumer.position(tp) >= ends[tp] for tp in partitions]):
                    break
            return seen
        finally:
            await consumer.stop()


def run(restarts: int, quiesce: bool, seconds_between: float) -> dict[str, int]:
    with tempfile.TemporaryDirectory(prefix="broker-probe-") as tmp:
        probe = Probe(Path(tmp), free_port())
        probe.start_broker()
        feeder = threading.Thread(target=lambda: asyncio.run(probe.produce()))
        feeder.start()
        try:
            for _ in range(restarts):
                time.sleep(seconds_between)
                with probe.gate if quiesce else contextlib.nullcontext():
                    probe.broker.stop()
                    probe.start_broker()
            time.sleep(seconds_between)
        finally:
            probe.done.set()
            feeder.join(timeout=30)
        seen = asyncio.run(probe.surviving())
        probe.broker.stop()
    lost = probe.acked - seen
    return {"acknowledged": len(probe.acked), "read_back": len(seen), "lost": len(lost)}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m devkit.broker_probe", description=__doc__)
    parser.add_argument("--restarts", type=int, default=2)
    parser.add_argument("--every", type=float, default=4.0, help="seconds between restarts")
    parser.add_argument("--quiesce", action="store_true", help="pause the producer meanwhile")
    args = parser.parse_args()
    figures = run(args.restarts, args.quiesce, args.every)
    mode = "producer paused during restarts" if args.quiesce else "producer running"
    print(f"{args.restarts} clean broker restarts, {mode}: {figures}")


if __name__ == "__main__":
    main()
