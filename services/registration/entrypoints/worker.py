"""Stream worker of the registration service: run as a module."""

from __future__ import annotations

from chassis.run import run_worker_process
from chassis.settings import load_settings
from services.registration.bootstrap import CONSUMES, PRODUCES, build_processors, tier_schedule
from services.registration.config import Settings


def main() -> None:
    settings = load_settings(Settings)
    run_worker_process(
        settings,
        topics=[*CONSUMES, *PRODUCES],
        processors=build_processors(settings),
        background=[tier_schedule(settings)] if settings.tier_evaluation_daily else [],
    )


if __name__ == "__main__":
    main()
