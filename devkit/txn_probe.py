"""`python -m devkit.txn_probe`: what does a read_committed reader see after a
transactional producer is SIGKILLed mid-transaction, and when?

Starts a private noida-db. For each case a transactional producer in a child process
begins a transaction, sends records (acknowledged), and is SIGKILLed with the
transaction open. Then the probe samples the partitions' high watermark
(read_uncommitted ListOffsets) and last stable offset (read_committed ListOffsets)
until the LSO catches up or the case's wait runs out, and counts what a
read_committed consumer actually gets. The cases:

- `nothing`: nobody takes the transactional id over; the killed producer asked for
  the client's default transaction timeout (60 s).
- `init`: a new producer with the same transactional id starts (InitProducerId).
- `timeout`: the killed producer asked for a short `transaction_timeout_ms`.
- `worker-order`: what a restarted worker does, in its order: the new producer starts
  and at once commits a transaction of its own, and a read_committed consumer group
  starts right after (the race between fencing and consuming).
- `reader`: after the new producer's InitProducerId aborted the killed transaction, it
  commits 10 transactions of its own while a read_committed reader keeps up with it
  (each fetch brings only the newest transactions); then a second reader reads the
  topic from the start in one go. The probe counts what each got. With `--clip`, the
  readers run with the embedded-broker workaround of `chassis.kafka`.

Used to tell a broker defect from one of ours; the figures are in docs/RELIABILITY.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from chassis.kafka import clip_aborted_transactions
from devkit.embedded import kafka_answers, noida_binary
from devkit.processes import ManagedProcess, free_port, wait_until

PARTITIONS = 3
COMMITTED_BEFORE = 30
OPEN_RECORDS = 60


@dataclass
class Outcome:
    case: str
    committed_before: int
    open_records: int
    caught_up_after_s: float | None
    waited_s: float
    lso_lag_at_end: int
    read_committed_got: int

    def line(self) -> str:
        caught = (
            f"LSO caught up {self.caught_up_after_s:.2f} s after the kill"
            if self.caught_up_after_s is not None
            else f"LSO STUCK for {self.waited_s:.0f} s ({self.lso_lag_at_end} records behind HW)"
        )
        return (
            f"{self.case:>13}: {caught}; a read_committed reader got {self.read_committed_got}"
            f" records ({self.committed_before} committed,"
            f" {self.open_records} in the killed transaction)"
        )


async def offsets(bootstrap: str, topic: str) -> tuple[int, int]:
    """(high watermark, last stable offset), summed over the topic's partitions."""
    ends = []
    for isolation in ("read_uncommitted", "read_committed"):
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level=isolation)
        await consumer.start()
        try:
            tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
            ends.append(sum((await consumer.end_offsets(tps)).values()))
        finally:
            await consumer.stop()
    return ends[0], ends[1]


async def read_committed(bootstrap: str, topic: str, settle_s: float = 2.0) -> int:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    got = 0
    try:
        deadline = time.monotonic() + settle_s
        while time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                got += len(records)
    finally:
        await consumer.stop()
    return got


async def transactional(bootstrap: str, txid: str, timeout_ms: int) -> AIOKafkaProducer:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        transactional_id=txid,
        enable_idempotence=True,
        acks="all",
        transaction_timeout_ms=timeout_ms,
    )
    await producer.start()
    return producer


async def send(producer: AIOKafkaProducer, topic: str, count: int, tag: str) -> None:
    futures = [
        await producer.send(topic, f"{tag}-{i}".encode(), partition=i % PARTITIONS)
        for i in range(count)
    ]
    await asyncio.gather(*futures)


async def child(bootstrap: str, topic: str, txid: str, timeout_ms: int) -> None:
    """The producer to be killed: commits some records, then leaves a transaction open."""
    producer = await transactional(bootstrap, txid, timeout_ms)
    async with producer.transaction():
        await send(producer, topic, COMMITTED_BEFORE, "committed")
    await producer.begin_transaction()
    await send(producer, topic, OPEN_RECORDS, "open")
    print("open", flush=True)
    await asyncio.sleep(3600)


