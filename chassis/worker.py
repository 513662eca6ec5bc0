"""The worker process: provisions topics, runs the stream processors, beats, stops cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from chassis import heartbeat, tracing
from chassis.consumer import TransactionalProcessor
from chassis.kafka import clip_aborted_transactions, ensure_topics
from chassis.lso import LsoWatch, output_topics
from chassis.metrics import WorkerCounters
from chassis.mongo import Prepare, connect, database
from chassis.retry import retry_until_ready
from chassis.settings import ServiceSettings

log = logging.getLogger(__name__)

ProcessorFactory = Callable[
    [AsyncDatabase[dict[str, Any]], WorkerCounters, str], Sequence[TransactionalProcessor]
]
BackgroundTask = Callable[
    [AsyncDatabase[dict[str, Any]], WorkerCounters], Coroutine[Any, Any, None]
]


def instance_id(settings: ServiceSettings) -> str:
    return settings.worker_instance_id or f"{socket.gethostname()}-{os.getpid()}"


def static_member_id(settings: ServiceSettings, member: str) -> str | None:
    """The consumer's `group.instance.id` when the operator gave a stable instance id.

    Static membership (KIP-345) lets a restarted worker (a StatefulSet pod, a worker of
    `./dev up` after a crash) take its partitions back at once instead of waiting for the
    group to expire its dead predecessor; the embedded broker never expires one at all,
    so without it one SIGKILLed dynamic member stalls its group. Throwaway host-pid ids
    stay dynamic: they would only leave ghost members behind.
    """
    return member if settings.worker_instance_id else None


def loops_alive(processors: Sequence[TransactionalProcessor], now: float, stall_s: float) -> bool:
    """True when every consume loop came round (a poll returned) within `stall_s` of `now`."""
    return all(now - p.last_progress <= stall_s for p in processors)


def _touch(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.touch()  # a metadata write on a local file: not worth a thread


async def keep_alive(
    path: Path,
    processors: Sequence[TransactionalProcessor],
    *,
    stop: asyncio.Event,
    interval_s: float,
    stall_s: float,
) -> None:
    """Touches `path` (the liveness probe's file) while every consume loop makes progress.

    It asks nothing of MongoDB or the broker: an outage of either only makes the loops
    retry, and restarting every worker would not end it. A loop that stops coming round
    (a handler awaiting forever) stops the touching, and the probe restarts the worker.
    Before the processors have started (`processors` still empty) there is nothing to
    be stuck, and the file is touched.
    """
    stalled = False
    while not stop.is_set():
        alive = loops_alive(processors, time.monotonic(), stall_s)
        if alive:
            _touch(path)
        elif not stalled:
            log.error(
                "a consume loop made no progress; liveness file no longer touched",
                extra={"stall_seconds": stall_s},
            )
        stalled = not alive
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)


async def run_worker(
    settings: ServiceSettings,
    *,
    topics: Sequence[str],
    processors: ProcessorFactory,
    background: Sequence[BackgroundTask] = (),
    stop: asyncio.Event | None = None,
    prepare: Prepare | None = None,
) -> None:
    """Runs until SIGTERM/SIGINT (or `stop` is set), then shuts down within seconds.

    `prepare` (indexes, collections) runs to completion, retried until the database
    answers, before any background job or processor starts, so nothing writes a
    collection while it is being created: the embedded database livelocks when a
    createIndexes and an insert both create one, or a collection is created while
    transactions run. `stop` is the service's own event when its background loops
    watch it too (notifications: a SIGTERM stops new sends instead of cancelling them).
    """
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)

    me = instance_id(settings)
    # Off (nothing of the SDK imported) unless OTEL_EXPORTER_OTLP_ENDPOINT is set.
    traced = tracing.configure(f"{settings.service_name}-worker")
    if settings.kafka_clip_aborted_transactions:
        clip_aborted_transactions()
    counters = WorkerCounters()
    client = connect(settings)
    db = database(client, settings)
    running: list[TransactionalProcessor] = []
    tasks: list[asyncio.Task[Any]] = []
    if settings.worker_heartbeat_file:
        tasks.append(
            asyncio.create_task(
                keep_alive(
                    Path(settings.worker_heartbeat_file),
                    running,
                    stop=stop,
                    interval_s=settings.worker_heartbeat_seconds,
                    stall_s=settings.worker_loop_stall_seconds,
                ),
                name="liveness",
            )
        )
    lso_task: asyncio.Task[None] | None = None
    try:
        ok = await retry_until_ready(
            "topic provisioning",
            lambda: ensure_topics(
                settings.kafka_bootstrap,
                topics,
                partitions=settings.topic_partitions,
                replication_factor=settings.topic_replication_factor,
            ),
            stop=stop,
        )
        if not ok:
            return
        if prepare is not None and not await retry_until_ready(
            "database preparation", lambda: prepare(db), stop=stop
        ):
            return
        # Background jobs first: they must not wait for a slow consumer-group join.
        for task_factory in background:
            tasks.append(asyncio.create_task(task_factory(db, counters)))
        for processor in processors(db, counters, me):
            started = await retry_until_ready(
                f"starting {processor.group_id}", processor.start, stop=stop
            )
            if not started:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(processor.stop(), 5)
                return
            running.append(processor)
            tasks.append(asyncio.create_task(processor.run(), name=processor.group_id))
        lso = LsoWatch(
            settings.kafka_bootstrap,
            output_topics(topics, [t for p in running for t in p.topics]),
            counters,
            stuck_after_s=settings.lso_stuck_after_seconds,
        )
        lso_task = asyncio.create_task(lso.run(settings.worker_heartbeat_seconds), name="lso")
        log.info("worker started", extra={"instance": me, "groups": [p.group_id for p in running]})
        while not stop.is_set():
            crashed = [t for t in tasks if t.done()]
            if crashed:
                for task in crashed:
                    if not task.cancelled() and task.exception() is not None:
                        raise RuntimeError(f"task {task.get_name()} crashed") from task.exception()
            assigned = sorted({a for p in running for a in p.assignment()})
            counters.set_gauge("assigned_partitions", len(assigned))
            # Liveness does not hang on this write (`keep_alive`): MongoDB may be down.
            with contextlib.suppress(Exception):
                await heartbeat.beat(
                    db,
                    instance=me,
                    assigned=assigned,
                    counters=counters.snapshot(),
                    gauges=counters.gauges,
                    histograms=counters.histograms,
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), settings.worker_heartbeat_seconds)
    finally:
        for processor in running:
            processor.request_stop()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=5)
            for task in pending:
                task.cancel()
        for processor in running:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(processor.stop(), 5)
        if lso_task is not None:
            lso_task.cancel()
            with contextlib.suppress(BaseException):
                await lso_task
        with contextlib.suppress(Exception):
            await asyncio.wait_for(heartbeat.forget(db, me), 2)
        await client.close()
        if traced:
            # Flushes the spans still buffered (an HTTP request: off the event loop).
            await asyncio.to_thread(tracing.shutdown)
        log.info("worker stopped", extra={"instance": me})
