"""The outbox relay: publishes committed transitions to Kafka, in order, exactly once.

Outbox messages carry a gapless sequence number (allocated inside the same
database transaction as the change, so an aborted transaction leaves no gap and
a later one cannot become visible before an earlier one). The publisher moves
its checkpoint to the last sequence number inside the same Kafka transaction as
the messages, so a crash at any point either published a run and its checkpoint
or neither. Only a contiguous run after the checkpoint is ever published.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Final

from chassis.leadership import Lease
from services.commissions.service_layer.ports import (
    Counters,
    LedgerPublisher,
    OutboxStore,
    RelayPublisher,
)

log = logging.getLogger(__name__)

BATCH: Final = 1000
LEASE_TTL: Final = dt.timedelta(seconds=15)
"""How long the relay lease outlives a relay that stopped renewing it."""


async def relay_once(outbox: OutboxStore, publisher: LedgerPublisher, limit: int = BATCH) -> int:
    """Publish the next contiguous run of outbox messages; returns how many."""
    checkpoint = await publisher.checkpoint()
    run = []
    expected = checkpoint + 1
    for message in await outbox.after(checkpoint, limit):
        if message.seq != expected:
            break
        run.append(message)
        expected += 1
    if not run:
        return 0
    await publisher.publish(run)
    # Housekeeping only (what may be pruned); the checkpoint in Kafka is the truth.
    await outbox.mark_published(run[-1].seq)
    return len(run)


PublisherFactory = Callable[[str, int], RelayPublisher]
"""Builds a publisher for an outbox epoch, given its published mark (fallback checkpoint)."""


async def relay_forever(
    *,
    outbox: OutboxStore,
    lease: Lease,
    publisher_factory: PublisherFactory,
    interval_s: float,
    counters: Counters,
    keep_alive_s: float = 3600.0,
) -> None:
    """Publish the outbox while holding the relay lease; runs until cancelled.

    The lease only avoids two relays taking turns fencing each other; correctness
    rests on the transactional id (fencing) and the checkpoint in Kafka.
    """
    publisher: RelayPublisher | None = None
    last_commit = time.monotonic()
    try:
        while True:
            try:
                if not await lease.acquire():
                    if publisher is not None:
                        await publisher.stop()
                        publisher = None
                    await asyncio.sleep(interval_s)
                    continue
                if publisher is None:
                    identity = await outbox.identity()
                    if identity is None:  # nothing was ever put in the outbox
                        await asyncio.sleep(interval_s)
                        continue
                    publisher = publisher_factory(*identity)
                    await publisher.start()
                sent = await relay_once(outbox, publisher)
                if sent:
                    counters.inc("outbox_published_total", value=sent)
                    last_commit = time.monotonic()
                    continue  # a backlog drains without pauses
                if time.monotonic() - last_commit > keep_alive_s:
                    await publisher.keep_alive()
                    last_commit = time.monotonic()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning(
                    "outbox relay failed; restarting it", extra={"error": type(error).__name__}
                )
                counters.inc("outbox_relay_errors_total")
                if publisher is not None:
                    with contextlib.suppress(Exception):
                        await publisher.stop()
                    publisher = None
                await asyncio.sleep(min(interval_s * 4, 5.0))
                continue
            await asyncio.sleep(interval_s)
    finally:
        if publisher is not None:
            with contextlib.suppress(Exception):
                await publisher.stop()
        with contextlib.suppress(Exception):
            await lease.release()