def kill_mid_transaction(bootstrap: str, topic: str, txid: str, timeout_ms: int) -> float:
    """Runs `child`, SIGKILLs it once its transaction is open; returns the kill time."""
    argv = [sys.executable, "-m", "devkit.txn_probe", "--child", bootstrap, topic, txid]
    argv.append(str(timeout_ms))
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, cwd=Path(__file__).parents[1])
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if line.strip() != b"open":
            raise RuntimeError(f"child producer failed (said {line!r})")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    return time.monotonic()


async def create(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    finally:
        await admin.close()


async def watch(
    bootstrap: str, topic: str, since: float, wait_s: float
) -> tuple[float | None, int]:
    """Seconds from `since` until LSO == HW (None: not within `wait_s`), and the lag then."""
    while True:
        high, stable = await offsets(bootstrap, topic)
        now = time.monotonic()
        if stable >= high:
            return now - since, 0
        if now - since > wait_s:
            return None, high - stable
        await asyncio.sleep(0.25)


async def case(bootstrap: str, name: str, wait_s: float, short_timeout_ms: int) -> Outcome:
    topic, txid = f"probe-{name}", f"probe-{name}-txid"
    await create(bootstrap, topic)
    timeout_ms = short_timeout_ms if name == "timeout" else 60_000
    killed = await asyncio.to_thread(kill_mid_transaction, bootstrap, topic, txid, timeout_ms)
    extra = 0
    producer: AIOKafkaProducer | None = None
    if name != "nothing" and name != "timeout":
        producer = await transactional(bootstrap, txid, 60_000)
    if name == "worker-order" and producer is not None:
        group = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=f"{topic}-group",
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await group.start()
        async with producer.transaction():
            await send(producer, topic, 10, "restarted")
        extra = 10
        await group.stop()
    caught, lag = await watch(bootstrap, topic, killed, wait_s)
    waited = time.monotonic() - killed
    if name == "reader" and producer is not None:
        # A reader that keeps up: it is reading while the new producer commits, so each
        # of its fetches brings only the newest transactions.
        following = asyncio.create_task(read_committed(bootstrap, topic, settle_s=8.0))
        await asyncio.sleep(2.0)
        for _ in range(10):
            async with producer.transaction():
                await send(producer, topic, 30, "restarted")
            await asyncio.sleep(0.3)
        extra = 300
        kept_up = await following
        print(f"{name:>13}: a reader keeping up got {kept_up} of {30 + extra}", flush=True)
    if producer is not None:
        await producer.stop()
    got = await read_committed(bootstrap, topic)
    return Outcome(name, COMMITTED_BEFORE + extra, OPEN_RECORDS, caught, waited, lag, got)


async def probe(bootstrap: str, cases: list[str], wait_s: float, short_ms: int) -> list[Outcome]:
    return [await case(bootstrap, name, wait_s, short_ms) for name in cases]


def run(cases: list[str], wait_s: float, short_timeout_ms: int) -> list[Outcome]:
    with tempfile.TemporaryDirectory(prefix="txn-probe-") as tmp:
        port = free_port()
        argv = [noida_binary(), "start", "--data-dir", str(Path(tmp) / "kafka")]
        argv += ["--host", "127.0.0.1", "--only", "kafka", "--kafka-port", str(port)]
        broker = ManagedProcess("broker", argv, log_path=Path(tmp) / "broker.log")
        broker.start()
        bootstrap = f"127.0.0.1:{port}"
        try:
            wait_until(lambda: kafka_answers(bootstrap), timeout=60, process=broker)
            return asyncio.run(probe(bootstrap, cases, wait_s, short_timeout_ms))
        finally:
            broker.stop()


CASES = ["nothing", "init", "timeout", "worker-order", "reader"]


def main() -> None:
    if len(sys.argv) == 6 and sys.argv[1] == "--child":
        asyncio.run(child(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])))
        return
    parser = argparse.ArgumentParser(prog="python -m devkit.txn_probe", description=__doc__)
    parser.add_argument("--case", choices=CASES, action="append", help="default: all")
    parser.add_argument("--wait", type=float, default=90.0, help="seconds to wait per case")
    parser.add_argument("--short-timeout-ms", type=int, default=5000)
    parser.add_argument(
        "--clip", action="store_true", help="readers ignore aborted transactions before a fetch"
    )
    args = parser.parse_args()
    if args.clip:
        clip_aborted_transactions()
    for outcome in run(args.case or CASES, args.wait, args.short_timeout_ms):
        print(outcome.line(), flush=True)


if __name__ == "__main__":
    main()
