"""Stream worker of the registration service: run as a module."""

from __future__ import annotations

import asyncio

from chassis.run import run_worker_process
from chassis.settings import load_settings
from services.registration.bootstrap import (
    CONSUMES,
    PRODUCES,
    build_processors,
    prepare_worker,
    tier_schedule,
)
from services.registration.config import Settings


def main() -> None:
    settings = load_settings(Settings)
    stop = asyncio.Event()  # set on SIGTERM: the tier evaluation releases its lease
    run_worker_process(
        settings,
        topics=[*CONSUMES, *PRODUCES],
        prepare=prepare_worker,
        processors=build_processors(settings),
        background=[tier_schedule(settings, stop=stop)] if settings.tier_evaluation_daily else [],
        stop=stop,
    )


if __name__ == "__main__":
    main()
