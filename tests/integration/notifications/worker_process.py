"""The notifications worker as its own process, on test topics: what the kill test kills.

Same wiring as `services.notifications.entrypoints.worker` (the chassis' run_worker
with its signal handling), except that it consumes the fresh topics of one test.
`python -m tests.integration.notifications.worker_process RUN GROUP` with the
settings in the environment.
"""

from __future__ import annotations

import asyncio
import sys

from chassis import logging as ck_logging
from chassis.worker import run_worker
from services.notifications.bootstrap import (
    CONSUMES,
    build_background,
    build_processors,
    prepare_worker,
)
from services.notifications.config import Settings


def main(run: str, group: str) -> None:
    settings = Settings()
    ck_logging.configure(settings.log_level, settings.service_name)
    topics = {f"{t}.{run}": t for t in CONSUMES}
    deliveries = f"notifications.deliveries.v1.{run}"

    async def go() -> None:
        stop = asyncio.Event()
        await run_worker(
            settings,
            topics=[*topics, deliveries],
            prepare=prepare_worker,
            processors=build_processors(settings, topics=topics, group_id=group),
            background=build_background(settings, stop=stop, deliveries_topic=deliveries),
            stop=stop,
        )

    asyncio.run(go())


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
