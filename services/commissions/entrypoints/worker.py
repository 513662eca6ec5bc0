"""Stream worker of the commissions service; run as a module.

Consumes order_applied and refunds, runs the outbox relay and the daily payables job.
"""

from __future__ import annotations

from chassis.run import run_worker_process
from services.commissions.bootstrap import build_background, build_processors, consumes, produces
from services.commissions.config import Settings


def main() -> None:
    settings = Settings()
    run_worker_process(
        settings,
        topics=[*consumes(settings), *produces(settings)],
        processors=build_processors(settings),
        background=build_background(settings),
    )


if __name__ == "__main__":
    main()
