"""A worker killed with SIGKILL mid-batch and restarted: same ledger, no duplicates, no gaps."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from shared.envelope import parse_event
from shared.topics import COMMISSIONS_LEDGER
from tests.conftest import Names
from tests.integration.commissions.harness import (
    create_topics,
    env_for,
    produce,
    read_topic,
    settings_for,
    wait_for,
)
from tests.integration.commissions.oracle import expected_events
from tests.integration.commissions.test_worker import ledger_summary, make_stream, order_record

ROOT = Path(__file__).resolve().parents[3]


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "services.commissions.entrypoints.worker"],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def test_a_worker_killed_mid_batch_and_restarted_still_gives_the_ledger_exactly_once(
    kafka_bootstrap: str, mongo_url: str, mongo_db: Any, names: Names, tmp_path: Path
) -> None:
    settings = settings_for(names, kafka_bootstrap, mongo_url, mongo_db.name)
    # A stable instance id, as in production: the restarted worker's transactional id
    # fences the killed one and aborts its open transaction at once.
    env = {**env_for(settings), "WORKER_INSTANCE_ID": "commissions-0", "CONSUMER_BATCH_MAX": "200"}
    lines, early, late = make_stream(settings, 3000, seed=23)
    orders = [order_record(settings, line, f"evt-{line.order_id}") for line in lines]
    expected = expected_events(lines)
    await create_topics(settings)
    await produce(kafka_bootstrap, [*early, *orders, *late])

    log = tmp_path / "worker.log"
    stored = mongo_db["order_lines"]
    total = len({(line.order_id, line.line_id) for line in lines})
    kills = 0
    for fraction in (0.2, 0.55):
        worker = start_worker(env, log)
        try:
            await wait_for(
                lambda f=fraction: _count_at_least(stored, int(total * f)),
                within_s=120,
                what=f"{fraction:.0%} of the order lines",
            )
        finally:
            worker.send_signal(signal.SIGKILL)
            worker.wait(10)
            kills += 1
    assert await stored.count_documents({}) < total, "the stream finished before the kills"

    worker = start_worker(env, log)
    try:
        records = await read_topic(
            kafka_bootstrap, settings.ledger_topic, expect=len(expected), wait_s=180, settle_s=3
        )
        # The restarted worker watches the ledger's last stable offset: nothing hangs.
        await wait_for(
            lambda: _lso_gauges(mongo_db, settings.ledger_topic, settings.topic_partitions),
            within_s=30,
            what="the restarted worker's lso gauges, all partitions caught up",
        )
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(20)
    ids = Counter(parse_event(COMMISSIONS_LEDGER, r.value).event_id for r in records)
    duplicated = [event_id for event_id, count in ids.items() if count > 1]
    assert duplicated == [], f"{len(duplicated)} ledger events committed twice after {kills} kills"
    assert ledger_summary(records) == expected


async def _count_at_least(collection: Any, wanted: int) -> bool:
    await asyncio.sleep(0.2)
    return bool(await collection.count_documents({}) >= wanted)


async def _lso_gauges(db: Any, topic: str, partitions: int) -> bool:
    await asyncio.sleep(0.5)
    beat = await db["worker_heartbeats"].find_one({"_id": "commissions-0"})
    gauges = (beat or {}).get("gauges", {})
    wanted = [f"{name}:{topic}:{p}" for name in ("lso_lag", "lso_stuck") for p in range(partitions)]
    return all(gauges.get(key) == 0 for key in wanted)
