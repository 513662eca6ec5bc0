"""Stream worker of the notifications service; run as a module.

Consumes the partner, entitlement, advisory and ledger topics, and runs the
dispatcher, the advisory fan-out and the daily reminder scheduler beside them.
SIGTERM lets in-flight sends finish and get their mark before it exits.
"""

from __future__ import annotations

import asyncio

from chassis import logging as ck_logging
from chassis.settings import load_settings
from chassis.worker import run_worker
from services.notifications.bootstrap import (
    CONSUMES,
    PRODUCES,
    build_background,
    build_processors,
    ensure_indexes,
)
from services.notifications.config import Settings


def main() -> None:
    settings = load_settings(Settings)
    ck_logging.configure(settings.log_level, settings.service_name)

    async def run() -> None:
        # One stop event for the chassis (signals) and our background loops, so a
        # SIGTERM stops new sends at once instead of cancelling them mid-flight.
        stop = asyncio.Event()
        await run_worker(
            settings,
            topics=[*CONSUMES, *PRODUCES],
            processors=build_processors(settings),
            background=build_background(settings, stop=stop),
            stop=stop,
            prepare=ensure_indexes,
        )

    asyncio.run(run())


if __name__ == "__main__":
    main()
