"""Stream worker of the notifications service; run as a module.

Consumes the partner, entitlement, advisory and ledger topics, and runs the
dispatcher, the advisory fan-out and the daily reminder scheduler beside them.
SIGTERM lets in-flight sends finish and get their mark before it exits.
"""

from __future__ import annotations

import asyncio

from chassis.run import run_worker_process
from chassis.settings import load_settings
from services.notifications.bootstrap import (
    CONSUMES,
    PRODUCES,
    build_background,
    build_processors,
    prepare_worker,
)
from services.notifications.config import Settings


def main() -> None:
    settings = load_settings(Settings)
    # One stop event for the chassis (signals) and our background loops, so a
    # SIGTERM stops new sends at once instead of cancelling them mid-flight.
    stop = asyncio.Event()
    run_worker_process(
        settings,
        topics=[*CONSUMES, *PRODUCES],
        prepare=prepare_worker,
        processors=build_processors(settings),
        background=build_background(settings, stop=stop),
        stop=stop,
    )


if __name__ == "__main__":
    main()
